"""The CPU-heavy half of indexing a file, on every core: read it (with the workspace's
content checks), digest it, chunk it with tree-sitter, tokenise each chunk for BM25 and
hash it for the embedding cache. Everything here is a pure function of a file's path,
its text and the settings, so it can run in worker processes; what the store and the
in-memory indexes do with the result stays in the indexer, in one process.

`Preparer.run(jobs)` yields one result per job, **in the order of the jobs**, whether
the work ran here or in workers: the indexer writes files in scan order, so chunk ids
(the store's insertion order) and everything ordered by them are the same with one
worker or many. Workers are used only where they pay for their start (a sync with many
files to read; `WORKER_MIN_JOBS`); a few edited files are prepared in this process.
At most a few batches per worker are in flight, so memory stays bounded however large
the tree (a result holds a file's chunks and tokens until the indexer has stored them).

Workers are started with `spawn`, never `fork`: the language server and the MCP server
run syncs beside other threads (an event loop, model loading), and a forked child of a
threaded process may inherit a lock held by a thread that does not exist in it.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from semcode.chunking import ChunkerConfig, ChunkResult, chunk_file
from semcode.chunks import Chunk
from semcode.config import Settings
from semcode.index.tokenizer import chunk_tokens
from semcode.workspace import FileSkipped, SkipReason, Workspace

log = logging.getLogger(__name__)

# A sync with fewer files than this to read is prepared in this process: starting a
# worker (a fresh interpreter importing tree-sitter's grammars) costs about a second.
WORKER_MIN_JOBS = 200
# Files are sent to workers in batches (a task's round trip costs more than a small
# file's chunking): up to this many files or this many bytes of them.
BATCH_FILES = 32
BATCH_BYTES = 1 << 20
# Batches in flight per worker: enough that no worker waits for the next one, few
# enough that results waiting to be stored stay a bounded amount of memory.
IN_FLIGHT_PER_WORKER = 3
# Workers when the setting says "every core": more than this gains little (the writer,
# one process, becomes the bottleneck) and costs memory per worker.
MAX_AUTO_WORKERS = 8


def text_digest(text: str) -> str:
    """The content digest a file record keeps (decides whether a file changed)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Job:
    """A file to prepare: its workspace-relative path, its size from the scan (for
    batching), and the digest stored for it, if any (text with that digest is not
    chunked again)."""

    rel_path: str
    size: int = 0
    known_digest: str | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A file read: its text's digest and, unless that digest is the job's
    `known_digest` (`unchanged`), its chunks with their BM25 tokens and content hashes
    (in chunk order)."""

    rel_path: str
    digest: str
    chunked: ChunkResult | None = None
    tokens: tuple[list[str], ...] = ()
    hashes: tuple[str, ...] = ()

    @property
    def unchanged(self) -> bool:
        """The text is the one already stored (nothing was chunked)."""
        return self.chunked is None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file the content checks (or the disk) refused: `FileSkipped`'s reason and
    message, as plain data (an exception with its own constructor does not survive the
    trip back from a worker)."""

    rel_path: str
    reason: SkipReason
    message: str


Result = Prepared | Skipped


@dataclass(frozen=True)
class PrepareConfig:
    """What preparing a file depends on besides the file: sent to each worker once."""

    root: Path
    settings: Settings
    chunker: ChunkerConfig

    @classmethod
    def of(cls, root: Path, settings: Settings) -> PrepareConfig:
        """The configuration of a workspace root under these settings."""
        return cls(root, settings, ChunkerConfig.of(settings))


def chunk_text(rel_path: str, text: str, config: PrepareConfig, digest: str | None = None,
               known: Mapping[Chunk, list[str]] | None = None) -> Prepared:
    """Chunk, tokenise and hash a text (a file's or an editor buffer's). `known`: tokens
    of chunks seen before (an editor buffer's last version), not tokenised again."""
    result = chunk_file(rel_path, text, config.chunker)
    fields = config.settings.bm25_fields
    known = known or {}
    return Prepared(rel_path, digest if digest is not None else text_digest(text), result,
                    tuple(known.get(c) or chunk_tokens(c, fields) for c in result.chunks),
                    tuple(c.content_hash() for c in result.chunks))


