"""Render a new connector plugin package: ``ticketwarden new-connector NAME``.

:func:`render_connector` writes an installable package ``ticketwarden-<name>`` holding a
working connector, an emulator of the helpdesk it talks to, the plugin registration and the
conformance suite bound to the connector — green out of the box. The author then replaces the
emulator's routes and the connector's requests with the real helpdesk's API, one standard test
at a time, keeping the suite green.

The templates are plain files under ``ticketwarden/testing/templates/connector/``, shipped as
package data and read with :mod:`importlib.resources`. Every template ends in ``.tmpl`` (so no
tool mistakes it for code of this project); ``$name``-style placeholders are filled with
:class:`string.Template`, and a path segment ``__module__`` becomes the module name.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path

import ticketwarden

__all__ = ["ScaffoldError", "ScaffoldNames", "render_connector", "scaffold_names"]

TEMPLATE_PACKAGE = "ticketwarden.testing"
TEMPLATE_DIR = ("templates", "connector")
TEMPLATE_SUFFIX = ".tmpl"
MODULE_SEGMENT = "__module__"

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
MAX_NAME_LENGTH = 25


class ScaffoldError(ValueError):
    """The connector cannot be rendered: a bad name or a destination that is in the way."""


@dataclass(frozen=True)
class ScaffoldNames:
    """Every spelling of a connector name the templates use.

    For ``acme-desk``: ``name`` ``acme-desk`` (connector and entry-point name),
    ``distribution`` ``ticketwarden-acme-desk``, ``module`` ``ticketwarden_acme_desk``,
    ``cls`` ``AcmeDesk`` (prefix of ``AcmeDeskConnector`` and ``AcmeDeskEmulator``),
    ``title`` ``Acme Desk``.
    """

    name: str
    distribution: str
    module: str
    cls: str
    title: str

    def substitutions(self) -> dict[str, str]:
        """The ``$placeholder`` values of the templates."""
        return {
            "name": self.name,
            "distribution": self.distribution,
            "module": self.module,
            "cls": self.cls,
            "title": self.title,
            "ticketwarden_version": ticketwarden.__version__,
        }


def _builtin_plugin_names() -> frozenset[str]:
    """Entry-point names the ticketwarden distribution itself registers (taken names)."""
    return frozenset(
        ep.name
        for ep in metadata.entry_points(group="ticketwarden")
        if ep.dist is not None and ep.dist.name == "ticketwarden"
    )


def scaffold_names(name: str) -> ScaffoldNames:
    """Check a connector name and derive the package, module and class names from it.

    :raises ScaffoldError: the name is not lowercase letters, digits and single hyphens starting
        with a letter, is too long, or is already taken by a built-in plugin.
    """
    if not NAME_PATTERN.fullmatch(name):
        raise ScaffoldError(
            f"connector name {name!r} is not valid: use lowercase letters, digits and single "
            "hyphens, starting with a letter and not ending with a hyphen (e.g. 'acme-desk')"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise ScaffoldError(
            f"connector name {name!r} is {len(name)} characters long; keep it to "
            f"{MAX_NAME_LENGTH} at most"
        )
    if name in _builtin_plugin_names():
        raise ScaffoldError(
            f"connector name {name!r} is already the name of a built-in ticketwarden plugin; "
            "two plugins cannot share a name, choose another"
        )
    parts = name.split("-")
    return ScaffoldNames(
        name=name,
        distribution=f"ticketwarden-{name}",
        module=f"ticketwarden_{name.replace('-', '_')}",
        cls="".join(part.capitalize() for part in parts),
        title=" ".join(part.capitalize() for part in parts),
    )


def template_root() -> Traversable:
    """The connector templates, as package data of :mod:`ticketwarden.testing`."""
    root = resources.files(TEMPLATE_PACKAGE)
    for part in TEMPLATE_DIR:
        root = root / part
    return root


def _walk(node: Traversable, parts: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """Every template file below ``node``: (relative path parts, text), in a stable order."""
    found: list[tuple[tuple[str, ...], str]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name == "__pycache__":
            continue
        if child.is_dir():
            found += _walk(child, (*parts, child.name))
        elif child.name.endswith(TEMPLATE_SUFFIX):
            found.append(((*parts, child.name), child.read_text(encoding="utf-8")))
    return found


def _render_path(parts: tuple[str, ...], names: ScaffoldNames) -> Path:
    segments = [names.module if part == MODULE_SEGMENT else part for part in parts]
    segments[-1] = segments[-1].removesuffix(TEMPLATE_SUFFIX)
    return Path(*segments)


def render_connector(name: str, dest: Path) -> Path:
    """Render the plugin package ``ticketwarden-<name>`` into ``dest/ticketwarden-<name>/``.

    The package holds ``pyproject.toml`` (hatchling, the ``ticketwarden`` entry point),
    ``README.md``, ``src/ticketwarden_<name>/`` (``plugin.py``, ``connector.py``,
    ``emulator.py``) and ``tests/test_conformance.py``; installed, its conformance suite
    passes as generated. ``dest`` is created if missing.

    :param name: the connector name, e.g. ``acme-desk``: lowercase letters, digits, hyphens.
    :param dest: the directory to create the package directory in.
    :returns: the package directory, ``dest/ticketwarden-<name>``.
    :raises ScaffoldError: a bad name, or a package directory that exists and is not empty
        (nothing is overwritten).
    """
    names = scaffold_names(name)
    target = Path(dest) / names.distribution
    if target.exists() and not target.is_dir():
        raise ScaffoldError(f"cannot render into {target}: it exists and is not a directory")
    if target.is_dir() and any(target.iterdir()):
        raise ScaffoldError(
            f"cannot render into {target}: the directory is not empty; remove it or choose "
            "another destination (nothing was overwritten)"
        )
    values = names.substitutions()
    rendered: list[tuple[Path, str]] = []
    for parts, text in _walk(template_root()):
        try:
            content = string.Template(text).substitute(values)
        except (KeyError, ValueError) as exc:  # a broken template is a bug of ticketwarden
            raise RuntimeError(f"template {'/'.join(parts)}: bad placeholder {exc}") from exc
        rendered.append((_render_path(parts, names), content))
    if not rendered:
        raise RuntimeError(f"no connector templates found in {template_root()}")
    for relative, content in rendered:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return target
