"""Python twins of the CRD's CEL rules (`x-kubernetes-validations`).

Each twin is registered under the exact CEL text it mirrors; a unit test checks that every
rule in the CRD has a twin and every twin a rule, so editing one without the other fails
the build. A rule with a static `message` uses that text from the CRD itself; a rule with
a `messageExpression` gets its message from the twin, worded the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
#: A twin returns None when the rule holds, else the message (or "" to use the CRD's).
Twin = Callable[[Any], "str | None"]

COMPLETIONS_PROVIDERS = ("openai", "azure-openai", "openai-compatible")
EMBEDDINGS_PROVIDERS = ("openai", "azure-openai", "gemini", "mistral", "openai-compatible")
TASK_PROVIDERS: dict[str, tuple[str, ...]] = {
    "completions": COMPLETIONS_PROVIDERS,
    "embeddings": EMBEDDINGS_PROVIDERS,
}

TWINS: dict[str, Twin] = {}


def twin(rule: str) -> Callable[[Twin], Twin]:
    """Register a Python twin for the CEL `rule` (its exact text in the CRD)."""

    def register(fn: Twin) -> Twin:
        TWINS[rule] = fn
        return fn

    return register


def check(rule: dict[str, Any], value: Any) -> str | None:
    """Evaluate one CRD validation rule on `value`; None if it holds, else its message."""
    message = TWINS[rule["rule"]](value)
    if message is None:
        return None
    return message or str(rule.get("message", "")) or "failed validation rule"


def _targets(spec: Obj) -> list[Obj]:
    return list(spec.get("trafficSplit", [])) + list(spec.get("fallbacks", []))


@twin("size(self.metadata.name) <= 63")
def _name_length(obj: Obj) -> str | None:
    return None if len(obj.get("metadata", {}).get("name", "")) <= 63 else ""


@twin(
    "!has(self.trafficSplit) || !self.trafficSplit.all(t, has(t.weight))"
    " || self.trafficSplit.map(t, t.weight).sum() == 100"
)
def _weights_sum(spec: Obj) -> str | None:
    split = spec.get("trafficSplit")
    if not split or not all("weight" in t for t in split):
        return None
    total = sum(t["weight"] for t in split)
    return None if total == 100 else f"trafficSplit weights must sum to 100, got {total}"


@twin(
    "self.trafficSplit.all(a, !has(a.name) || self.trafficSplit.exists_one(b, has(b.name)"
    " && b.name == a.name)) && (!has(self.fallbacks) || self.fallbacks.all(a, !has(a.name)"
    " || (self.fallbacks.exists_one(b, has(b.name) && b.name == a.name)"
    " && !self.trafficSplit.exists(b, has(b.name) && b.name == a.name))))"
)
def _unique_names(spec: Obj) -> str | None:
    names = [t["name"] for t in _targets(spec) if "name" in t]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if not dupes:
        return None
    return "target names must be unique across trafficSplit and fallbacks" + (
        f" (repeated: {', '.join(dupes)})"
    )


def same_target(a: Obj, b: Obj) -> bool:
    """Two targets are the same upstream: provider, model, baseUrl and key, as written."""
    return (
        a.get("provider") == b.get("provider")
        and a.get("model") == b.get("model")
        and a.get("baseUrl", "") == b.get("baseUrl", "")
        and a.get("apiKey") == b.get("apiKey")
    )


@twin(
    "!has(self.fallbacks) || self.fallbacks.all(a, self.fallbacks.exists_one(b,"
    " a.provider == b.provider && a.model == b.model && (has(a.baseUrl) ? a.baseUrl : '')"
    " == (has(b.baseUrl) ? b.baseUrl : '') && has(a.apiKey) == has(b.apiKey)"
    " && (!has(a.apiKey) || a.apiKey == b.apiKey)))"
)
def _distinct_fallbacks(spec: Obj) -> str | None:
    fallbacks = spec.get("fallbacks", [])
    for i, a in enumerate(fallbacks):
        for j in range(i + 1, len(fallbacks)):
            if same_target(a, fallbacks[j]):
                return ""
    return None


@twin("!has(self.task) || self.task != 'embeddings' || size(self.trafficSplit) == 1")
def _embeddings_single(spec: Obj) -> str | None:
    n = len(spec.get("trafficSplit", []))
    if spec.get("task") != "embeddings" or n == 1:
        return None
    return (
        "task embeddings takes exactly one trafficSplit target "
        f"(splitting embeddings would mix vector spaces), got {n}"
    )


@twin(
    "!has(self.task) || self.task != 'embeddings' || !has(self.fallbacks)"
    " || size(self.trafficSplit) == 0"
    " || self.fallbacks.all(f, f.model == self.trafficSplit[0].model)"
)
def _embeddings_same_model(spec: Obj) -> str | None:
    split, fallbacks = spec.get("trafficSplit") or [], spec.get("fallbacks") or []
    if spec.get("task") != "embeddings" or not split:
        return None
    model = split[0].get("model")
    other = next((f.get("model") for f in fallbacks if f.get("model") != model), None)
    if other is None:
        return None
    return (
        f"fallback model {other} is not the trafficSplit model {model}: with task embeddings a"
        " fallback must serve the same model (another key, region or provider), as vectors of"
        " another model live in another space"
    )


def _task_support(task: str) -> Twin:
    allowed = TASK_PROVIDERS[task]
    quoted = ", ".join(f"'{p}'" for p in allowed)

    @twin(
        f"!has(self.task) || self.task != '{task}' || (self.trafficSplit.all(t, t.provider in"
        f" [{quoted}]) && (!has(self.fallbacks) || self.fallbacks.all(t, t.provider in"
        f" [{quoted}])))"
    )
    def check_task(spec: Obj) -> str | None:
        if spec.get("task") != task:
            return None
        for target in _targets(spec):
            if target.get("provider") not in allowed:
                return f"provider {target.get('provider')} does not support task {task}"
        return None

    return check_task


_task_support("embeddings")
_task_support("completions")


@twin("self.provider == 'openai-compatible' || has(self.apiKey)")
def _key_required(target: Obj) -> str | None:
    provider = target["provider"]
    if provider == "openai-compatible" or "apiKey" in target:
        return None
    return f"apiKey is required for provider {provider}"


@twin("self.provider != 'openai-compatible' || has(self.baseUrl)")
def _compatible_base_url(target: Obj) -> str | None:
    return None if target["provider"] != "openai-compatible" or "baseUrl" in target else ""


@twin("self.provider != 'azure-openai' || (has(self.baseUrl) && has(self.azure))")
def _azure_settings(target: Obj) -> str | None:
    if target["provider"] != "azure-openai":
        return None
    return None if "baseUrl" in target and "azure" in target else ""


@twin("!has(self.azure) || self.provider == 'azure-openai'")
def _azure_only(target: Obj) -> str | None:
    return None if "azure" not in target or target["provider"] == "azure-openai" else ""


@twin("has(self.secretKeyRef) != has(self.envVar)")
def _one_key_source(api_key: Obj) -> str | None:
    return None if ("secretKeyRef" in api_key) != ("envVar" in api_key) else ""


@twin("self >= 1 && self <= 100")
def _weight_bounds(weight: int) -> str | None:
    return None if 1 <= weight <= 100 else f"must be between 1 and 100, got {weight}"


@twin(
    "!has(self.attemptTimeoutSeconds) || !has(self.requestTimeoutSeconds)"
    " || self.attemptTimeoutSeconds <= self.requestTimeoutSeconds"
)
def _attempt_within_request(policy: Obj) -> str | None:
    attempt = policy.get("attemptTimeoutSeconds")
    request = policy.get("requestTimeoutSeconds")
    if attempt is None or request is None or attempt <= request:
        return None
    return f"attemptTimeoutSeconds ({attempt}) must not exceed requestTimeoutSeconds ({request})"
