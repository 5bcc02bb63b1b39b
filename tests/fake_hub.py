"""A local stand-in for the Hugging Face hub: the two requests `hf_hub_download` makes
for a file of a model repository, served from folders on disk (stdlib `http.server` in a
thread, on 127.0.0.1, nothing leaves the machine).

    HEAD /{owner}/{repo}/resolve/{revision}/{file}   metadata: X-Repo-Commit, ETag,
                                                     Content-Length (huggingface_hub
                                                     refuses a response without the
                                                     first two)
    GET  /{owner}/{repo}/resolve/{revision}/{file}   the bytes

A file the repository lacks answers 404 with `X-Error-Code: EntryNotFound` (huggingface_hub
raises `RemoteEntryNotFoundError`), an unknown repository 404 `RepoNotFound`, any other
path 404; every request is recorded in `requests`, so a test can say exactly what was
fetched. Point a process at it with `HF_ENDPOINT=hub.url`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

COMMIT = "1234567890abcdef1234567890abcdef12345678"  # the repository's one revision


class FakeHub:
    """`repos` maps `owner/name` to the folder whose files the repository holds;
    `delay_s` holds back the bytes of the named files (a slow link) for that long;
    `broken` makes every file request answer that status without the hub's headers
    (503: an outage; 200: a captive portal or some other server that is no hub)."""

    def __init__(self, repos: dict[str, Path], delay_s: dict[str, float] | None = None,
                 broken: int | None = None) -> None:
        self.repos = repos
        self.delay_s = delay_s or {}
        self.broken = broken
        self.requests: list[tuple[str, str]] = []  # (method, path), in arrival order
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
                hub._answer(self, body=False)

            def do_GET(self) -> None:  # noqa: N802
                hub._answer(self, body=True)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # quiet: the test reads `requests`

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeHub:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="fake-hub")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket: the port then refuses connections."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fetched(self) -> list[str]:
        """The files whose bytes were served (GET), as `owner/name/file`."""
        out = []
        for method, path in self.requests:
            parts = path.lstrip("/").split("/")
            if method == "GET" and len(parts) >= 5 and parts[2] == "resolve":
                out.append("/".join(parts[:2] + parts[4:]))
        return out

    # ------------------------------------------------------------------ serving
    def _answer(self, req: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlsplit(req.path).path)
        with self._lock:
            self.requests.append((req.command, path))
        parts = path.lstrip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self._error(req, 404, "")
        if self.broken is not None:
            return self._error(req, self.broken, "")
        repo_id, filename = "/".join(parts[:2]), "/".join(parts[4:])
        folder = self.repos.get(repo_id)
        if folder is None:
            return self._error(req, 404, "RepoNotFound")
        file = folder / filename
        if ".." in parts or not file.is_file():
            return self._error(req, 404, "EntryNotFound")
        data = file.read_bytes()
        req.send_response(200)
        req.send_header("X-Repo-Commit", COMMIT)
        req.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        req.send_header("Content-Length", str(len(data)))
        req.send_header("Content-Type", "application/octet-stream")
        req.end_headers()
        if body:
            time.sleep(self.delay_s.get(filename, 0.0))
            req.wfile.write(data)

    @staticmethod
    def _error(req: BaseHTTPRequestHandler, status: int, code: str) -> None:
        req.send_response(status)
        if code:
            req.send_header("X-Error-Code", code)
            req.send_header("X-Repo-Commit", COMMIT)
        req.send_header("Content-Length", "0")
        req.end_headers()
