"""Reading a request body: parsed once (orjson), checked only where routing needs it.

The gateway does not model the OpenAI schema: it checks `model` (names the endpoint),
`stream`, `n` and the one input field each task cannot do without, and passes everything
else through to the adapter untouched. Every problem is an `InvalidRequest` (400) or a
`BodyTooLarge` (413), never a traceback.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import orjson
from aiohttp import web

from switchyard_gateway import errors
from switchyard_schema import Task

#: The field each task needs, besides `model`.
_INPUT_FIELD = {Task.CHAT: "messages", Task.COMPLETIONS: "prompt", Task.EMBEDDINGS: "input"}


@dataclasses.dataclass(frozen=True, slots=True)
class ParsedBody:
    """The few request fields routing reads, plus the body to pass on."""

    body: dict[str, Any]
    model: str
    stream: bool
    user: str | None


async def read_json(request: web.Request, limit: int,
                    body_seconds: float | None = None) -> dict[str, Any]:
    """The body as a JSON object.

    Raises BodyTooLarge (over `limit`), RequestTimeout (not all there within `body_seconds`
    seconds: a slow client must not hold a handler for ever) or InvalidRequest.
    """
    content = request.content
    if content.is_eof():
        # The whole body came with the headers: take it from the buffer, no wait (and
        # none of `request.read()`'s chunk loop and copies).
        raw = content.read_nowait()
        if len(raw) > limit:
            raise errors.BodyTooLarge(f"request body is over the limit of {limit} bytes")
        return parse_json(raw)
    try:
        async with asyncio.timeout(body_seconds):
            raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise errors.BodyTooLarge(
            f"request body is over the limit of {limit} bytes") from exc
    except TimeoutError:
        raise errors.RequestTimeout(
            f"the request body did not arrive within {body_seconds:g} seconds") from None
    return parse_json(raw)


def parse_json(raw: bytes) -> dict[str, Any]:
    """Parse a body that must be a JSON object."""
    if not raw:
        raise errors.InvalidRequest("request body is empty; expected a JSON object")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.InvalidRequest(
            f"request body is not valid JSON (at byte {exc.pos})") from None
    if not isinstance(data, dict):
        raise errors.InvalidRequest("request body must be a JSON object")
    return data


def check_body(data: dict[str, Any], task: Task, model: str | None = None) -> ParsedBody:
    """Check the fields routing depends on. `model` overrides the body's (MLflow paths)."""
    if model is None:
        model = data.get("model")
        if not isinstance(model, str) or not model:
            raise errors.InvalidRequest("'model' is required and must be a non-empty string "
                                        "naming a gateway endpoint")
    stream = data.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise errors.InvalidRequest("'stream' must be a boolean")
    if stream and task is Task.EMBEDDINGS:
        raise errors.InvalidRequest("embeddings cannot be streamed")
    n = data.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise errors.InvalidRequest("'n' must be a positive integer")
    field = _INPUT_FIELD[task]
    if field not in data:
        raise errors.InvalidRequest(f"'{field}' is required")
    if task is Task.CHAT and (not isinstance(data[field], list) or not data[field]):
        raise errors.InvalidRequest("'messages' must be a non-empty array")
    user = data.get("user")
    return ParsedBody(body=data, model=model, stream=stream,
                      user=user if isinstance(user, str) else None)
