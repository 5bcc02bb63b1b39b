"""The wire: LSP base-protocol framing and the JSON-RPC 2.0 envelope, hardened.

Why this replaces pygls' read loop (`pygls.io_.run_async`) instead of hooking into it:
that loop is one function with its framing inlined. It trusts `Content-Length` (a header
of 10**12 makes `read(n)` raise MemoryError and ends the server), accepts only the exact
line `Content-Length: N\\r\\n`, never resyncs (one wrong or missing length leaves it
deaf for good), and hands every decoded object to `structure_message`/`handle_message`,
which drop invalid requests without an answer (or answer `"method": 42` with Python
exception text). The smallest point to fix all of that is the loop itself, so
`SemcodeServer.start_io` runs `serve_io` below; a well-formed message still goes to
pygls' own `protocol.structure_message` + `protocol.handle_message`, so dispatch,
handlers, responses and cancellation stay pygls'.

What it guarantees (docs/protocol.md, "Errors"):
* a message body is at most `MAX_MESSAGE_BYTES`; a bigger one is skipped unread;
* after a bad frame (garbage, a header without a valid `Content-Length`, a length that
  is too short or too long) the reader resyncs on the next `Content-Length:` header. The
  resync is safe because a real header line (`Content-Length: N` then CR LF) cannot
  occur inside a JSON body: JSON strings cannot hold a raw CR or LF;
* JSON-RPC errors per spec: invalid JSON or UTF-8 -> -32700 (`id` null unless it could
  be read), a non-object or an object with an `id` that is not a valid request ->
  -32600; requests before `initialize` -> -32002 (LSP), after `shutdown` -> -32600;
* a notification is never answered: a bad one is one log line, never a dialog.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from lsprotocol import types
from pygls.io_ import StdoutWriter
from pygls.protocol import JsonRPCProtocol
from pygls.server import JsonRPCServer

from semcode.messages import first_line

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a body over this is skipped (and logged)
MAX_HEADER_BYTES = 8 * 1024  # header bytes without a blank line: garbage, resync
IDLE_S = 0.5  # a body still short after this much silence: try what arrived (see `idle`)
READ_CHUNK = 64 * 1024

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
SERVER_NOT_INITIALIZED = -32002

# A real header: `Content-Length: N` ending in a line break (only the header may hold a raw
# CR/LF; a JSON body cannot, outside whitespace between tokens).
_RESYNC = re.compile(rb"content-length[ \t]*:[ \t]*\d+[ \t]*\r?\n", re.IGNORECASE)
_HEADER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*:[ \t]*(.*?)[ \t]*")
_DIGITS = re.compile(rb"\d{1,20}")


@dataclass(frozen=True)
class Frame:
    """One well-framed message body."""

    body: bytes


@dataclass(frozen=True)
class BadFrame:
    """A framing error (bad header, oversized body); the parser resynchronises after it."""

    reason: str


Event = Frame | BadFrame


class FrameParser:
    """Bytes in, frames out; never raises and never holds more than about one
    `max_body` plus a header. Feed it with `feed`, tell it about silence with `idle`."""

    def __init__(self, max_body: int = MAX_MESSAGE_BYTES) -> None:
        self.max_body = max_body
        self.buf = bytearray()
        self.need: int | None = None  # the body length, once a header was read
        self.discard = 0  # bytes of an oversized body still to skip

    def feed(self, data: bytes) -> list[Event]:
        """Parse the bytes read so far into frames and framing errors."""
        self.buf += data
        out: list[Event] = []
        while (event := self._step()) is not None:
            out.append(event)
        return out

    def idle(self) -> list[Event]:
        """No bytes came for a while, and a body is still short. If a header is inside it,
        or it already parses as a complete JSON value, the length was overstated: take
        what is there (the client waits for an answer and may send nothing more)."""
        if self.need is None or not self.buf:
            return []
        m = _RESYNC.search(self.buf)
        if m is not None:  # a header is waiting inside the short body: the length lied
            body = bytes(self.buf[:m.start()])
            del self.buf[:m.start()]
            self.need = None
            return ([Frame(body)] if body.strip() else [BadFrame("a length past the end")]) + \
                self.feed(b"")
        try:
            json.loads(bytes(self.buf))
        except (ValueError, RecursionError):
            return []
        body = bytes(self.buf)
        self.buf.clear()
        self.need = None
        return [Frame(body)]

    def _step(self) -> Event | None:
        buf = self.buf
        if self.discard:
            return self._skip()
        if self.need is not None:
            if len(buf) < self.need:
                return None
            body = bytes(buf[:self.need])
            del buf[:self.need]
            self.need = None
            m = _RESYNC.search(body)
            if m is not None:  # the length was too long: the next header is inside
                self.buf = bytearray(body[m.start():]) + buf
                if m.start() == 0:
                    return BadFrame("a header where a body should be")
                return Frame(body[:m.start()])
            if not body.rstrip().endswith((b"}", b"]")):
                # Too long by a few bytes: one JSON value, then the start of the next header
                # ("Conte"). Give those bytes back so that the next message survives.
                end = _json_end(body)
                if end is not None and body[end:].strip():
                    self.buf = bytearray(body[end:]) + buf
                    return Frame(body[:end])
            return Frame(body)
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) <= MAX_HEADER_BYTES:
                return None
            start = _last_resync_start(buf)
            drop = start if start is not None and start > 0 else max(0, len(buf) - 64)
            del buf[:drop]
            return BadFrame(f"{drop} bytes without a header")
        block = bytes(buf[:end])
        length = _content_length(block)
        if length is None:
            starts = [m.start() for m in _RESYNC.finditer(block + b"\r\n") if m.start() > 0]
            if starts:  # garbage before a real header: keep the last one (the block's own)
                del buf[:starts[-1]]
                return BadFrame(f"{starts[-1]} bytes of garbage before a header")
            del buf[:end + 4]
            return BadFrame("a header without a valid Content-Length")
        del buf[:end + 4]
        if length > self.max_body:
            self.discard = length
            return BadFrame(f"a message of {length} bytes (at most {self.max_body}): skipped")
        if length == 0:
            return BadFrame("Content-Length: 0")
        self.need = length
        return self._step()  # the body may be here already

    def _skip(self) -> Event | None:
        """Drop an oversized body; stop early at a real header (the length was a lie)."""
        buf = self.buf
        m = _RESYNC.search(buf)
        if m is not None and m.start() < self.discard:
            del buf[:m.start()]
            self.discard = 0
            return self._step()
        if len(buf) >= self.discard:
            del buf[:self.discard]
            self.discard = 0
            return self._step()
        drop = max(0, len(buf) - 64)  # keep a tail: a header may be split across reads
        del buf[:drop]
        self.discard -= drop
        return None


def _json_end(body: bytes) -> int | None:
    """Where the JSON value at the start of `body` ends (a byte offset), or None."""
    try:  # latin-1: one character per byte, so the offset is a byte offset
        _, end = json.JSONDecoder().raw_decode(body.decode("latin-1").lstrip())
    except (ValueError, RecursionError):
        return None
    return end + (len(body) - len(body.lstrip()))


def _last_resync_start(buf: bytearray) -> int | None:
    low = bytes(buf).lower()
    i = low.rfind(b"content-length")
    return i if i >= 0 else None


def _content_length(block: bytes) -> int | None:
    """The length from a header block, or None when the block is not a valid header."""
    length = None
    for line in block.split(b"\r\n"):
        m = _HEADER.fullmatch(line)
        if m is None:
            return None
        if m.group(1).lower() == b"content-length":
            if length is not None or not _DIGITS.fullmatch(m.group(2)):
                return None
            length = int(m.group(2))
    return length


# ---------------------------------------------------------------------- envelope
@dataclass(frozen=True)
class Reply:
    """An error response to send: `id` (None means JSON null), code, message."""

    id: int | str | None
    code: int
    message: str


@dataclass(frozen=True)
class Drop:
    """Nothing to answer (a notification, a response): one log line."""

    reason: str


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def check(body: bytes) -> dict[str, Any] | Reply | Drop:
    """Decode one body and check its JSON-RPC 2.0 envelope (not the params)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        lenient = _loads(body.decode("utf-8", "replace"))
        if isinstance(lenient, dict) and "method" in lenient and "id" not in lenient:
            return Drop(f"notification with invalid UTF-8 ({exc.reason})")
        msg_id = lenient.get("id") if isinstance(lenient, dict) else None
        return Reply(msg_id if _valid_id(msg_id) else None, PARSE_ERROR,
                     f"Parse error: invalid UTF-8 at byte {exc.start}")
    obj = _loads(text)
    if obj is _INVALID:
        return Reply(None, PARSE_ERROR, "Parse error: invalid JSON")
    if not isinstance(obj, dict):
        return Reply(None, INVALID_REQUEST,
                     f"Invalid Request: expected an object, got {_kind(obj)}")
    has_id = "id" in obj
    msg_id = obj.get("id")
    reply_id = msg_id if _valid_id(msg_id) else None
    problem = None
    if obj.get("jsonrpc") != "2.0":
        problem = f"'jsonrpc' must be \"2.0\", got {_short(obj.get('jsonrpc'))}"
    elif has_id and not _valid_id(msg_id):
        problem = f"'id' must be an integer or a string, got {_kind(msg_id)}"
    elif "method" in obj:
        if not isinstance(obj["method"], str):
            problem = f"'method' must be a string, got {_kind(obj['method'])}"
        elif obj.get("params") is not None and not isinstance(obj["params"], dict | list):
            problem = f"'params' must be an object or an array, got {_kind(obj['params'])}"
    elif has_id:
        if "result" not in obj and "error" not in obj:
            problem = "a request needs a 'method'"
        elif "error" in obj and not _valid_error(obj["error"]):
            return Drop("a response with a malformed 'error'")
        else:
            return obj  # a response to one of our requests
    else:
        problem = "neither a request nor a notification"
    if problem is None:
        return obj
    if not has_id:
        return Drop(f"invalid notification: {problem}")
    return Reply(reply_id, INVALID_REQUEST, f"Invalid Request: {problem}")


