"""The shipped policy scenarios pass, cover every rule of POLICY.md, and the runner catches
scenarios that are wrong instead of passing them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ticketwarden.core.registry import Plugins
from ticketwarden.core.scenario import find_scenarios, load_scenario, run_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "examples" / "scenarios"
POLICY_MD = ROOT.parent / "shared" / "POLICY.md"


def policy_rule_ids() -> set[str]:
    """Every rule id POLICY.md defines (SEV-1..SEV-4 stands for four)."""
    text = POLICY_MD.read_text(encoding="utf-8")
    ids: set[str] = set()
    for match in re.finditer(r"^- \*\*([A-Z0-9]+)-(\d+)(?:\.\.([A-Z0-9]+)-(\d+))?", text, re.M):
        prefix, first, _, last = match.groups()
        for n in range(int(first), int(last or first) + 1):
            ids.add(f"{prefix}-{n}")
    return ids


@pytest.mark.parametrize("path", find_scenarios([SCENARIOS]), ids=lambda p: p.stem)
def test_shipped_scenario_passes(path: Path, plugins: Plugins) -> None:
    result = run_scenario(path, plugins)
    details = result.error or "\n".join(
        f"step {s.index}: {f}" for s in result.steps for f in s.failures
    )
    assert result.passed, details


@pytest.mark.skipif(not POLICY_MD.exists(), reason="../shared/POLICY.md is not beside the project")
def test_every_policy_rule_has_a_scenario_and_a_plugin(plugins: Plugins) -> None:
    ids = policy_rule_ids()
    assert len(ids) == 32, sorted(ids)
    shown = {rule for p in find_scenarios([SCENARIOS]) for rule in load_scenario(p).rules}
    assert ids - shown == set(), "rules without a scenario"
    assert ids - plugins.rule_ids() == set(), "rules no built-in plugin declares"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_wrong_expectation_fails_with_the_actions_taken(tmp_path: Path, plugins: Plugins) -> None:
    path = write(
        tmp_path,
        """
name: wrong
rules: [CLOSE-3]
timeline:
  - at: 0m
    event: created
    expect:
      - {rule: CLOSE-3, action: resolve}
""",
    )
    result = run_scenario(path, plugins)
    assert result.outcome == "failed"
    assert result.steps[0].failures == [
        "expected {rule=CLOSE-3, action=resolve}, but no action matched"
    ]
    assert [t.action.rule_id for t in result.steps[0].taken] == ["SEV-3"]


def test_a_forbidden_action_that_happens_fails(tmp_path: Path, plugins: Plugins) -> None:
    path = write(
        tmp_path,
        """
name: forbid
rules: [SEV-3]
timeline:
  - at: 0m
    event: created
    forbid:
      - {rule: SEV-3, action: set_priority}
""",
    )
    result = run_scenario(path, plugins)
    assert result.outcome == "failed"
    assert "forbidden {rule=SEV-3, action=set_priority} happened" in result.steps[0].failures[0]


def test_count_must_match_exactly(tmp_path: Path, plugins: Plugins) -> None:
    path = write(
        tmp_path,
        """
name: count
rules: [SEV-3]
timeline:
  - at: 0m
    event: created
    expect:
      - {rule: SEV-3, count: 2}
""",
    )
    assert run_scenario(path, plugins).steps[0].failures == [
        "expected 2 × {rule=SEV-3, count=2}, got 1"
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("rules: [CLOSE-99]", "unknown rule id(s) CLOSE-99"),
        ("rules: [CLOSE-3]\n    x: 1", "not valid YAML"),
    ],
)
def test_unknown_rule_ids_are_errors(
    tmp_path: Path, plugins: Plugins, body: str, message: str
) -> None:
    path = write(tmp_path, f"name: bad\n{body}\ntimeline:\n  - at: 0m\n    event: created\n")
    result = run_scenario(path, plugins)
    assert result.outcome == "error"
    assert message in (result.error or "")


def test_unknown_action_kind_and_parameter_are_errors(tmp_path: Path, plugins: Plugins) -> None:
    path = write(
        tmp_path,
        """
name: bad
rules: [CLOSE-3]
timeline:
  - at: 0m
    event: created
    expect:
      - {rule: CLOSE-3, action: frobnicate}
      - {rule: CLOSE-3, action: set_status, stauts: open}
      - {rule: NOPE-1}
""",
    )
    error = run_scenario(path, plugins).error or ""
    assert "unknown action kind 'frobnicate'" in error
    assert "unknown parameter 'stauts' for set_status" in error
    assert "unknown rule id 'NOPE-1'" in error


def test_steps_out_of_time_order_are_an_error(tmp_path: Path, plugins: Plugins) -> None:
    path = write(
        tmp_path,
        """
name: order
rules: [CLOSE-3]
timeline:
  - at: 1d
    event: created
  - at: 2h
    event: time_passes
""",
    )
    assert "steps must be in time order" in (run_scenario(path, plugins).error or "")


def test_unknown_event_and_bad_offset_are_errors(tmp_path: Path, plugins: Plugins) -> None:
    path = write(tmp_path, "name: x\nrules: [CLOSE-3]\ntimeline:\n  - at: 0m\n    event: explode\n")
    assert "timeline.0.event" in (run_scenario(path, plugins).error or "")
    path = write(tmp_path, "name: x\nrules: [CLOSE-3]\ntimeline:\n  - at: 3x\n    event: created\n")
    assert "unknown unit 'x'" in (run_scenario(path, plugins).error or "")


RULES_MD = ROOT / "docs" / "rules.md"


def _rows() -> list[tuple[str, list[str], list[str]]]:
    rows = []
    for line in RULES_MD.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"[A-Z0-9]+-\d+", cells[0]):
            functions = re.findall(r"`([\w.]+)`", cells[2])
            scenarios = re.findall(r"`([\w.-]+\.yaml)`", cells[3])
            rows.append((cells[0], functions, scenarios))
    return rows


@pytest.mark.skipif(not POLICY_MD.exists(), reason="../shared/POLICY.md is not beside the project")
def test_rules_md_names_real_functions_and_scenarios_for_every_rule() -> None:
    import importlib

    rows = _rows()
    assert {r[0] for r in rows} == policy_rule_ids()
    for rule, functions, scenarios in rows:
        assert functions and scenarios, rule
        for dotted in functions:
            module_name, name = dotted.rsplit(".", 1)
            package = (
                "ticketwarden.core"
                if module_name in ("clock", "engine")
                else "ticketwarden.core.rules"
            )
            function = getattr(importlib.import_module(f"{package}.{module_name}"), name)
            assert rule in (function.__doc__ or "") or rule in (
                importlib.import_module(f"{package}.{module_name}").__doc__ or ""
            ), f"{dotted} does not name {rule}"
        for scenario in scenarios:
            assert rule in load_scenario(SCENARIOS / scenario).rules, (
                f"{scenario} does not show {rule}"
            )
