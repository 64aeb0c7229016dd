"""OpenAI request -> Gemini `generateContent` / `embedContent` body (pure; used by `gemini.py`).

Chat:
- `system`/`developer` messages -> `systemInstruction`; `assistant` -> role `model`.
- text parts -> `{text}`; `image_url` parts -> `inlineData` (`data:` URLs) or `fileData`.
- assistant `tool_calls` -> `functionCall` parts; `tool` messages -> `functionResponse`
  parts in a user turn, named after the call they answer (found by `tool_call_id`); the
  result is the tool's JSON object, or `{"content": text}` when it is not an object.
  Consecutive turns of one role are merged.
- `tools` -> one `functionDeclarations` tool; `tool_choice` auto/required/none/named ->
  `functionCallingConfig` AUTO/ANY/NONE/ANY with `allowedFunctionNames`.
- `generationConfig`: temperature, top_p, `max_completion_tokens`/`max_tokens`, `stop`,
  `n`, `seed`, penalties; `response_format` json_object/json_schema -> JSON mime type
  (and the schema as `responseJsonSchema`).
- Refused with a `CallerFault`: audio/file parts, the legacy `function` role.
Embeddings: one string -> `embedContent`; a list of strings -> `batchEmbedContents`;
`dimensions` -> `outputDimensionality`; token-id input is refused.
"""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson

from switchyard_gateway.config.compiled import CompiledTarget
from switchyard_gateway.providers import message_text, request_fields

_CONFIG_FIELDS = {
    "temperature": "temperature",
    "top_p": "topP",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}


def chat(target: CompiledTarget, body: dict[str, Any]) -> dict[str, Any]:
    """A generateContent body for an OpenAI chat body."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise request_fields.untranslatable(target, "a request without a messages list")
    system, contents = _contents(target, messages)
    payload: dict[str, Any] = {"contents": contents}
    if system:
        payload["systemInstruction"] = {"parts": [{"text": system}]}
    config = _generation_config(target, body)
    if config:
        payload["generationConfig"] = config
    tools = [
        t["function"] for t in body.get("tools") or () if isinstance(t, dict) and t.get("function")
    ]
    if tools:
        payload["tools"] = [{"functionDeclarations": [_declaration(f) for f in tools]}]
        tool_config = _tool_config(body.get("tool_choice"))
        if tool_config:
            payload["toolConfig"] = {"functionCallingConfig": tool_config}
    return payload


def _generation_config(target: CompiledTarget, body: dict[str, Any]) -> dict[str, Any]:
    config = {g: body[o] for o, g in _CONFIG_FIELDS.items() if body.get(o) is not None}
    max_tokens = request_fields.max_tokens(target, body)
    if max_tokens:
        config["maxOutputTokens"] = max_tokens
    if body.get("stop"):
        config["stopSequences"] = request_fields.stop_sequences(target, body["stop"])
    if isinstance(body.get("n"), int) and body["n"] > 1:
        config["candidateCount"] = body["n"]
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if schema:
            config["responseJsonSchema"] = schema
    return config


def _declaration(function: dict[str, Any]) -> dict[str, Any]:
    out = {"name": function.get("name")}
    if function.get("description"):
        out["description"] = function["description"]
    if function.get("parameters"):
        out["parameters"] = function["parameters"]
    return out


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice == "auto":
        return {"mode": "AUTO"}
    if choice == "required":
        return {"mode": "ANY"}
    if choice == "none":
        return {"mode": "NONE"}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"mode": "ANY", "allowedFunctionNames": [choice["function"].get("name")]}
    return None


def _contents(target: CompiledTarget, messages: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    system, turns = message_text.split_system(target, messages)
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}  # tool_call_id -> function name
    for message in turns:
        role = message.get("role")
        if role == "user":
            parts = _parts(target, message.get("content"))
        elif role == "assistant":
            parts = _parts(target, message.get("content"))
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                call_names[str(call.get("id"))] = str(function.get("name"))
                parts.append(
                    {
                        "functionCall": {
                            "name": function.get("name"),
                            "args": _args(target, function),
                        }
                    }
                )
            role = "model"
        elif role == "tool":
            name = call_names.get(str(message.get("tool_call_id")), "")
            parts = [
                {"functionResponse": {"name": name, "response": _result(message.get("content"))}}
            ]
            role = "user"
        else:
            raise request_fields.untranslatable(target, f"the {role!r} message role")
        message_text.append_turn(contents, role, "parts", parts)
    return system, contents


def _args(target: CompiledTarget, function: dict[str, Any]) -> Any:
    try:
        return orjson.loads(function.get("arguments") or "{}")
    except orjson.JSONDecodeError:
        raise request_fields.untranslatable(
            target, "tool call arguments that are not JSON"
        ) from None


def _result(content: Any) -> dict[str, Any]:
    text = message_text.text_of(content)
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"content": text}



def _parts(target: CompiledTarget, content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise request_fields.untranslatable(target, "message content that is not text or parts")
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"text": str(part.get("text", ""))})
        elif kind == "image_url":
            parts.append(_image(target, part.get("image_url")))
        else:
            raise request_fields.untranslatable(target, f"a {kind!r} content part")
    return parts


def _image(target: CompiledTarget, image_url: Any) -> dict[str, Any]:
    image = message_text.image_of(target, image_url)
    if image.data:
        return {"inlineData": {"mimeType": image.media_type, "data": image.data}}
    mime = mimetypes.guess_type(image.url)[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": image.url}}


def embeddings(target: CompiledTarget, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(method, body) for an OpenAI embeddings body: `embedContent` or `batchEmbedContents`."""
    raw = body.get("input")
    dimensions = body.get("dimensions")
    extra = {"outputDimensionality": dimensions} if isinstance(dimensions, int) else {}
    if isinstance(raw, str):
        return "embedContent", {"content": {"parts": [{"text": raw}]}, **extra}
    if isinstance(raw, list) and raw and all(isinstance(item, str) for item in raw):
        name = "models/" + target.model.removeprefix("models/")
        requests = [{"model": name, "content": {"parts": [{"text": t}]}, **extra} for t in raw]
        return "batchEmbedContents", {"requests": requests}
    raise request_fields.untranslatable(target, "embeddings input other than text")
