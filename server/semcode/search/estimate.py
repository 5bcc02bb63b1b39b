"""What indexing a folder will cost, before it is indexed (`semcode index --dry-run`).

The rates come from this machine and these files, not from a table: the folder is scanned
with the real workspace rules and every file is read through the real content checks
(so the skip counts are exact), then a seeded sample of the readable files (about
`sample_bytes`, at least a few files of every language) is indexed for real into a
temporary index — chunking, BM25, SQLite and, when a model is configured, embedding —
and its measured chunks per byte (per language), seconds per chunk and bytes on disk per
chunk are scaled to the whole folder. Nothing of the folder's own index is read or
written.

What it cannot see: per-chunk cost grows slowly with the index (a million-chunk index
costs more a chunk than the sample does), and a cold embedding cache is assumed.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from semcode.chunking.languages import detect_language
from semcode.config import Settings
from semcode.index.indexer import Indexer
from semcode.kinds import Role
from semcode.models.auto import model_for
from semcode.models.registry import ModelSet
from semcode.search.engine import Engine
from semcode.workspace.checks import FileSkipped, SkipReason
from semcode.workspace.files import IgnoreCause, Workspace

DEFAULT_SAMPLE_BYTES = 3_000_000
MIN_FILES_PER_LANGUAGE = 5  # so a small language gets a measured rate of its own


@dataclass(frozen=True)
class LanguageEstimate:
    """One language's share of the folder: files and bytes counted, chunks estimated."""

    language: str
    files: int
    bytes: int
    chunks: int


@dataclass(frozen=True)
class IndexEstimate:
    """What `semcode index` would do to a folder, from measured rates (module docstring)."""

    files: int  # that would be indexed
    bytes: int
    chunks: int
    index_seconds: float  # chunk, BM25 and store (lexical index)
    embed_seconds: float | None  # None: no embedding model configured
    disk_bytes: int
    languages: tuple[LanguageEstimate, ...]
    skipped: dict[SkipReason, int] = field(default_factory=dict)  # readable-check skips
    ignore_cause: IgnoreCause | None = None
    sample_files: int = 0
    sample_chunks: int = 0
    embedding_model: str | None = None


@dataclass(frozen=True)
class _SampleRun:
    """The sample's real index: chunks, seconds per stage and bytes on disk."""

    chunks: int
    chunks_by_language: Counter[str]  # keyed by the file's detected language
    index_seconds: float
    embed_seconds: float | None
    disk_bytes: int
    model: str | None  # the embedding model's spec ("builtin", "hf:…"); None: none ran


def estimate_index(root: Path, settings: Settings, sample_bytes: int = DEFAULT_SAMPLE_BYTES,
                   seed: int = 0, progress: Callable[[str], None] | None = None
                   ) -> IndexEstimate:
    """Estimate a cold `semcode index` of `root` under `settings` (module docstring).
    `progress` gets a line before each long step."""
    say = progress or (lambda _line: None)
    say(f"reading {root}")
    workspace = Workspace(root, settings)
    entries = list(workspace.scan())
    rng = random.Random(seed)
    order = list(range(len(entries)))
    rng.shuffle(order)
    readable: list[tuple[str, str, int]] = []  # (rel path, language, bytes)
    skipped: Counter[SkipReason] = Counter()
    sample: list[tuple[str, str, str]] = []  # (rel path, language, text)
    taken_bytes = 0
    per_language_taken: Counter[str] = Counter()
    for i in order:
        entry = entries[i]
        try:
            text = workspace.read_text(entry.rel_path)
        except FileSkipped as skip:
            skipped[skip.reason] += 1
            continue
        language = _language(entry.rel_path, text)
        size = len(text.encode("utf-8", "surrogatepass"))
        readable.append((entry.rel_path, language, size))
        if taken_bytes < sample_bytes or per_language_taken[language] < MIN_FILES_PER_LANGUAGE:
            sample.append((entry.rel_path, language, text))
            taken_bytes += size
            per_language_taken[language] += 1
    say(f"indexing a sample of {len(sample):,} files ({taken_bytes / 1e6:.1f} MB)")
    sampled_bytes: Counter[str] = Counter()
    for _, language, text in sample:
        sampled_bytes[language] += len(text.encode("utf-8", "surrogatepass"))
    run = _index_sample(sample, settings)
    return _scale(readable, sampled_bytes, run, skipped, workspace.ignore_cause(), len(sample))


def _language(rel_path: str, text: str) -> str:
    first_line = text[: text.find("\n")] if "\n" in text else text
    return detect_language(rel_path, first_line) or "text"


def _index_sample(sample: list[tuple[str, str, str]], settings: Settings) -> _SampleRun:
    """Index a copy of the sample for real (the engine `semcode index` runs, the configured
    models) in a temporary folder with a temporary index directory; its chunks are counted
    per file's detected language (the chunker may read a `.h` as C++)."""
    with tempfile.TemporaryDirectory(prefix="semcode-estimate-") as tmp:
        folder, index_dir = Path(tmp) / "sample", Path(tmp) / "index"
        for rel, _, text in sample:
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8", errors="surrogatepass")
        # No shared embedding cache: its file would be counted as the folder's own index
        # on disk, and the real run's vectors are the folder's cost either way.
        sample_settings = Settings.from_mapping(
            {"index_dir": str(index_dir), "shared_embedding_cache": False}, settings)
        engine = Engine(Indexer(folder, sample_settings), ModelSet(sample_settings))
        try:
            began = time.monotonic()
            report = engine.sync()
            index_seconds = time.monotonic() - began
            language_of = {rel: language for rel, language, _ in sample}
            chunks_by_language: Counter[str] = Counter()
            for path, count in engine.indexer.refs.path_counts().items():
                chunks_by_language[language_of[path]] += count
            began = time.monotonic()
            embedded = engine.embed_pending()
            embed_seconds = time.monotonic() - began if embedded.model else None
        finally:
            engine.close()
            engine.models.close()
        disk = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
    model = model_for(settings, Role.EMBEDDER)[0] if embedded.model else None
    return _SampleRun(report.chunks, chunks_by_language, index_seconds, embed_seconds, disk,
                      model)


def _scale(readable: list[tuple[str, str, int]], sample_bytes: Counter[str],
           run: _SampleRun, skipped: Counter[SkipReason],
           ignore_cause: IgnoreCause | None, sample_files: int) -> IndexEstimate:
    files: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for _, language, size in readable:
        files[language] += 1
        sizes[language] += size
    sample_chunks = run.chunks_by_language
    overall = sum(sample_chunks.values()) / max(1, sum(sample_bytes.values()))
    languages = []
    for language, size in sizes.most_common():
        rate = (sample_chunks[language] / sample_bytes[language]
                if sample_bytes[language] else overall)
        languages.append(LanguageEstimate(language, files[language], size, round(size * rate)))
    total_chunks = sum(lang.chunks for lang in languages)
    per_chunk = run.index_seconds / max(1, run.chunks)
    embed = (None if run.embed_seconds is None
             else run.embed_seconds / max(1, run.chunks) * total_chunks)
    return IndexEstimate(
        files=len(readable), bytes=sum(sizes.values()), chunks=total_chunks,
        index_seconds=per_chunk * total_chunks, embed_seconds=embed,
        disk_bytes=round(run.disk_bytes / max(1, run.chunks) * total_chunks),
        languages=tuple(languages), skipped=dict(skipped), ignore_cause=ignore_cause,
        sample_files=sample_files, sample_chunks=run.chunks, embedding_model=run.model)
