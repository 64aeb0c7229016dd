"""How much an upstream answer may weigh: the transport's limits, with their defaults.

A tenant chooses the `baseUrl`s a shared gateway connects to, so every byte an upstream
sends is untrusted. These limits bound what one answer can make the gateway hold or
compute; crossing one raises `LimitExceeded` (mapped to a `serverError` attempt, so the
fallback serves) and drops the connection. The capacity limits bound how many connections
one origin gets and how long a request waits for one (`pool.py`); past the wait the
request fails at once with `Overloaded`. Set from `switchyard gateway` flags
(`settings.py`); read by `response.py`, `proxied.py` and `pool.py`. No I/O here.
"""

from __future__ import annotations

import dataclasses

#: All response header bytes (status line included). httpcore caps an incomplete event at
#: 100 KiB and aiohttp a header line at 8190 bytes; provider answers carry 1-4 KiB.
HEADER_BYTES = 64 * 1024
#: A non-streaming body, as handed to the adapter (decoded). The largest legitimate one is
#: an embeddings batch: 2,048 inputs x 1,536 float dimensions is ~40 MB of JSON; a chat
#: completion is a few KiB.
BODY_BYTES = 64 * 1024 * 1024
#: What one compressed answer (streaming or not) may inflate to: the gzip-bomb bound. Equal
#: to the body limit, since a compressed body decodes to the body.
DECOMPRESSED_BYTES = 64 * 1024 * 1024
#: Seconds an idle upstream connection is kept for reuse: below the 5 s after which
#: uvicorn (and so vLLM and most Python providers) closes an idle keep-alive connection,
#: so the gateway is not the one left writing into a connection being closed.
KEEPALIVE_SECONDS = 4.0
#: Connections open to one origin (connecting, busy or idle). On HTTP/1.1 that is also the
#: concurrent requests to it, and every team's endpoints to one provider share the origin;
#: each connection costs a socket, ~20 KiB of gateway memory and a TLS session upstream.
CONNECTIONS_PER_ORIGIN = 1000
#: Seconds a request waits for a connection when its origin is at its limit, before the
#: attempt fails as overloaded (and the fallback serves): a stream holds its connection for
#: tens of seconds, so a longer wait mostly ends in the attempt timeout anyway, a minute
#: late; 250 ms absorbs the turnover of short requests.
CAPACITY_WAIT_SECONDS = 0.25
#: Concurrent streams (requests) to one origin over HTTP/2, whatever the connections could
#: carry (1,000 x the server's 100 by default): each costs ~24 KiB of gateway memory and
#: up to a 256 KiB flow-control window, so this bounds one provider's share of a pod. On
#: HTTP/1.1 the connection limit already is the stream limit.
STREAMS_PER_ORIGIN = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """The per-answer byte limits of the upstream client."""

    header_bytes: int = HEADER_BYTES
    body_bytes: int = BODY_BYTES
    decompressed_bytes: int = DECOMPRESSED_BYTES
