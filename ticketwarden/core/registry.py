"""The plugin manager: one factory, entry points, environment controls, and a typed facade.

Everything — the built-in rule modules, the built-in connectors and third-party plugins — is
loaded from the entry-point group ``ticketwarden``; nothing is special-cased. No manager is
built as an import side effect: call :func:`load_plugins`.

Environment controls (read by :func:`load_plugins` when no explicit lists are given):

``TICKETWARDEN_PLUGINS``
    A comma-separated allow-list of entry-point names to load; set but empty loads none
    (the escape hatch from a plugin that crashes on import).
``TICKETWARDEN_BLOCK_PLUGINS``
    A comma-separated list of entry-point names never to load.
``TICKETWARDEN_TRACE_HOOKS``
    When set to a non-empty value, every hook call and its result is traced to stderr.

The rest of the code never calls ``pm.hook.*`` directly; it goes through :class:`Plugins`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, cast

import pluggy

from ticketwarden import hooks
from ticketwarden.core.actions import BaseAction
from ticketwarden.core.context import Due, RuleContext
from ticketwarden.core.model import Change, RosterChange, Ticket

BUILTIN_DISTRIBUTION = "ticketwarden"


class PluginError(RuntimeError):
    """A plugin could not be loaded, clashes with another, or broke the hook contract."""


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin: its name, where it came from, and the hooks it implements."""

    name: str
    source: str
    hooks: tuple[str, ...]


def _names(value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def load_plugins(
    *,
    allow: Iterable[str] | None = None,
    block: Iterable[str] | None = None,
    extra: Sequence[tuple[str, object]] = (),
    entry_points: bool = True,
    trace: bool | None = None,
) -> Plugins:
    """Build a plugin manager with every ``ticketwarden`` entry point, checked and typed.

    :param allow: entry-point names to load (default: ``TICKETWARDEN_PLUGINS`` or all).
    :param block: entry-point names to skip (default: ``TICKETWARDEN_BLOCK_PLUGINS``).
    :param extra: ``(name, plugin)`` pairs registered after the entry points (tests, inline).
    :param entry_points: load the entry-point group at all (tests start from an empty manager).
    :param trace: trace hook calls to stderr (default: ``TICKETWARDEN_TRACE_HOOKS``).
    """
    pm = pluggy.PluginManager(hooks.PROJECT)
    pm.add_hookspecs(hooks)
    allowed = (
        frozenset(allow) if allow is not None else _names(os.environ.get("TICKETWARDEN_PLUGINS"))
    )
    blocked = (
        frozenset(block)
        if block is not None
        else _names(os.environ.get("TICKETWARDEN_BLOCK_PLUGINS")) or frozenset()
    )
    sources: dict[str, str] = {}
    if entry_points:
        for ep in sorted(metadata.entry_points(group=hooks.PROJECT), key=lambda e: e.name):
            if ep.name in blocked or (allowed is not None and ep.name not in allowed):
                pm.set_blocked(ep.name)
                continue
            dist = ep.dist
            source = (
                "built-in"
                if dist is not None and dist.name == BUILTIN_DISTRIBUTION
                else f"{dist.name} {dist.version}"
                if dist is not None
                else "unknown distribution"
            )
            if ep.name in sources:
                raise PluginError(
                    f"plugin name {ep.name!r} is registered twice: by {sources[ep.name]} "
                    f"and by {source}; uninstall one of them or block it with "
                    "TICKETWARDEN_BLOCK_PLUGINS"
                )
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin {ep.name!r} ({source}, {ep.value}) failed to import: {exc!r}; "
                    "skip it with TICKETWARDEN_BLOCK_PLUGINS="
                    f"{ep.name}"
                ) from exc
            pm.register(plugin, name=ep.name)
            sources[ep.name] = source
    for name, plugin in extra:
        if name in sources:
            raise PluginError(f"plugin name {name!r} is already registered by {sources[name]}")
        pm.register(plugin, name=name)
        sources[name] = "inline"
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{exc} (is the hook name misspelled? see ticketwarden.hooks)") from exc
    if trace if trace is not None else bool(os.environ.get("TICKETWARDEN_TRACE_HOOKS")):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return Plugins(pm, sources)


def _flatten(hook_name: str, results: Sequence[Any], pm: pluggy.PluginManager) -> list[BaseAction]:
    actions: list[BaseAction] = []
    for result in results:
        items = result if isinstance(result, list | tuple) else [result]
        for item in items:
            if not isinstance(item, BaseAction):
                offenders = [
                    impl.plugin_name
                    for impl in getattr(pm.hook, hook_name).get_hookimpls()
                    if not impl.hookwrapper and not impl.wrapper
                ]
                raise PluginError(
                    f"a {hook_name} implementation returned {item!r}, which is not an action "
                    f"(from ticketwarden.core.actions); implementations: {', '.join(offenders)}"
                )
            actions.append(item)
    return actions


