"""The language-server adapter: `semcode serve` over stdio (pygls).

It only wires the engine (`semcode.search.engine`) to LSP; it holds no retrieval logic.
Layout: `server.py` (pygls handlers, a few lines each, and `serve()`), `session.py` (the
state behind them: folders, indexing, live updates, searches, status), `protocol.py` (the
JSON-RPC details pygls does not give us: raw params, InvalidParams that name the field,
capabilities), `params.py` (request validation), `convert.py` (chunks and hits to LSP
items), `documents.py` (per-document debounce), `searches.py` (two-phase bookkeeping and
multi-root merging), `tasks.py` (throttles and the coalescing background runner),
`logs.py` (file + window/logMessage logging), `wire.py` (the hardened stdio read loop:
framing, the JSON-RPC envelope, lifecycle errors).
"""

PROTOCOL_VERSION = 1
