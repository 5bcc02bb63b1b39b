"""The language-server adapter: `semcode serve` over stdio (pygls).

It only wires the engine (`semcode.search.engine`) to LSP; it holds no retrieval logic.

Layout, by job:
* `server.py`: pygls handlers, a few lines each, and `serve()`;
* `wire.py`: the hardened stdio read loop (framing, the JSON-RPC envelope, lifecycle
  errors), `protocol.py`: the JSON-RPC details pygls does not give us (raw params,
  InvalidParams that name the field, capabilities), `params.py`: request validation,
  `convert.py`: the one module that makes the JSON of answers and notifications, from
  the records the parts answer with (`records.py`) and the engine's;
* `session.py`: `Session`, the host behind the handlers (lifecycle, folders, status): it
  builds one part per job and wires them; `core.py` (`SessionContext`: the state they
  share), `scheduler.py` (`Indexing`, `EmbeddingScheduler`), `buffers.py`
  (`BufferRouting`: edits and file events to the writer, debounced per document in
  `documents.py`), `searching.py` (`TwoPhaseSearch`; bookkeeping and multi-root merging
  in `searches.py`), `progress.py` (`ProgressReporter`);
* `folders.py` (a folder's engine, writer and state; the read barrier `EditBarrier`),
  `tasks.py` (throttles, background tasks), `logs.py` (file + window/logMessage).

Threads (nothing slow ever runs on the event loop):
* the *event loop* (main thread): every handler, every message sent, all bookkeeping
  (documents, searches, folder states). Worker threads reach it only through
  `loop.call_soon_threadsafe`;
* a *stdin reader* (daemon): blocking reads, handed to the loop (`wire.py`);
* one *writer* thread per folder: `Engine.open`, `sync`, `update_file`, `remove_file`,
  `revert_file`, `rename_file`, `flush`, `close`, in the order they were asked for (so a
  buffer's text always lands after the scan that would otherwise overwrite it, and a
  revert after the edit it undoes);
* one *embed* thread: `embed_pending` in slices of `EMBED_SLICE_S`, open and recently
  edited files first (the priority is re-read between slices);
* one *rerank* thread: the cross-encoder, so a slow rerank never delays an edit;
* a small *read* pool: first-stage searches, `related`, status. Readers borrow a
  folder's engine (`Folder.read`); the writer closing it waits for them
  (`Folder.detach_engine`).
A search first hands every pending (debounced) edit to the writers
(`BufferRouting.apply_pending_edits`), and its read job waits for its folder's edits
before it reads (`folders.EditBarrier`: writer -> reader directly, not through the
loop; at most `PENDING_EDITS_WAIT_S`, and never behind a folder's scan), so it sees
every keystroke made before it. An edit costs what it changed: the store keeps the
rows of unchanged chunks and the indexer re-tokenises only the changed ones. After
indexing, the heap is settled (`semcode.heap.settle_heap`) so that no later garbage
collection walks the loaded index in the middle of an edit or a search.
"""

PROTOCOL_VERSION = 1