def _valid_error(error: Any) -> bool:
    code = error.get("code") if isinstance(error, dict) else None
    return isinstance(code, int) and not isinstance(code, bool) and \
        isinstance(error.get("message"), str)


_INVALID = object()


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: absurd nesting
        return _INVALID


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(type(value), "?")


def _short(value: Any) -> str:
    text = json.dumps(value) if value is not _INVALID else "?"
    return text if len(text) <= 40 else text[:37] + "..."


# ---------------------------------------------------------------------- the loop
class Lifecycle:
    """LSP's rules around `initialize`, `shutdown` and `exit`."""

    def __init__(self) -> None:
        self.initialized = False
        self.shutting_down = False

    def gate(self, message: dict[str, Any]) -> Reply | Drop | None:
        """An error reply or a drop for a message the lifecycle forbids (before `initialize`, after
        `shutdown`), else None."""
        method = message.get("method")
        if method is None:  # a response
            return None
        is_request = "id" in message
        if method == types.EXIT:
            return None
        if self.shutting_down:
            if is_request:
                return Reply(message["id"], INVALID_REQUEST,
                             f"Invalid Request: the server is shutting down ({method})")
            return Drop(f"{method} after shutdown")
        if not self.initialized:
            if method == types.INITIALIZE and is_request:
                self.initialized = True
                return None
            if is_request:
                return Reply(message["id"], SERVER_NOT_INITIALIZED,
                             f"the server is not initialized yet ({method})")
            return Drop(f"{method} before initialize")
        if method == types.SHUTDOWN and is_request:
            self.shutting_down = True
        return None


