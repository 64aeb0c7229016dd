"""Does this failure fall back? The router's one decision on an attempt's error.

Each `FailureKind` that `policy.fallbackOn` may name maps to one error class of
`errors.py`; the decision is an `isinstance` check against the classes the policy names,
never a comparison of messages or strings. A caller fault (the provider's 400/413/422)
never falls back, whatever the policy says: another model would refuse it too. The one
exception is `contextLength` (a prompt over the model's context window), when the policy
names it: a model with a larger window can serve the same request.
"""

from __future__ import annotations

import functools

from switchyard_gateway import errors
from switchyard_gateway.config.compiled import CompiledPolicy
from switchyard_schema import FailureKind

#: The error class behind each failure kind.
KIND_CLASSES: dict[FailureKind, type[errors.UpstreamError]] = {
    FailureKind.RATE_LIMIT: errors.RateLimited,
    FailureKind.SERVER_ERROR: errors.UpstreamServerError,
    FailureKind.TIMEOUT: errors.UpstreamTimeout,
    FailureKind.CONNECTION_ERROR: errors.UpstreamConnectionError,
    FailureKind.PROVIDER_AUTH: errors.ProviderAuthError,
    FailureKind.CONTEXT_LENGTH: errors.ContextLengthExceeded,
}


@functools.lru_cache(maxsize=64)
def _classes(kinds: frozenset[FailureKind]) -> tuple[type[errors.UpstreamError], ...]:
    return tuple(KIND_CLASSES[k] for k in sorted(kinds))


def falls_back(policy: CompiledPolicy, error: errors.UpstreamError) -> bool:
    """True when `error` is a failure kind the policy sends to the next fallback."""
    if isinstance(error, errors.CallerFault) and error.kind is None:
        return False
    return isinstance(error, _classes(policy.fallback_on))


def trips_breaker(error: errors.UpstreamError) -> bool:
    """True when `error` counts against the target's health for cooldown.

    Every failure kind does, except a missing credential (no request was sent, and the
    fix is a config change, not time), a caller fault (the target is healthy) and the
    gateway's own overload (nothing was sent; the target is healthy, the pool is full).
    """
    if isinstance(error, errors.CallerFault | errors.MissingCredential
                  | errors.UpstreamOverloaded):
        return False
    return isinstance(error, tuple(KIND_CLASSES.values()))
