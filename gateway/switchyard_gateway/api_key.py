"""Key material in a type that cannot leak by accident.

`ApiKey` redacts itself in `repr`/`str`/format, so a dataclass dump, a log line or an
f-string never prints the value; only `reveal()` does, at the one place a header is built.
"""

from __future__ import annotations


class ApiKey:
    """A provider API key. Compare and hash by value; print as [REDACTED]."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The raw key, for building the upstream request's auth header only."""
        return self._value

    def __repr__(self) -> str:
        return "ApiKey([REDACTED])"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
