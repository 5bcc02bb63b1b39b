"""Validation of the params of semcode's own methods and commands (docs/protocol.md).

Every error is a `JsonRpcInvalidParams` whose message names the field, e.g.
"semcode/search: 'limit' must be an integer in 1..200, got 0".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pygls.exceptions import JsonRpcInvalidParams

from semcode.config import ConfigError, Settings
from semcode.kinds import SearchMode
from semcode.search.engine import CONTENT_KINDS, MAX_QUERY_CHARS, MODES, SearchRequest

MAX_LIMIT = 200
_SEARCH_KEYS = {"query", "limit", "mode", "languages", "paths", "kinds", "contents", "rerank",
                "workDoneToken", "partialResultToken"}


class ParamError(JsonRpcInvalidParams):
    """A bad param of a semcode method: a JsonRpcInvalidParams whose message names the method and
    the field."""

    def __init__(self, method: str, message: str) -> None:
        super().__init__(message=f"{method}: {message}")


def _object(method: str, params: object, what: str = "params") -> Mapping[str, object]:
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise ParamError(method, f"{what} must be an object, got {type(params).__name__}")
    return params


def _int(method: str, params: Mapping[str, object], key: str, default: int, lo: int,
         hi: int) -> int:
    value = params.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ParamError(method, f"{key!r} must be an integer in {lo}..{hi}, got {value!r}")
    return value


def _strings(method: str, params: Mapping[str, object], key: str) -> tuple[str, ...]:
    value = params.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ParamError(method, f"{key!r} must be an array of strings, got {value!r}")
    return tuple(value)


def query_text(method: str, value: object, key: str = "query") -> str:
    """A query param (`key`): a string of at most MAX_QUERY_CHARS characters."""
    if not isinstance(value, str):
        raise ParamError(method, f"{key!r} must be a string, got {type(value).__name__}")
    if len(value) > MAX_QUERY_CHARS:
        raise ParamError(method, f"{key!r} is too long: {len(value)} characters "
                                 f"(at most {MAX_QUERY_CHARS})")
    return value


def search_request(params: object, method: str = "semcode/search") -> SearchRequest:
    """`semcode/search` params (or the options of the `semcode.search` command)."""
    p = _object(method, params)
    unknown = sorted(set(p) - _SEARCH_KEYS)
    if unknown:
        raise ParamError(method, f"unknown field {unknown[0]!r}")
    if "query" not in p:
        raise ParamError(method, "'query' is required")
    mode = p.get("mode") or SearchMode.HYBRID
    if not isinstance(mode, str) or mode not in MODES:
        raise ParamError(method, f"'mode' must be one of {', '.join(MODES)}, got {mode!r}")
    kinds = p.get("kinds") or []
    if not isinstance(kinds, list) or not all(
        isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= 26 for k in kinds
    ):
        raise ParamError(method, f"'kinds' must be an array of SymbolKind integers, got {kinds!r}")
    contents = _strings(method, p, "contents")
    bad = [c for c in contents if c not in CONTENT_KINDS]
    if bad:
        raise ParamError(method, f"'contents' must hold content kinds ({', '.join(CONTENT_KINDS)})"
                                 f", got {bad[0]!r}")
    rerank = p.get("rerank")
    if rerank is not None and not isinstance(rerank, bool):
        raise ParamError(method, f"'rerank' must be a boolean, got {rerank!r}")
    return SearchRequest(
        query=query_text(method, p["query"]),
        limit=_int(method, p, "limit", 20, 1, MAX_LIMIT),
        mode=mode,
        languages=_strings(method, p, "languages"),
        paths=_strings(method, p, "paths"),
        kinds=tuple(kinds),
        contents=contents,
        rerank=rerank,
    )


def search_command(args: tuple[object, ...]) -> SearchRequest:
    """`semcode.search` arguments: `[query, options?]`."""
    method = "semcode.search"
    if not 1 <= len(args) <= 2:
        raise ParamError(method, f"expects [query, options?], got {len(args)} arguments")
    options = dict(_object(method, args[1] if len(args) > 1 else None, "options"))
    options["query"] = args[0]
    return search_request(options, method)


@dataclass(frozen=True)
class RelatedParams:
    """The validated params of `semcode/related`."""

    uri: str
    line: int  # 0-based, as LSP sends it
    limit: int


def related(params: object) -> RelatedParams:
    """Validate `semcode/related` params."""
    method = "semcode/related"
    p = _object(method, params)
    doc = p.get("textDocument")
    if not isinstance(doc, Mapping) or not isinstance(doc.get("uri"), str):
        raise ParamError(method, "'textDocument.uri' is required (a string)")
    pos = p.get("position")
    if not isinstance(pos, Mapping):
        raise ParamError(method, "'position' is required (an object)")
    line = _int(method, pos, "line", -1, 0, 10**9)
    _int(method, pos, "character", 0, 0, 10**9)
    return RelatedParams(doc["uri"], line, _int(method, p, "limit", 20, 1, MAX_LIMIT))


def search_id(params: object, method: str = "semcode/cancelSearch") -> str:
    """The `searchId` param of `semcode/cancelSearch`."""
    p = _object(method, params)
    value = p.get("searchId")
    if not isinstance(value, str):
        raise ParamError(method, f"'searchId' must be a string, got {value!r}")
    return value


def reindex_full(args: tuple[object, ...]) -> bool:
    """The `full` flag of the `semcode.reindex` command (default False)."""
    method = "semcode.reindex"
    if not args:
        return False
    options = _object(method, args[0], "options") if len(args) == 1 else None
    if options is None or not isinstance(options.get("full", False), bool):
        raise ParamError(method, 'expects [] or [{"full": true|false}]')
    return bool(options.get("full", False))


def settings_mapping(data: object, what: str) -> dict[str, object]:
    """The settings object a client sent: `{"semcode": {...}}` or the object itself; nulls
    mean "the default" (some clients send every key, unset ones as null). `null` and an
    empty array mean "no settings" (an empty Lua table goes out as `[]`)."""
    if data is None or (isinstance(data, list) and not data):
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what} must be an object of settings, got {type(data).__name__}")
    inner = data.get("semcode")
    if isinstance(inner, Mapping):
        data = inner
    elif "semcode" in data and (inner is None or inner == []):
        data = {k: v for k, v in data.items() if k != "semcode"}
    return {k: v for k, v in data.items() if v is not None}


def validate_settings(overrides: Mapping[str, object], base: Settings | None = None) -> Settings:
    """Settings from a client's mapping (camelCase keys allowed), or a ParamError naming the bad
    key."""
    return Settings.from_mapping(overrides, base)
