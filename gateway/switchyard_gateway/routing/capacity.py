"""Per-target caps on in-flight requests (`maxConcurrentRequests` on a GatewayEndpoint
target), counted per gateway process.

The attempt runner asks `TargetSlots.take` before it sends to a capped target; at the cap
the attempt fails at once with `UpstreamOverloaded` (nothing sent: the router falls back,
and answers 503 with Retry-After when nothing is left). A taken slot rides on the
upstream response (`Counted`) and is given back when the response is released or closed,
so a stream holds its slot until it ends. Targets without a cap never get here (no work
on the hot path). Must not: give a slot back twice, or keep a counter for an idle key.
"""

from __future__ import annotations

from multidict import CIMultiDictProxy

from switchyard_gateway import errors
from switchyard_gateway.transport import UpstreamResponse

#: (endpoint key, target identity): the same upstream under one endpoint.
SlotKey = tuple[str, tuple[str, str, str, str]]


class TargetSlots:
    """In-flight counts of the capped targets."""

    def __init__(self) -> None:
        self._in_flight: dict[SlotKey, int] = {}

    def take(self, key: SlotKey, cap: int, target: str) -> None:
        """Count one more request to `key`, or raise `UpstreamOverloaded` at `cap`."""
        count = self._in_flight.get(key, 0)
        if count >= cap:
            raise errors.UpstreamOverloaded(
                f"target {target} is at its maxConcurrentRequests of {cap}", target=target)
        self._in_flight[key] = count + 1

    def give_back(self, key: SlotKey) -> None:
        """One request to `key` ended."""
        count = self._in_flight.get(key, 0) - 1
        if count > 0:
            self._in_flight[key] = count
        else:
            self._in_flight.pop(key, None)

    def in_flight(self, key: SlotKey) -> int:
        """Requests to `key` now (for tests)."""
        return self._in_flight.get(key, 0)


class Counted:
    """An upstream response that gives its target's slot back when let go."""

    __slots__ = ("_key", "_response", "_slots")

    def __init__(self, response: UpstreamResponse, slots: TargetSlots, key: SlotKey) -> None:
        self._response = response
        self._slots: TargetSlots | None = slots
        self._key = key

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self._response.headers

    @property
    def has_data(self) -> bool:
        return self._response.has_data

    async def read_chunk(self) -> bytes:
        return await self._response.read_chunk()

    async def read(self) -> bytes:
        return await self._response.read()

    def release(self) -> None:
        self._response.release()
        self._give_back()

    def close(self) -> None:
        self._response.close()
        self._give_back()

    def _give_back(self) -> None:
        slots, self._slots = self._slots, None
        if slots is not None:
            slots.give_back(self._key)
