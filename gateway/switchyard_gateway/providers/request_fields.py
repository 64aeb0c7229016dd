"""Reading the caller's request fields that translating adapters (Anthropic, Gemini) map.

OpenAI's wire format is the caller's; a provider with another format needs a few request
fields in a stricter shape (`stop` as a list, `max_tokens` as a positive integer) or
cannot express some at all. These helpers check them before anything is sent and raise a
`CallerFault` naming the field, so a request of the wrong shape is the caller's 400, never
a provider's error or a crash. Called by `anthropic_request.py`, `gemini_request.py` and
`message_text.py`; no I/O.
"""

from __future__ import annotations

from typing import Any

from switchyard_gateway.config.compiled import CompiledTarget
from switchyard_gateway.errors import CallerFault, Unsupported


def untranslatable(target: CompiledTarget, what: str) -> Unsupported:
    """A caller's request this provider cannot express (raised before anything is sent;
    the router moves on to a candidate that can)."""
    return Unsupported(what, target=target.name, provider=target.provider.value)


def stop_sequences(target: CompiledTarget, stop: Any) -> list[str]:
    """OpenAI's `stop` (a string or a list of strings) as a list; CallerFault otherwise."""
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return list(stop)
    raise invalid_parameter(target, "stop", "must be a string or a list of strings")


def max_tokens(target: CompiledTarget, body: dict[str, Any]) -> int | None:
    """`max_completion_tokens` or `max_tokens` as a positive integer; CallerFault otherwise."""
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid_parameter(target, "max_tokens", "must be a positive integer")
    return value


def invalid_parameter(target: CompiledTarget, name: str, problem: str) -> CallerFault:
    """A request field of the wrong shape for translation (raised before anything is sent)."""
    return CallerFault(f"{name} {problem}", upstream_status=400, target=target.name,
                       provider_code="invalid_parameter", provider_param=name)
