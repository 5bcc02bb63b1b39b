"""The hardened framing and JSON-RPC envelope (`semcode.lsp.wire`), without a server:
every way a frame can be wrong, and what the reader makes of the bytes that follow."""

from __future__ import annotations

import json
import random

import pytest

from semcode.lsp.wire import (
    INVALID_REQUEST,
    PARSE_ERROR,
    BadFrame,
    Drop,
    Frame,
    FrameParser,
    Lifecycle,
    Reply,
    check,
)


def frame(obj: object, delta: int = 0) -> bytes:
    body = json.dumps(obj).encode()
    return f"Content-Length: {len(body) + delta}\r\n\r\n".encode() + body


def bodies(events: list) -> list[dict]:
    return [json.loads(e.body) for e in events if isinstance(e, Frame)]


GOOD = {"jsonrpc": "2.0", "id": 1, "method": "semcode/search", "params": {"query": "x"}}
NEXT = {"jsonrpc": "2.0", "id": 2, "method": "shutdown"}


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 100_000])
def test_frames_split_anywhere(chunk: int) -> None:
    data = frame(GOOD) + frame(NEXT) + b"content-length:  5 \r\nContent-Type: x\r\n\r\n[1,2]"
    parser, events = FrameParser(), []
    for i in range(0, len(data), chunk):
        events += parser.feed(data[i:i + chunk])
    assert [e.body for e in events if isinstance(e, Frame)][-1] == b"[1,2]"
    assert bodies(events)[:2] == [GOOD, NEXT] and not any(isinstance(e, BadFrame) for e in events)


@pytest.mark.parametrize("prefix", [
    b"Content-Length: 1000000000000\r\n\r\n" + b"x" * 5000,  # a lie: resync at the next header
    b"Content-Length: abc\r\n\r\n{}",
    b"Content-Length: -5\r\n\r\n{}",
    b"\r\n\r\n" + json.dumps(GOOD).encode(),  # no header at all
    b"garbage\r\n",
    b"\xff\xfe\x00binary junk",
    b"Content-Length: 5\n\n{}xyz",  # LF only
    b"Content-Length: 0\r\n\r\n",
    frame(GOOD, delta=-7),  # too short: a parse error, the tail is garbage
    b"X" * 20_000,  # a header that never ends
])
def test_resyncs_on_the_next_header(prefix: bytes) -> None:
    parser = FrameParser()
    events = parser.feed(prefix + frame(NEXT))
    assert bodies([e for e in events if isinstance(e, Frame) and e.body.startswith(b'{"jsonrpc"')
                   and e.body.endswith(b"}")])[-1] == NEXT


def test_too_long_by_a_few_bytes_keeps_both_messages() -> None:
    for delta in (1, 5, 16, 40):
        events = FrameParser().feed(frame(GOOD, delta=delta) + frame(NEXT))
        assert bodies(events) == [GOOD, NEXT], delta


def test_too_long_with_nothing_after_is_taken_when_idle() -> None:
    parser = FrameParser()
    assert parser.feed(frame(GOOD, delta=10)) == []
    assert bodies(parser.idle()) == [GOOD]
    assert parser.idle() == [] and parser.need is None


def test_oversized_message_is_skipped_not_buffered() -> None:
    parser = FrameParser(max_body=1000)
    big = {"jsonrpc": "2.0", "method": "x", "params": {"t": "a" * 5000}}
    events = []
    data = frame(big) + frame(NEXT)
    for i in range(0, len(data), 512):
        events += parser.feed(data[i:i + 512])
        assert len(parser.buf) < 2000
    assert bodies(events) == [NEXT]
    assert any(isinstance(e, BadFrame) and "5" in e.reason for e in events)


def test_random_bytes_never_raise_and_never_swallow_a_good_message() -> None:
    rng = random.Random(1234)
    for _ in range(300):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
        if rng.random() < 0.3:
            junk += b"Content-Length: " + str(rng.randrange(0, 10**6)).encode()
        parser = FrameParser(max_body=10**5)
        events = parser.feed(junk + b"\r\n\r\n" + frame(NEXT) + frame(NEXT))
        events += parser.idle()  # a length field in the junk may claim the bytes after it
        # The junk may eat the first message, never the second.
        assert NEXT in bodies([e for e in events if isinstance(e, Frame)
                               and e.body == json.dumps(NEXT).encode()])


