"""What can go wrong on the wire, as types (the router maps them to gateway errors)."""

from __future__ import annotations


class TransportError(Exception):
    """Base of every failure raised by the transport."""


class ConnectError(TransportError):
    """No connection could be opened (refused, unreachable, DNS, TLS handshake, timeout)."""

    def __init__(self, host: str, port: int, os_error: BaseException) -> None:
        super().__init__(f"cannot connect to {host}:{port}: {type(os_error).__name__}")
        self.host = host
        self.port = port
        self.os_error = os_error


class AddressRefused(ConnectError):
    """The host names (or resolves to) an address the gateway never connects to:
    link-local and cloud metadata services (`addresses.py`)."""

    def __init__(self, host: str, port: int, address: str) -> None:
        super().__init__(host, port, PermissionError(address))
        self.args = (f"cannot connect to {host}:{port}: it resolves to {address}, a "
                     "link-local or cloud-metadata address the gateway never connects to",)
        self.address = address


class Overloaded(TransportError):
    """The origin is at its connection limit and none became free within the capacity
    wait (`limits.CAPACITY_WAIT_SECONDS`): nothing was sent."""

    def __init__(self, host: str, port: int, limit: int, waited: float,
                 what: str = "connections") -> None:
        super().__init__(f"no connection to {host}:{port} became free within "
                         f"{waited * 1000:.0f} ms (all {limit} {what} allowed are busy)")
        self.host = host
        self.port = port
        self.limit = limit


class ConnectionClosed(TransportError):
    """The server closed the connection before the response headers were complete."""


class BodyCutOff(TransportError):
    """The server closed the connection before the response body was complete."""


class ProtocolError(TransportError):
    """The server's answer is not valid HTTP/1.1 (or uses an encoding we do not speak)."""


class LimitExceeded(ProtocolError):
    """The answer crossed one of the configured limits (`limits.py`): `limit` names it
    (`headers`, `body`, `decompressed`, `sse_line`, `sse_event`)."""

    def __init__(self, limit: str, max_bytes: int) -> None:
        super().__init__(f"the answer exceeds the {limit} limit of {max_bytes} bytes")
        self.limit = limit
        self.max_bytes = max_bytes


class InvalidRequest(TransportError):
    """The request cannot be sent as is (a line break in a header, an unknown scheme)."""
