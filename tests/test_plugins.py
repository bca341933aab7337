"""The plugin contract: entry points, environment controls, typed errors, docs kept honest."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ticketwarden import hookimpl, hooks
from ticketwarden.core.actions import AddTags
from ticketwarden.core.context import RuleContext
from ticketwarden.core.engine import Engine
from ticketwarden.core.model import Event, EventKind, Ticket
from ticketwarden.core.policy import default_policy
from ticketwarden.core.registry import PluginError, load_plugins

from .conftest import MONDAY

BUILT_IN = {
    "zendesk",
    "jira",
    "freshdesk",
    "closure",
    "contacts",
    "continuity",
    "currency",
    "escalation",
    "intake",
    "obligations",
    "response",
    "scope",
}
DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
HOOKS = [name for name, fn in vars(hooks).items() if hasattr(fn, "ticketwarden_spec")]


def test_built_in_rules_come_from_the_entry_points() -> None:
    everything = {i.name: i for i in load_plugins(allow=None, block=()).info()}
    infos = {n: i for n, i in everything.items() if i.source == "built-in"}
    assert set(infos) == BUILT_IN
    # anything else installed (the contrib RT connector) is a third-party plugin, named so
    assert all(i.source != "built-in" for n, i in everything.items() if n not in BUILT_IN)
    assert "on_stale" in infos["closure"].hooks
    assert infos["zendesk"].hooks == ("register_connectors",)


def test_allow_list_and_block_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETWARDEN_PLUGINS", "")
    assert load_plugins().info() == []
    monkeypatch.setenv("TICKETWARDEN_PLUGINS", "intake,closure")
    assert {i.name for i in load_plugins().info()} == {"intake", "closure"}
    monkeypatch.delenv("TICKETWARDEN_PLUGINS")
    monkeypatch.setenv("TICKETWARDEN_BLOCK_PLUGINS", "scope")
    names = {i.name for i in load_plugins().info() if i.source == "built-in"}
    assert names == BUILT_IN - {"scope"}


def test_a_misspelled_hook_is_an_error_not_silence() -> None:
    plugin = SimpleNamespace(on_ticket_craeted=hookimpl(lambda ticket: None))
    with pytest.raises(PluginError, match="on_ticket_craeted"):
        load_plugins(entry_points=False, extra=[("typo", plugin)])


def test_a_hook_returning_something_else_than_actions_names_the_plugins(make_ticket: Any) -> None:
    plugin = SimpleNamespace(on_ticket_created=hookimpl(lambda: ["close it"]))
    engine = Engine(load_plugins(entry_points=False, extra=[("bad", plugin)]), default_policy())
    with pytest.raises(PluginError, match=r"'close it'.*implementations: bad"):
        engine.evaluate(
            Event(id="e", kind=EventKind.CREATED, at=MONDAY), make_ticket(), None, MONDAY
        )


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(PluginError, match="already registered by built-in"):
        load_plugins(block=(), allow=None, extra=[("intake", SimpleNamespace())])


def test_a_third_party_rule_takes_part_with_fewer_arguments(make_ticket: Any) -> None:
    """pluggy opt-in arguments: an implementation may accept only what it needs."""

    def on_ticket_created(ticket: Ticket) -> list[AddTags]:
        return [AddTags(rule_id="ACME-1", reason="vip", tags=frozenset({"vip"}))]

    plugin = SimpleNamespace(on_ticket_created=hookimpl(on_ticket_created), RULE_IDS=("ACME-1",))
    plugins = load_plugins(block=(), allow=None, extra=[("acme", plugin)])
    result = Engine(plugins, default_policy()).evaluate(
        Event(id="e", kind=EventKind.CREATED, at=MONDAY), make_ticket(), None, MONDAY
    )
    assert "ACME-1" in {a.rule_id for a in result.actions}
    assert "ACME-1" in plugins.rule_ids()
    assert "acme" in result.explanation.ran


def test_hook_tracing_writes_calls(capsys: pytest.CaptureFixture[str], make_ticket: Any) -> None:
    def on_ticket_created(ctx: RuleContext) -> None:
        return None

    plugin = SimpleNamespace(on_ticket_created=hookimpl(on_ticket_created))
    plugins = load_plugins(entry_points=False, extra=[("p", plugin)], trace=True)
    Engine(plugins, default_policy()).evaluate(
        Event(id="e", kind=EventKind.CREATED, at=MONDAY), make_ticket(), None, MONDAY
    )
    assert "on_ticket_created" in capsys.readouterr().err


def test_connectors_are_collected_and_clashes_named() -> None:
    class Fake:
        pass

    one = SimpleNamespace(register_connectors=hookimpl(lambda: {"fake": Fake}))
    two = SimpleNamespace(register_connectors=hookimpl(lambda: {"fake": Fake}))
    assert load_plugins(entry_points=False, extra=[("one", one)]).connectors() == {"fake": Fake}
    with pytest.raises(PluginError, match="provided by both one and two"):
        load_plugins(entry_points=False, extra=[("one", one), ("two", two)]).connectors()


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_documented_with_its_exact_signature(name: str) -> None:
    spec = getattr(hooks, name)
    params = ", ".join(inspect.signature(spec).parameters)
    text = DOCS.read_text(encoding="utf-8")
    assert f"{name}({params})" in text, f"docs/plugins.md lacks {name}({params})"
    doc = inspect.getdoc(spec) or ""
    assert ":returns:" in doc and re.search(r"[Ff]ires", doc), f"{name} docstring incomplete"


def test_every_standard_conformance_test_is_documented() -> None:
    from ticketwarden.testing.conformance import ConformanceTests

    text = DOCS.read_text(encoding="utf-8")
    names = [n for n in vars(ConformanceTests) if n.startswith("test_")]
    assert len(names) >= 15
    missing = [n for n in names if f"`{n}" not in text]
    assert missing == [], f"docs/plugins.md does not describe {missing}"
