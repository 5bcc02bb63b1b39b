"""The cross-encoder's input: exactly what semcode sends llama.cpp at search time.

`[CLS] query [SEP] document [SEP]`, token type 0 for every token (llama.cpp's BERT graph
adds type row 0 to all of them), the query cut first to `QUERY_TOKENS`, then the document
so that the pair is at most `max_tokens` tokens (specials included). The document is the
chunk's `embedding_text()`, the pairs' `code` field. Texts are tokenised once, without
special tokens, by the base model's own word-piece tokenizer (the one the converter
writes into the GGUF).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUERY_TOKENS = 64
SPECIALS = 3  # [CLS], [SEP], [SEP]


@dataclass(frozen=True)
class PairFormat:
    """Tokenises texts and assembles (query, document) pairs for one `max_tokens`."""

    tokenizer: Any  # a transformers PreTrainedTokenizerFast
    max_tokens: int

    @classmethod
    def load(cls, model_dir: Path, max_tokens: int) -> PairFormat:
        """The format with the tokenizer saved in `model_dir`."""
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(str(model_dir)), max_tokens)

    def tokenise(self, texts: list[str], is_query: list[bool],
                 batch: int = 1024) -> list[list[int]]:
        """Token ids of each text (no specials), a query cut to QUERY_TOKENS, a document
        to the most any pair can hold."""
        out: list[list[int]] = []
        for start in range(0, len(texts), batch):
            part, kinds = texts[start:start + batch], is_query[start:start + batch]
            rows: list[list[int]] = [[] for _ in part]
            for want_query in (True, False):
                chosen = [i for i, q in enumerate(kinds) if q is want_query]
                if not chosen:
                    continue
                limit = QUERY_TOKENS if want_query else self.max_tokens - SPECIALS
                ids = self.tokenizer([part[i] for i in chosen], add_special_tokens=False,
                                     truncation=True, max_length=limit)["input_ids"]
                for i, row in zip(chosen, ids, strict=True):
                    rows[i] = list(row)
            out.extend(rows)
        return out

    def pair(self, query: Sequence[int], document: Sequence[int]) -> list[int]:
        """One pair's ids: `[CLS] query [SEP] document [SEP]`, cut to `max_tokens`."""
        q = list(query[:QUERY_TOKENS])
        room = max(0, self.max_tokens - SPECIALS - len(q))
        return [self.tokenizer.cls_token_id, *q, self.tokenizer.sep_token_id,
                *document[:room], self.tokenizer.sep_token_id]

    def batch(self, pairs: Sequence[list[int]]) -> dict[str, Any]:
        """Padded tensors for the model: input ids, attention mask, token types (all 0)."""
        import torch

        width = max(len(p) for p in pairs)
        ids = torch.full((len(pairs), width), int(self.tokenizer.pad_token_id or 0),
                         dtype=torch.long)
        mask = torch.zeros((len(pairs), width), dtype=torch.long)
        for i, p in enumerate(pairs):
            ids[i, :len(p)] = torch.tensor(p, dtype=torch.long)
            mask[i, :len(p)] = 1
        return {"input_ids": ids, "attention_mask": mask,
                "token_type_ids": torch.zeros_like(ids)}
