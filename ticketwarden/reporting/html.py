"""The report as one self-contained HTML page: tables, and charts drawn by matplotlib as inline
SVG — no script, no stylesheet, font or image to fetch, so the file opens anywhere offline and
can be mailed or archived as it is.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ticketwarden.core.report import ALL, Report
from ticketwarden.reporting.text import (
    ACTIVITY_COLUMNS,
    TARGET_COLUMNS,
    activity_cells,
    percent,
    period_line,
    target_cells,
)

_COLORS = ("#1b6ca8", "#e0a526", "#c0392b", "#7d3c98", "#16a085", "#566573")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1c2833; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.75rem 0; font-size: 0.85rem; }
th, td { border: 1px solid #d5d8dc; padding: 0.25rem 0.5rem; text-align: right; }
th { background: #f2f3f4; } td:first-child, th:first-child { text-align: left; }
tr.total td { font-weight: bold; }
figure { margin: 0.5rem 0; } figure svg { max-width: 100%; height: auto; }
p.note { color: #7b241c; }
"""


def _svg(figure: Figure) -> str:
    """The figure as an ``<svg>`` element to inline (without the XML prolog and doctype)."""
    buffer = io.StringIO()
    with matplotlib.rc_context(
        {
            "svg.fonttype": "path",  # glyphs as paths: no font needed where the file is opened
            "svg.hashsalt": "ticketwarden-report",  # stable ids: same report, same bytes
        }
    ):
        figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def attainment_chart(report: Report) -> str:
    """Grouped bars: share of first-response and update targets met, per severity (all
    desks); a severity with nothing decided yet shows no bar and says so."""
    rows = [r for r in report.targets if r.desk == ALL and r.severity != ALL]
    labels = [f"severity {r.severity}" for r in rows]
    figure = Figure(figsize=(7.0, 3.2))
    axes = figure.add_subplot()
    width = 0.38
    series = (
        ("first response", [r.first_response.rate for r in rows]),
        ("update interval", [r.update_interval.rate for r in rows]),
    )
    for n, (name, rates) in enumerate(series):
        positions = [i + (n - 0.5) * width for i in range(len(rows))]
        heights = [0.0 if rate is None else rate * 100 for rate in rates]
        bars = axes.bar(positions, heights, width, label=name, color=_COLORS[n])
        axes.bar_label(bars, labels=[percent(rate) for rate in rates], fontsize=8, padding=2)
    axes.set_xticks(range(len(rows)), labels)
    axes.set_ylim(0, 115)
    axes.set_ylabel("% of targets met")
    axes.set_title("Response-target attainment by severity")
    axes.legend(loc="upper right", fontsize=8, frameon=False, ncols=2)
    axes.spines[["top", "right"]].set_visible(False)
    return _svg(figure)


def daily_chart(report: Report) -> str:
    """Stacked bars: the policy's events per day."""
    series = (
        ("warnings", [d.warnings for d in report.daily]),
        ("breaches", [d.breaches for d in report.daily]),
        ("updates overdue", [d.updates_overdue for d in report.daily]),
        ("reminders", [d.reminders for d in report.daily]),
        ("auto-resolved", [d.auto_resolves for d in report.daily]),
        ("escalations", [d.escalations for d in report.daily]),
    )
    days = [d.day.isoformat()[5:] for d in report.daily]
    figure = Figure(figsize=(9.0, 3.2))
    axes = figure.add_subplot()
    bottom = [0] * len(days)
    for (name, counts), color in zip(series, _COLORS, strict=True):
        axes.bar(range(len(days)), counts, 0.8, bottom=bottom, label=name, color=color)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    step = max(1, len(days) // 15)
    axes.set_xticks(range(0, len(days), step), days[::step], rotation=45, ha="right")
    axes.set_ylim(0, max([*bottom, 1]) * 1.15)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("events")
    axes.set_title(f"Policy events per day ({report.timezone})")
    axes.legend(loc="upper left", fontsize=8, frameon=False, ncols=3)
    axes.spines[["top", "right"]].set_visible(False)
    return _svg(figure)


def _html_table(columns: Sequence[str], cells: list[list[str]], total_at: int) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for cell in cells:
        css = ' class="total"' if cell[total_at] == ALL else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cell) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def report_html(report: Report) -> str:
    """The whole page."""
    title = f"ticketwarden report {report.since.date()} – {report.until.date()}"
    versions = ""
    if report.unsupported_versions:
        cells = [[v, str(n)] for v, n in report.unsupported_versions.items()]
        versions = "<h2>Unsupported versions</h2>" + _html_table(("version", "tickets"), cells, 0)
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in report.notes)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{html.escape(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(period_line(report))}</p>
{notes}
<h2>Response targets</h2>
<figure>{attainment_chart(report)}</figure>
{_html_table(TARGET_COLUMNS, target_cells(report), 1)}
<h2>Policy activity</h2>
<figure>{daily_chart(report)}</figure>
{_html_table(ACTIVITY_COLUMNS, activity_cells(report), 0)}
{versions}
</body>
</html>
"""


def write_html(report: Report, path: Path) -> None:
    """Write the page to ``path``."""
    path.write_text(report_html(report), encoding="utf-8")
