"""OpenAI chat request -> Anthropic Messages request (pure; used by `anthropic.py`).

What is translated, and how:
- `system`/`developer` messages (anywhere) -> the top-level `system` text, joined by blank
  lines; Anthropic has no system role inside `messages`.
- user/assistant content: strings and `text` parts -> text blocks; `image_url` parts ->
  image blocks (`data:` URLs as base64 sources, other URLs as url sources).
- assistant `tool_calls` -> `tool_use` blocks (arguments parsed from their JSON string);
  `tool` messages -> `tool_result` blocks in a user turn. Consecutive turns of one role
  are merged, so all results of a parallel call land in the one user turn Anthropic wants.
- `tools` -> `{name, description, input_schema}`; `tool_choice` auto/required/none/named ->
  auto/any/none/tool; `parallel_tool_calls: false` -> `disable_parallel_tool_use`.
- `max_completion_tokens` or `max_tokens` -> `max_tokens` (required by Anthropic; default
  `DEFAULT_MAX_TOKENS`); `temperature` clamped to Anthropic's 0..1 (OpenAI allows up to 2;
  a fallback to Anthropic must not turn a valid request into a 400); `top_p`; `stop` ->
  `stop_sequences`; `user` -> `metadata.user_id`.
- Not expressible, so refused with a `CallerFault` before sending: `n` > 1, audio/file
  content parts, the legacy `function` role. Other OpenAI-only fields (`seed`,
  `logprobs`, `response_format`, penalties...) are dropped.
"""

from __future__ import annotations

from typing import Any

import orjson

from switchyard_gateway.config.compiled import CompiledTarget
from switchyard_gateway.providers import message_text, request_fields

DEFAULT_MAX_TOKENS = 4096


def translate(target: CompiledTarget, body: dict[str, Any], stream: bool) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat body. Raises CallerFault (see module doc)."""
    if isinstance(body.get("n"), int) and body["n"] > 1:
        raise request_fields.untranslatable(target, "n > 1")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise request_fields.untranslatable(target, "a request without a messages list")
    system, turns = _messages(target, messages)
    max_tokens = request_fields.max_tokens(target, body) or DEFAULT_MAX_TOKENS
    payload: dict[str, Any] = {"model": target.model, "max_tokens": max_tokens, "messages": turns}
    if system:
        payload["system"] = system
    if isinstance(body.get("temperature"), int | float):
        payload["temperature"] = min(max(float(body["temperature"]), 0.0), 1.0)
    if body.get("top_p") is not None:
        payload["top_p"] = body["top_p"]
    if body.get("stop"):
        payload["stop_sequences"] = request_fields.stop_sequences(target, body["stop"])
    if isinstance(body.get("user"), str):
        payload["metadata"] = {"user_id": body["user"]}
    _tools(body, payload)
    if stream:
        payload["stream"] = True
    return payload


def _tools(body: dict[str, Any], payload: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools:
        payload["tools"] = [_tool(t) for t in tools if isinstance(t, dict) and t.get("function")]
    choice = body.get("tool_choice")
    translated: dict[str, Any] | None = None
    if choice == "auto":
        translated = {"type": "auto"}
    elif choice == "required":
        translated = {"type": "any"}
    elif choice == "none":
        translated = {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        translated = {"type": "tool", "name": choice["function"].get("name")}
    if body.get("parallel_tool_calls") is False and tools:
        translated = translated or {"type": "auto"}
        if translated["type"] != "none":
            translated["disable_parallel_tool_use"] = True
    if translated is not None and tools:
        payload["tool_choice"] = translated


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool["function"]
    out: dict[str, Any] = {
        "name": function.get("name"),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _messages(target: CompiledTarget, messages: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    system, conversation = message_text.split_system(target, messages)
    turns: list[dict[str, Any]] = []
    for message in conversation:
        role = message.get("role")
        if role == "user":
            blocks = _content_blocks(target, message.get("content"))
        elif role == "assistant":
            blocks = _assistant_blocks(target, message)
        elif role == "tool":
            blocks = [_tool_result(message)]
            role = "user"
        else:
            raise request_fields.untranslatable(target, f"the {role!r} message role")
        message_text.append_turn(turns, role, "content", blocks)
    return system, turns


def _content_blocks(target: CompiledTarget, content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise request_fields.untranslatable(target, "message content that is not text or parts")
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image(target, part.get("image_url")))
        else:
            raise request_fields.untranslatable(target, f"a {kind!r} content part")
    return blocks


def _image(target: CompiledTarget, image_url: Any) -> dict[str, Any]:
    image = message_text.image_of(target, image_url)
    if image.data:
        source = {"type": "base64", "media_type": image.media_type, "data": image.data}
        return {"type": "image", "source": source}
    return {"type": "image", "source": {"type": "url", "url": image.url}}


def _assistant_blocks(target: CompiledTarget, message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = _content_blocks(target, message.get("content"))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            raise request_fields.untranslatable(
                target, "tool call arguments that are not JSON"
            ) from None
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": arguments,
            }
        )
    return blocks


def _tool_result(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "tool_result",
        "tool_use_id": message.get("tool_call_id"),
        "content": message_text.text_of(message.get("content")),
    }
