"""Reading OpenAI chat message content, shared by the translating adapters.

OpenAI allows `content` as a string or a list of typed parts; Anthropic and Gemini both
need its text in places (system prompts, tool results). Pure functions, no I/O.
"""

from __future__ import annotations

from typing import Any


def text_of(content: Any) -> str:
    """Text of a content that is a string or a list of parts (non-text parts ignored)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""
