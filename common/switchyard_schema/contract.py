"""The operator-to-gateway contract: where a rendered config lives and how a key is read.

Imported by the operator (`render.py` writes these names, `refs.py` checks the credential
label) and by the gateway (`config/cluster.py` selects and reads them, `secrets.py` decodes
file-mode Secrets with the same function). Defined once here so the two parts cannot drift
apart (DESIGN.md "The rendered ConfigMap"). Knows no Kubernetes client and does no I/O.

Secret values (decided here, for both modes): a `data` value is strict base64 (no stray
characters, correct padding), then strict UTF-8; then trailing line endings (`\\n`,
`\\r\\n`) are removed and nothing else, because `echo key > f; kubectl create secret
--from-file` stores one and an HTTP header value can never carry one. Leading or trailing
spaces are kept: a key is opaque. A value still holding a control character (CR, LF, NUL,
...) or empty is refused: it cannot be sent as a header and would only fail upstream.
`stringData` (file mode only: the API server folds it into `data`) goes through the same
text rule, so one Secret yields the same key in file and cluster mode.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

#: Label on every ConfigMap the operator renders; the gateway lists only these.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "switchyard-operator"
MANAGED_BY_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGER}"
#: Label naming the GatewayEndpoint a ConfigMap was rendered from (for humans and kubectl).
ENDPOINT_LABEL = "switchyard.dev/endpoint"

#: The ConfigMap data key holding the rendered config (`EndpointConfig` as canonical JSON).
DATA_KEY = "endpoint.json"
#: Rendered ConfigMaps are named `gwe-<endpoint name>`.
CONFIGMAP_PREFIX = "gwe-"

#: Annotation: sha256 of the canonical rendered config; the operator skips equal writes.
SPEC_HASH_ANNOTATION = "switchyard.dev/spec-hash"
#: Annotation: RFC 3339 time of the render; the gateway measures propagation from it.
RENDERED_AT_ANNOTATION = "switchyard.dev/rendered-at"

#: Label that marks a Secret as holding provider keys; nothing else is ever read as one.
CREDENTIAL_LABEL = "switchyard.dev/credential"
CREDENTIAL_VALUE = "true"
CREDENTIAL_SELECTOR = f"{CREDENTIAL_LABEL}={CREDENTIAL_VALUE}"


def configmap_name(endpoint_name: str) -> str:
    """The name of an endpoint's rendered ConfigMap: `gwe-<name>`."""
    return f"{CONFIGMAP_PREFIX}{endpoint_name}"


def is_credential(labels: Mapping[str, object] | None) -> bool:
    """True when a Secret's labels mark it as a credential (`switchyard.dev/credential=true`)."""
    return labels is not None and labels.get(CREDENTIAL_LABEL) == CREDENTIAL_VALUE


class BadSecretValue(ValueError):
    """A Secret value that is not a usable key; the message never holds the value."""


def secret_text(text: str) -> str:
    """The key held by a Secret value already decoded to text (the rule in the docstring).

    Raises `BadSecretValue` for an empty value or one with a control character inside.
    """
    value = text.rstrip("\r\n")
    if not value:
        raise BadSecretValue("empty value")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise BadSecretValue("value holds a control character (a line break, NUL, ...)")
    return value


def decode_secret_value(data: str) -> str:
    """The key held by one base64 `data` value of a Secret (the rule in the docstring).

    Raises `BadSecretValue` when the value is not strict base64, not UTF-8, empty, or
    holds a control character.
    """
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadSecretValue("not valid base64") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadSecretValue("not valid UTF-8") from exc
    return secret_text(text)
