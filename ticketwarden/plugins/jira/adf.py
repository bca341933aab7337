"""Atlassian Document Format (ADF): plain text in, plain text out, without loss.

Jira Cloud's REST API v3 takes and returns rich text — comment bodies, the description,
multi-line text custom fields — as ADF documents (``{"type": "doc", "version": 1, "content":
[...]}``). ticketwarden speaks plain text, so:

* :func:`to_adf` writes one ``paragraph`` per line (an empty line is an empty paragraph, which
  ADF allows); text nodes are never empty, as ADF requires.
* :func:`to_text` reads any document back: text nodes in order, ``hardBreak`` as a line break,
  each block (paragraph, heading, list item, code block…) on a line of its own, mentions and
  emoji by their text. ``to_text(to_adf(s)) == s`` for every string ``s``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["is_adf", "to_adf", "to_text"]

_BLOCKS = frozenset(
    {
        "paragraph",
        "heading",
        "codeBlock",
        "blockquote",
        "listItem",
        "bulletList",
        "orderedList",
        "panel",
        "rule",
        "table",
        "tableRow",
        "tableCell",
        "tableHeader",
        "mediaSingle",
        "mediaGroup",
        "expand",
    }
)
_LEAF_BLOCKS = frozenset({"paragraph", "heading", "codeBlock", "rule", "mediaSingle"})


def to_adf(text: str) -> dict[str, Any]:
    """``text`` as an ADF document: a paragraph per line."""
    content = []
    for line in text.split("\n"):
        paragraph: dict[str, Any] = {"type": "paragraph", "content": []}
        if line:
            paragraph["content"].append({"type": "text", "text": line})
        content.append(paragraph)
    return {"type": "doc", "version": 1, "content": content}


def is_adf(value: Any) -> bool:
    """Whether ``value`` is an ADF document."""
    return isinstance(value, dict) and value.get("type") == "doc" and "content" in value


def to_text(document: Any) -> str:
    """The plain text of an ADF document (a string is returned as it is)."""
    if isinstance(document, str):
        return document
    if not is_adf(document):
        return ""
    lines: list[str] = []
    _blocks(document.get("content") or [], lines)
    return "\n".join(lines)


def _blocks(nodes: list[Any], lines: list[str]) -> None:
    for node in nodes:
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        if kind in _LEAF_BLOCKS:
            lines.append(_inline(node.get("content") or []))
        elif kind in _BLOCKS:
            _blocks(node.get("content") or [], lines)
        else:  # inline content at block level (lenient)
            lines.append(_inline([node]))


def _inline(nodes: list[Any]) -> str:
    parts: list[str] = []
    for node in nodes:
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        if kind == "text":
            parts.append(str(node.get("text") or ""))
        elif kind == "hardBreak":
            parts.append("\n")
        elif kind in ("mention", "emoji", "status", "date", "inlineCard"):
            attrs = node.get("attrs") or {}
            parts.append(str(attrs.get("text") or attrs.get("shortName") or attrs.get("url") or ""))
        elif isinstance(node.get("content"), list):
            parts.append(_inline(node["content"]))
    return "".join(parts)
