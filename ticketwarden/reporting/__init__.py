"""``ticketwarden report`` at the edges: reading the store, and writing the report as a terminal
table, CSV, JSON (:mod:`.text`) or one self-contained HTML page with charts (:mod:`.html`).

The numbers themselves are computed by the pure :func:`ticketwarden.core.report.build_report`;
nothing here decides what a number means. :mod:`.html` imports matplotlib, so it is imported
only when an HTML report is asked for.
"""

from ticketwarden.reporting.text import load_report, report_csv, report_json, report_table

__all__ = ["load_report", "report_csv", "report_json", "report_table"]
