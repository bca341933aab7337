"""The report read from the store, and written as a terminal table, CSV or JSON."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from datetime import datetime
from itertools import chain

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from ticketwarden.core.policy import Policy
from ticketwarden.core.report import ALL, Report, TicketRow, build_report
from ticketwarden.core.store import AuditFilter, AuditRow, Store

CSV_HEADER = ("section", "desk", "key", "metric", "value")
"""The CSV is long ("tidy"): one number per line, so every section fits one header."""


def load_report(
    store: Store,
    policy: Policy,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    desks: Sequence[str] = (),
) -> Report:
    """The report over ``[since, until)`` from the store's ticket states and audit trail (of
    ``desks``, or every desk), both streamed."""
    names: Sequence[str | None] = list(desks) or [None]

    def states() -> Iterator[TicketRow]:
        for name in names:
            for desk, ticket_id, state in store.states(name):
                yield TicketRow(desk=desk, ticket_id=ticket_id, state=state)

    audit: Iterator[AuditRow] = chain.from_iterable(
        store.audit(AuditFilter(desk=name, since=since, until=until)) for name in names
    )
    return build_report(states(), audit, policy, since=since, until=until, now=now)


def percent(rate: float | None) -> str:
    """``87 %``, or ``—`` when nothing was decided."""
    return "—" if rate is None else f"{rate * 100:.0f} %"


def period_line(report: Report) -> str:
    """The period in words, for headings."""
    return (
        f"{report.since.isoformat()} to {report.until.isoformat()} (as of "
        f"{report.now.isoformat()}; policy {report.policy!r}, days in {report.timezone})"
    )


TARGET_COLUMNS = (
    "desk",
    "severity",
    "tickets",
    "first response met/missed/pending",
    "first response",
    "updates met/missed/pending",
    "updates",
    "warnings",
    "breaches",
    "updates overdue",
)
ACTIVITY_COLUMNS = (
    "desk",
    "created",
    "resolved",
    "reopened",
    "reopen rate",
    "reminders",
    "auto-resolved",
    "closed for good",
    "escalated (auto)",
    "escalated (asked)",
    "unauthorized",
    "unauthorized rate",
    "unsupported version",
)


def target_cells(report: Report) -> list[list[str]]:
    """The response-target table as text cells (also used by the HTML page)."""
    return [
        [
            row.desk,
            row.severity,
            str(row.tickets),
            f"{row.first_response.met}/{row.first_response.missed}/{row.first_response.pending}",
            percent(row.first_response.rate),
            f"{row.update_interval.met}/{row.update_interval.missed}/{row.update_interval.pending}",
            percent(row.update_interval.rate),
            str(row.warnings),
            str(row.breaches),
            str(row.updates_overdue),
        ]
        for row in report.targets
    ]


def activity_cells(report: Report) -> list[list[str]]:
    """The policy-activity table as text cells (also used by the HTML page)."""
    return [
        [
            row.desk,
            str(row.tickets_created),
            str(row.resolved),
            str(row.reopened),
            percent(row.reopen_rate),
            str(row.reminders),
            str(row.auto_resolves),
            str(row.final_closes),
            str(row.escalations_automatic),
            str(row.escalations_requested),
            str(row.unauthorized),
            percent(row.unauthorized_rate),
            str(row.unsupported_version),
        ]
        for row in report.activity
    ]


def _table(title: str, columns: Sequence[str], cells: list[list[str]], first: str) -> Table:
    table = Table(*columns, title=title, title_justify="left")
    for cell in cells:
        total = cell[0] == ALL or (first == "severity" and cell[1] == ALL)
        table.add_row(*cell, style="bold" if total else None)
    return table


def report_table(report: Report) -> RenderableType:
    """The report as rich tables: response targets, policy activity, unsupported versions."""
    parts: list[RenderableType] = [
        Text(f"ticketwarden report: {period_line(report)}"),
        _table("Response targets", TARGET_COLUMNS, target_cells(report), "severity"),
        _table("Policy activity", ACTIVITY_COLUMNS, activity_cells(report), "desk"),
    ]
    if report.unsupported_versions:
        versions = Table("version", "tickets", title="Unsupported versions", title_justify="left")
        for version, count in report.unsupported_versions.items():
            versions.add_row(version, str(count))
        parts.append(versions)
    parts += [Text(f"note: {note}") for note in report.notes]
    return Group(*parts)


def table_text(report: Report, width: int = 200) -> str:
    """The tables as plain text (``--format table --output PATH``)."""
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, highlight=False).print(
        report_table(report)
    )
    return buffer.getvalue()


def report_json(report: Report) -> str:
    """The report as JSON (the :class:`~ticketwarden.core.report.Report` model)."""
    return report.model_dump_json(indent=2) + "\n"


def _value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def csv_rows(report: Report) -> Iterator[tuple[str, str, str, str, str]]:
    """One ``(section, desk, key, metric, value)`` per number; ``key`` is the severity, the
    version or the day; rates are fractions (0..1), empty when nothing was decided."""
    for name in ("since", "until", "now"):
        yield ("period", ALL, "", name, getattr(report, name).isoformat())
    for t in report.targets:
        for metric, value in (
            ("tickets", t.tickets),
            ("first_response_met", t.first_response.met),
            ("first_response_missed", t.first_response.missed),
            ("first_response_pending", t.first_response.pending),
            ("first_response_rate", t.first_response.rate),
            ("update_met", t.update_interval.met),
            ("update_missed", t.update_interval.missed),
            ("update_pending", t.update_interval.pending),
            ("update_rate", t.update_interval.rate),
            ("warnings", t.warnings),
            ("breaches", t.breaches),
            ("updates_overdue", t.updates_overdue),
        ):
            yield ("targets", t.desk, t.severity, metric, _value(value))
    for a in report.activity:
        for metric, value in a.model_dump(exclude={"desk"}).items():
            yield ("activity", a.desk, "", metric, _value(value))
    for version, count in report.unsupported_versions.items():
        yield ("unsupported_versions", ALL, version, "tickets", str(count))
    for day in report.daily:
        for metric, value in day.model_dump(exclude={"day"}).items():
            yield ("daily", ALL, day.day.isoformat(), metric, _value(value))


def report_csv(report: Report) -> str:
    """The report as CSV; see :func:`csv_rows`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_rows(report))
    return buffer.getvalue()