@pytest.mark.parametrize(("body", "expected"), [
    (b"{not json", Reply(None, PARSE_ERROR, "")),
    (b'{"jsonrpc": "2.0", "id": 7, "method": "x", "params": {"q": "\xff"}}',
     Reply(7, PARSE_ERROR, "")),
    (b'{"jsonrpc": "2.0", "method": "x", "params": {"q": "\xff"}}', Drop("")),
    (b"[]", Reply(None, INVALID_REQUEST, "")),
    (b"42", Reply(None, INVALID_REQUEST, "")),
    (b'{"jsonrpc": "1.0", "id": 3, "method": "shutdown"}', Reply(3, INVALID_REQUEST, "")),
    (b'{"id": "a", "method": "shutdown"}', Reply("a", INVALID_REQUEST, "")),
    (b'{"jsonrpc": "2.0", "id": 4, "method": 42}', Reply(4, INVALID_REQUEST, "")),
    (b'{"jsonrpc": "2.0", "id": 1.5, "method": "x"}', Reply(None, INVALID_REQUEST, "")),
    (b'{"jsonrpc": "2.0", "id": true, "method": "x"}', Reply(None, INVALID_REQUEST, "")),
    (b'{"jsonrpc": "2.0", "id": 5, "method": "x", "params": "s"}', Reply(5, INVALID_REQUEST, "")),
    (b'{"jsonrpc": "2.0", "id": 6}', Reply(6, INVALID_REQUEST, "")),
    (b'{"jsonrpc": "2.0", "method": 42}', Drop("")),
    (b'{"jsonrpc": "2.0", "method": "x", "params": 3}', Drop("")),
    (b'{"jsonrpc": "2.0"}', Drop("")),
    (b'{"jsonrpc": "2.0", "id": "s1", "error": 5}', Drop("")),
    (b"[" * 100_000 + b"]" * 100_000, Reply(None, PARSE_ERROR, "")),
])
def test_envelope_errors(body: bytes, expected: Reply | Drop) -> None:
    verdict = check(body)
    assert type(verdict) is type(expected)
    if isinstance(expected, Reply):
        assert isinstance(verdict, Reply)
        assert (verdict.id, verdict.code) == (expected.id, expected.code)
        assert "Error" not in verdict.message.replace("Parse error", "")  # no Python text


def test_envelope_accepts_what_clients_send() -> None:
    for obj in ({"jsonrpc": "2.0", "id": 1, "method": "shutdown", "params": None},
                {"jsonrpc": "2.0", "id": "x", "method": "m", "params": [1]},
                {"jsonrpc": "2.0", "method": "exit"},
                {"jsonrpc": "2.0", "id": "u", "result": None},
                {"jsonrpc": "2.0", "id": "u", "error": {"code": -1, "message": "no"}}):
        assert check(json.dumps(obj).encode()) == obj


def test_lifecycle() -> None:
    life = Lifecycle()
    before = life.gate({"id": 1, "method": "semcode/search"})
    assert isinstance(before, Reply) and before.code == -32002
    assert isinstance(life.gate({"method": "textDocument/didOpen"}), Drop)
    assert life.gate({"id": 2, "method": "initialize"}) is None
    assert life.gate({"id": 3, "method": "semcode/search"}) is None
    assert life.gate({"id": 4, "method": "shutdown"}) is None
    after = life.gate({"id": 5, "method": "semcode/search"})
    assert isinstance(after, Reply) and (after.id, after.code) == (5, INVALID_REQUEST)
    assert isinstance(life.gate({"method": "textDocument/didChange"}), Drop)
    assert life.gate({"method": "exit"}) is None
    assert life.gate({"id": "r", "result": None}) is None  # responses always pass
