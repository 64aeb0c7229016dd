"""Request parsing: only what routing needs, and a 400 for everything else."""

from __future__ import annotations

import pytest

from switchyard_gateway import errors
from switchyard_gateway.http.parsing import check_body, parse_json
from switchyard_schema import Task

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b'"text"', b"nul", b"\xff\xfe"])
def test_bad_json_is_invalid_request(raw: bytes) -> None:
    with pytest.raises(errors.InvalidRequest):
        parse_json(raw)


@pytest.mark.parametrize(("body", "task"), [
    ({"messages": [{"role": "user", "content": "x"}]}, Task.CHAT),
    ({**CHAT, "model": ""}, Task.CHAT),
    ({**CHAT, "model": 7}, Task.CHAT),
    ({**CHAT, "stream": "yes"}, Task.CHAT),
    ({**CHAT, "n": 0}, Task.CHAT),
    ({**CHAT, "n": True}, Task.CHAT),
    ({**CHAT, "n": "2"}, Task.CHAT),
    ({"model": "chat"}, Task.CHAT),
    ({"model": "chat", "messages": []}, Task.CHAT),
    ({"model": "chat", "messages": "hi"}, Task.CHAT),
    ({"model": "c"}, Task.COMPLETIONS),
    ({"model": "e"}, Task.EMBEDDINGS),
    ({"model": "e", "input": "x", "stream": True}, Task.EMBEDDINGS),
])
def test_missing_or_wrong_fields(body: dict[str, object], task: Task) -> None:
    with pytest.raises(errors.InvalidRequest):
        check_body(body, task)


def test_valid_bodies_pass_through_untouched() -> None:
    body = {**CHAT, "stream": True, "user": "u1", "temperature": 0.2, "n": 2,
            "tools": [{"type": "function", "function": {"name": "f"}}]}
    parsed = check_body(body, Task.CHAT)
    assert parsed.body is body
    assert (parsed.model, parsed.stream, parsed.user) == ("chat", True, "u1")
    assert not check_body({"model": "c", "prompt": "x", "stream": None},
                          Task.COMPLETIONS).stream


def test_model_from_the_url_wins() -> None:
    parsed = check_body({"messages": [{"role": "user", "content": "x"}]}, Task.CHAT,
                        model="team-a/chat")
    assert parsed.model == "team-a/chat"
