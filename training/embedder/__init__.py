"""Training semcode's own static code embedder (the built-in CPU model).

A static (model2vec) model is a table: one vector per token; a text's vector is the mean of
its tokens' rows, L2-normalised (`semcode.models.static.StaticEmbedder`). Training it is
cheap on a CPU because nothing but that table is learnt:

1. `vocab`: a code vocabulary: the words that code and its documentation are made of (after
   semcode's own identifier splitting, `semcode.words.code_words`), counted over the
   training pairs;
2. `init`: the initial table, distilled from all-MiniLM-L6-v2 with model2vec
   (`distill_from_model`: every token of the MiniLM word-piece vocabulary plus the code
   words, embedded by the transformer, PCA, SIF weights);
3. `train`: contrastive fine-tuning of that table on (question, code) pairs — InfoNCE over
   in-batch negatives plus hard negatives mined with semcode's own BM25 — with the exact
   tokenisation `StaticEmbedder` uses at search time;
4. `export`: the model2vec folder semcode ships (`server/semcode/models/builtin/`).

The data comes from `training/` (`python -m training data`, pinned packages, never the
benchmark's or the held-out projects). Nothing here runs in CI except a tiny end-to-end
test (`tests/test_training_embedder.py`). torch and transformers are needed here only
(`pip install -e '.[train]'`), never by semcode itself.
"""
