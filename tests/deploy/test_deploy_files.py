"""The deployment files in ``infra/deploy/`` (Docker cannot run here): parsed and checked for what would
break a deployment or leak a secret.

Dockerfile — ``hadolint`` is not in the lock, so these are the checks it would make that matter here,
plus the ones it cannot make: the base image is pinned to a patch version, the final stage runs as a
numeric non-root user, no ENV/ARG carries a secret, the API has a HEALTHCHECK on a route that needs no
database, every COPY source exists and is not excluded by the build's ignore file, and the image installs
the runtime dependencies at the lock's versions — all of them: every third-party module the shipped code
imports comes with them.

Kubernetes work pool — ``prefect-kubernetes`` is not in the lock either: the base job template is checked
with Prefect's own template validation (``validate_base_job_template``, what the server runs), JSON Schema
for its variables and defaults, and by hand for the Job structure the kubernetes worker requires. The
end-to-end test also creates a ``kubernetes`` pool from it on a real server.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import json
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "infra" / "deploy"
IMAGE = "posventa:0.1.0"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|API_KEY|TOKEN|PRIVATE", re.I)
INTERPOLATION = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*(:?[-?][^}]*)?\}$")
CREDENTIALS = re.compile(r"://[^/:@\s]+:(?P<password>[^@\s]+)@")
SENDGRID_KEY = re.compile(r"SG\.[\w-]{16,}")
API_HEALTH_PATH = "/v1/event-types"


# --- Dockerfile -------------------------------------------------------------------------------------------
def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text()
    joined = re.sub(
        r"\\\n\s*", " ", "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    )
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in joined.splitlines() if ln.strip()]


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def test_dockerfile_base_images_are_pinned() -> None:
    instructions = dockerfile()
    args = dict(a.split("=", 1) for op, a in instructions if op == "ARG" and "=" in a)
    for op, arg in instructions:
        if op != "FROM":
            continue
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], arg.split()[0])
        tag = image.partition(":")[2]
        assert re.match(r"^\d+\.\d+\.\d+-", tag), f"FROM {image}: pin a full version tag (or a digest)"


def test_dockerfile_runs_as_a_numeric_non_root_user_with_an_api_healthcheck() -> None:
    final = final_stage(dockerfile())
    users = [a for op, a in final if op == "USER"]
    assert users, "the final stage must switch to a non-root USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, f"USER {users[-1]}: numeric and not root (runAsNonRoot checks it)"
    [check] = [a for op, a in final if op == "HEALTHCHECK"]
    assert f"127.0.0.1:8000{API_HEALTH_PATH}" in check
    [cmd] = [a for op, a in final if op == "CMD"]
    assert json.loads(cmd)[:2] == ["posventa", "serve"] and "8000" in json.loads(cmd)


def test_the_api_healthcheck_route_answers_without_a_database(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from infra.settings import make_settings
    from web.app import create_app

    settings = make_settings(database_url=f"sqlite:///{tmp_path}/missing/none.db", secret_key="k" * 40)
    with TestClient(create_app(settings=settings)) as client:
        assert client.get(API_HEALTH_PATH).status_code == 200
    assert not (tmp_path / "missing").exists()


def test_dockerfile_has_no_secrets() -> None:
    for op, arg in dockerfile():
        if op in {"ENV", "ARG"}:
            names = re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", arg) or [arg.split()[0]]
            leaked = [n for n in names if SECRET_NAME.search(n)]
            assert not leaked, f"{op} {arg}: secrets come from the environment at run time, never the image"
    assert not SENDGRID_KEY.search((DEPLOY / "Dockerfile").read_text())


def ignored(path: str) -> bool:
    patterns = [
        p.strip()
        for p in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    parts = Path(path).parts
    return any(
        Path(path).match(p) or any(Path(*parts[: i + 1]).match(p) for i in range(len(parts)))
        for p in patterns
    )


def test_every_file_the_dockerfile_copies_exists_in_the_build_context() -> None:
    copies = [a.split() for op, a in dockerfile() if op == "COPY" and not a.startswith("--from")]
    assert copies
    for args in copies:
        sources = [s for s in args[:-1] if not s.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert not ignored(source), f"COPY {source}: excluded by Dockerfile.dockerignore"


def test_the_image_copies_every_package_the_project_ships() -> None:
    """A new top-level package (say `app/`) that the image forgets fails here, not in production."""
    packages = shipped_packages()
    copied = {
        s.rstrip("/")
        for op, a in dockerfile()
        if op == "COPY" and not a.startswith("--from")
        for s in a.split()[:-1]
    }
    assert packages <= copied, f"packages not copied into the image: {sorted(packages - copied)}"


def test_the_image_installs_the_runtime_dependencies_from_the_lock() -> None:
    installs = [a for op, a in dockerfile() if op == "RUN" and "pip install" in a]
    assert any("--constraint requirements.lock" in a for a in installs), installs
    locked = {canonicalize_name(Requirement(ln).name) for ln in lock_lines()}
    missing = sorted(runtime_closure() - locked)
    assert not missing, f"not pinned in requirements.lock, so the image would install any version: {missing}"


def lock_lines() -> list[str]:
    text = (ROOT / "requirements.lock").read_text()
    return [ln.split("#")[0].strip() for ln in text.splitlines() if ln.split("#")[0].strip()]


def runtime_closure() -> set[str]:
    """pyproject's dependencies and everything they require (as installed here, markers evaluated)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in project["dependencies"]]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        for extra in req.extras or {""}:
            for sub in md.requires(req.name) or []:
                child = Requirement(sub)
                if child.marker is None or child.marker.evaluate({"extra": extra}):
                    child.marker = None
                    todo.append(child)
    return seen


