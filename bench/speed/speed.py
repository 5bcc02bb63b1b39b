"""Speed and scale: indexing, embedding and reranking throughput (as ratios to the same
model's raw prompt processing, measured in the same run), per-stage query latency, peak
RSS, index size. Medians and spreads over repeats; nothing here asserts a time."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from semcode.config import Settings
from semcode.search.engine import Engine, SearchRequest


def spread(values: list[float]) -> dict[str, float]:
    """Median, min, max (and n) of repeated measurements."""
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4),
            "max": round(max(values), 4), "n": len(values)}


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]
    return {"p50": round(pct(50), 3), "p95": round(pct(95), 3), "n": len(values)}


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def copy_tree(sources: list[tuple[Path, str]], dest: Path) -> None:
    """Copy real code (path, name) pairs under `dest/name` (.py/.js/.ts/.go/… trees)."""
    for src, name in sources:
        shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns(
            "__pycache__", "*.pyc", ".git", ".venv", "node_modules", "site-packages"),
            symlinks=True)


FIRST_STAGE_QUERIES = (
    "parse the configuration file into a dictionary", "open a network connection with a timeout",
    "where is the retry logic for failed requests", "encode objects as JSON text",
    "read lines from a file lazily", "how do we escape html special characters",
    "handle keyboard interrupt and clean up", "compare two version strings",
    "JSONDecoder", "getLogger", "where is urlopen defined", "SequenceMatcher ratio",
)


def first_stage_latency(engine: Engine, queries: list[str]) -> dict[str, Any]:
    """Wall time of a lexical search (lexical + fusion + ranking, no model) per query, and
    the engine's own per-stage timings: p50/p95 over two passes (the first warms up)."""
    total: list[float] = []
    stages: dict[str, list[float]] = {}
    for n_pass in range(2):
        for q in queries:
            t = time.perf_counter()
            r = engine.search(SearchRequest(q, limit=10, mode="lexical", rerank=False))
            if n_pass:
                total.append((time.perf_counter() - t) * 1000)
                for k, v in r.timings_ms.items():
                    stages.setdefault(k, []).append(v)
    return {"total": percentiles(total), **{k: percentiles(v) for k, v in stages.items()}}


def measure_indexing(tree: Path, base: Settings, repeats: int,
                     queries: list[str] | None = None) -> dict[str, Any]:
    """Full index (no embeddings), no-change re-index and a one-file change, `repeats`
    times each with a fresh index; then first-stage query latency on the last index."""
    settings = Settings.from_mapping({"embedding_model": "off", "reranker_model": "off"}, base)
    full, nochange, onefile = [], [], []
    files = chunks = 0
    size = 0
    index_bytes = 0
    target = next(p for p in sorted(tree.rglob("*.py")) if p.stat().st_size > 2000)
    original = target.read_text()
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="semcode-speed-") as tmp:
            s = Settings.from_mapping({"index_dir": tmp}, settings)
            engine = Engine.open(tree, s)
            t = time.perf_counter()
            report = engine.sync()
            engine.indexer.rebuild_lexical()
            engine.flush()
            full.append(time.perf_counter() - t)
            files, chunks = report.files_seen, report.chunks
            size = sum(e.size for e in engine.indexer.workspace.scan())
            t = time.perf_counter()
            engine.sync()
            nochange.append(time.perf_counter() - t)
            target.write_text(original + "\n\ndef added_for_bench(x):\n    return x + 1\n")
            try:
                t = time.perf_counter()
                engine.sync()
                engine.search(SearchRequest("added for bench", mode="lexical"))
                onefile.append(time.perf_counter() - t)
            finally:
                target.write_text(original)
            engine.sync()
            latency = first_stage_latency(engine, queries or list(FIRST_STAGE_QUERIES))
            engine.close()
            index_bytes = dir_size(Path(tmp))
    med = statistics.median(full)
    return {"files": files, "chunks": chunks, "mbytes": round(size / 1e6, 2),
            "full_index_s": spread(full), "files_per_s": round(files / med, 1),
            "mb_per_s": round(size / 1e6 / med, 3), "chunks_per_s": round(chunks / med, 1),
            "nochange_reindex_s": spread(nochange), "one_file_change_s": spread(onefile),
            "index_bytes": index_bytes,
            "index_bytes_per_chunk_no_vectors": round(index_bytes / max(chunks, 1), 1),
            "first_stage_latency_ms": latency}


def raw_prompt_tps(model: Any, tokens: list[int], embeddings: bool, pooling: str,
                   repeats: int = 3) -> float:
    """Tokens/s of one long sequence through llama.cpp's batch eval (one llama_decode),
    in a fresh context on the already-loaded weights: the ceiling for this model here."""
    from semcode.models.llama_cpp import _Batch, _decode

    n = len(tokens)
    rates = []
    for _ in range(repeats):
        ctx = model.new_context(n_ctx=n, n_batch=n, n_seq_max=1, n_threads=0,
                                embeddings=embeddings, pooling=pooling)
        batch = _Batch(model.lib, n)
        try:
            for pos, tok in enumerate(tokens):
                batch.add(tok, pos, 0, output=pos == n - 1)
            t = time.perf_counter()
            _decode(model, ctx, batch)
            rates.append(n / (time.perf_counter() - t))
        finally:
            batch.free()
            model.lib.llama_free(ctx)
    return statistics.median(rates)


