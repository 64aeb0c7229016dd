"""Static checks of the Helm chart and the Dockerfile: no helm, no cluster, no Docker.

The chart's crds/ must be a byte-for-byte copy of crds/ (Helm installs the chart's copy;
`kubectl apply --server-side -f crds/` upgrades from the top-level one). values.yaml is
documented key by key and matches values.schema.json. The Dockerfile is multi-stage on a
pinned base, ends as a non-root user with no build tools, and runs `switchyard`. The e2e
twin, tests/e2e/test_chart.py, renders and installs the chart against a real API server.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "switchyard"
CRD_NAME = "gatewayendpoints.switchyard.dev.yaml"
DOCKERFILE = ROOT / "Dockerfile"

# A key line of values.yaml: indentation, key, colon (list items are not keys).
_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?P<rest>.*)$")


# --- CRD copy ---------------------------------------------------------------------------


def test_chart_crd_is_a_byte_copy_of_the_top_level_crd() -> None:
    top = (ROOT / "crds" / CRD_NAME).read_bytes()
    chart = (CHART / "crds" / CRD_NAME).read_bytes()
    assert chart == top, (
        f"charts/switchyard/crds/{CRD_NAME} differs from crds/{CRD_NAME}: "
        f"cp crds/{CRD_NAME} charts/switchyard/crds/"
    )


def test_every_top_level_crd_is_in_the_chart() -> None:
    top = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    chart = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert set(top) <= set(chart), f"missing from the chart's crds/: {set(top) - set(chart)}"


# --- Chart.yaml and values --------------------------------------------------------------


def test_chart_yaml_declares_kube_version_and_app_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["kubeVersion"].startswith(">=")
    assert chart["appVersion"] and chart["appVersion"] != "latest"
    pyproject = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', pyproject, re.M)
    assert version is not None
    assert chart["appVersion"] == version.group(1), "appVersion must follow pyproject.toml"


def _values_key_paths(text: str) -> list[tuple[str, int, bool]]:
    """(dotted path, line number, documented?) of every key in values.yaml.

    A key is documented when a comment line sits directly above it (blank lines not
    allowed in between) or when it carries an inline comment.
    """
    lines = text.splitlines()
    stack: list[tuple[int, str]] = []
    found: list[tuple[str, int, bool]] = []
    for number, line in enumerate(lines, start=1):
        match = _KEY_LINE.match(line)
        if not match:
            continue
        indent = len(match.group("indent"))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([*(k for _, k in stack), match.group("key")])
        stack.append((indent, match.group("key")))
        above = lines[number - 2].strip() if number >= 2 else ""
        documented = above.startswith("#") or " #" in match.group("rest")
        found.append((path, number, documented))
    return found


def test_every_values_key_is_documented() -> None:
    paths = _values_key_paths((CHART / "values.yaml").read_text())
    assert len(paths) > 50  # the parser saw the file
    undocumented = [f"line {n}: {p}" for p, n, ok in paths if not ok]
    assert not undocumented, "values.yaml keys without a comment above:\n" + "\n".join(
        undocumented
    )


def _schema_paths(schema: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, sub in schema.get("properties", {}).items():
        path = f"{prefix}{key}"
        out[path] = sub
        out.update(_schema_paths(sub, path + "."))
    return out


def _leaf_paths(values: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in values.items():
        out.add(prefix + key)
        if isinstance(value, dict) and value:
            out |= _leaf_paths(value, f"{prefix}{key}.")
    return out


def test_schema_describes_every_value_and_nothing_else() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    described = _schema_paths(schema)
    # Free-form Kubernetes objects (resources, securityContext...) are not described
    # field by field: their children are whatever the Kubernetes API accepts.
    free_form = {p for p, s in described.items() if s.get("type") == "object"
                 and "properties" not in s}
    in_values = {p for p in _leaf_paths(values)
                 if not any(p.startswith(f + ".") for f in free_form)}
    assert in_values - set(described) == set(), "values missing from values.schema.json"
    assert set(described) - in_values == set(), "schema keys missing from values.yaml"
    assert all(s.get("description") for s in described.values())
    assert schema.get("additionalProperties") is False  # a typo in a key is an error


def test_no_latest_tags_anywhere_in_the_chart_or_image() -> None:
    texts = {p: p.read_text() for p in CHART.rglob("*") if p.is_file()}
    texts[DOCKERFILE] = DOCKERFILE.read_text()
    for path, text in texts.items():
        assert not re.search(r":latest\b", text), f"{path} uses a latest tag"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["image"]["tag"] in ("", None) or values["image"]["tag"] != "latest"


def test_security_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    pod, ctr = values["podSecurityContext"], values["containerSecurityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ctr["readOnlyRootFilesystem"] is True
    assert ctr["allowPrivilegeEscalation"] is False
    assert ctr["capabilities"] == {"drop": ["ALL"]}
    assert values["gateway"]["auth"]["enabled"] is False  # off by default, one value away


# --- Dockerfile -------------------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buffer = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        word, _, rest = buffer.partition(" ")
        out.append((word.upper(), rest.strip()))
        buffer = ""
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _dockerfile_instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _resolve(image: str) -> str:
    """Substitute global ARG defaults (those before the first FROM) into `image`."""
    args: dict[str, str] = {}
    for word, rest in _dockerfile_instructions():
        if word == "FROM":
            break
        if word == "ARG" and "=" in rest:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip().strip('"')
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), image)


def test_dockerfile_is_multi_stage_on_a_pinned_base() -> None:
    stages = _stages()
    assert len(stages) >= 2, "build in one stage, copy the result into a clean final stage"
    for stage in stages:
        image = _resolve(stage[0][1].split()[0])
        assert "$" not in image, f"FROM {image}: unresolved build argument"
        if image in {s[0][1].split()[-1] for s in stages if " AS " in s[0][1].upper()}:
            continue  # FROM an earlier stage
        digest = "@sha256:" in image
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert digest or re.match(r"^\d+\.\d+(\.\d+)?", tag), (
            f"FROM {image}: pin the base by digest or by a full version tag"
        )


def test_dockerfile_final_stage_is_non_root_and_has_no_build_tools() -> None:
    final = _stages()[-1]
    users = [rest for word, rest in final if word == "USER"]
    assert users, "the final stage must switch to a non-root USER"
    user = users[-1].split(":")[0]
    assert user not in {"0", "root"}, f"USER {users[-1]} is root"
    runs = " ".join(rest for word, rest in final if word == "RUN")
    for tool in ("apt-get install", "apk add", "build-essential", "gcc", "pip install"):
        assert tool not in runs, f"final stage installs build tooling: {tool!r}"
    assert any(word == "COPY" and "--from=" in rest for word, rest in final), (
        "the final stage copies the built environment from the build stage"
    )


def test_dockerfile_entry_points_are_the_switchyard_subcommands() -> None:
    final = _stages()[-1]
    entry = [json.loads(rest) for word, rest in final if word == "ENTRYPOINT"]
    cmd = [json.loads(rest) for word, rest in final if word == "CMD"]
    assert entry and entry[-1] == ["switchyard"], "ENTRYPOINT in exec form: [\"switchyard\"]"
    assert cmd and cmd[-1][0] in {"gateway", "operator"}
    # Both commands the chart runs exist in the CLI.
    from switchyard_cli import main

    assert {"gateway", "operator"} <= set(main.COMMANDS)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'switchyard = "switchyard_cli.main:main"' in pyproject


def test_dockerfile_copies_only_what_the_build_needs() -> None:
    copied = [shlex.split(rest)[:-1] for word, rest in _dockerfile_instructions()
              if word == "COPY" and "--from=" not in rest]
    sources = {s.rstrip("/") for srcs in copied for s in srcs}
    assert sources <= {"pyproject.toml", "README.md", "LICENSE", "requirements/runtime.lock",
                       "common", "operator", "gateway", "cli", "testkit"}


def test_dockerfile_installs_the_locked_dependencies_with_hashes() -> None:
    runs = " ".join(rest for word, rest in _dockerfile_instructions() if word == "RUN")
    assert "--require-hashes -r /tmp/runtime.lock" in runs


@pytest.mark.parametrize("path", [".git/HEAD", ".venv/bin/python", "tests/unit/x.py",
                                  "charts/switchyard/Chart.yaml", "bench/run.py"])
def test_dockerignore_keeps_the_context_small(path: str) -> None:
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    # Docker semantics: the last matching rule wins; "!" re-includes.
    included = True
    for rule in rules:
        negate = rule.startswith("!")
        pattern = rule[1:] if negate else rule
        if _docker_match(pattern, path):
            included = negate
    assert not included, f"{path} would be sent to the Docker build context"


def _docker_match(pattern: str, path: str) -> bool:
    pattern = pattern.rstrip("/")
    regex = re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
    return re.fullmatch(regex + "(/.*)?", path) is not None
