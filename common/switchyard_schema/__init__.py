"""The GatewayEndpoint schema shared by the operator, the gateway and the CLI.

Holds the CRD as data, the validator that mirrors the API server, the typed models of the
spec and of the rendered config, canonical JSON + hashing, and the operator-to-gateway
`contract` (labels, annotations, data key, ConfigMap name, Secret value decoding). Imports
neither part.
"""

from switchyard_schema import contract
from switchyard_schema.contract import (
    BadSecretValue,
    configmap_name,
    decode_secret_value,
    is_credential,
    secret_text,
)
from switchyard_schema.crd import API_VERSION, GROUP, KIND, PLURAL, VERSION
from switchyard_schema.models import (
    DEFAULT_BASE_URLS,
    KNOWN_SCHEMA_VERSIONS,
    SCHEMA_VERSION,
    ApiKeyRef,
    AzureSettings,
    CooldownPolicy,
    EndpointConfig,
    EndpointSpec,
    FailureKind,
    Policy,
    Provider,
    SecretKeyRef,
    SplitTarget,
    StickyPolicy,
    Target,
    Task,
)
from switchyard_schema.normalize import (
    GatewayEndpoint,
    canonical_json,
    config_json,
    load_config,
    normalize,
    parse_endpoint,
    targets_summary,
)
from switchyard_schema.problems import InvalidEndpoint, Problem
from switchyard_schema.validate import is_ours, validate_manifest

__all__ = [
    "API_VERSION",
    "DEFAULT_BASE_URLS",
    "GROUP",
    "KIND",
    "KNOWN_SCHEMA_VERSIONS",
    "PLURAL",
    "SCHEMA_VERSION",
    "VERSION",
    "ApiKeyRef",
    "AzureSettings",
    "BadSecretValue",
    "CooldownPolicy",
    "EndpointConfig",
    "EndpointSpec",
    "FailureKind",
    "GatewayEndpoint",
    "InvalidEndpoint",
    "Policy",
    "Problem",
    "Provider",
    "SecretKeyRef",
    "SplitTarget",
    "StickyPolicy",
    "Target",
    "Task",
    "canonical_json",
    "config_json",
    "configmap_name",
    "contract",
    "decode_secret_value",
    "is_credential",
    "is_ours",
    "load_config",
    "normalize",
    "parse_endpoint",
    "secret_text",
    "targets_summary",
    "validate_manifest",
]
