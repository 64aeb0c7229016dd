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


class ConnectionClosed(TransportError):
    """The server closed the connection before the response headers were complete."""


class BodyCutOff(TransportError):
    """The server closed the connection before the response body was complete."""


class ProtocolError(TransportError):
    """The server's answer is not valid HTTP/1.1 (or uses an encoding we do not speak)."""


class InvalidRequest(TransportError):
    """The request cannot be sent as is (a line break in a header, an unknown scheme)."""
