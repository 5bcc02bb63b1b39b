"""Trying to break the language server (issue 12), seeded; the seed is in every failure
message, and `SEMCODE_FUZZ_SEED=N` replays one.

* Fuzz: batches of malformed messages (framing, JSON, envelope types, URIs, huge values,
  wrong `jsonrpc`, bad params for every semcode method and the document notifications) to
  one real server. Each request gets the error the spec asks for, notifications get
  nothing (and no dialog), and a normal search still works after every batch.
* Property: random didOpen/didChange/didClose/didSave and disk edits; after each batch
  the server's search results equal those of a fresh index of the same final text (open
  buffers count as their text).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client import LspClient
from lsp_helpers import LEXICAL, names

from semcode.config import Settings
from semcode.search.engine import Engine, SearchRequest

FUZZ_BATCHES = 10
FUZZ_PER_BATCH = 110  # 1,100 messages
PROPERTY_BATCHES = 8
PROPERTY_OPS = 35  # 280 operations


def seed() -> int:
    return int(os.environ.get("SEMCODE_FUZZ_SEED") or random.randrange(1 << 30))


def frame(body: bytes) -> bytes:
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


@dataclass
class Case:
    data: bytes  # framed bytes to send
    kind: str  # "error" (a response with an error for `id`), "answer" (any response),
    # "null" (one error with a null id), "none" (nothing at all)
    id: str | None = None
    codes: tuple[int, ...] = ()
    what: str = ""


BAD_URIS = ["", "file://", "file:///%00nul.py", "http://example.com/x.py", "untitled:Untitled-1",
            "file:///../../etc/passwd", "file:///" + "a/" * 2000 + "x.py", "file:///tmp/\ud800.py",
            "file:///C:/win/path.py", "not a uri at all", "file:///dev/null"]
BAD_VALUES = [None, True, -1, 0, 10**30, 1.5, "", "x" * 20_000, [], [None], {}, {"a": {"b": []}},
              "\ud800", "\x00", -(10**30)]


class Fuzzer:
    def __init__(self, rng: random.Random, workspace: Path) -> None:
        self.rng, self.ws, self.n = rng, workspace, 0

    def case(self) -> Case:
        self.n += 1
        makers: list[Callable[[str], Case]] = [
            self.bad_frame, self.short_frame, self.long_frame, self.huge_length,
            self.invalid_json, self.invalid_utf8, self.not_an_object, self.wrong_jsonrpc,
            self.bad_method, self.bad_id, self.bad_params_shape, self.search_params,
            self.related_params, self.command_params, self.symbol_params, self.unknown_method,
            self.bad_notification, self.document_notification, self.cancel_notification,
            self.stray_response, self.deep_nesting,
        ]
        return self.rng.choice(makers)(f"fz{self.n}")

    def value(self) -> Any:
        return self.rng.choice(BAD_VALUES)

    def request(self, msg_id: str, method: Any, params: Any = None, **extra: Any) -> bytes:
        return dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params,
                      **extra})

    # -- framing
    def bad_frame(self, i: str) -> Case:
        body = self.request(i, "semcode/search", {"query": "x"})
        junk = self.rng.choice([b"Content-Length: many\r\n\r\n", b"\r\n\r\n",
                                b"Content-Length: -3\r\n\r\n", b"Content-Length: 1e3\r\n\r\n",
                                b"Garbage-Header\r\n\r\n", b"Content-Length: 10\n\n",
                                bytes(self.rng.randrange(1, 256) for _ in range(40)) + b"\r\n\r\n"])
        # A frame without a usable length cannot be answered; the stream must resync.
        return Case(junk + body.replace(b"\r\n", b""), "none", what="bad frame")

    def short_frame(self, i: str) -> Case:
        body = self.request(i, "semcode/search", {"query": "short frame"})
        cut = self.rng.randrange(1, len(body) - 1)
        return Case(f"Content-Length: {cut}\r\n\r\n".encode() + body, "null", codes=(-32700,),
                    what="length too short")

    def long_frame(self, i: str) -> Case:
        body = self.request(i, "semcode/search", {"query": "x", "limit": "many"})
        extra = self.rng.randrange(1, 40)
        return Case(f"Content-Length: {len(body) + extra}\r\n\r\n".encode() + body, "error", i,
                    (-32602,), "length too long")

    def huge_length(self, i: str) -> Case:
        n = self.rng.choice([10**12, 2**63, 64 * 1024 * 1024 + 1, 10**40])
        return Case(f"Content-Length: {n}\r\n\r\n".encode() + b'{"jsonrpc": "2.0"', "none",
                    what="huge length")

    def deep_nesting(self, i: str) -> Case:
        depth = self.rng.choice([10_000, 100_000])
        body = b'{"jsonrpc": "2.0", "id": "' + i.encode() + b'", "method": "semcode/search", ' \
            b'"params": {"query": ' + b"[" * depth + b"]" * depth + b"}}"
        return Case(frame(body), "null", codes=(-32700,), what="deep nesting")

    # -- JSON and the envelope
    def invalid_json(self, i: str) -> Case:
        body = self.request(i, "semcode/search", {"query": "x"})
        broken = self.rng.choice([body[:-1], body.replace(b":", b"=", 1), b"{" + body,
                                  body + b"}", b"{'single': 'quotes'}", b"nul", b""])
        if not broken:
            return Case(b"Content-Length: 0\r\n\r\n", "none", what="empty body")
        return Case(frame(broken), "null", codes=(-32700,), what="invalid JSON")

    def invalid_utf8(self, i: str) -> Case:
        junk = bytes([self.rng.choice([0xff, 0xfe, 0xc3, 0xed, 0x80])])
        if self.rng.random() < 0.5:
            body = b'{"jsonrpc": "2.0", "id": "' + i.encode() + \
                b'", "method": "semcode/search", "params": {"query": "a' + junk + b'"}}'
            return Case(frame(body), "error", i, (-32700,), "invalid UTF-8 request")
        body = b'{"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"x": "' + \
            junk + b'"}}'
        return Case(frame(body), "none", what="invalid UTF-8 notification")

    def not_an_object(self, i: str) -> Case:
        body = dumps(self.rng.choice([[], [1, 2], 42, "str", None, True,
                                      [{"jsonrpc": "2.0", "id": i, "method": "shutdown"}]]))
        return Case(frame(body), "null", codes=(-32600,), what="not an object")

    def wrong_jsonrpc(self, i: str) -> Case:
        version = self.rng.choice(["1.0", 2, 2.0, None, "", "2.0 "])
        obj: dict[str, Any] = {"id": i, "method": "semcode/search", "params": {"query": "x"}}
        if version is not None:
            obj["jsonrpc"] = version
        if self.rng.random() < 0.3:
            del obj["id"]
            return Case(frame(dumps(obj)), "none", what="notification, wrong jsonrpc")
        return Case(frame(dumps(obj)), "error", i, (-32600,), "wrong jsonrpc")

    def bad_method(self, i: str) -> Case:
        method = self.rng.choice([42, None, [], {}, True, 1.5])
        if self.rng.random() < 0.3:
            return Case(frame(dumps({"jsonrpc": "2.0", "method": method})), "none",
                        what="notification, bad method")
        return Case(frame(self.request(i, method)), "error", i, (-32600,), "bad method")

    def bad_id(self, i: str) -> Case:
        bad = self.rng.choice([1.5, True, False, None, [], {}, [i]])
        body = dumps({"jsonrpc": "2.0", "id": bad, "method": "semcode/search",
                      "params": {"query": "x"}})
        return Case(frame(body), "null", codes=(-32600,), what="bad id")

    def bad_params_shape(self, i: str) -> Case:
        params = self.rng.choice(["x", 5, True, 1.5])
        method = self.rng.choice(["semcode/search", "semcode/related", "workspace/symbol",
                                  "workspace/executeCommand"])
        return Case(frame(self.request(i, method, params)), "error", i, (-32600,),
                    "params neither object nor array")

    def unknown_method(self, i: str) -> Case:
        method = self.rng.choice(["semcode/nope", "", "textDocument/hover", "x" * 5000])
        return Case(frame(self.request(i, method, {})), "error", i, (-32601,), "unknown method")

    def stray_response(self, i: str) -> Case:
        obj = self.rng.choice([{"jsonrpc": "2.0", "id": i, "result": None},
                               {"jsonrpc": "2.0", "id": i, "error": {"code": 1, "message": "m"}},
                               {"jsonrpc": "2.0", "id": i, "error": "broken"}])
        return Case(frame(dumps(obj)), "none", i, what="response to nothing")

    # -- params of every semcode method
    def search_params(self, i: str) -> Case:
        key = self.rng.choice(["query", "limit", "mode", "languages", "paths", "kinds",
                               "rerank", "colour"])
        bad: dict[str, Any] = {
            "query": self.rng.choice([None, 5, [], {}, "q" * 10_001]),
            "limit": self.rng.choice([0, 201, -1, 10**30, "5", 1.5, True, []]),
            "mode": self.rng.choice(["psychic", 5, [1], "HYBRID"]),
            "languages": self.rng.choice(["python", [1], {"a": 1}, [None]]),
            "paths": self.rng.choice(["*.py", [2], {"a": 1}, [[]]]),
            "kinds": self.rng.choice([["function"], [0], [27], [True], "12", [1.5]]),
            "rerank": self.rng.choice(["yes", 1, [], {}]),
            "colour": "blue",
        }
        params: dict[str, Any] = {"query": "x", key: bad[key]}
        if key == "query" and self.rng.random() < 0.3:
            del params["query"]
        if self.rng.random() < 0.5:
            return Case(frame(self.request(i, "semcode/search", params)), "error", i,
                        (-32602,), f"semcode/search {key}")
        args: list[Any] = [params.pop("query", None), params]
        return Case(frame(self.request(i, "workspace/executeCommand",
                                       {"command": "semcode.search", "arguments": args})),
                    "error", i, (-32602,), f"semcode.search {key}")

    def related_params(self, i: str) -> Case:
        params = self.rng.choice([
            {}, {"textDocument": {}}, {"textDocument": {"uri": 5}},
            {"textDocument": {"uri": "file:///x.py"}},
            {"textDocument": {"uri": "file:///x.py"}, "position": {"line": -1, "character": 0}},
            {"textDocument": {"uri": "file:///x.py"}, "position": {"line": "a"}},
            {"textDocument": {"uri": "file:///x.py"}, "position": {"line": 0, "character": 0},
             "limit": 0},
            {"textDocument": {"uri": "file:///x.py"}, "position": {"line": 10**30}},
        ])
        return Case(frame(self.request(i, "semcode/related", params)), "error", i, (-32602,),
                    "semcode/related")

    def command_params(self, i: str) -> Case:
        cmd, args, kind = self.rng.choice([
            ("semcode.search", [], "error"), ("semcode.search", [1], "error"),
            ("semcode.search", ["q", 5], "error"), ("semcode.search", ["q", {}, 3], "error"),
            ("semcode.reindex", [{"full": "yes"}], "error"), ("semcode.reindex", [1, 2], "error"),
            ("semcode.reindex", ["full"], "error"), ("semcode.nope", [], "error"),
            (5, [], "error"), ("semcode.status", [self.value()], "answer"),
        ])
        params: Any = {"command": cmd, "arguments": args}
        if self.rng.random() < 0.2:
            params = {"arguments": args}
        return Case(frame(self.request(i, "workspace/executeCommand", params)), kind, i,
                    (-32602,) if kind == "error" else (), f"command {cmd}")

    def symbol_params(self, i: str) -> Case:
        params = self.rng.choice([{}, {"query": "q" * 10_001}, {"quer": "x"}, [], [1]])
        if self.rng.random() < 0.2:  # the LSP converter coerces scalars to the string
            return Case(frame(self.request(i, "workspace/symbol", {"query": self.value()})),
                        "answer", i, what="workspace/symbol coerced")
        return Case(frame(self.request(i, "workspace/symbol", params)), "error", i, (-32602,),
                    "workspace/symbol")

    # -- notifications: never answered, never a dialog
    def bad_notification(self, i: str) -> Case:
        if self.rng.random() < 0.1:  # "no settings" in every spelling: nothing to say
            settings = self.rng.choice([None, [], {}, {"semcode": None}, {"semcode": []}])
            return Case(frame(dumps({"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration",
                                     "params": {"settings": settings}})), "none",
                        what=f"didChangeConfiguration {settings!r}")
        method = self.rng.choice(["initialized", "workspace/didChangeWatchedFiles",
                                  "workspace/didRenameFiles", "workspace/didChangeWorkspaceFolders",
                                  "window/workDoneProgress/cancel", "$/setTrace", "semcode/x"])
        params = self.rng.choice([5, "x", [], {"changes": [{"uri": self.value(), "type": 9}]},
                                  {"files": [{"oldUri": 1}]}, {"event": {"added": 5}},
                                  {"token": []}, {"value": "loud"}, {}])
        if method == "initialized" and isinstance(params, dict):
            params = 5  # a second well-formed `initialized` would re-index
        body = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            body["params"] = params
        return Case(frame(dumps(body)), "none", what=f"notification {method}")

    def document_notification(self, i: str) -> Case:
        method = self.rng.choice(["textDocument/didOpen", "textDocument/didChange",
                                  "textDocument/didClose", "textDocument/didSave"])
        uri = self.rng.choice(BAD_URIS + [(self.ws / "nowhere.py").as_uri(), self.ws.as_uri()])
        doc: dict[str, Any] = {"uri": uri}
        if self.rng.random() < 0.3:
            doc["uri"] = self.value()
        params: Any = {"textDocument": {**doc, "version": self.value(), "languageId": "python",
                                        "text": self.rng.choice(["x = 1\n", self.value()])},
                       "contentChanges": self.rng.choice([
                           [{"text": "y"}], [{"range": {"start": {"line": -5, "character": 0},
                                                        "end": {"line": 10**9, "character": 0}},
                                              "text": "z"}], "x", [5], None])}
        if self.rng.random() < 0.2:
            params = self.rng.choice([None, [], "x", {"textDocument": None}])
        return Case(frame(dumps({"jsonrpc": "2.0", "method": method, "params": params})),
                    "none", what=f"{method} {uri!r}")

    def cancel_notification(self, i: str) -> Case:
        method = self.rng.choice(["$/cancelRequest", "semcode/cancelSearch"])
        params = self.rng.choice([{"id": self.value()}, {"searchId": self.value()}, 5, None, []])
        return Case(frame(dumps({"jsonrpc": "2.0", "method": method, "params": params})),
                    "none", what=method)


def test_lsp_fuzz(spawn, workspace: Path) -> None:
    s = seed()
    rng = random.Random(s)
    client = spawn([workspace], LEXICAL)
    client.wait_ready()
    fuzz = Fuzzer(rng, workspace)
    sent = 0
    for batch in range(FUZZ_BATCHES):
        cases = [fuzz.case() for _ in range(FUZZ_PER_BATCH)]
        nulls_before = sum(1 for r in list(client.responses) if r.get("id") is None)
        futures: list[tuple[Case, Future[Any]]] = []
        for case in cases:
            if case.kind in ("error", "answer"):
                futures.append((case, client.expect(case.id)))
            client.send_raw(case.data)
        sent += len(cases)
        context = f"seed {s}, batch {batch}"
        # A normal search still works after the batch (and after the resyncs it needed).
        top = names(client.search("token bucket rate limiter"))
        assert top and top[0] == "AllowRequestWithTokenBucket", context
        for case, fut in futures:
            try:
                fut.result(30)
                outcome: Any = "result"
            except Exception as exc:  # noqa: BLE001
                outcome = getattr(exc, "code", repr(exc))
            if case.kind == "error":
                assert outcome in case.codes, f"{context}: {case.what} ({case.id}) -> {outcome}"
            else:
                assert outcome == "result" or isinstance(outcome, int), \
                    f"{context}: {case.what} ({case.id}) -> {outcome}"
        nulls = [r for r in list(client.responses) if r.get("id") is None][nulls_before:]
        expected = [c for c in cases if c.kind == "null"]
        assert sorted(r["error"]["code"] for r in nulls) == \
            sorted(c.codes[0] for c in expected), f"{context}: {[c.what for c in expected]}"
        answered = {r.get("id") for r in list(client.responses)}
        silent = [c.what for c in cases if c.kind == "none" and c.id is not None
                  and c.id in answered]
        assert not silent, f"{context}: answered notifications {silent}"
        assert client.received("window/showMessage") == [], context
        assert client.proc.poll() is None, context
    assert sent >= 1000
    logs = [m["message"] for m in client.received("window/logMessage")]
    assert not any("Traceback" in m for m in logs), f"seed {s}"
    assert client.close() == 0, f"seed {s}"


# ---------------------------------------------------------------------- property
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
         "juliet", "kilo", "lima"]
PATHS = ["pkg/a.py", "pkg/b.py", "pkg/sub/c.py", "lib/d.py", "lib/e.py", "top.py"]


def source(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randrange(1, 4)):
        a, b = rng.sample(WORDS, 2)
        out.append(f"def {a}_{b}_{rng.randrange(100)}(x):\n    return x + {rng.randrange(9)}\n")
    return "\n\n".join(out)


def expected_hits(texts: dict[str, str], root: Path, index: Path) -> dict[str, set[Any]]:
    """A fresh index (from scratch, in this process) of `texts`: query -> hit set."""
    if root.exists():
        shutil.rmtree(root)
    if index.exists():
        shutil.rmtree(index)
    for rel, text in texts.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    root.mkdir(parents=True, exist_ok=True)
    settings = Settings.from_mapping({"embedding_model": "off", "reranker_model": "off",
                                      "index_dir": str(index)})
    engine = Engine.open(root, settings)
    try:
        engine.sync()
        return {w: {(h.chunk.path, h.chunk.name, h.chunk.start_line) for h in engine.search(
            SearchRequest(query=w, limit=200, mode="lexical", rerank=False)).hits}
            for w in WORDS}
    finally:
        engine.close()


def server_hits(client: LspClient) -> dict[str, set[Any]]:
    out = {}
    for w in WORDS:
        items = client.search(w, limit=200, mode="lexical", rerank=False)["items"]
        out[w] = {(i["path"], i["name"], i["range"]["start"]["line"] + 1) for i in items}
    return out


def test_lsp_property_buffers_and_disk_match_a_fresh_index(spawn, tmp_path: Path) -> None:
    s = seed()
    rng = random.Random(s)
    ws = tmp_path / "prop"
    disk: dict[str, str] = {}
    for rel in rng.sample(PATHS, 3):
        disk[rel] = source(rng)
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(disk[rel])
    client = spawn([ws], LEXICAL)
    client.wait_ready()
    buffers: dict[str, str] = {}
    versions: dict[str, int] = {}

    def uri(rel: str) -> str:
        return (ws / rel).as_uri()

    def watched(rel: str, kind: int) -> None:
        client.notify("workspace/didChangeWatchedFiles",
                      {"changes": [{"uri": uri(rel), "type": kind}]})

    log: list[str] = []
    for batch in range(PROPERTY_BATCHES):
        for _ in range(PROPERTY_OPS):
            rel = rng.choice(PATHS)
            op = rng.choice(["open", "change", "change", "close", "save", "disk", "delete"])
            log.append(f"{op} {rel}")
            if op == "open" and rel not in buffers:
                buffers[rel] = disk.get(rel, source(rng))
                versions[rel] = 1
                client.notify("textDocument/didOpen", {"textDocument": {
                    "uri": uri(rel), "languageId": "python", "version": 1,
                    "text": buffers[rel]}})
            elif op == "change" and rel in buffers:
                versions[rel] += 1
                if rng.random() < 0.5:
                    buffers[rel] = source(rng)
                    change: dict[str, Any] = {"text": buffers[rel]}
                else:  # an incremental edit: append a function at the end
                    extra = "\n\n" + source(rng)
                    lines = buffers[rel].split("\n")
                    end = {"line": len(lines) - 1, "character": len(lines[-1])}
                    change = {"range": {"start": end, "end": end}, "text": extra}
                    buffers[rel] += extra
                client.notify("textDocument/didChange", {
                    "textDocument": {"uri": uri(rel), "version": versions[rel]},
                    "contentChanges": [change]})
            elif op == "close" and rel in buffers:
                del buffers[rel]
                client.notify("textDocument/didClose", {"textDocument": {"uri": uri(rel)}})
            elif op == "save" and rel in buffers:
                disk[rel] = buffers[rel]
                (ws / rel).parent.mkdir(parents=True, exist_ok=True)
                (ws / rel).write_text(disk[rel])
                client.notify("textDocument/didSave", {"textDocument": {"uri": uri(rel)}})
                watched(rel, 2)
            elif op == "disk":
                created = rel not in disk
                disk[rel] = source(rng)
                (ws / rel).parent.mkdir(parents=True, exist_ok=True)
                (ws / rel).write_text(disk[rel])
                watched(rel, 1 if created else 2)
            elif op == "delete" and rel in disk:
                del disk[rel]
                (ws / rel).unlink()
                watched(rel, 3)
        final = {**disk, **buffers}
        want = expected_hits(final, tmp_path / f"fresh{batch}", tmp_path / f"fresh-index{batch}")
        deadline = time.monotonic() + 20
        got = server_hits(client)
        while got != want and time.monotonic() < deadline:
            time.sleep(0.2)
            got = server_hits(client)
        diff = {w: (sorted(got[w] - want[w]), sorted(want[w] - got[w]))
                for w in WORDS if got[w] != want[w]}
        assert not diff, f"seed {s}, batch {batch}: extra/missing {diff}; ops {log[-PROPERTY_OPS:]}"
    assert client.close() == 0, f"seed {s}"
