"""Reading OpenAI chat message content, shared by the translating adapters.

OpenAI allows `content` as a string or a list of typed parts; Anthropic and Gemini both
need its text in places (system prompts, tool results) and its images (a data: URL or a
link). Pure functions, no I/O.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from switchyard_gateway.config.compiled import CompiledTarget
from switchyard_gateway.providers import upstream_errors


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
        raise upstream_errors.untranslatable(target, "an image part without a url")
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        return Image(data=data, media_type=header[len("data:") :].split(";", 1)[0])
    return Image(url=url)


def text_of(content: Any) -> str:
    """Text of a content that is a string or a list of parts (non-text parts ignored)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""
