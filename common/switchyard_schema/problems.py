"""Validation problems: one field path and one message each.

Shared by the offline validator (`switchyard validate`), the operator and the gateway's
config loader, so every place words a problem the same way. Must not import either part.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    """One reason a manifest is invalid, at a field path such as `spec.trafficSplit[1].weight`."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidEndpoint(ValueError):
    """A GatewayEndpoint (or a rendered config) failed validation; `problems` says why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


def join(path: str, child: str | int) -> str:
    """Extend a field path with a property name or a list index."""
    if isinstance(child, int):
        return f"{path}[{child}]"
    return f"{path}.{child}" if path else child
