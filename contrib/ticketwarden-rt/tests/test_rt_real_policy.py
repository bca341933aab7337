"""The support policy end to end on a real RT 5, driven by `ticketwarden sync --as-of` in its
own process, and checked by reading RT back through its REST API with plain httpx.

A customer e-mails a ticket without the intake fields: it is put on hold (``stalled``) with one
reply naming what is missing (INTAKE-1). Silent, it is reminded after 2 and 5 days and resolved
"no response" after 7 (CLOSE-3). The customer's clarification within the reopen window reopens
it (CLOSE-4). RT stamps changes with its own clock, so the simulated days lie ahead of it: the
first pass runs minutes after the e-mail, the later ones 2, 5, 7 and 8 days (plus an hour of
margin) later — every timer counts from the pass that started it, not from RT's stamps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tomli_w
from rt_live import LiveRT, live_rt, wait_until_next_second
from ticketwarden_rt.emulator import WEBHOOK_SECRET, desk_config

CUSTOMER = "anna@acme.example"


def _config(directory: Path, rt: LiveRT, queue: str) -> dict[str, str]:
    desk, _ = desk_config(rt.url, queues=(queue,), settle_seconds=0.0)
    data = desk.model_dump(mode="json", exclude={"name"}, exclude_defaults=True)
    data["http"] = {"budget": {"requests_per_minute": 100000, "share": 1.0, "burst": 1000}}
    path = directory / "ticketwarden.toml"
    path.write_text(tomli_w.dumps({"desks": {"rt": data}}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETWARDEN_")}
    env.update(
        TICKETWARDEN_CONFIG=str(path),
        TICKETWARDEN_DATABASE_URL=f"sqlite:///{directory / 'tw.db'}",
        TICKETWARDEN_DESK_RT_USERNAME=rt.user,
        TICKETWARDEN_DESK_RT_PASSWORD=rt.password,
        TICKETWARDEN_DESK_RT_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    return env


def _sync(env: dict[str, str], as_of: datetime) -> list[dict[str, object]]:
    run = subprocess.run(
        [sys.executable, "-m", "ticketwarden", "sync", "--as-of", as_of.isoformat()],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    records = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    (summary,) = [r for r in records if "summary" in r]
    assert summary["failures"] == [], summary
    return [r for r in records if "summary" not in r]


def _ours(rt: LiveRT, ticket_id: str) -> list[dict[str, str]]:
    """ticketwarden's messages on the ticket: the ones RT records as its user's."""
    return [m for m in rt.messages(ticket_id) if m["creator"] == rt.user and m["type"] != "Create"]


@pytest.fixture
def rt() -> LiveRT:
    return live_rt()


def test_intake_hold_reminders_auto_resolve_and_reopen(rt: LiveRT, tmp_path: Path) -> None:
    queue = rt.new_queue()
    env = _config(tmp_path, rt, queue)
    rt.mail(
        queue,
        CUSTOMER,
        "Dashboard totals differ from the exported report",
        "The dashboard shows 120 devices, the export 118. Expected: the same number.",
    )
    (tid,) = rt.search(f"Queue = '{queue}'")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)

    # INTAKE-1: held for the customer, with one reply naming every missing item
    _sync(env, start)
    assert rt.ticket(tid)["Status"] == "stalled"
    (hold,) = [m for m in _ours(rt, tid) if "need the following information" in m["text"]]
    assert hold["type"] == "Correspond", hold  # public: the customer must read it
    for label in ("Server", "Version", "Steps"):
        assert label.lower() in hold["text"].lower(), hold["text"]
    assert _sync(env, start) == [], "a second pass at the same time does nothing"

    # CLOSE-3: two reminders, then resolved for lack of response
    said = len(_ours(rt, tid))
    _sync(env, start + timedelta(days=2, hours=1))
    reminders = [m for m in _ours(rt, tid) if "reminder 1 of 2" in m["text"]]
    assert len(reminders) == 1 and reminders[0]["type"] == "Correspond", _ours(rt, tid)
    _sync(env, start + timedelta(days=5, hours=1))
    assert len([m for m in _ours(rt, tid) if "reminder 2 of 2" in m["text"]]) == 1
    assert rt.ticket(tid)["Status"] == "stalled"
    _sync(env, start + timedelta(days=7, hours=1))
    assert rt.ticket(tid)["Status"] == "resolved"
    assert rt.custom(tid)["Resolution"] == ["no_response"]
    assert any("now resolved" in m["text"] for m in _ours(rt, tid)[said:]), _ours(rt, tid)

    # CLOSE-4: a clarification inside the reopen window reopens the ticket
    wait_until_next_second()
    rt.reply(tid, CUSTOMER, "Sorry for the delay: the server is https://kaseya.acme.example.")
    assert rt.ticket(tid)["Status"] == "resolved", "RT itself must not reopen (scrip disabled)"
    lines = _sync(env, start + timedelta(days=8))
    assert rt.ticket(tid)["Status"] == "open", lines
    assert any(line.get("rule") == "CLOSE-4" for line in lines), lines
    texts = [m["text"] for m in _ours(rt, tid)]
    assert len(texts) == len(set(texts)), f"a message was sent twice: {texts}"
