"""A small rerank HTTP endpoint around the in-process llama.cpp reranker, for tests.

No packaged server here offers Qwen3-Reranker's yes/no scoring (llama-server's rerank
needs a GGUF with a rank head; llama-cpp-python's server has no rerank route), so this
serves the shape llama-server, vLLM, Jina and Cohere share:

    POST /v1/rerank or /rerank   {"query": q, "documents": [..], "top_n"?: k}
      -> {"model": ..., "results": [{"index": i, "relevance_score": p}, ...]}

(and TEI's `{"query", "texts"}` -> `[{"index", "score"}]`), plus `GET /v1/models`.
Scores are exactly `LlamaCppReranker.score` (P(yes)). Loopback only.

    python tests/rerank_server.py MODEL.gguf [--port N]   # prints the URL, serves forever
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))


class RerankServer:
    def __init__(self, reranker: Any, port: int = 0, model_name: str = "tiny-reranker") -> None:
        self.reranker = reranker
        self.model_name = model_name
        self.lock = threading.Lock()  # one llama.cpp context: one request at a time
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, obj: Any) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [
                        {"id": outer.model_name, "object": "model", "owned_by": "semcode-tests"}]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:  # noqa: N802
                if self.path.rstrip("/") not in ("/rerank", "/v1/rerank"):
                    self._send(404, {"error": "not found"})
                    return
                try:
                    req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                    query = str(req["query"])
                    tei = "texts" in req and "documents" not in req
                    docs = [str(d) for d in (req["texts"] if tei else req["documents"])]
                except (ValueError, KeyError, TypeError) as e:
                    self._send(400, {"error": f"bad request: {e}"})
                    return
                with outer.lock:
                    scores = outer.reranker.score(query, docs)
                if tei:
                    self._send(200, [{"index": i, "score": s} for i, s in enumerate(scores)])
                    return
                results = sorted(({"index": i, "relevance_score": s}
                                  for i, s in enumerate(scores)),
                                 key=lambda r: -r["relevance_score"])
                top_n = req.get("top_n")
                if isinstance(top_n, int) and top_n > 0:
                    results = results[:top_n]
                self._send(200, {"model": outer.model_name, "object": "list",
                                 "results": results})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> RerankServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main(argv: list[str]) -> int:
    from semcode.models.llama_cpp import LlamaCppReranker

    if not argv or argv[0].startswith("-"):
        print("usage: python tests/rerank_server.py MODEL.gguf [--port N]", file=sys.stderr)
        return 2
    port = int(argv[argv.index("--port") + 1]) if "--port" in argv else 0
    server = RerankServer(LlamaCppReranker(argv[0]), port=port)
    print(server.url, flush=True)
    server.httpd.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
