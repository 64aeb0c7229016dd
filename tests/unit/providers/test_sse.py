"""The SSE decoder: framing rules, and any chunking of a stream yields the same events."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchyard_gateway.providers.sse import (
    DONE_FRAME,
    SseDecoder,
    SseEvent,
    SseLimitExceeded,
    SseLimits,
    encode,
)


def decode(chunks: list[bytes]) -> list[SseEvent]:
    decoder = SseDecoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    return events + decoder.finish()


def test_fields_comments_and_multiline_data() -> None:
    raw = b': keep-alive\nevent: delta\nid: 7\ndata: a\ndata:b\n\ndata: {"x": 1}\n\n'
    assert decode([raw]) == [
        SseEvent(data=b"a\nb", event="delta", id="7"),
        SseEvent(data=b'{"x": 1}', event="", id="7"),  # the last id persists, as in SSE
    ]


def test_crlf_cr_and_lf_line_ends_are_equal() -> None:
    lf = b"event: e\ndata: one\n\ndata: two\n\n"
    assert (
        decode([lf.replace(b"\n", b"\r\n")]) == decode([lf]) == decode([lf.replace(b"\n", b"\r")])
    )


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    assert decode([b"data: x\r", b"\n\r", b"\ndata: y\r\n\r\n"]) == [
        SseEvent(data=b"x"),
        SseEvent(data=b"y"),
    ]


def test_event_without_data_is_not_dispatched() -> None:
    assert decode([b"event: ping\n\n: comment\n\n"]) == []


def test_byte_order_mark_is_dropped_even_when_split() -> None:
    assert decode([b"\xef", b"\xbb\xbfdata: x\n\n"]) == [SseEvent(data=b"x")]


def test_last_event_without_blank_line_is_still_dispatched() -> None:
    assert decode([b"data: [DONE]"]) == [SseEvent(data=b"[DONE]")]
    assert decode([b"data: [DONE]\n"]) == [SseEvent(data=b"[DONE]")]


def test_encode_round_trips_and_splits_lines() -> None:
    assert encode(b"[DONE]") == DONE_FRAME
    assert encode(b"a\nb", "x") == b"event: x\ndata: a\ndata: b\n\n"
    assert decode([encode(b"a\nb", "x")]) == [SseEvent(data=b"a\nb", event="x")]


_text = st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)))
_events = st.lists(st.tuples(st.sampled_from(["", "message_start", "error"]), _text), max_size=8)


@given(
    events=_events,
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=20),
    newline=st.sampled_from([b"\n", b"\r\n", b"\r"]),
)
def test_any_chunking_yields_the_same_events(
    events: list[tuple[str, str]], cuts: list[int], newline: bytes
) -> None:
    raw = b"".join(encode(data.encode(), name or None) for name, data in events)
    raw = raw.replace(b"\n", newline)
    bounds = sorted({c % (len(raw) + 1) for c in cuts} | {0, len(raw)})
    chunks = [raw[a:b] for a, b in itertools.pairwise(bounds)]
    expected = [SseEvent(data=data.encode(), event=name) for name, data in events]
    assert decode(chunks) == expected
    assert decode([raw]) == expected


# -- limits: an upstream that never ends a line or an event (issue 15) ------------------

def test_endless_line_is_refused_at_the_line_limit() -> None:
    decoder = SseDecoder(SseLimits(line_bytes=1000, event_bytes=10_000))
    decoder.feed(b"data: " + b"a" * 900)
    with pytest.raises(SseLimitExceeded, match="sse_line") as caught:
        for _ in range(10):
            decoder.feed(b"a" * 100)
    assert caught.value.limit == "sse_line"
    assert len(decoder._buffer) == 0  # the line is let go at once


def test_long_complete_line_in_one_chunk_is_refused() -> None:
    decoder = SseDecoder(SseLimits(line_bytes=1000, event_bytes=10_000))
    with pytest.raises(SseLimitExceeded, match="sse_line"):
        decoder.feed(b"data: " + b"a" * 2000 + b"\n\n")


def test_endless_event_of_short_lines_is_refused_at_the_event_limit() -> None:
    decoder = SseDecoder(SseLimits(line_bytes=1000, event_bytes=5000))
    with pytest.raises(SseLimitExceeded, match="sse_event") as caught:
        for _ in range(100):
            decoder.feed(b"data: " + b"b" * 500 + b"\n")
    assert caught.value.limit == "sse_event"


def test_events_under_the_limits_pass_and_the_count_restarts_per_event() -> None:
    decoder = SseDecoder(SseLimits(line_bytes=1000, event_bytes=1500))
    events = []
    for _ in range(10):  # 10 x 1,000 bytes of data in all, 1,000 per event
        events += decoder.feed(b"data: " + b"c" * 500 + b"\ndata: " + b"c" * 499 + b"\n\n")
    assert len(events) == 10
