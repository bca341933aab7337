"""The policy reference in ``docs/policy.md`` is generated from the models and cannot drift.

* The page's generated part is exactly what ``ticketwarden policy docs`` prints now.
* Every key path the generator emits resolves to a field of the models (walked here
  independently of the generator), and every field reachable from ``Policy`` is emitted.
* Every key of the built-in preset's data has a row.
* Every row has a meaning, and its rules are real rule IDs (or the key is declared for people).
* ``policy docs --check`` exits 1 on a stale page and ``--write`` repairs it.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from typer.testing import CliRunner

from ticketwarden.core.cli import app
from ticketwarden.core.policy import Policy, default_policy, policy_data
from ticketwarden.core.policy_docs import (
    BEGIN,
    END,
    Key,
    generated_part,
    policy_groups,
    render,
    replace_generated,
)
from ticketwarden.core.registry import load_plugins

ROOT = Path(__file__).resolve().parents[1]
POLICY_DOC = ROOT / "docs" / "policy.md"


def emitted() -> list[Key]:
    return [key for group in policy_groups() for key in group.keys]


def _unwrap(annotation: Any) -> list[Any]:
    """The alternatives an annotation allows, without ``Annotated`` and ``None``."""
    if get_origin(annotation) is Annotated:
        return _unwrap(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return [t for a in get_args(annotation) for t in _unwrap(a) if t is not type(None)]
    return [annotation]


def resolve(path: str) -> list[tuple[type[BaseModel], str]]:
    """The (model, field) pairs a documented key path names, walking the annotations."""
    owners: list[type[BaseModel]] = [Policy]
    found: list[tuple[type[BaseModel], str]] = []
    parts = path.split(".")
    i = 0
    while i < len(parts):
        part = parts[i]
        name = part.removesuffix("[]")
        found = [(m, name) for m in owners if name in m.model_fields]
        assert found, f"{path}: {name!r} is no field of {[m.__name__ for m in owners]}"
        annotations = [t for m, _ in found for t in _unwrap(m.model_fields[name].annotation)]
        i += 1
        nxt: list[Any] = []
        for annotation in annotations:
            origin, args = get_origin(annotation), get_args(annotation)
            if origin is dict and i < len(parts) and parts[i] in ("<name>", "<1-4>"):
                nxt += _unwrap(args[1])
            elif origin in (tuple, list) and part.endswith("[]"):
                nxt += _unwrap(args[0])
            else:
                nxt.append(annotation)
        if i < len(parts) and parts[i] in ("<name>", "<1-4>"):
            i += 1
        owners = [t for t in nxt if isinstance(t, type) and issubclass(t, BaseModel)]
        if i < len(parts):
            assert owners, f"{path}: {part!r} has no keys below it"
    return found


def reachable() -> set[tuple[type[BaseModel], str]]:
    """Every (model, field) a policy file can set, from ``Policy`` down."""
    seen: set[tuple[type[BaseModel], str]] = set()
    todo: list[type[BaseModel]] = [Policy]
    while todo:
        model = todo.pop()
        for name, info in model.model_fields.items():
            seen.add((model, name))
            stack = _unwrap(info.annotation)
            while stack:
                t = stack.pop()
                if get_origin(t) in (tuple, list, dict):
                    stack += [u for a in get_args(t) for u in _unwrap(a)]
                elif (
                    isinstance(t, type)
                    and issubclass(t, BaseModel)
                    and t not in todo
                    and not any(m is t for m, _ in seen)
                ):
                    todo.append(t)
    return seen


# The section fields themselves are headings, not rows.
SECTIONS = {
    (Policy, name)
    for name, info in Policy.model_fields.items()
    if get_origin(info.annotation) is None
    and isinstance(info.annotation, type)
    and issubclass(info.annotation, BaseModel)
}


def test_the_generated_part_of_docs_policy_md_is_up_to_date() -> None:
    current = generated_part(POLICY_DOC.read_text(encoding="utf-8"))
    assert current is not None, f"{POLICY_DOC} lost its {BEGIN!r} … {END!r} markers"
    assert current == render(), (
        "docs/policy.md is stale: run `ticketwarden policy docs --write` and commit the page"
    )


def test_every_emitted_key_path_is_a_field_of_the_models() -> None:
    paths = [key.path for key in emitted()]
    assert len(paths) == len(set(paths)), "a key path is emitted twice"
    for path in paths:
        resolve(path)


def test_every_field_a_policy_file_can_set_is_emitted() -> None:
    documented = {pair for key in emitted() for pair in resolve(key.path)}
    missing = reachable() - SECTIONS - documented
    assert not missing, sorted(f"{m.__name__}.{f}" for m, f in missing)


def _data_paths(value: Any, path: str, documented: set[str]) -> list[str]:
    """The preset data's key paths; entries of named tables as ``<name>``/``<1-4>``, items of
    lists of tables as ``[]``. Descends wherever the reference has keys below."""

    def has(step: str) -> bool:
        return any(d == step or d.startswith((f"{step}.", f"{step}[]")) for d in documented)

    if isinstance(value, list) and value and isinstance(value[0], dict) and has(f"{path}[]"):
        return [p for item in value for p in _data_paths(item, f"{path}[]", documented)]
    if isinstance(value, dict) and (not path or any(d.startswith(f"{path}.") for d in documented)):
        out = []
        for key, item in value.items():
            step = f"{path}.{key}" if path else str(key)
            if not has(step):
                step = f"{path}.<1-4>" if str(key).isdigit() else f"{path}.<name>"
            out += _data_paths(item, step, documented)
        return out
    return [path]


def test_every_key_of_the_preset_has_a_row() -> None:
    documented = {key.path for key in emitted()}
    data = policy_data(default_policy())
    for path in _data_paths(data, "", documented):
        assert path in documented, f"the preset's key {path} has no row in the reference"


def test_every_row_has_a_meaning_and_real_rule_ids() -> None:
    plugins = load_plugins()
    known = {
        r
        for info in plugins.info()
        for r in getattr(plugins.pm.get_plugin(info.name), "RULE_IDS", ())
    }
    for_people = {"name", "plans.<name>.description", "organizations.<name>.description"}
    for key in emitted():
        assert key.description, f"{key.path}: no description= in the model"
        assert set(key.rules) <= known, f"{key.path}: unknown rule ids {set(key.rules) - known}"
        assert key.rules or key.path in for_people, f"{key.path}: serves no rule"


def test_the_preset_default_of_a_key_is_shown() -> None:
    rows = {key.path: key for key in emitted()}
    assert rows["closure.auto_resolve_after"].default == '`"7d"`'
    assert rows["closure.auto_resolve_after"].rules == ("CLOSE-3",)
    assert rows["response.severities.<1-4>.first_response"].default.startswith('1: `"1h"`')
    assert rows["intake.fields[].required"].default == "`true`"
    assert rows["calendars.<name>.regions[].timezone"].default == "required"


def test_policy_docs_check_fails_on_a_stale_page_and_write_repairs_it(tmp_path: Path) -> None:
    page = tmp_path / "policy.md"
    stale = POLICY_DOC.read_text(encoding="utf-8").replace('`"7d"`', '`"8d"`', 1)
    page.write_text(stale, encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["policy", "docs", "--check", "--file", str(page)])
    assert result.exit_code == 1, result.output
    assert "policy docs --write" in result.output
    result = runner.invoke(app, ["policy", "docs", "--write", "--file", str(page)])
    assert result.exit_code == 0, result.output
    assert page.read_text(encoding="utf-8") == POLICY_DOC.read_text(encoding="utf-8")
    result = runner.invoke(app, ["policy", "docs", "--check", "--file", str(page)])
    assert result.exit_code == 0, result.output


def test_policy_docs_prints_the_generated_part_and_refuses_a_page_without_markers(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["policy", "docs"])
    assert result.exit_code == 0
    assert result.output == render()
    page = tmp_path / "policy.md"
    page.write_text("# no markers\n", encoding="utf-8")
    result = runner.invoke(app, ["policy", "docs", "--check", "--file", str(page)])
    assert result.exit_code == 2
    assert replace_generated(f"a\n{BEGIN}\nold\n{END}\nb\n", "new\n") == "a\nnew\nb\n"
