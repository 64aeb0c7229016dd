"""Turn a validated GatewayEndpoint into its canonical, normalised config.

Normalising fills every default, names every target, keeps fallbacks in order and hashes
the result, so that the same spec always renders the same bytes (`switchyard render`, the
operator's "no write when the hash is unchanged", the gateway's applied-config metric).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any

import orjson
import pydantic

from switchyard_schema import models, rules, validate
from switchyard_schema.problems import InvalidEndpoint, Problem

_NAME_CHARS = re.compile(r"[^a-z0-9._-]+")


@dataclasses.dataclass(frozen=True, slots=True)
class GatewayEndpoint:
    """A parsed, valid GatewayEndpoint manifest."""

    name: str
    namespace: str
    generation: int
    spec: models.EndpointSpec
    uid: str = ""


def parse_endpoint(obj: Any, default_namespace: str = "default") -> GatewayEndpoint:
    """Validate a manifest and return it typed.

    Raises `InvalidEndpoint` listing every problem, with field paths.
    """
    problems = validate.validate_manifest(obj)
    if problems:
        raise InvalidEndpoint(problems)
    metadata = obj["metadata"]
    try:
        spec = models.EndpointSpec.model_validate(obj["spec"])
    except pydantic.ValidationError as exc:  # the CRD walk should have caught it first
        raise InvalidEndpoint(_from_pydantic(exc, "spec")) from exc
    return GatewayEndpoint(
        name=metadata["name"],
        namespace=metadata.get("namespace") or default_namespace,
        generation=int(metadata.get("generation") or 1),
        spec=spec,
        uid=str(metadata.get("uid", "")),
    )


def _from_pydantic(exc: pydantic.ValidationError, root: str) -> list[Problem]:
    out = []
    for err in exc.errors():
        path = root
        for part in err["loc"]:
            path = f"{path}[{part}]" if isinstance(part, int) else f"{path}.{part}"
        out.append(Problem(path, err["msg"]))
    return out


def default_target_name(provider: str, model: str) -> str:
    """`<provider>-<model>`, reduced to the characters a target name may hold."""
    name = _NAME_CHARS.sub("-", f"{provider}-{model}".lower()).strip("-._")
    return name[:63].rstrip("-._") or provider


def _identity(target: models.TargetSpec) -> dict[str, Any]:
    return target.model_dump(
        by_alias=True, exclude_none=True, include={"provider", "model", "base_url", "api_key"}
    )


def _assign_names(spec: models.EndpointSpec) -> list[str]:
    """Names for split targets then fallbacks; a repeated target shares its name."""
    everything: list[models.TargetSpec] = [*spec.traffic_split, *spec.fallbacks]
    taken = {t.name for t in everything if t.name}
    names: list[str] = []
    for i, target in enumerate(everything):
        if target.name:
            names.append(target.name)
            continue
        same = next(
            (
                names[j]
                for j in range(i)
                if rules.same_target(_identity(everything[j]), _identity(target))
            ),
            None,
        )
        if same is not None:
            names.append(same)
            continue
        base = default_target_name(target.provider, target.model)
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base[:59]}-{n}"
        taken.add(name)
        names.append(name)
    return names


def _filled(target: models.TargetSpec) -> dict[str, Any]:
    """A target's fields with the provider's default `baseUrl` written in when it has one."""
    fields = target.model_dump(exclude={"name"})
    fields["base_url"] = target.base_url or models.DEFAULT_BASE_URLS.get(target.provider)
    return fields


def normalize(endpoint: GatewayEndpoint) -> models.EndpointConfig:
    """Render the normalised config of a valid endpoint (pure; no I/O)."""
    spec = endpoint.spec
    names = _assign_names(spec)
    split = tuple(
        models.SplitTarget(name=name, **_filled(t))
        for name, t in zip(names, spec.traffic_split, strict=False)
    )
    fallbacks = tuple(
        models.Target(name=name, **_filled(t))
        for name, t in zip(names[len(split) :], spec.fallbacks, strict=True)
    )
    body = {
        "task": spec.task,
        "trafficSplit": split,
        "fallbacks": fallbacks,
        "policy": spec.policy,
    }
    return models.EndpointConfig(
        schema_version=models.SCHEMA_VERSION,
        namespace=endpoint.namespace,
        name=endpoint.name,
        generation=endpoint.generation,
        task=spec.task,
        traffic_split=split,
        fallbacks=fallbacks,
        policy=spec.policy,
        # The schema version is hashed with the spec: an operator that renders a new
        # payload shape must rewrite every ConfigMap (its "no write when the hash is
        # unchanged" would otherwise keep old payloads until gateways stop reading them).
        spec_hash=spec_hash({"schemaVersion": models.SCHEMA_VERSION, **body}),
    )


def to_jsonable(value: Any) -> Any:
    """Dump models (recursively) to plain JSON data with camelCase keys, None left out."""
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def canonical_json(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8; the same data, the same bytes."""
    return orjson.dumps(to_jsonable(value), option=orjson.OPT_SORT_KEYS)


def spec_hash(normalised_spec: Any) -> str:
    """Content hash of the normalised spec (and its schema version): `sha256:<hex>`."""
    return "sha256:" + hashlib.sha256(canonical_json(normalised_spec)).hexdigest()


def config_json(config: models.EndpointConfig) -> str:
    """The `endpoint.json` text of a rendered config."""
    return canonical_json(config).decode("utf-8")


def load_config(text: str | bytes) -> models.EndpointConfig:
    """Parse and fully validate an `endpoint.json` payload.

    Raises `InvalidEndpoint` when it is not JSON, has an unknown `schemaVersion`, or does
    not validate (unknown fields included).
    """
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidEndpoint([Problem("endpoint.json", f"not valid JSON: {exc}")]) from exc
    if not isinstance(data, dict):
        raise InvalidEndpoint([Problem("endpoint.json", "must be a JSON object")])
    version = data.get("schemaVersion")
    if version not in models.KNOWN_SCHEMA_VERSIONS:
        known = ", ".join(str(v) for v in sorted(models.KNOWN_SCHEMA_VERSIONS))
        raise InvalidEndpoint(
            [Problem("schemaVersion", f"unknown schema version {version!r} (known: {known})")]
        )
    try:
        return models.EndpointConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        raise InvalidEndpoint(_from_pydantic(exc, "endpoint.json")) from exc


def targets_summary(config: models.EndpointConfig) -> str:
    """`gpt5:50,claude:50`: the printer column's view of the split."""
    return ",".join(f"{t.name}:{t.weight}" for t in config.traffic_split)