class _Reader:
    """Prepares jobs against one workspace (one per worker process, and one here)."""

    def __init__(self, config: PrepareConfig) -> None:
        self.config = config
        self.workspace = Workspace(config.root, config.settings)

    def prepare(self, job: Job) -> Result:
        """Read one file and, unless its digest is the known one, chunk it."""
        try:
            text = self.workspace.read_text(job.rel_path)
        except FileSkipped as skip:
            return Skipped(job.rel_path, skip.reason, skip.message)
        digest = text_digest(text)
        if digest == job.known_digest:
            return Prepared(job.rel_path, digest)
        return chunk_text(job.rel_path, text, self.config, digest)


_worker: _Reader | None = None  # the reader of this worker process


def _init_worker(config: PrepareConfig) -> None:
    global _worker
    _worker = _Reader(config)


def _prepare_batch(jobs: Sequence[Job]) -> list[Result]:
    assert _worker is not None, "a worker prepares only after its initializer ran"
    return [_worker.prepare(job) for job in jobs]


def auto_workers(setting: int) -> int:
    """The worker count a setting means: 0 is every core (at most `MAX_AUTO_WORKERS`)."""
    if setting > 0:
        return setting
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_AUTO_WORKERS))


def batches(jobs: Sequence[Job]) -> Iterator[list[Job]]:
    """`jobs` in order, cut into batches of at most `BATCH_FILES` files and, unless a
    single file is larger, `BATCH_BYTES` bytes."""
    batch: list[Job] = []
    size = 0
    for job in jobs:
        if batch and (len(batch) >= BATCH_FILES or size + job.size > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(job)
        size += job.size
    if batch:
        yield batch


class Preparer:
    """Prepares a sync's files, in worker processes when there are many (see the module
    docstring). One `run` at a time; the pool lives for the run only."""

    def __init__(self, config: PrepareConfig, workers: int) -> None:
        self.config = config
        self.workers = workers
        self._here: _Reader | None = None

    def reader(self) -> _Reader:
        """The reader that prepares jobs in this process (made once, on first use)."""
        if self._here is None:
            self._here = _Reader(self.config)
        return self._here

    def run(self, jobs: Sequence[Job]) -> Generator[Result, None, None]:
        """One result per job, in the jobs' order. Closing the iterator early (a
        cancelled sync) stops the workers without waiting for the batches in flight."""
        if self.workers <= 1 or len(jobs) < WORKER_MIN_JOBS:
            reader = self.reader()
            for job in jobs:
                yield reader.prepare(job)
            return
        yield from self._in_workers(jobs)

    def _in_workers(self, jobs: Sequence[Job]) -> Generator[Result, None, None]:
        pool = ProcessPoolExecutor(max_workers=self.workers,
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(self.config,))
        pending: deque[Future[list[Result]]] = deque()
        todo = batches(jobs)
        limit = self.workers * IN_FLIGHT_PER_WORKER
        delivered = 0
        finished = False
        try:
            try:
                while True:
                    while len(pending) < limit and (batch := next(todo, None)) is not None:
                        pending.append(pool.submit(_prepare_batch, batch))
                    if not pending:
                        break
                    for result in pending.popleft().result():
                        yield result
                        delivered += 1
            except BrokenProcessPool:
                # A worker died (killed for memory, a crash in a grammar): what was not
                # delivered yet is prepared here, so the sync still completes.
                log.warning("an indexing worker process died; going on in this process")
                reader = self.reader()
                for job in jobs[delivered:]:
                    yield reader.prepare(job)
            finished = True
        finally:
            # Cancelled (or failed): drop the batches not started, do not wait for the
            # ones running (their results are not wanted).
            pool.shutdown(wait=finished, cancel_futures=not finished)

__all__ = ["Job", "Prepared", "Skipped", "Result", "PrepareConfig", "Preparer",
           "chunk_text", "text_digest", "auto_workers", "batches", "WORKER_MIN_JOBS"]
