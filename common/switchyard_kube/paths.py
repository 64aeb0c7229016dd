"""The one way to build an API path: every segment escaped, whatever the input.

Called by everything that addresses an object (`switchyard_operator.apply`/`lease`, the
gateway's `config/cluster.py`); `client.Client.request` accepts only a `ResourcePath`
(built by `collection_path` or `object_path`), so a path glued together with an f-string
does not type-check. A name a tenant wrote (`secretKeyRef.name`) may hold anything:
`team-b/secrets/x` must stay one segment (`team-b%2Fsecrets%2Fx`, which the API server
looks up as that name and does not find), and `.`, `..` or an empty object name are refused
here, because URL normalisation (yarl, proxies, the server) would turn `%2E%2E` into a step
up to the parent collection. Validation of names at admission is the schema's job; this
module makes sure that even a name that slipped past it can never address another object.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import NewType

#: A path produced by `collection_path` or `object_path`: absolute, each segment quoted.
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


def _prefix(api_version: str, resource: str, namespace: str) -> list[str]:
    if not _API_VERSION.match(api_version) or not _RESOURCE.match(resource):
        raise ValueError(f"not an API version and resource: {api_version!r} {resource!r}")
    parts = ["api", api_version] if "/" not in api_version else ["apis", *api_version.split("/")]
    if namespace:
        parts += ["namespaces", segment(namespace, "namespace")]
    parts.append(resource)
    return parts


def collection_path(api_version: str, resource: str, *, namespace: str = "") -> ResourcePath:
    """`/api/v1/[namespaces/<ns>/]<resource>` or `/apis/<group>/<version>/...`.

    `api_version` is the manifest form (`v1`, `coordination.k8s.io/v1`) and `resource` the
    plural (`secrets`); both are code constants, checked rather than escaped (`ValueError`).
    An empty `namespace` means every namespace. Raises `InvalidPathSegment` for a
    namespace of `.` or `..`.
    """
    return ResourcePath("/" + "/".join(_prefix(api_version, resource, namespace)))


def object_path(
    api_version: str, resource: str, name: str, *, namespace: str = "", subresource: str = ""
) -> ResourcePath:
    """The path of one object (or of its subresource, such as `status`).

    Like `collection_path`, plus the escaped `name` (and `subresource`). Raises
    `InvalidPathSegment` for an empty name, `.` or `..`: none of them names an object, and
    the first would address the whole collection.
    """
    parts = [*_prefix(api_version, resource, namespace), segment(name)]
    if subresource:
        parts.append(segment(subresource, "subresource"))
    return ResourcePath("/" + "/".join(parts))
