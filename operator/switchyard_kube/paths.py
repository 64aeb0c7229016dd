"""The one way to build an API path: every segment escaped, whatever the input.

Called by everything that addresses an object (`switchyard_operator.apply`/`lease`, the
gateway's `config/cluster.py`, `reflector.py` callers); `client.Client.request` accepts only
a `ResourcePath`, so a path glued together with an f-string does not type-check. A name a
tenant wrote (`secretKeyRef.name`) may hold anything: `team-b/secrets/x` must stay one
segment (`team-b%2Fsecrets%2Fx`, which the API server looks up as that name and does not
find), and `.`, `..` or an empty name are refused here, because URL normalisation (yarl,
proxies, the server) would turn `%2E%2E` into a step up to the parent collection.
Validation of names at admission is the schema's job; this module makes sure that even a
name that slipped past it can never address another object.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import NewType

#: A path produced by `resource_path`: absolute, each segment quoted.
ResourcePath = NewType("ResourcePath", str)

_API_VERSION = re.compile(r"^(?:[a-z0-9.-]+/)?v[0-9]+(?:(?:alpha|beta)[0-9]+)?$")
_RESOURCE = re.compile(r"^[a-z][a-z0-9]*$")


class InvalidPathSegment(ValueError):
    """A segment that cannot name an object (`.`, `..`, empty); the message names the role."""


def segment(value: str, role: str = "name") -> str:
    """`value` percent-encoded as one path segment (`/` included).

    Raises `InvalidPathSegment` for an empty value, `.` or `..`.
    """
    if value in ("", ".", ".."):
        raise InvalidPathSegment(f"{role} {value!r} cannot be a path segment")
    return urllib.parse.quote(value, safe="")


def resource_path(
    api_version: str,
    resource: str,
    *,
    namespace: str = "",
    name: str = "",
    subresource: str = "",
) -> ResourcePath:
    """`/api/v1/...` or `/apis/<group>/<version>/...` for a collection or one object.

    `api_version` is the manifest form (`v1`, `coordination.k8s.io/v1`) and `resource` the
    plural (`secrets`); both are code constants, checked rather than escaped. `namespace`,
    `name` and `subresource` are escaped by `segment`. Raises `InvalidPathSegment` (or
    `ValueError` for a malformed constant, or a subresource without a name).
    """
    if not _API_VERSION.match(api_version) or not _RESOURCE.match(resource):
        raise ValueError(f"not an API version and resource: {api_version!r} {resource!r}")
    if subresource and not name:
        raise ValueError("a subresource needs an object name")
    parts = ["api", api_version] if "/" not in api_version else ["apis", *api_version.split("/")]
    if namespace:
        parts += ["namespaces", segment(namespace, "namespace")]
    parts.append(resource)
    if name:
        parts.append(segment(name))
    if subresource:
        parts.append(segment(subresource, "subresource"))
    return ResourcePath("/" + "/".join(parts))
