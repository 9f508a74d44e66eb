"""The Kubernetes deployment files in music_pipeline/deploy/: what can be checked without a cluster.

- values.yaml against the Dagster Helm chart's own JSON schema (vendored in deploy/schema/), with
  jsonschema (a broken copy must fail: a misspelt key, a wrong type, a value outside an enum).
- the Kubernetes manifests parse and have apiVersion/kind/metadata.name/spec (the Kubernetes OpenAPI
  schema is megabytes: not vendored; the chart schema's references to it are not followed either).
- the Dockerfile: what it copies exists, its CMD's module imports and `dagster code-server start`
  accepts its flags, its apt packages are the doctor's, its dagster-k8s pin matches the installed
  dagster-postgres; values.yaml agrees with it (port, module, /library, the PVC's name).
Not done here: docker build, helm template/install, anything on a cluster.
"""

from __future__ import annotations

import copy
import importlib
import importlib.metadata
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import referencing
import referencing.jsonschema
import yaml

from music_pipeline.cli import doctor as cli

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "music_pipeline" / "deploy"
SCHEMA = json.loads((DEPLOY / "schema" / "dagster-values.schema.json").read_text())
VALUES = yaml.safe_load((DEPLOY / "values.yaml").read_text())
DOCKERFILE = (DEPLOY / "Dockerfile").read_text()
MANIFESTS = sorted(p for p in DEPLOY.glob("*.yaml") if p.name != "values.yaml")


# --- values.yaml against the chart's schema -------------------------------------------------------

class _Anything(dict):
    """An empty schema (anything is valid) at every pointer into it."""

    def __missing__(self, key):
        return _Anything()


def _no_remote(uri: str):
    """The chart's schema refers to the Kubernetes definitions by URL: never fetched (no network
    in tests), taken as "anything" there; everything the chart itself defines is checked."""
    return referencing.Resource.from_contents(_Anything(), default_specification=referencing.jsonschema.DRAFT7)


def _as_helm_checks(node, root: dict, complete: bool = False):
    """The schema as Helm applies it to our file: Helm validates the chart's defaults merged with
    ours, and maps merge (the defaults fill what a map leaves out) while lists replace. So a
    required key is enforced only inside a list item, which must be complete by itself."""
    if isinstance(node, list):
        return [_as_helm_checks(item, root, complete) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref", "")
    if complete and ref.startswith("#/"):  # a definition used inside a list item: its own, complete copy
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    out = {key: _as_helm_checks(value, root, complete or key == "items") for key, value in node.items()}
    if not complete:
        out.pop("required", None)
    return out


VALIDATOR = jsonschema.Draft7Validator(_as_helm_checks(SCHEMA, SCHEMA),
                                       registry=referencing.Registry(retrieve=_no_remote))


def chart_errors(values: dict) -> list[str]:
    """Every error of ``values`` against the chart's schema, nested ones (inside anyOf) included."""
    def flat(errors):
        for error in errors:
            yield f"/{'/'.join(map(str, error.absolute_path))}: {error.message}"
            yield from flat(error.context or [])
    return list(flat(VALIDATOR.iter_errors(values)))


def test_values_match_the_chart_schema():
    assert chart_errors(VALUES) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        # a misspelt key where the chart forbids unknown ones
        (lambda v: v["telemetry"].update(enable=False), "'enable' was unexpected"),
        (lambda v: v["runLauncher"]["config"]["k8sRunLauncher"].update(volume=[]), "'volume' was unexpected"),
        # wrong types
        (lambda v: v["dagster-user-deployments"]["deployments"][0].update(port="4000"), "is not of type 'integer'"),
        (lambda v: v["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"].update(
            maxConcurrentRuns="four"), "is not valid under any of the given schemas"),
        (lambda v: v.update(generatePostgresqlPasswordSecret="no"), "is not of type 'boolean'"),
        # a value outside an enum
        (lambda v: v["runLauncher"].update(type="KubernetesRunLauncher"), "is not one of"),
        # a user deployment (a list item: nothing merges into it) without its image
        (lambda v: v["dagster-user-deployments"]["deployments"][0].pop("image"), "'image' is a required property"),
    ],
)
def test_broken_values_fail_the_schema(mutate, expected):
    broken = copy.deepcopy(VALUES)
    mutate(broken)
    errors = chart_errors(broken)
    assert any(expected in e for e in errors), errors


# --- the Kubernetes manifests --------------------------------------------------------------------

