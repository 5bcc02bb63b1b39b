"""Search quality, measured: `semcode eval` on the user's own code, and the library that
`bench/` uses for the published numbers (one implementation of every metric and protocol).

* `metrics`: MRR@10, nDCG@10, Recall@k and bootstrap intervals (plain functions).
* `protocols`: queries and gold answers — docstring stripping (docstring → function),
  commit mining (commit → changed files).
* `styles`: the benchmark's other query styles (documentation prose → API, identifier →
  definition), generated from a corpus.
* `runner`: runs a protocol on an `Engine`, summarises, renders tables and JSON.

The `semcode eval` command line lives in `semcode.cli`; this package never imports it.
"""

from semcode.evaluation.metrics import (
    RECALL_KS,
    bootstrap_ci,
    ndcg_at,
    paired_bootstrap,
    recall_at,
    reciprocal_rank,
    relevant_ranks,
    stratified_bootstrap,
)
from semcode.evaluation.protocols import (
    CommitCase,
    DocstringCorpus,
    Query,
    commit_cases,
    docstring_corpus,
    file_key,
    first_sentence,
    is_test_path,
    read_tree,
    strip_docs,
    symbol_key,
    write_tree,
)
from semcode.evaluation.runner import (
    QueryResult,
    evaluate,
    markdown_table,
    result_json,
    run_commit,
    run_docstring,
    summarize,
)

__all__ = [
    "Query", "QueryResult", "DocstringCorpus", "CommitCase", "RECALL_KS",
    "reciprocal_rank", "recall_at", "ndcg_at", "bootstrap_ci", "paired_bootstrap",
    "stratified_bootstrap", "relevant_ranks", "first_sentence", "is_test_path",
    "docstring_corpus", "strip_docs", "symbol_key", "file_key", "read_tree", "write_tree",
    "commit_cases", "evaluate", "summarize", "markdown_table", "run_docstring", "run_commit",
    "result_json",
]
