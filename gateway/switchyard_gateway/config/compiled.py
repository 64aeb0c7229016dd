"""Hot-path views of an endpoint config, compiled once per config change.

The router reads these on every request and the config store writes them only when a
config changes, so everything derivable is worked out here: cumulative weights, the set
of fallback kinds, timeouts as floats, each target's identity for "already tried".
Frozen and slotted: shared by concurrent requests, swapped as one reference.
"""

from __future__ import annotations

import dataclasses
import itertools

from switchyard_schema import ApiKeyRef, EndpointConfig, FailureKind, Provider, Target, Task


@dataclasses.dataclass(frozen=True, slots=True)
class CompiledTarget:
    """One upstream model, ready to call."""

    name: str
    provider: Provider
    model: str
    base_url: str | None
    api_key_ref: ApiKeyRef | None
    azure_deployment: str | None
    azure_api_version: str | None
    #: `maxConcurrentRequests`: in-flight attempts allowed (None: no cap)
    max_concurrent: int | None
    weight: int  # 0 for fallbacks
    #: provider, model, baseUrl and key reference: equal identities are the same upstream,
    #: so a fallback repeating a split target is skipped if that target was tried.
    identity: tuple[str, str, str, str]
    #: Declared context window in tokens (None: unknown), for `contextLength` fallbacks.
    context_window: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """`policy` with seconds as floats and fallback kinds as a frozenset."""

    fallback_on: frozenset[FailureKind]
    attempt_timeout: float
    request_timeout: float
    stream_idle_timeout: float
    cooldown_enabled: bool
    cooldown_failure_threshold: int
    cooldown_seconds: float
    cooldown_max_seconds: float
    cooldown_max_probe_interval: float
    retry_max: int
    retry_backoff: float  # seconds
    retry_max_wait: float  # the longest Retry-After waited for on the same target
    sticky_enabled: bool
    sticky_header: str
    sticky_use_user_field: bool
    max_in_flight: int


@dataclasses.dataclass(frozen=True, slots=True)
class CompiledEndpoint:
    """An endpoint as the router sees it."""

    key: str  # namespace/name
    namespace: str
    name: str
    task: Task
    split: tuple[CompiledTarget, ...]
    cumulative_weights: tuple[int, ...]  # running sums of split weights, last == 100
    fallbacks: tuple[CompiledTarget, ...]
    policy: CompiledPolicy
    spec_hash: str
    generation: int
    config: EndpointConfig  # the validated source, for /v1/models, MLflow and the UI
    #: For each split target (same index): the candidates in routing order, that target
    #: then the fallbacks, duplicates by identity removed. Worked out once, not per request.
    candidates: tuple[tuple[CompiledTarget, ...], ...]


def candidate_lists(split: tuple[CompiledTarget, ...], fallbacks: tuple[CompiledTarget, ...],
                    ) -> tuple[tuple[CompiledTarget, ...], ...]:
    """`CompiledEndpoint.candidates`: per split target, it then the unseen fallbacks."""
    out = []
    for first in split:
        seen: set[tuple[str, str, str, str]] = set()
        ordered = []
        for target in (first, *fallbacks):
            if target.identity not in seen:
                seen.add(target.identity)
                ordered.append(target)
        out.append(tuple(ordered))
    return tuple(out)


def _identity(target: Target) -> tuple[str, str, str, str]:
    ref = target.api_key
    key = ""
    if ref is not None and ref.secret_key_ref is not None:
        key = f"secret:{ref.secret_key_ref.name}/{ref.secret_key_ref.key}"
    elif ref is not None and ref.env_var is not None:
        key = f"env:{ref.env_var}"
    return (target.provider.value, target.model, target.base_url or "", key)


def compile_target(target: Target, weight: int = 0) -> CompiledTarget:
    """Compile one normalised target."""
    return CompiledTarget(
        name=target.name,
        provider=target.provider,
        model=target.model,
        base_url=target.base_url.rstrip("/") if target.base_url else None,
        api_key_ref=target.api_key,
        azure_deployment=target.azure.deployment if target.azure else None,
        azure_api_version=target.azure.api_version if target.azure else None,
        max_concurrent=target.max_concurrent_requests,
        weight=weight,
        identity=_identity(target),
        context_window=target.context_window,
    )


def compile_endpoint(config: EndpointConfig) -> CompiledEndpoint:
    """Compile a validated config into the router's view (pure, no I/O)."""
    p = config.policy
    policy = CompiledPolicy(
        fallback_on=frozenset(p.fallback_on),
        attempt_timeout=float(p.attempt_timeout_seconds),
        request_timeout=float(p.request_timeout_seconds),
        stream_idle_timeout=float(p.stream_idle_timeout_seconds),
        cooldown_enabled=p.cooldown.enabled,
        cooldown_failure_threshold=p.cooldown.failure_threshold,
        cooldown_seconds=float(p.cooldown.seconds),
        cooldown_max_seconds=float(p.cooldown.max_seconds),
        cooldown_max_probe_interval=float(p.cooldown.max_probe_interval_seconds),
        retry_max=p.retry.max_retries,
        retry_backoff=p.retry.backoff_milliseconds / 1000.0,
        retry_max_wait=float(p.retry.max_retry_after_seconds),
        sticky_enabled=p.sticky.enabled,
        sticky_header=p.sticky.header.lower(),
        sticky_use_user_field=p.sticky.use_user_field,
        max_in_flight=p.max_in_flight,
    )
    split = tuple(compile_target(t, t.weight) for t in config.traffic_split)
    fallbacks = tuple(compile_target(t) for t in config.fallbacks)
    return CompiledEndpoint(
        key=config.key,
        namespace=config.namespace,
        name=config.name,
        task=config.task,
        split=split,
        cumulative_weights=tuple(itertools.accumulate(t.weight for t in split)),
        fallbacks=fallbacks,
        policy=policy,
        spec_hash=config.spec_hash,
        generation=config.generation,
        config=config,
        candidates=candidate_lists(split, fallbacks),
    )
