"""Server-Sent Events: an incremental decoder and a frame encoder.

The stream translators of every adapter feed upstream bytes into `SseDecoder` as they
arrive (any split: mid-line, mid-CRLF, mid-UTF-8 sequence) and get whole events back; the
HTTP layer and the fake providers build frames with `encode`. Decoding follows the WHATWG
event-stream rules (LF, CR or CRLF line ends, `:` comments, multi-line `data`, `event`
and `id` fields, one optional space after the colon) with one deliberate leniency at end
of stream, described on `SseDecoder.finish`. Pure code, no I/O.

Event data stays `bytes`: an OpenAI passthrough re-frames the upstream's JSON without
decoding or re-serialising it, and `orjson.loads` takes bytes directly.
"""

from __future__ import annotations

import dataclasses

#: OpenAI's end-of-stream marker, as a complete frame.
DONE_FRAME = b"data: [DONE]\n\n"
DONE_DATA = b"[DONE]"

_BOM = b"\xef\xbb\xbf"


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
    """

    __slots__ = ("_buffer", "_data", "_event", "_has_data", "_id", "_pending_cr", "_started")

    def __init__(self) -> None:
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
        if line[0] == 0x3A:  # ":" comment, e.g. a keep-alive
            return
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
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
        self._has_data = False
        self._event = ""
        return event
