"""The connector scaffold renders a package that installs, registers and passes its own suite.

The end-to-end test installs the rendered package with pip into a temporary directory (no
network, no build isolation, nothing written to the project's environment) and runs the
``ticketwarden`` command and the generated conformance suite in subprocesses that see it
through ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ticketwarden.testing.scaffold import (
    MAX_NAME_LENGTH,
    ScaffoldError,
    render_connector,
    scaffold_names,
)

NAME = "acme-desk"

EXPECTED_FILES = {
    "README.md",
    "pyproject.toml",
    "src/ticketwarden_acme_desk/__init__.py",
    "src/ticketwarden_acme_desk/connector.py",
    "src/ticketwarden_acme_desk/emulator.py",
    "src/ticketwarden_acme_desk/plugin.py",
    "src/ticketwarden_acme_desk/py.typed",
    "tests/test_conformance.py",
}


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _run(args: list[str], *, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The rendered package, installed into ``<tmp>/site``; the environment that sees it."""
    tmp = tmp_path_factory.mktemp("scaffold")
    package = render_connector(NAME, tmp)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TICKETWARDEN_PLUGINS", "TICKETWARDEN_BLOCK_PLUGINS", "PYTEST_ADDOPTS")
    }
    env.update(
        PIP_NO_INDEX="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTHONIOENCODING="utf-8",
        COLUMNS="250",  # one table row per line in `ticketwarden plugins`
    )
    site = tmp / "site"
    install = _run(
        [
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(package),
        ],
        env=env,
        cwd=tmp,
    )
    assert install.returncode == 0, f"pip install failed:\n{install.stdout}\n{install.stderr}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return package, env


def test_renders_the_package_layout(tmp_path: Path) -> None:
    package = render_connector(NAME, tmp_path)
    assert package == tmp_path / "ticketwarden-acme-desk"
    assert _files(package) == EXPECTED_FILES
    for path in package.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"\$\{?[A-Za-z_]", text), f"unrendered placeholder in {path}"
    plugin = (package / "src/ticketwarden_acme_desk/plugin.py").read_text()
    assert '"acme-desk": AcmeDeskConnector' in plugin
    pyproject = (package / "pyproject.toml").read_text()
    assert 'name = "ticketwarden-acme-desk"' in pyproject
    assert 'acme-desk = "ticketwarden_acme_desk.plugin"' in pyproject
    tests = (package / "tests/test_conformance.py").read_text()
    assert "TestAcmeDeskConformance = connector_test_class(AcmeDeskConnector)" in tests


@pytest.mark.parametrize(
    "name",
    ["z" * MAX_NAME_LENGTH, ("abc-" * MAX_NAME_LENGTH)[: MAX_NAME_LENGTH - 1] + "d"],
)
def test_longest_names_render_valid_code_within_line_length(tmp_path: Path, name: str) -> None:
    assert len(name) == MAX_NAME_LENGTH
    package = render_connector(name, tmp_path)
    for path in package.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        compile(text, str(path), "exec")
        long = [n for n, line in enumerate(text.splitlines(), 1) if len(line) > 100]
        assert not long, f"{path.name}: lines over 100 characters: {long}"


def test_names_derived_from_the_connector_name() -> None:
    names = scaffold_names("acme-desk2")
    assert (names.distribution, names.module, names.cls, names.title) == (
        "ticketwarden-acme-desk2",
        "ticketwarden_acme_desk2",
        "AcmeDesk2",
        "Acme Desk2",
    )


@pytest.mark.parametrize(
    "name",
    ["", "Acme", "acme_desk", "acme desk", "-acme", "acme-", "acme--desk", "1desk", "acme/desk"],
)
def test_refuses_a_malformed_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(ScaffoldError, match="lowercase letters, digits and single hyphens"):
        render_connector(name, tmp_path)
    assert not any(tmp_path.iterdir()), "nothing may be written for a refused name"


def test_refuses_a_too_long_name(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match=f"keep it to {MAX_NAME_LENGTH}"):
        render_connector("a" * (MAX_NAME_LENGTH + 1), tmp_path)


def test_refuses_the_name_of_a_built_in_plugin(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match="built-in ticketwarden plugin"):
        render_connector("intake", tmp_path)


def test_scaffold_error_is_a_value_error() -> None:
    assert issubclass(ScaffoldError, ValueError)


def test_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    target = tmp_path / "ticketwarden-acme-desk"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ScaffoldError, match=r"is not empty.*nothing was overwritten") as refused:
        render_connector(NAME, tmp_path)
    assert str(target) in str(refused.value)
    assert _files(target) == {"notes.txt"}
    assert (target / "notes.txt").read_text() == "mine"


def test_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "ticketwarden-acme-desk").write_text("a file")
    with pytest.raises(ScaffoldError, match="not a directory"):
        render_connector(NAME, tmp_path)


def test_renders_into_an_existing_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "ticketwarden-acme-desk").mkdir()
    package = render_connector(NAME, tmp_path)
    assert _files(package) == EXPECTED_FILES


def test_installed_plugin_is_listed_with_its_distribution(
    installed: tuple[Path, dict[str, str]],
) -> None:
    package, env = installed
    result = _run(["-m", "ticketwarden", "plugins"], env=env, cwd=package.parent)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if re.search(rf"\b{NAME}\b", line)]
    assert rows, f"{NAME} is not listed:\n{result.stdout}"
    row = rows[0]
    assert "ticketwarden-acme-desk 0.1.0" in row, f"source is not the distribution: {row}"
    assert "register_connectors" in row, f"hook not listed: {row}"


def test_generated_conformance_suite_passes(installed: tuple[Path, dict[str, str]]) -> None:
    package, env = installed
    result = _run(
        ["-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")],
        env=env,
        cwd=package.parent,
    )
    output = result.stdout + result.stderr
    summary = output.strip().splitlines()[-1] if output.strip() else ""
    passed = re.search(r"(\d+) passed", summary)
    failed = re.search(r"(\d+) (failed|errors?)", summary)
    assert result.returncode == 0, f"the generated suite failed:\n{output}"
    assert passed and int(passed.group(1)) >= 15, f"too few tests passed: {summary}"
    assert failed is None, f"failures in: {summary}"


def test_installed_connector_is_listed_as_json(installed: tuple[Path, dict[str, str]]) -> None:
    package, env = installed
    result = _run(["-m", "ticketwarden", "plugins", "--json"], env=env, cwd=package.parent)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    mine = [r for r in records if r["plugin"] == NAME]
    assert mine and mine[0]["connectors"] == [NAME], records


def test_emulate_serves_the_installed_connectors_emulator_on_loopback(
    installed: tuple[Path, dict[str, str]],
) -> None:
    package, env = installed
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ticketwarden",
            "emulate",
            NAME,
            "--port",
            str(port),
            "--tickets",
            "7",
            "--seed",
            "3",
        ],
        env=env,
        cwd=package.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        token = f"{NAME}-conformance-token"
        deadline = time.monotonic() + 30
        response = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/tickets",
                    headers={"authorization": f"Bearer {token}"},
                    timeout=2,
                )
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert response is not None, (
            f"the emulator did not come up: {server.stderr and server.stderr.read()}"
        )
        assert response.status_code == 200
        assert len(response.json()["tickets"]) == 7
        refused = httpx.get(f"http://127.0.0.1:{port}/api/v1/tickets", timeout=2)
        assert refused.status_code == 401
    finally:
        server.terminate()
        server.communicate(timeout=10)


def test_emulate_names_unknown_connectors() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ticketwarden", "emulate", "no-such-desk"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "no connector named 'no-such-desk'" in result.stderr