def shipped_packages() -> set[str]:
    """The top-level packages pyproject.toml ships (setuptools' `packages.find.include`)."""
    import tomllib

    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    return {p.rstrip("*") for p in found["include"]}


def shipped_imports() -> Iterator[tuple[str, Path]]:
    for folder in sorted(shipped_packages()):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        yield alias.name.split(".")[0], path
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    yield node.module.split(".")[0], path


# Imported by shipped modules only for the test suite (pytest), never on the image's paths.
TEST_ONLY = {"pytest": "infra/db/testing.py"}


def test_the_runtime_dependencies_provide_every_module_the_shipped_code_imports() -> None:
    own = shipped_packages()
    providers = md.packages_distributions()
    closure = runtime_closure()
    missing = set()
    for module, path in shipped_imports():
        if module in own or module in sys.stdlib_module_names or module == "__future__":
            continue
        if TEST_ONLY.get(module) == str(path.relative_to(ROOT)):
            continue
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        if not dists & closure:
            missing.add(f"{module} ({path.relative_to(ROOT)})")
    assert not missing, f"imported but not a runtime dependency (add it to pyproject.toml): {sorted(missing)}"


# --- compose.yaml -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def environment(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    return env if isinstance(env, dict) else dict(e.split("=", 1) if "=" in e else (e, None) for e in env)


def command(service: dict[str, Any]) -> str:
    cmd = service.get("command", "")
    return cmd if isinstance(cmd, str) else shlex.join(cmd)


def test_compose_has_the_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"db", "prefect-server", "init", "worker", "api"}
    db = services["db"]
    [data] = [v for v in db["volumes"] if v.endswith(":/var/lib/postgresql/data")]
    assert data.split(":")[0] in compose["volumes"], "PostgreSQL's data must live on a named volume"
    assert environment(services["prefect-server"])["PREFECT_API_DATABASE_CONNECTION_URL"].startswith(
        "postgresql+asyncpg://"
    )
    init = command(services["init"])
    for step in (
        "posventa db upgrade",
        "prefect work-pool create posventa --type process",
        "prefect deploy --all",
    ):
        assert step in init
    assert "prefect worker start --pool posventa" in command(services["worker"])
    assert str(services["worker"]["deploy"]["replicas"]).startswith("${POSVENTA_WORKERS")
    assert "posventa serve --host 0.0.0.0 --port 8000" in command(services["api"])
    for name in ("prefect-server", "init", "worker", "api"):
        assert services[name]["image"].endswith(IMAGE + "}"), name
        assert services[name]["build"]["dockerfile"] == "infra/deploy/Dockerfile"
        assert (DEPLOY / services[name]["build"]["context"] / services[name]["build"]["dockerfile"]).exists()


def test_compose_dependencies_wait_for_health_or_completion(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], (
                    f"{name} waits for {target}'s health: it has no check"
                )
            else:
                assert condition == "service_completed_successfully", f"{name} → {target}: {condition}"
                assert services[target].get("restart") == "no", f"{target} is one-shot"
    for name in ("init", "worker", "api"):
        assert services[name]["depends_on"], f"{name} must wait for the database and the Prefect server"
    assert services["init"]["depends_on"]["prefect-server"]["condition"] == "service_healthy"


def test_compose_healthchecks_probe_what_the_processes_serve(compose: dict[str, Any]) -> None:
    from prefect.settings.models.worker import WorkerWebserverSettings

    services = compose["services"]
    probes = {name: " ".join(s["healthcheck"]["test"]) for name, s in services.items() if "healthcheck" in s}
    assert "/api/health" in probes["prefect-server"]
    worker_port = WorkerWebserverSettings.model_fields["port"].default
    assert f"127.0.0.1:{worker_port}/health" in probes["worker"]
    assert "--with-healthcheck" in command(services["worker"])
    assert f"127.0.0.1:8000{API_HEALTH_PATH}" in probes["api"]