def test_there_are_manifests():
    assert [p.name for p in MANIFESTS] == ["library-pvc.yaml"]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_shape(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs
    for doc in docs:
        assert isinstance(doc.get("apiVersion"), str) and doc["apiVersion"]
        assert isinstance(doc.get("kind"), str) and doc["kind"]
        assert isinstance(doc.get("metadata", {}).get("name"), str) and doc["metadata"]["name"]
        assert isinstance(doc.get("spec"), dict) and doc["spec"]


def _pvc() -> dict:
    return yaml.safe_load((DEPLOY / "library-pvc.yaml").read_text())


def test_library_claim_is_shared():
    pvc = _pvc()
    assert (pvc["apiVersion"], pvc["kind"]) == ("v1", "PersistentVolumeClaim")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert re.fullmatch(r"\d+(Ki|Mi|Gi|Ti)", pvc["spec"]["resources"]["requests"]["storage"])


# --- the Dockerfile ------------------------------------------------------------------------------

def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _one(word: str) -> str:
    found = [rest for w, rest in _instructions() if w == word]
    assert len(found) == 1, (word, found)
    return found[0]


def _cmd() -> list[str]:
    return json.loads(_one("CMD"))


def _env() -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in shlex.split(_one("ENV")))


def test_dockerfile_base_and_user():
    assert _one("FROM") == "python:3.11-slim-bookworm"
    assert _one("USER") not in ("root", "0")
    assert _one("EXPOSE") == "4000"


def test_everything_copied_exists():
    copies = [shlex.split(rest) for w, rest in _instructions() if w == "COPY"]
    assert copies
    sources = [src for args in copies for src in args[:-1] if not src.startswith("--")]
    assert sorted(sources) == ["README.md", "music_pipeline/", "pyproject.toml"]
    for src in sources:
        assert (ROOT / src).exists(), src


def test_apt_packages_are_the_doctors():
    runs = " ".join(rest for w, rest in _instructions() if w == "RUN")
    match = re.search(r"apt-get install -y --no-install-recommends ((?:[a-z0-9.+-]+ ?)+)", runs)
    assert match, runs
    assert set(match.group(1).split()) == set(cli.DEBIAN_PACKAGES.values()) | set(cli.DEBIAN_LIBS)
    assert "rm -rf /var/lib/apt/lists/*" in runs


def test_dagster_k8s_pin_matches_dagster_postgres():
    runs = " ".join(rest for w, rest in _instructions() if w == "RUN")
    assert "pip install --no-cache-dir ." in runs
    pin = re.search(r"dagster-k8s==(\S+)", runs)
    assert pin, runs
    assert pin.group(1) == importlib.metadata.version("dagster-postgres")


def test_chart_version_is_dagsters():
    readme = (ROOT / "README.md").read_text()
    versions = set(re.findall(r"dagster/dagster --version (\S+)", readme))
    assert versions == {importlib.metadata.version("dagster")}


def test_cmd_module_imports():
    cmd = _cmd()
    assert cmd[:3] == ["dagster", "code-server", "start"]
    module = cmd[cmd.index("-m") + 1]
    assert module == "music_pipeline.definitions"
    assert hasattr(importlib.import_module(module), "defs")


def test_code_server_accepts_the_flags():
    proc = subprocess.run([sys.executable, "-m", "dagster", "code-server", "start", "--help"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    for flag in (a for a in _cmd()[3:] if a.startswith("-")):
        assert re.search(rf"(^|[\s,]){re.escape(flag)}[\s,]", proc.stdout), flag


# --- values.yaml agrees with the image and the claim ---------------------------------------------

def _deployment() -> dict:
    (dep,) = VALUES["dagster-user-deployments"]["deployments"]
    return dep


def test_values_agree_with_the_image():
    dep, cmd = _deployment(), _cmd()
    assert dep["port"] == int(cmd[cmd.index("-p") + 1]) == int(_one("EXPOSE"))
    assert dep["dagsterApiGrpcArgs"] == ["-m", cmd[cmd.index("-m") + 1]]
    assert dep["env"]["MUSIC_LIBRARY"] == _env()["MUSIC_LIBRARY"] == "/library"
    assert dep["env"]["DAGSTER_HOME"] == _env()["DAGSTER_HOME"]


def test_library_is_mounted_on_the_code_location_and_on_runs():
    claim = _pvc()["metadata"]["name"]
    launcher = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
    assert VALUES["runLauncher"]["type"] == "K8sRunLauncher"
    for where in (_deployment(), launcher):
        (volume,) = where["volumes"]
        (mount,) = where["volumeMounts"]
        assert volume["persistentVolumeClaim"]["claimName"] == claim
        assert mount == {"name": volume["name"], "mountPath": "/library"}
    assert "MUSIC_LIBRARY=/library" in launcher["envVars"]
    assert launcher["envSecrets"] == _deployment()["envSecrets"]


def test_daemon_and_storage_settings():
    daemon = VALUES["dagsterDaemon"]
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert daemon["runCoordinator"]["config"]["queuedRunCoordinator"]["maxConcurrentRuns"] >= 1
    assert daemon["runMonitoring"]["enabled"] is True
    assert daemon["runRetries"] == {"enabled": True, "maxRetries": 1}
    assert VALUES["telemetry"]["enabled"] is False
    assert VALUES["postgresql"]["enabled"] is False
    assert VALUES["postgresql"]["postgresqlPassword"] == ""