def _long_tokens(tokenize: Any, texts: list[str], n: int) -> list[int]:
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenize(text))
        if len(ids) >= n:
            break
    return ids[:n]


def measure_models(tree: Path, base: Settings, queries: list[str], index_dir: Path,
                   max_embed_chunks: int, depths: tuple[int, ...],
                   embed_budget_s: float | None = None) -> dict[str, Any]:
    """Embedding throughput, per-stage query latency, rerank throughput, each against
    the same model's raw prompt processing."""
    out: dict[str, Any] = {}
    settings = Settings.from_mapping({"index_dir": str(index_dir), "rerank_budget_ms": 0}, base)
    engine = Engine.open(tree, settings)
    engine.sync()
    engine.indexer.rebuild_lexical()
    embedder = engine.models.embedder()
    if embedder is not None:
        engine._attach_embedder()
        ids = engine.indexer.pending_embeddings()[:max_embed_chunks]
        chunks = engine.indexer.chunks(ids)
        texts = [chunks[i].embedding_text() for i in ids if i in chunks]
        formatted = [embedder.profile.format_document(t) for t in texts]  # type: ignore[attr-defined]
        n_tokens = sum(len(embedder.tokenize(t)) for t in formatted)  # type: ignore[attr-defined]
        t = time.perf_counter()
        for start in range(0, len(texts), 16):
            embedder.embed_documents(texts[start:start + 16])
        seconds = time.perf_counter() - t
        model = embedder._model  # type: ignore[attr-defined]
        seq = _long_tokens(embedder.tokenize, formatted,  # type: ignore[attr-defined]
                           min(2048, model.n_ctx_train, settings.embed_batch_tokens))
        raw = raw_prompt_tps(model, seq, True, embedder.profile.pooling)  # type: ignore[attr-defined]
        out["embedding"] = {"chunks": len(texts), "tokens": n_tokens,
                            "tokens_per_s": round(n_tokens / seconds, 1),
                            "chunks_per_s": round(len(texts) / seconds, 2),
                            "raw_prompt_tokens_per_s": round(raw, 1),
                            "ratio_to_raw": round(n_tokens / seconds / raw, 3),
                            "raw_sequence_tokens": len(seq)}
        engine.embed_pending(budget_s=embed_budget_s)  # the corpus, for dense latency
    lat: dict[str, list[float]] = {"lexical": [], "dense": [], "fusion": []}
    for q in queries:
        r = engine.search(SearchRequest(q, limit=20, rerank=False))
        for k in lat:
            if k in r.timings_ms:
                lat[k].append(r.timings_ms[k])
    out["query_latency_ms"] = {k: percentiles(v) for k, v in lat.items() if v}
    reranker = engine.models.reranker()
    if reranker is not None:
        rr: dict[str, Any] = {}
        for depth in depths:
            s = Settings.from_mapping({"rerank_depth": depth}, settings)
            engine.settings = s
            times, pairs, tokens = [], 0, 0
            for q in queries:
                req = SearchRequest(q, limit=depth, rerank=True)
                first = engine.search(req)
                head = first.candidates[:depth]
                pairs += len(head)
                tokens += len(reranker.prefix_tokens(q))  # type: ignore[attr-defined]
                tokens += sum(len(reranker.document_tokens(  # type: ignore[attr-defined]
                    f"{h.chunk.path}:{h.chunk.start_line}\n{h.chunk.text}")) for h in head)
                t = time.perf_counter()
                engine.rerank(req, first)
                times.append((time.perf_counter() - t) * 1000)
            total_s = sum(times) / 1000
            rr[str(depth)] = {**percentiles(times), "pairs_per_s": round(pairs / total_s, 1),
                              "tokens_per_s": round(tokens / total_s, 1)}
        engine.settings = settings
        model = reranker._model  # type: ignore[attr-defined]
        docs = [c.text for c in engine.indexer.chunks(range(1, 400)).values()]
        seq = _long_tokens(lambda t: model.tokenize(t, False), docs, 2048)
        raw = raw_prompt_tps(model, seq, False, "none")
        for v in rr.values():
            v["ratio_to_raw"] = round(v["tokens_per_s"] / raw, 3)
        out["rerank"] = {"by_depth": rr, "raw_prompt_tokens_per_s": round(raw, 1),
                         "raw_sequence_tokens": len(seq)}
    engine.close()
    engine.models.close()
    return out


_RSS_CHILD = """
import json, resource, sys
from pathlib import Path
from semcode.config import Settings
from semcode.search.engine import Engine, SearchRequest
settings = Settings.from_mapping(json.loads(sys.argv[2]))
engine = Engine.open(Path(sys.argv[1]), settings)
r = engine.search(SearchRequest("read a configuration file", limit=20))
engine.rerank(SearchRequest("read a configuration file", limit=20), r)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def peak_rss(tree: Path, settings: dict[str, Any]) -> int:
    """Peak RSS (bytes) of a fresh process that loads the index and answers one query."""
    out = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(tree), json.dumps(settings)],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def llama_version() -> str:
    try:
        import llama_cpp

        return str(llama_cpp.__version__)
    except Exception:  # noqa: BLE001 - only for the report
        return "unknown"

