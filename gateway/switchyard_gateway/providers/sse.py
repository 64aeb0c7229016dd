"""Server-Sent Events: an incremental decoder and a frame encoder.

The stream translators of every adapter feed upstream bytes into `SseDecoder` as they
arrive (any split: mid-line, mid-CRLF, mid-UTF-8 sequence) and get whole events back; the
HTTP layer and the fake providers build frames with `encode`. Decoding follows the WHATWG
event-stream rules (LF, CR or CRLF line ends, `:` comments, multi-line `data`, `event`
and `id` fields, one optional space after the colon) with one deliberate leniency at end
of stream, described on `SseDecoder.finish`. Pure code, no I/O.

The upstream is untrusted: a line that never ends, or an event that never closes, would
grow without bound (a 95 MB line was kept until the request timeout), so the decoder
refuses a line past `SseLimits.line_bytes` and an event's data past `event_bytes`
(`SseLimitExceeded`; the attempt runner fails the attempt as `serverError`).

Event data stays `bytes`: an OpenAI passthrough re-frames the upstream's JSON without
decoding or re-serialising it, and `orjson.loads` takes bytes directly.
"""

from __future__ import annotations

import dataclasses

#: OpenAI's end-of-stream marker, as a complete frame.
DONE_FRAME = b"data: [DONE]\n\n"
DONE_DATA = b"[DONE]"

_BOM = b"\xef\xbb\xbf"

#: One SSE line. A streamed chunk is well under 1 KiB; the largest legitimate line is a
#: whole base64 payload in one event (a generated image or audio piece, a few MiB).
LINE_BYTES = 4 * 1024 * 1024
#: The data of one event (its `data:` lines together).
EVENT_BYTES = 8 * 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class SseLimits:
    """How long one line and one event's data may grow."""

    line_bytes: int = LINE_BYTES
    event_bytes: int = EVENT_BYTES


SSE_LIMITS = SseLimits()


class SseLimitExceeded(ValueError):
    """A line or an event passed its limit: `limit` is `sse_line` or `sse_event`."""

    def __init__(self, limit: str, max_bytes: int) -> None:
        super().__init__(f"the stream exceeds the {limit} limit of {max_bytes} bytes")
        self.limit = limit
        self.max_bytes = max_bytes


@dataclasses.dataclass(frozen=True, slots=True)
class SseEvent:
    """One dispatched event. `event` is "" when the stream named none (SSE's "message")."""

    data: bytes
    event: str = ""
    id: str | None = None


def encode(data: bytes, event: str | None = None) -> bytes:
    """One complete SSE frame carrying `data` (split into several `data:` lines if needed)."""
    if b"\n" in data or b"\r" in data:
        lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        body = b"".join(b"data: " + line + b"\n" for line in lines)
    else:
        body = b"data: " + data + b"\n"
    if event:
        return b"event: " + event.encode() + b"\n" + body + b"\n"
    return body + b"\n"


class SseDecoder:
    """Turns a byte stream into `SseEvent`s, incrementally.

    Holds at most one incomplete line (plus a lone trailing CR that may be half of a
    CRLF) and the fields of the event being built; everything else is returned at once.
    `feed` raises `SseLimitExceeded` past `limits`.
    """

    __slots__ = ("_buffer", "_data", "_event", "_has_data", "_id", "_max_event", "_max_line",
                 "_pending_cr", "_size", "_started")

    def __init__(self, limits: SseLimits = SSE_LIMITS) -> None:
        self._max_line = limits.line_bytes
        self._max_event = limits.event_bytes
        self._size = 0  # data bytes of the event being built
        self._buffer = b""  # the incomplete last line, already free of CRs
        self._pending_cr = False  # the last chunk ended in CR: drop a leading LF (CRLF)
        self._started = False
        self._data: list[bytes] = []
        self._has_data = False
        self._event = ""
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Add bytes; return the events completed by them (possibly none)."""
        if not chunk:
            return []
        if self._pending_cr:
            self._pending_cr = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
        buffer = self._buffer + chunk if self._buffer else chunk
        if not self._started:
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer):
                self._buffer = buffer
                return []
            self._started = True
            if buffer.startswith(_BOM):
                buffer = buffer[len(_BOM) :]
        if b"\r" in buffer:
            self._pending_cr = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        if len(self._buffer) > self._max_line:
            self._buffer = b""
            raise SseLimitExceeded("sse_line", self._max_line)
        return self._lines(lines)

    def finish(self) -> list[SseEvent]:
        """End of stream: return a last event whose closing blank line never came.

        The WHATWG rules discard such an event; some servers omit the final blank line,
        and whether a stream is complete is decided by its terminator (`[DONE]`,
        `message_stop`), not by this framing detail, so it is dispatched instead.
        """
        rest = self._buffer
        self._buffer = b""
        if not self._started and _BOM.startswith(rest):
            rest = b""
        return self._lines([rest, b""] if rest else [b""])

    def _lines(self, lines: list[bytes]) -> list[SseEvent]:
        events: list[SseEvent] = []
        for line in lines:
            if line:
                self._field(line)
                continue
            event = self._dispatch()
            if event is not None:
                events.append(event)
        return events

    def _field(self, line: bytes) -> None:
        if len(line) > self._max_line:
            raise SseLimitExceeded("sse_line", self._max_line)
        if line[0] == 0x3A:  # ":" comment, e.g. a keep-alive
            return
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._size += len(value)
            if self._size > self._max_event:
                self._data = []
                raise SseLimitExceeded("sse_event", self._max_event)
            self._data.append(value)
            self._has_data = True
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id" and b"\x00" not in value:
            self._id = value.decode("utf-8", "replace")

    def _dispatch(self) -> SseEvent | None:
        if not self._has_data:
            self._event = ""
            return None
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        event = SseEvent(data=data, event=self._event, id=self._id)
        self._data = []
        self._size = 0
        self._has_data = False
        self._event = ""
        return event