class Dispatcher:
    """Framed bodies in; error replies out, or well-formed messages to pygls."""

    def __init__(self, protocol: JsonRPCProtocol) -> None:
        self.protocol = protocol
        self.lifecycle = Lifecycle()

    def body(self, body: bytes) -> None:
        """Handle one framed body: answer or drop a bad one, else hand it to pygls."""
        verdict = check(body)
        if isinstance(verdict, dict):
            verdict = self.lifecycle.gate(verdict) or verdict
        if isinstance(verdict, Reply):
            log.warning("answered %s: %s", verdict.code, verdict.message)
            self.reply(verdict)
        elif isinstance(verdict, Drop):
            log.warning("ignored a message: %s", verdict.reason)
        else:
            self.dispatch(verdict)

    def reply(self, r: Reply) -> None:
        """Send a JSON-RPC error reply."""
        self.protocol._send_data({"jsonrpc": "2.0", "id": r.id,
                                  "error": {"code": r.code, "message": r.message}})

    def dispatch(self, message: dict[str, Any]) -> None:
        """Hand a well-formed message to pygls; a failure is one log line, never the end of the
        loop."""
        method = message.get("method", "response")
        try:
            structured = self.protocol.structure_message(message)
        except Exception as exc:  # noqa: BLE001 - a bad notification: one line
            if "id" in message and "method" in message:  # not answered by the protocol
                self.reply(Reply(message["id"], -32602, f"{method}: invalid params"))
            log.warning("ignored %s: invalid params (%s)", method,
                        first_line(exc.__cause__ or exc, with_type=True))
            return
        try:
            self.protocol.handle_message(structured)
        except (SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - never let one message end the loop
            log.warning("handling %s failed: %s", method,
                        first_line(exc.__cause__ or exc, with_type=True))



def _reader_thread(stream: BinaryIO, loop: asyncio.AbstractEventLoop,
                   queue: asyncio.Queue[bytes]) -> None:
    """Blocking reads on a daemon thread (it never keeps the process alive); `b""` is the
    end of the stream. The queue is small, so a flood waits in the pipe, not in memory."""
    # The file descriptor, not the buffered object: a daemon thread blocked inside
    # `BufferedReader.read1` holds its lock, and Python aborts at exit when it finds it
    # taken ("could not acquire lock for <stdin> at interpreter shutdown").
    try:
        fd: int | None = stream.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    while True:
        try:
            data = os.read(fd, READ_CHUNK) if fd is not None else stream.read1(READ_CHUNK)  # type: ignore[attr-defined]
        except (OSError, ValueError):
            data = b""
        try:
            asyncio.run_coroutine_threadsafe(queue.put(data), loop).result()
        except (RuntimeError, asyncio.CancelledError):  # the loop is gone
            return
        if not data:
            return


async def read_loop(stop: threading.Event, stream: BinaryIO, protocol: JsonRPCProtocol,
                    on_frame: Callable[[bytes], None] | None = None) -> None:
    """Read stdin on a thread, frame it and hand each body to the dispatcher until `stop` or end of
    input."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=8)
    threading.Thread(target=_reader_thread, args=(stream, loop, queue),
                     name="semcode-stdin", daemon=True).start()
    parser = FrameParser()
    dispatcher = Dispatcher(protocol)
    handle = on_frame or dispatcher.body
    while not stop.is_set():
        try:
            data = await asyncio.wait_for(queue.get(), IDLE_S if parser.need else None)
        except TimeoutError:
            events = parser.idle()
        else:
            if not data:
                break
            events = parser.feed(data)
        for event in events:
            if isinstance(event, BadFrame):
                log.warning("bad frame: %s; resyncing", event.reason)
            else:
                handle(event.body)
                await asyncio.sleep(0)  # let handlers run between messages of one read


def serve_io(server: JsonRPCServer, stdin: BinaryIO | None, stdout: BinaryIO | None) -> None:
    """`LanguageServer.start_io` with the hardened loop (what pygls' `_start_io_async` does,
    with `read_loop` in place of `run_async`)."""
    server._stop_event = stop = threading.Event()
    server.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
    try:
        asyncio.run(read_loop(stop, stdin or sys.stdin.buffer, server.protocol))
    except BrokenPipeError:
        log.error("the client closed the connection")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()
