"""Reading OpenAI chat message content, shared by the translating adapters.

OpenAI allows `content` as a string or a list of typed parts; Anthropic and Gemini both
need its text in places (system prompts, tool results) and its images (a data: URL or a
link). Pure functions, no I/O.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from switchyard_gateway.config.compiled import CompiledTarget
from switchyard_gateway.providers import request_fields


@dataclasses.dataclass(frozen=True, slots=True)
class Image:
    """An `image_url` part: inline base64 `data` with its media type, or a `url`."""

    url: str = ""
    data: str = ""
    media_type: str = ""


def image_of(target: CompiledTarget, image_url: Any) -> Image:
    """The image an `image_url` part names; CallerFault when it names none."""
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str):
        raise request_fields.untranslatable(target, "an image part without a url")
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        return Image(data=data, media_type=header[len("data:") :].split(";", 1)[0])
    return Image(url=url)


def split_system(
    target: CompiledTarget, messages: list[Any]
) -> tuple[str, list[dict[str, Any]]]:
    """The system/developer prompts joined, and the other messages in order.

    Anthropic and Gemini both take the system prompt apart from the turns. Raises
    CallerFault for a message that is not an object.
    """
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, dict):
            raise request_fields.untranslatable(target, "a message that is not an object")
        if message.get("role") in ("system", "developer"):
            system.append(text_of(message.get("content")))
        else:
            turns.append(message)
    return "\n\n".join(s for s in system if s), turns


def append_turn(turns: list[dict[str, Any]], role: str, key: str, items: list[Any]) -> None:
    """Add `items` as a turn of `role`, merged into the last turn when it has that role.

    Both providers want strictly alternating roles (consecutive tool results, for example,
    become one user turn); `key` is the turn's list field (`content` or `parts`).
    """
    if not items:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(items)
    else:
        turns.append({"role": role, key: items})


def text_of(content: Any) -> str:
    """Text of a content that is a string or a list of parts (non-text parts ignored)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""
