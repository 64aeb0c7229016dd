"""Reading manifest YAML the way kubectl does.

kubectl parses YAML 1.1 (go-yaml v2 behind sigs.k8s.io/yaml), where a bare `y`, `Y`, `n`
or `N` is a boolean; PyYAML's safe loader reads them as strings. A target named `y` would
then pass `switchyard validate` and fail at `kubectl apply`. This loader closes that gap, so
the offline validator and the standalone gateway see the same values the API server does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml


class KubeLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.1's single-letter booleans, as kubectl reads them."""


# Replace the bool resolver's first-character entries so y/Y/n/N resolve as booleans too.
_BOOL = re.compile(
    r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$"
)
KubeLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
KubeLoader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("yYnNtTfFoO"))


def _bool(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> bool:
    return str(loader.construct_scalar(node)).lower() in ("y", "yes", "true", "on")


KubeLoader.add_constructor("tag:yaml.org,2002:bool", _bool)


def load_all(text: str | bytes) -> Iterator[Any]:
    """Every document of a multi-document YAML text (raises `yaml.YAMLError`)."""
    return yaml.load_all(text, Loader=KubeLoader)
