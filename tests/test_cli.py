"""The command line as a user meets it: exit codes, messages, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from typer.testing import CliRunner

from ticketwarden.core.cli import app
from ticketwarden.core.policy import default_policy, policy_from_data

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def test_policy_show_prints_the_effective_policy_as_toml(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[closure]\nauto_resolve_after = "10d"\n', encoding="utf-8")
    result = runner.invoke(app, ["policy", "show", str(path)])
    assert result.exit_code == 0
    data = tomllib.loads(result.stdout)
    assert data["closure"]["auto_resolve_after"] == "10d"
    assert policy_from_data(data).closure.reminders == default_policy().closure.reminders


def test_policy_check_accepts_a_good_file_and_rejects_a_bad_one(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('name = "acme"\n', encoding="utf-8")
    result = runner.invoke(app, ["policy", "check", str(good)])
    assert result.exit_code == 0 and "valid policy 'acme'" in result.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[closure]\nreopen_window = "soon"\n', encoding="utf-8")
    result = runner.invoke(app, ["policy", "check", str(bad)])
    assert result.exit_code == 2
    assert "closure.reopen_window" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_bad_policy_file_exits_2_without_traceback_from_the_console_script(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[response]\nwarn_at = 2\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "ticketwarden", "policy", "check", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "response.warn_at" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_policy_test_runs_the_shipped_scenarios_by_default() -> None:
    result = runner.invoke(app, ["policy", "test"])
    assert result.exit_code == 0, result.stdout
    assert " passed, 0 failed" in result.stdout
    assert "CLOSE-3" not in result.stdout or "PASSED" in result.stdout


def test_policy_test_exit_codes(tmp_path: Path) -> None:
    failing = tmp_path / "fail.yaml"
    failing.write_text(
        "name: f\nrules: [CLOSE-3]\ntimeline:\n  - at: 0m\n    event: created\n"
        "    expect:\n      - {rule: CLOSE-3, action: close}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["policy", "test", str(failing)])
    assert result.exit_code == 1
    assert "FAILURES" in result.stdout and "no action matched" in result.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: b\nrules: [NOPE-1]\ntimeline: []\n", encoding="utf-8")
    result = runner.invoke(app, ["policy", "test", str(broken)])
    assert result.exit_code == 2
    result = runner.invoke(app, ["policy", "test", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no such file" in result.stderr


def test_policy_test_with_an_overriding_policy_changes_the_outcome(tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text('[closure]\nreminders = ["3d", "5d"]\n', encoding="utf-8")
    scenario = ROOT / "examples" / "scenarios" / "close-3-silent-customer.yaml"
    assert runner.invoke(app, ["policy", "test", str(scenario)]).exit_code == 0
    result = runner.invoke(app, ["policy", "test", "--policy", str(policy), str(scenario)])
    assert result.exit_code == 1, "the day-2 reminder must be missing under a 3-day policy"


def test_plugins_lists_sources_hooks_and_rules() -> None:
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 0
    assert "closure" in result.stdout and "built-in" in result.stdout
    assert "CLOSE-3" in result.stdout and "on_stale" in result.stdout


def test_new_connector_writes_a_package_and_refuses_bad_input(tmp_path: Path) -> None:
    result = runner.invoke(app, ["new-connector", "acme-desk", "--dest", str(tmp_path)])
    assert result.exit_code == 0, result.stdout
    package = tmp_path / "ticketwarden-acme-desk"
    assert (package / "pyproject.toml").is_file()
    assert str(package) in result.stdout
    again = runner.invoke(app, ["new-connector", "acme-desk", "--dest", str(tmp_path)])
    assert again.exit_code == 2 and "not empty" in again.stderr
    bad = runner.invoke(app, ["new-connector", "Acme Desk", "--dest", str(tmp_path)])
    assert bad.exit_code == 2 and "is not valid" in bad.stderr
