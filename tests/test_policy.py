"""The policy file: every bold default of POLICY.md, overrides, and errors that name the key."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

from ticketwarden.core.clock import parse_span
from ticketwarden.core.model import Priority, Severity
from ticketwarden.core.policy import (
    PolicyError,
    default_policy,
    load_policy,
    policy_data,
    policy_from_data,
)

DAY = timedelta(days=1)


def test_defaults_are_policy_md_bold_numbers() -> None:
    p = default_policy()
    assert [str(s) for s in p.closure.reminders] == ["2d", "5d"]  # CLOSE-3
    assert str(p.closure.auto_resolve_after) == "7d"  # CLOSE-3, CLOSE-2 (a)
    assert str(p.closure.reopen_window) == "7d"  # CLOSE-4
    assert str(p.closure.final_close_after) == "7d"  # CLOSE-5
    assert str(p.continuity.contact_timeout) == "2h"  # SEV1-1
    assert p.continuity.lower_to == Severity.HIGH  # SEV1-1
    assert p.response.warn_at == 0.8  # RESP-1
    first = {int(s): str(lvl.first_response) for s, lvl in p.response.severities.items()}
    assert first == {1: "1h", 2: "4h", 3: "8h", 4: "24h"}  # RESP-1
    updates = {int(s): str(lvl.update_interval) for s, lvl in p.response.severities.items()}
    assert updates == {1: "4h", 2: "1d", 3: "2d", 4: "5d"}  # RESP-2
    clocks = {int(s): lvl.clock for s, lvl in p.response.severities.items()}
    assert clocks == {1: "24x7", 2: "business", 3: "business", 4: "business"}  # SEV-1..4, HOURS-1
    assert str(p.versions.previous_supported_for) == "365d"  # VER-1
    assert p.contacts.unauthorized in ("reject", "flag")  # AUTH-1
    codes = [r.code for r in p.closure.reasons]
    assert codes[:7] == [  # CLOSE-2 (a)–(g)
        "no_response",
        "no_longer_needed",
        "fixed_by_update",
        "works_as_designed",
        "feature_request",
        "out_of_scope",
        "not_material",
    ]
    assert p.response.severities[Severity.CRITICAL].priority == Priority.URGENT


def test_severity_4_target_is_24_business_hours() -> None:
    """RESP-1: "24 business hours" — written 24h, it stays 24 hours on the business clock."""
    p = default_policy()
    level = p.response.severities[Severity.LOW]
    level = level.model_copy(update={"first_response": parse_span("24h")})
    assert level.first_response.to_timedelta(p.calendar_for(Severity.LOW).day_length) == timedelta(
        hours=24
    )


def test_an_override_file_changes_only_what_it_says(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        '[closure]\nauto_resolve_after = "10d"\n\n[response.severities.2]\nfirst_response = "2h"\n',
        encoding="utf-8",
    )
    p = load_policy(path)
    assert str(p.closure.auto_resolve_after) == "10d"
    assert str(p.response.severities[Severity.HIGH].first_response) == "2h"
    assert p.response.severities[Severity.HIGH].priority == Priority.HIGH  # kept from the preset
    assert [str(s) for s in p.closure.reminders] == ["2d", "5d"]


def test_show_output_loads_back_to_the_same_policy() -> None:
    import tomli_w

    p = default_policy()
    text = tomli_w.dumps(policy_data(p))
    assert policy_from_data(tomllib.loads(text)) == p


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[closure]\nauto_resolve_after = "7x"', "closure.auto_resolve_after: unknown unit 'x'"),
        ('[closure]\nreminders = ["5d", "2d"]', "reminders must be strictly increasing"),
        (
            '[closure]\nreminders = ["2d", "8d"]',
            "last reminder must come before auto_resolve_after",
        ),
        ("[clousre]\nx = 1", "clousre: unknown key"),
        ('[response.severities.2]\nclock = "moon"', "unknown calendar 'moon'"),
        ('[calendars.business]\ntimezone = "Mars/Olympus"', "Mars/Olympus"),
        ('[contacts]\nunauthorized = "ignore"', "contacts.unauthorized"),
        ("[response]\nwarn_at = 1.5", "response.warn_at"),
    ],
)
def test_bad_files_name_the_key_and_the_problem(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text("[closure\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(path)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.toml")


def test_calendars_can_be_added_and_used(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        "[calendars.us]\n"
        'timezone = "America/New_York"\n'
        'holidays_country = "US"\n'
        'hours = {mon = ["09:00-17:00"], tue = ["09:00-17:00"]}\n'
        "[response.severities.3]\n"
        'clock = "us"\n',
        encoding="utf-8",
    )
    p = load_policy(path)
    assert p.calendar_for(Severity.MEDIUM).day_length == timedelta(hours=8)


def test_docs_describe_every_policy_key() -> None:
    """docs/policy.md stays honest: every section and key of the policy model is described."""
    from pydantic import BaseModel

    from ticketwarden.core.policy import Policy

    text = (Path(__file__).resolve().parents[1] / "docs" / "policy.md").read_text(encoding="utf-8")
    missing = []
    for name, info in Policy.model_fields.items():
        if f"`{name}`" not in text and f"[{name}]" not in text:
            missing.append(name)
        section = info.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            missing += [
                f"{name}.{key}"
                for key in section.model_fields
                if f"`{key}`" not in text and f"`{name}.{key}`" not in text
            ]
    assert missing == []


def test_policy_examples_in_the_docs_are_valid() -> None:
    import re

    root = Path(__file__).resolve().parents[1]
    blocks = [
        block
        for doc in ("README.md", "docs/policy.md")
        for block in re.findall(r"```toml\n(.*?)```", (root / doc).read_text("utf-8"), re.S)
    ]
    assert len(blocks) >= 3
    for block in blocks:
        policy_from_data(tomllib.loads(block))
