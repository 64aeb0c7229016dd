"""The gateway's aiohttp runner: requests aiohttp's parser refuses get the gateway's JSON.

aiohttp answers a request it cannot parse (a malformed request line, a bad or oversized
header) itself, before any middleware runs: `RequestHandler.handle_error` writes a
plain-text 400 whose body is the parser's message, and that message quotes the offending
bytes of the request head, a caller's `Authorization` header included; it also logs them
at ERROR with a traceback. No middleware, signal or `handler_args` option reaches that
path (aiohttp issues #3287 and #9882), so the supported seam is the one aiohttp's own
classes are built from: `web.RequestHandler.handle_error` is a public method, overridden
here, and `web.Server` is the public protocol factory, whose `__call__` builds the handler.
`GatewayRunner` is `web.AppRunner` with that server in place; it overrides
`_make_server`, the abstract method `web.BaseRunner` asks each runner to implement (the
one non-public name used, because `AppRunner` offers no other way to choose the server).

Used by `serve.py` and the integration tests' gateway kit. Must not: echo any byte of a
refused request, log those bytes, or change anything for requests that parse.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMethod,
    BadStatusLine,
    HttpProcessingError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
    PayloadEncodingError,
)

from switchyard_gateway import errors
from switchyard_gateway.http.errors import error_response, render

log = logging.getLogger(__name__)

#: What was wrong, by parser error class, most specific first. Said in our words: the
#: parser's own message quotes the request's bytes.
_PROBLEMS: tuple[tuple[type[HttpProcessingError], str], ...] = (
    (LineTooLong, "the request line or a header is longer than the server accepts "
                  "(8190 bytes)"),
    (InvalidHeader, "a header name or value holds characters HTTP does not allow"),
    (InvalidURLError, "the request target (URL) is malformed"),
    (BadStatusLine, "the request line is malformed (method, target and HTTP version)"),
    (PayloadEncodingError, "the body's framing (Content-Length, Transfer-Encoding or "
                           "Content-Encoding) is invalid"),
)


def problem_of(exc: BaseException) -> str:
    """What was wrong with a refused request, without any of its bytes."""
    for cls, problem in _PROBLEMS:
        if isinstance(exc, cls):
            return problem
    return "the request head is malformed"


class JsonErrorRequestHandler(web.RequestHandler):
    """aiohttp's HTTP/1.1 protocol, answering refused requests with the gateway's JSON."""

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """An OpenAI-style error saying what was wrong, in words; the connection closes.

        Raises `ConnectionError` when part of a response was already sent (as aiohttp does).
        """
        name = type(exc).__name__ if exc is not None else "error"
        if isinstance(exc, HttpProcessingError):
            # Non-HTTP bytes on the port (TLS, scanners) are routine: debug, as aiohttp does.
            level = logging.DEBUG if isinstance(exc, BadHttpMethod) else logging.WARNING
            log.log(level, "malformed HTTP request refused: %s (status %d)", name, status)
            response = render(errors.MalformedRequest(
                f"not a valid HTTP/1.1 request: {problem_of(exc)}; it was not processed"))
        else:  # an error outside the app's middlewares (never expected)
            log.error("request failed outside the gateway app: %s (status %d)", name, status)
            response = error_response(status, "internal gateway error", "server_error",
                                      "internal_error")
        if request.writer.output_size > 0:
            raise ConnectionError("a response was partly sent; cannot send the error")
        response.force_close()
        return response


class JsonErrorServer(web.Server):
    """`web.Server` whose connections use `JsonErrorRequestHandler`."""

    def __init__(self, handler: Any, *, loop: asyncio.AbstractEventLoop,
                 **kwargs: Any) -> None:
        super().__init__(handler, loop=loop, **kwargs)
        # Kept here too: the base class keeps them under private names.
        self._protocol_loop = loop
        self._protocol_kwargs = {k: v for k, v in kwargs.items()
                                 if k not in ("request_factory", "handler_cancellation")}

    def __call__(self) -> web.RequestHandler:
        return JsonErrorRequestHandler(self, loop=self._protocol_loop, **self._protocol_kwargs)


class GatewayRunner(web.AppRunner):
    """`web.AppRunner` whose server answers unparseable requests with JSON errors."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._server_kwargs = dict(kwargs)

    async def _make_server(self) -> web.Server:
        built = await super()._make_server()  # starts the app (on_startup, cleanup_ctx)
        kwargs = {k: v for k, v in self._server_kwargs.items()
                  if k not in ("handle_signals", "shutdown_timeout")}
        return JsonErrorServer(built.request_handler, request_factory=built.request_factory,
                               loop=asyncio.get_running_loop(), **kwargs)
