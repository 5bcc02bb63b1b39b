"""JSON-RPC details that pygls leaves to us.

* Params of our own methods (`semcode/*`) arrive as plain dicts (pygls would turn them
  into namedtuples), so that `params.py` validates them and names the bad field.
* A request for a method the server does not have is `MethodNotFound`, even when it is
  a standard LSP method with params that do not match its schema.
* A standard request whose params do not match the LSP schema is answered with
  `InvalidParams` naming the field (pygls only logs it, leaving the client waiting);
  `workspace/symbol`'s `query` must be a string (cattrs would make one of any value).
* An unexpected exception in a request handler is answered with one plain line, not
  Python's text and traceback (those go to the log).
* The `initialize` result carries `experimental.semcode.protocolVersion` and
  `workspaceSymbolProvider: true`, as docs/protocol.md promises.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

import cattrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInternalError
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    LanguageServerProtocol,
    default_converter,
    lsp_method,
)

from semcode.lsp import PROTOCOL_VERSION

log = logging.getLogger(__name__)

_ANSWERED = object()  # a request already answered with an error while being decoded


def converter_factory() -> cattrs.Converter:
    """pygls' converter, leaving the params of requests and notifications plain dicts
    (pygls would make namedtuples) so that params.py validates them and names the field."""
    converter = default_converter()

    def request(obj: dict[str, Any], cls: type) -> Any:
        return cls(id=obj["id"], method=obj["method"], jsonrpc=obj["jsonrpc"],
                   params=obj.get("params"))

    def notification(obj: dict[str, Any], cls: type) -> Any:
        return cls(method=obj["method"], jsonrpc=obj["jsonrpc"], params=obj.get("params"))

    converter.register_structure_hook(JsonRPCRequestMessage, request)
    converter.register_structure_hook(JsonRPCNotification, notification)
    symbol_params = converter.get_structure_hook(types.WorkspaceSymbolParams)

    def workspace_symbol(obj: Any, cls: type) -> Any:
        # cattrs turns any value into a str (`5` became the query "5"): the query must be
        # a string, or the request is InvalidParams naming it.
        query = obj.get("query") if isinstance(obj, dict) else None
        if not isinstance(query, str):
            error = TypeError(f"'query' must be a string, got {type(query).__name__}")
            error.__notes__ = [cattrs.errors.AttributeValidationNote(
                "Structuring class WorkspaceSymbolParams @ attribute query", "query", str)]
            raise cattrs.ClassValidationError("While structuring WorkspaceSymbolParams",
                                              [error], cls)
        return symbol_params(obj, cls)

    converter.register_structure_hook(types.WorkspaceSymbolParams, workspace_symbol)
    return converter


def describe_structure_error(method: str, exc: BaseException) -> str:
    """'workspace/symbol: invalid params: required field missing @ params.query'."""
    cause = exc.__cause__
    if isinstance(cause, cattrs.ClassValidationError):
        details = "; ".join(cattrs.transform_error(cause, path="message"))
    else:
        details = str(cause or exc)
    return f"{method}: invalid params: {details}"


class SemcodeProtocol(LanguageServerProtocol):
    """pygls' protocol with semcode's errors: unknown methods are MethodNotFound, bad params one
    line naming the field, internal errors without a traceback."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        """A message as pygls' types; a request with bad params is answered at once (returns a
        marker that handle_message skips)."""
        method = data.get("method") if isinstance(data, dict) else None
        if isinstance(method, str) and "id" in data and method not in self.fm.features \
                and method not in self.fm.builtin_features:
            # A method we do not serve is MethodNotFound, whatever its params look like
            # (pygls would first check them against the LSP schema: InvalidParams).
            return self._converter.structure(data, JsonRPCRequestMessage)
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if isinstance(data, dict) and "jsonrpc" in data and "id" in data and "method" in data:
                message = describe_structure_error(str(data["method"]), exc)
                log.warning("%s", message)
                error = types.ResponseError(code=exc.code, message=message)
                self._send_response(data["id"], error=error)
                return _ANSWERED
            raise

    def handle_message(self, message: Any) -> None:
        """pygls' handling, except for messages already answered while being decoded."""
        if message is not _ANSWERED:
            super().handle_message(message)

    def _send_response(self, msg_id: Any, result: Any | None = None,
                       error: types.ResponseError | None = None) -> None:
        # pygls answers an unexpected exception with its Python text and traceback
        # (`data.traceback`); the client gets one plain line, the log gets the details.
        if error is not None and error.code == JsonRpcInternalError.CODE:
            error = types.ResponseError(code=error.code,
                                        message="semcode: internal error (see the server log)")
        super()._send_response(msg_id, result=result, error=error)

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(
        self, params: types.InitializeParams
    ) -> Generator[Any, Any, types.InitializeResult]:
        """pygls' `initialize`, with `experimental.semcode.protocolVersion` and
        `workspaceSymbolProvider` in the capabilities."""
        result = yield from super().lsp_initialize(params)
        result.capabilities.experimental = {"semcode": {"protocolVersion": PROTOCOL_VERSION}}
        result.capabilities.workspace_symbol_provider = True
        return result
