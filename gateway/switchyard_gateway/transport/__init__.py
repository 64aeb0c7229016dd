"""A lean HTTP client for the provider calls: HTTP/1.1 keep-alive pool (llhttp parser),
HTTP/2 to origins that choose it by ALPN (`http2.py`, `stream.py`, the h2 library).

The gateway's hot path spends most of its own CPU on the upstream call. aiohttp's
`ClientSession` builds a request object, a connector lease, a body-writer task and a
response object per call, which the benchmark measured as the largest single cost per
request. This package does only what a provider call needs: one write of the request,
the response parsed by httptools (llhttp, the parser Node.js uses), the body handed over
as it arrives, and the connection back in the pool when the response is complete.

`Transport` is the surface the router's attempt runner uses and `Client` the one over
sockets (`Pool` underneath, for both protocols); errors are the types in `errors`,
limits (bytes and capacity) in `limits`, the connect-time address policy in
`addresses`. Origins behind an outbound proxy (HTTPS_PROXY and friends) go through
aiohttp (`proxied.py`, HTTP/1.1), behind the same response surface and the same error
classification.
"""

from switchyard_gateway.transport.client import Client, Transport, UpstreamResponse
from switchyard_gateway.transport.errors import (
    AddressRefused,
    BodyCutOff,
    ConnectError,
    ConnectionClosed,
    InvalidRequest,
    LimitExceeded,
    Overloaded,
    ProtocolError,
    TransportError,
)
from switchyard_gateway.transport.events import NullObserver, Observer
from switchyard_gateway.transport.limits import Limits
from switchyard_gateway.transport.pool import Pool
from switchyard_gateway.transport.response import Response

__all__ = [
    "AddressRefused",
    "BodyCutOff",
    "Client",
    "ConnectError",
    "ConnectionClosed",
    "InvalidRequest",
    "LimitExceeded",
    "Limits",
    "NullObserver",
    "Observer",
    "Overloaded",
    "Pool",
    "ProtocolError",
    "Response",
    "Transport",
    "TransportError",
    "UpstreamResponse",
]
