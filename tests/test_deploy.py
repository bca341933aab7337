"""The deployment files say what the code does: the image's command and health check, the
Kubernetes probes, the configuration and secret names, the compose file's environment."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from ticketwarden.core.cli import app
from ticketwarden.core.connector import Connector
from ticketwarden.core.registry import load_plugins
from ticketwarden.core.settings import (
    desk_env_var,
    desk_secret_file,
    desk_secrets,
    load_config,
)
from ticketwarden.core.sidecar import Sidecar

ROOT = Path(__file__).resolve().parents[1]
KUBE = ROOT / "deploy" / "kubernetes"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def runs(args: list[str]) -> None:
    """The arguments make a valid ticketwarden command line (its --help succeeds)."""
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, (args, result.output)


def routes() -> set[str]:
    """The sidecar app's paths (building it touches no store)."""
    from ticketwarden.core.inbox import Inbox

    class _Untouched:
        dialect = "sqlite"

    store: Any = _Untouched()
    sidecar = Sidecar(store, Inbox(store), {})
    return set(sidecar.paths) | {getattr(r, "path", "") for r in sidecar.web.routes}


def container(kind: str, name: str) -> dict[str, Any]:
    for path in KUBE.glob("*.yaml"):
        for doc in documents(path):
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                spec = doc["spec"]
                if kind == "CronJob":
                    spec = spec["jobTemplate"]["spec"]
                pod: dict[str, Any] = spec["template"]["spec"]
                return {"pod": pod, **pod["containers"][0]}
    raise AssertionError(f"no {kind} {name}")


def test_the_image_runs_unprivileged_with_a_health_check_on_the_real_endpoint() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    user = re.findall(r"^USER (\S+)", text, re.M)[-1]
    assert user.split(":")[0] not in ("root", "0")
    entry = re.search(r'^ENTRYPOINT \["(\w+)"\]', text, re.M)
    assert entry is not None and entry.group(1) == "ticketwarden"
    cmd = re.search(r"^CMD (\[.*\])", text, re.M)
    assert cmd is not None
    runs(yaml.safe_load(cmd.group(1)))
    check = re.search(r"HEALTHCHECK.*?CMD (\[.*?\])\n", text, re.S)
    assert check is not None
    probe = " ".join(yaml.safe_load(check.group(1)))
    port = re.search(r"^EXPOSE (\d+)", text, re.M)
    assert port is not None and f"127.0.0.1:{port.group(1)}/healthz" in probe
    assert "/healthz" in routes()
    assert "FROM python:3.11-slim" in text


def test_the_deployment_probes_the_sidecars_endpoints_and_outlasts_its_shutdown() -> None:
    sidecar = container("Deployment", "ticketwarden")
    runs(sidecar["args"])
    assert sidecar["livenessProbe"]["httpGet"]["path"] in routes()
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "/readyz" in routes()
    assert "/metrics" in routes()
    port = sidecar["ports"][0]["containerPort"]
    assert str(port) in sidecar["args"]
    grace = sidecar["pod"]["terminationGracePeriodSeconds"]
    config = kube_config()
    assert grace > config.serve.span("shutdown_grace").total_seconds()
    assert sidecar["pod"]["securityContext"]["runAsNonRoot"] is True


def test_the_cronjob_runs_the_sync_job() -> None:
    sync = container("CronJob", "ticketwarden-sync")
    assert sync["args"][0] == "sync"
    runs(sync["args"])


def kube_config(tmp: Path | None = None) -> Any:
    (doc,) = documents(KUBE / "configmap.yaml")
    path = (tmp or Path("/tmp")) / "ticketwarden-kube.toml"
    path.write_text(doc["data"]["ticketwarden.toml"], encoding="utf-8")
    return load_config(path)


def test_the_config_map_loads_and_the_secret_names_the_desks_secrets(tmp_path: Path) -> None:
    config = kube_config(tmp_path)
    (secret,) = documents(KUBE / "secret.example.yaml")
    files = secret["stringData"]
    assert "database_url" in files
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    for name, value in files.items():
        (secrets_dir / name).write_text(value, encoding="utf-8")
    connectors: dict[str, type[Connector]] = load_plugins().connectors()
    for name, desk in config.desks.items():
        secrets = desk_secrets(desk, connectors[desk.connector], secrets_dir=secrets_dir)
        assert secrets.credentials is not None, name
        assert secrets.webhook_secret is not None, name
        assert any(f.startswith(desk_secret_file(name, "")) for f in files)
    mounted = container("Deployment", "ticketwarden")
    env = {e["name"]: e["value"] for e in mounted["env"]}
    mounts = {m["mountPath"] for m in mounted["volumeMounts"]}
    assert env["TICKETWARDEN_SECRETS_DIR"] in mounts
    assert str(Path(env["TICKETWARDEN_CONFIG"]).parent) in mounts


def test_the_compose_file_serves_the_sidecar_with_its_store() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8"))
    sidecar = compose["services"]["sidecar"]
    runs(sidecar["command"])
    assert sidecar["depends_on"]["postgres"]["condition"] == "service_healthy"
    example = (ROOT / "deploy" / "compose.env.example").read_text(encoding="utf-8")
    names = re.findall(r"^(TICKETWARDEN_\w+)=", example, re.M)
    assert "TICKETWARDEN_DATABASE_URL" in names
    for suffix in ("EMAIL", "API_TOKEN", "WEBHOOK_SECRET"):
        assert desk_env_var("zendesk", suffix) in names


def guide_commands() -> list[str]:
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip().startswith("ticketwarden ")
    ]


@pytest.mark.parametrize("line", guide_commands())
def test_every_command_in_the_deploy_guide_is_a_valid_command_line(line: str) -> None:
    words = shlex.split(line.split("#", 1)[0])
    runs(words[1:])