class Plugins:
    """Typed access to the hooks; the only place that calls ``pm.hook``."""

    def __init__(self, pm: pluggy.PluginManager, sources: Mapping[str, str]) -> None:
        self.pm = pm
        self._sources = dict(sources)
        self._hook_names: dict[str, list[str]] = {}

    def ticket_created(self, ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
        """Call ``on_ticket_created``; every plugin's actions, flattened."""
        results = self.pm.hook.on_ticket_created(ticket=ticket, ctx=ctx)
        return _flatten("on_ticket_created", results, self.pm)

    def ticket_updated(self, ticket: Ticket, change: Change, ctx: RuleContext) -> list[BaseAction]:
        """Call ``on_ticket_updated``; every plugin's actions, flattened."""
        results = self.pm.hook.on_ticket_updated(ticket=ticket, change=change, ctx=ctx)
        return _flatten("on_ticket_updated", results, self.pm)

    def resolved(self, ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
        """Call ``on_resolve``; every plugin's actions, flattened."""
        return _flatten("on_resolve", self.pm.hook.on_resolve(ticket=ticket, ctx=ctx), self.pm)

    def stale(self, ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
        """Call ``on_stale``; every plugin's actions, flattened."""
        return _flatten("on_stale", self.pm.hook.on_stale(ticket=ticket, ctx=ctx), self.pm)

    def roster_changed(self, changes: Sequence[RosterChange], ctx: RuleContext) -> list[BaseAction]:
        """Call ``on_roster_changed``; every plugin's actions, flattened."""
        results = self.pm.hook.on_roster_changed(changes=changes, ctx=ctx)
        return _flatten("on_roster_changed", results, self.pm)

    def next_due(self, ticket: Ticket, ctx: RuleContext) -> list[Due]:
        """Call ``next_due``; every plugin's timers, flattened and sorted by time."""
        dues: list[Due] = []
        for result in self.pm.hook.next_due(ticket=ticket, ctx=ctx):
            items = result if isinstance(result, list | tuple) else [result]
            for item in items:
                if not isinstance(item, Due):
                    raise PluginError(f"a next_due implementation returned {item!r}, not a Due")
                dues.append(item)
        return sorted(dues, key=lambda d: (d.at, d.rule_id))

    def connectors(self) -> dict[str, type[Any]]:
        """Every registered connector class by name; a name claimed twice is an error."""
        return {name: cls for name, (cls, _) in self._connectors().items()}

    def connector_owners(self) -> dict[str, str]:
        """The plugin that registered each connector name."""
        return {name: owner for name, (_, owner) in self._connectors().items()}

    def _connectors(self) -> dict[str, tuple[type[Any], str]]:
        found: dict[str, tuple[type[Any], str]] = {}
        for impl in self.pm.hook.register_connectors.get_hookimpls():
            result = cast(Mapping[str, type[Any]] | None, impl.function())
            for name, cls in (result or {}).items():
                if name in found:
                    raise PluginError(
                        f"connector {name!r} is provided by both {found[name][1]} and "
                        f"{impl.plugin_name}"
                    )
                found[name] = (cls, impl.plugin_name)
        return found

    def hook_names(self, name: str) -> list[str]:
        """Plugin names implementing hook ``name``, in call order (fixed once loaded)."""
        if name not in self._hook_names:
            impls = reversed(getattr(self.pm.hook, name).get_hookimpls())
            self._hook_names[name] = list(dict.fromkeys(i.plugin_name for i in impls))
        return self._hook_names[name]

    def rule_ids(self) -> frozenset[str]:
        """Every rule id a registered plugin declares in its module-level ``RULE_IDS``."""
        ids: set[str] = set()
        for _, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            ids.update(getattr(plugin, "RULE_IDS", ()))
        return frozenset(ids)

    def info(self) -> list[PluginInfo]:
        """Every registered plugin with its source and the hooks it implements."""
        infos = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:  # blocked
                continue
            callers = self.pm.get_hookcallers(plugin) or []
            infos.append(
                PluginInfo(
                    name=name,
                    source=self._sources.get(name, "inline"),
                    hooks=tuple(sorted(c.name for c in callers)),
                )
            )
        return sorted(infos, key=lambda i: i.name)
