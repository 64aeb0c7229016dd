"""The GatewayEndpoint schema shared by the operator, the gateway and the CLI.

Holds the CRD as data, the validator that mirrors the API server, the typed models of the
spec and of the rendered config, and canonical JSON + hashing. Imports neither part.
"""

from switchyard_schema.crd import API_VERSION, GROUP, KIND, PLURAL, VERSION
from switchyard_schema.models import (
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
    "GROUP",
    "KIND",
    "KNOWN_SCHEMA_VERSIONS",
    "PLURAL",
    "SCHEMA_VERSION",
    "VERSION",
    "ApiKeyRef",
    "AzureSettings",
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
    "is_ours",
    "load_config",
    "normalize",
    "parse_endpoint",
    "targets_summary",
    "validate_manifest",
]
