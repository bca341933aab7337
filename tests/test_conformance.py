"""The conformance suite passes on a correct connector and catches each classic bug.

ToyDesk (``tests/toydesk.py``) is a minimal connector built on the public SDK only; the broken
variants (``tests/toydesk_broken.py``) each carry one bug, and must fail exactly the standard
test that exists to catch it — no more, no fewer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ticketwarden.testing.conformance import connector_test_class

from .toydesk import ToyConnector

ROOT = Path(__file__).resolve().parents[1]

TestToyDeskConformance = connector_test_class(ToyConnector)

BROKEN = {
    "ResendsTimedOutComments": {"test_timed_out_comment_creation_is_not_duplicated"},
    "IgnoresRetryAfter": {"test_honours_retry_after"},
    "LosesTicketsAtCursorBoundary": {"test_cursor_resumption_loses_and_repeats_nothing"},
    "AcceptsTamperedWebhooks": {"test_rejects_a_bad_webhook[tampered]"},
}


@pytest.mark.parametrize(("name", "expected"), sorted(BROKEN.items()))
def test_a_broken_connector_fails_exactly_the_test_that_catches_it(
    pytester: pytest.Pytester, name: str, expected: set[str]
) -> None:
    pytester.syspathinsert(ROOT)
    pytester.makepyfile(
        test_broken=f"""
from tests.toydesk_broken import {name}
from ticketwarden.testing.conformance import connector_test_class

TestBroken = connector_test_class({name})
"""
    )
    recorder = pytester.inline_run("-p", "no:cacheprovider")
    passed, _, failed = recorder.listoutcomes()
    failed_names = {report.nodeid.split("::")[-1] for report in failed}
    assert failed_names == expected
    assert len(passed) > 10, "the other standard tests must still pass"
