"""Typed models of the GatewayEndpoint spec and of the rendered endpoint config.

`EndpointSpec` is what users write (validated first against the CRD by `validate.py`).
`EndpointConfig` is the ConfigMap payload (DESIGN.md: canonical JSON, every default filled,
`schemaVersion`, `generation`, `specHash`); it knows nothing of Kubernetes, so the gateway
loads it the same way from a ConfigMap or from a standalone file. Python attributes are
snake_case; the camelCase aliases exist only at these edges.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

#: The ConfigMap payload version this code writes. The gateway accepts this one and the
#: one before it, so operator and gateway upgrades can roll either way.
SCHEMA_VERSION = 1
KNOWN_SCHEMA_VERSIONS = frozenset({SCHEMA_VERSION, SCHEMA_VERSION - 1} - {0})


class Provider(enum.StrEnum):
    """The provider APIs the gateway speaks (the CRD's `provider` enum)."""

    OPENAI = "openai"
    AZURE_OPENAI = "azure-openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    MISTRAL = "mistral"
    OPENAI_COMPATIBLE = "openai-compatible"


#: What a target without `baseUrl` means: where the provider's own SDK sends (DESIGN.md).
#: The operator writes it into the rendered config (every default filled); the gateway's
#: adapters and the platform policy read it from here. Absent: no public default (Azure
#: resources and OpenAI-compatible servers are always named by `baseUrl`).
DEFAULT_BASE_URLS: Mapping[Provider, str] = MappingProxyType({
    Provider.OPENAI: "https://api.openai.com/v1",
    Provider.ANTHROPIC: "https://api.anthropic.com",
    Provider.GEMINI: "https://generativelanguage.googleapis.com",
    Provider.MISTRAL: "https://api.mistral.ai/v1",
})


class Task(enum.StrEnum):
    """The OpenAI API an endpoint serves."""

    CHAT = "chat"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"


class FailureKind(enum.StrEnum):
    """Failures that `policy.fallbackOn` can name."""

    RATE_LIMIT = "rateLimit"
    SERVER_ERROR = "serverError"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connectionError"
    PROVIDER_AUTH = "providerAuth"
    #: The provider said the prompt is over the model's context window (OpenAI's
    #: `context_length_exceeded`). Not in the default `fallbackOn`: it is the caller's
    #: request, and only a target with a larger window can serve it.
    CONTEXT_LENGTH = "contextLength"


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, alias_generator=to_camel
    )


class SecretKeyRef(_Model):
    """A key in a Secret of the endpoint's namespace."""

    name: str
    key: str


class ApiKeyRef(_Model):
    """Where the key lives: exactly one of a Secret key or a gateway env var."""

    secret_key_ref: SecretKeyRef | None = None
    env_var: str | None = None


class AzureSettings(_Model):
    """Azure OpenAI deployment and api-version."""

    deployment: str
    api_version: str = "2024-10-21"


class TargetSpec(_Model):
    """One upstream model as written in `fallbacks` (and the base of a split target)."""

    name: str | None = None
    provider: Provider
    model: str
    base_url: str | None = None
    api_key: ApiKeyRef | None = None
    #: In-flight requests to this target per gateway process (None: no cap).
    max_concurrent_requests: int | None = None
    azure: AzureSettings | None = None
    context_window: int | None = None


class SplitTargetSpec(TargetSpec):
    """A `trafficSplit` target: a target with a weight."""

    weight: int


class CooldownPolicy(_Model):
    """Circuit breaking per target."""

    enabled: bool = True
    failure_threshold: int = 3
    seconds: int = 30
    max_seconds: int = 300
    max_probe_interval_seconds: int = 30


class RetryPolicy(_Model):
    """Same-target retries before moving on to the next fallback (docs/routing.md)."""

    max_retries: int = 1
    backoff_milliseconds: int = 250
    max_retry_after_seconds: int = 5


class StickyPolicy(_Model):
    """Sticky routing of a caller key to one split target."""

    enabled: bool = False
    header: str = "x-switchyard-sticky-key"
    use_user_field: bool = True


ALL_FAILURE_KINDS: tuple[FailureKind, ...] = tuple(FailureKind)
#: `policy.fallbackOn` when not given: every kind but `contextLength`.
DEFAULT_FALLBACK_ON: tuple[FailureKind, ...] = tuple(
    k for k in FailureKind if k is not FailureKind.CONTEXT_LENGTH
)


class Policy(_Model):
    """Routing policy; every field defaulted."""

    fallback_on: tuple[FailureKind, ...] = DEFAULT_FALLBACK_ON
    attempt_timeout_seconds: int = 60
    request_timeout_seconds: int = 120
    stream_idle_timeout_seconds: int = 30
    cooldown: CooldownPolicy = Field(default_factory=CooldownPolicy)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    sticky: StickyPolicy = Field(default_factory=StickyPolicy)
    max_in_flight: int = 0


class EndpointSpec(_Model):
    """`spec` of a GatewayEndpoint, as written (names may be absent)."""

    task: Task = Task.CHAT
    traffic_split: tuple[SplitTargetSpec, ...]
    fallbacks: tuple[TargetSpec, ...] = ()
    policy: Policy = Field(default_factory=Policy)


class Target(_Model):
    """A normalised target: its name is always set."""

    name: str
    provider: Provider
    model: str
    base_url: str | None = None
    api_key: ApiKeyRef | None = None
    #: In-flight requests to this target per gateway process (None: no cap).
    max_concurrent_requests: int | None = None
    azure: AzureSettings | None = None
    #: The model's context window in tokens, when declared: after a `contextLength`
    #: failure, fallbacks known to be no larger are skipped.
    context_window: int | None = None


class SplitTarget(Target):
    """A normalised traffic-split target."""

    weight: int = Field(ge=1, le=100)


class EndpointConfig(_Model):
    """The rendered, normalised endpoint: the `endpoint.json` of its ConfigMap."""

    schema_version: int
    namespace: str
    name: str
    generation: int
    task: Task
    traffic_split: tuple[SplitTarget, ...] = Field(min_length=1)
    fallbacks: tuple[Target, ...]
    policy: Policy
    spec_hash: str

    @property
    def key(self) -> str:
        """`namespace/name`, the endpoint's identity in the gateway."""
        return f"{self.namespace}/{self.name}"
