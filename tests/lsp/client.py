"""A small JSON-RPC/LSP client for tests and benchmarks: it spawns the server exactly as
an editor does (a subprocess on stdio, Content-Length framing), matches responses to
requests, collects notifications, and answers the server's own requests
(`window/workDoneProgress/create`, `client/registerCapability`, ...)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, BinaryIO

SERVER_CMD = [sys.executable, "-m", "semcode.lsp", "--stdio"]

CLIENT_CAPABILITIES: dict[str, Any] = {
    "window": {"workDoneProgress": True},
    "workspace": {
        "workspaceFolders": True,
        "configuration": True,
        "didChangeWatchedFiles": {"dynamicRegistration": True},
        "symbol": {"dynamicRegistration": False},
        "executeCommand": {"dynamicRegistration": False},
    },
    "textDocument": {"synchronization": {"didSave": True, "dynamicRegistration": False}},
    "general": {"positionEncodings": ["utf-16"]},
}


class LspError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")
        self.message = str(error.get("message", ""))


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode("utf-8")
    return f"Content-Length: {len(body)}\r\n\r\n".encode("ascii") + body


def read_message(stream: BinaryIO) -> dict[str, Any] | None:
    length = None
    while True:
        line = stream.readline()
        if not line:
            return None
        line = line.strip()
        if not line:
            if length is None:
                continue
            break
        name, _, value = line.decode("ascii").partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
    body = stream.read(length)
    if len(body) < length:
        return None
    return json.loads(body)


class LspClient:
    def __init__(self, cmd: list[str] | None = None, env: dict[str, str] | None = None,
                 cwd: str | Path | None = None, stderr_path: Path | None = None) -> None:
        self._stderr = open(stderr_path or os.devnull, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd or SERVER_CMD, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._stderr,
                                     env={**os.environ, **(env or {})}, cwd=cwd)
        self._ids = itertools.count(1)
        self._pending: dict[Any, Future[Any]] = {}
        self._write_lock = threading.Lock()
        self._cond = threading.Condition()
        self.notifications: list[tuple[float, str, Any]] = []
        self.server_requests: list[tuple[str, Any]] = []
        self.responses: list[dict[str, Any]] = []  # every response, matched or not
        self.handlers: dict[str, Callable[[Any], Any]] = {
            "window/workDoneProgress/create": lambda p: None,
            "client/registerCapability": lambda p: None,
            "client/unregisterCapability": lambda p: None,
            "workspace/configuration": lambda p: [None for _ in p.get("items", [])],
            "window/showMessageRequest": lambda p: None,
        }
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    # ------------------------------------------------------------------ wire
    def _send(self, message: dict[str, Any]) -> None:
        data = encode({"jsonrpc": "2.0", **message})
        assert self.proc.stdin is not None
        with self._write_lock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def _read_loop(self) -> None:
        assert self.proc.stdout is not None
        while True:
            try:
                msg = read_message(self.proc.stdout)
            except (ValueError, OSError):
                msg = None
            if msg is None:
                break
            if "id" in msg and "method" in msg:
                self._answer(msg)
            elif "id" in msg:
                with self._cond:
                    self.responses.append(msg)
                    self._cond.notify_all()
                fut = self._pending.pop(msg["id"], None)
                if fut is not None:
                    if "error" in msg:
                        fut.set_exception(LspError(msg["error"]))
                    else:
                        fut.set_result(msg.get("result"))
            else:
                with self._cond:
                    self.notifications.append((time.monotonic(), msg["method"],
                                               msg.get("params")))
                    self._cond.notify_all()
        with self._cond:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("server closed the connection"))
            self._cond.notify_all()

    def _answer(self, msg: dict[str, Any]) -> None:
        method, params = msg["method"], msg.get("params")
        with self._cond:
            self.server_requests.append((method, params))
            self._cond.notify_all()
        handler = self.handlers.get(method)
        if handler is None:
            self._send({"id": msg["id"], "error": {"code": -32601, "message": method}})
        else:
            self._send({"id": msg["id"], "result": handler(params)})

    # ------------------------------------------------------------------ API
    def request_future(self, method: str, params: Any = None) -> tuple[int, Future[Any]]:
        msg_id = next(self._ids)
        fut: Future[Any] = Future()
        self._pending[msg_id] = fut
        self._send({"id": msg_id, "method": method, "params": params})
        return msg_id, fut

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are (framing included): for tests of malformed input."""
        assert self.proc.stdin is not None
        with self._write_lock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def expect(self, msg_id: Any) -> Future[Any]:
        """A future for the response to a request sent with `send_raw`."""
        fut: Future[Any] = Future()
        self._pending[msg_id] = fut
        return fut

    def request(self, method: str, params: Any = None, timeout: float = 60) -> Any:
        _, fut = self.request_future(method, params)
        return fut.result(timeout)

    def notify(self, method: str, params: Any = None) -> None:
        self._send({"method": method, "params": params})

    def command(self, name: str, *args: Any, timeout: float = 60) -> Any:
        return self.request("workspace/executeCommand",
                            {"command": name, "arguments": list(args)}, timeout)

    def wait_for(self, method: str, predicate: Callable[[Any], bool] = lambda p: True,
                 timeout: float = 60, since: float = 0.0) -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for t, m, p in self.notifications:
                    if m == method and t >= since and predicate(p):
                        return p
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {method} notification matching in {timeout}s")
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise ConnectionError(f"server exited with {self.proc.returncode}")
                self._cond.wait(min(left, 0.5))

    def received(self, method: str) -> list[Any]:
        with self._cond:
            return [p for _, m, p in self.notifications if m == method]

    # ------------------------------------------------------------------ LSP steps
    def initialize(self, folders: list[Path], options: dict[str, Any] | None = None,
                   capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
        result = self.request("initialize", {
            "processId": os.getpid(),
            "rootUri": folders[0].as_uri() if folders else None,
            "workspaceFolders": [{"uri": f.as_uri(), "name": f.name} for f in folders],
            "initializationOptions": options or {},
            "capabilities": capabilities or CLIENT_CAPABILITIES,
        })
        self.notify("initialized", {})
        return result

    def status(self) -> dict[str, Any]:
        return self.command("semcode.status")

    def wait_ready(self, timeout: float = 120, embedded: bool = False) -> dict[str, Any]:
        """Poll `semcode.status` until every folder is indexed (and embedded, if asked)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            ok = st["state"] == "ready" and all(w["state"] == "ready" for w in st["workspaces"])
            if ok and embedded:
                ok = all(w["pendingEmbeddings"] == 0 and w["embedded"] > 0
                         for w in st["workspaces"])
            if ok:
                return st
            errors = [w["error"] for w in st["workspaces"] if w.get("state") == "error"]
            if errors:
                raise RuntimeError(f"indexing failed: {errors}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"server not ready: {st}")
            time.sleep(0.1)

    def open(self, path: Path, text: str, language: str = "python") -> str:
        uri = path.as_uri()
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": language, "version": 1, "text": text}})
        return uri

    def change(self, uri: str, version: int, changes: list[dict[str, Any]]) -> None:
        self.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": version}, "contentChanges": changes})

    def search(self, query: str, **params: Any) -> dict[str, Any]:
        return self.request("semcode/search", {"query": query, **params})

    def close(self, timeout: float = 30) -> int:
        """shutdown + exit; returns the exit status."""
        try:
            if self.proc.poll() is None:
                self.request("shutdown", None, timeout)
                self.notify("exit")
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None and not stream.closed:
                with contextlib.suppress(OSError):
                    stream.close()
        self._stderr.close()

    def __enter__(self) -> LspClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