def all_strings(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from all_strings(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from all_strings(v, f"{where}[{i}]")
    elif isinstance(node, str):
        yield where, node


def test_compose_holds_no_secret(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key) and value is not None:
                assert INTERPOLATION.match(str(value)), f"{name}: {key} must come from .env (${{{key}:?…}})"
    for where, text in all_strings(compose):
        for found in CREDENTIALS.finditer(text):
            assert INTERPOLATION.match(found.group("password")), f"{where}: a password written in the file"
    assert not SENDGRID_KEY.search((DEPLOY / "compose.yaml").read_text())


def test_every_variable_compose_reads_is_documented_in_env_example() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", re.sub(r"(?m)^\s*#.*$", "", text)))
    example = (DEPLOY / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", example, re.M))
    assert used <= documented, f"add to infra/deploy/.env.example: {sorted(used - documented)}"
    assert not re.search(r"^[A-Z_]+=\S", example, re.M), (
        ".env.example must not carry values for the required secrets"
    )


def test_compose_bind_mounts_exist(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).is_file(), volume


# --- Kubernetes -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def job_template() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DEPLOY / "k8s" / "base-job-template.json").read_text())
    return loaded


def test_the_job_template_passes_prefects_own_validation(job_template: dict[str, Any]) -> None:
    from jsonschema import Draft202012Validator
    from prefect.server.schemas.actions import validate_base_job_template

    validate_base_job_template(job_template)  # every {{ placeholder }} is a declared variable
    variables = job_template["variables"]
    Draft202012Validator.check_schema(variables)
    for schema in variables["properties"].values():
        if "default" in schema:
            Draft202012Validator(schema).validate(schema["default"])


def render(job_template: dict[str, Any]) -> dict[str, Any]:
    """The job configuration as a worker renders it: variable defaults plus what the worker supplies."""
    from prefect.utilities.templating import apply_values

    values = {k: v["default"] for k, v in job_template["variables"]["properties"].items() if "default" in v}
    values |= {
        "name": "tick-abc",
        "command": "prefect flow-run execute",
        "env": {"A": "1"},
        "labels": {"x": "y"},
    }
    rendered: dict[str, Any] = apply_values(job_template["job_configuration"], values)
    return rendered


def test_the_job_template_renders_the_job_a_kubernetes_worker_requires(job_template: dict[str, Any]) -> None:
    config = render(job_template)
    assert set(config) <= {
        "command",
        "env",
        "labels",
        "name",
        "namespace",
        "job_manifest",
        "cluster_config",
        "job_watch_timeout_seconds",
        "pod_watch_timeout_seconds",
        "stream_output",
    }, "keys of the kubernetes worker's job configuration"
    job = config["job_manifest"]
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert job["metadata"]["labels"] == {"x": "y"} and job["metadata"]["namespace"] == "posventa"
    pod = job["spec"]["template"]["spec"]
    assert (pod["parallelism"], pod["completions"], pod["restartPolicy"]) == (1, 1, "Never")
    assert pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    assert container["name"] == "prefect-job", "the worker finds the flow's container by this name"
    assert container["image"] == IMAGE and container["args"] == "prefect flow-run execute"
    assert {"secretRef": {"name": "posventa"}} in container["envFrom"]
    assert isinstance(job["spec"]["ttlSecondsAfterFinished"], int)


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "k8s" / "posventa.yaml").read_text()) if d]


def pod_specs(manifests: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in manifests:
        if doc["kind"] in {"Deployment", "Job"}:
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def test_kubernetes_manifests_run_the_image_as_non_root_with_the_secret_by_reference(
    manifests: list[dict[str, Any]], compose: dict[str, Any]
) -> None:
    kinds = sorted(d["kind"] for d in manifests)
    assert kinds == ["ConfigMap", "Deployment", "Deployment", "Job", "Namespace", "Service"]
    commands = {}
    for name, pod in pod_specs(manifests):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            assert container["image"] == IMAGE, name
            assert {"secretRef": {"name": "posventa"}} in container["envFrom"], name
            for var in container.get("env", []):
                assert not (SECRET_NAME.search(var["name"]) and "value" in var), (
                    f"{name}: {var['name']} inline"
                )
            commands[name] = shlex.join(container["command"])
    services = compose["services"]
    assert commands["posventa-init"] == command(services["init"]), "one setup, in compose and Kubernetes"
    assert commands["posventa-worker"] == command(services["worker"])
    assert commands["posventa-api"] == command(services["api"])
    assert not SENDGRID_KEY.search((DEPLOY / "k8s" / "posventa.yaml").read_text())


def test_kubernetes_selectors_and_ports_match(manifests: list[dict[str, Any]]) -> None:
    deployments = {d["metadata"]["name"]: d for d in manifests if d["kind"] == "Deployment"}
    for name, d in deployments.items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert d["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
    [service] = [d for d in manifests if d["kind"] == "Service"]
    api = deployments["posventa-api"]["spec"]["template"]
    assert service["spec"]["selector"].items() <= api["metadata"]["labels"].items()
    ports = {p["name"] for c in api["spec"]["containers"] for p in c["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    [container] = api["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == API_HEALTH_PATH
