"""The sync job end to end, as operators run it: `ticketwarden sync` in its own process against
the Zendesk emulator on a loopback port — including being killed with SIGKILL at random points.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w

from ticketwarden.plugins.zendesk import fixtures
from ticketwarden.plugins.zendesk.connector import ZendeskConnector

# Simulated days: the emulator's clock is moved to each step before `sync --as-of` runs, so the
# helpdesk stamps changes with the time the engine evaluates at. Steps sit an hour past the
# policy's 2- and 7-day marks, so seconds of real time between requests cannot tip a timer.
AS_OF = ["2026-11-24T10:00:00+00:00", "2026-11-26T11:00:00+00:00", "2026-12-02T11:00:00+00:00"]
AUTH = (f"{fixtures.AGENT_EMAIL}/token", fixtures.API_TOKEN)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Emulator:
    """`ticketwarden emulate zendesk` in a subprocess."""

    def __init__(self, seed: int, tickets: int, rate_limit: int | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ticketwarden",
                "emulate",
                "zendesk",
                "--port",
                str(self.port),
                "--seed",
                str(seed),
                "--tickets",
                str(tickets),
                "--control",
                *(["--rate-limit", str(rate_limit)] if rate_limit else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/api/v2/users/me.json", auth=AUTH, timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("the emulator did not start")

    def set_clock(self, at: str) -> None:
        """Move the emulator to the simulated time the sync job evaluates at."""
        response = httpx.post(f"{self.url}/_emulator/clock", json={"at": at}, timeout=5)
        response.raise_for_status()

    def state(self) -> dict[str, Any]:
        """Every ticket's status, priority, tags and ticketwarden's comments."""
        tickets = httpx.get(f"{self.url}/api/v2/tickets.json?per_page=100", auth=AUTH).json()
        result = {}
        for t in tickets["tickets"]:
            comments = httpx.get(
                f"{self.url}/api/v2/tickets/{t['id']}/comments.json", auth=AUTH
            ).json()["comments"]
            mine = sorted(c["body"] for c in comments if c["author_id"] == fixtures.AGENT_ID)
            result[str(t["id"])] = {
                "status": t["status"],
                "priority": t["priority"],
                "tags": sorted(t["tags"]),
                "group": t["group_id"],
                "comments": mine,
            }
        return result

    def stop(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=10)


def write_config(directory: Path, base_url: str) -> Path:
    desk, _ = ZendeskConnector.conformance_config(base_url)
    data = desk.model_dump(mode="json", exclude={"name"}, exclude_defaults=True)
    data["http"] = {"budget": {"requests_per_minute": 100000, "share": 1.0, "burst": 1000}}
    data["options"] = {**data.get("options", {}), "incremental_requests_per_minute": 600}
    config = {"desks": {"zd": data}}
    path = directory / "ticketwarden.toml"
    path.write_text(tomli_w.dumps(config), encoding="utf-8")
    return path


def environment(directory: Path, config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETWARDEN_")}
    env.update(
        TICKETWARDEN_CONFIG=str(config),
        TICKETWARDEN_DATABASE_URL=f"sqlite:///{directory / 'tw.db'}",
        TICKETWARDEN_DESK_ZD_EMAIL=fixtures.AGENT_EMAIL,
        TICKETWARDEN_DESK_ZD_API_TOKEN=fixtures.API_TOKEN,
        TICKETWARDEN_DESK_ZD_WEBHOOK_SECRET=fixtures.WEBHOOK_SECRET,
    )
    return env


def sync(
    env: dict[str, str], as_of: str, *extra: str, emulator: Emulator | None = None
) -> subprocess.CompletedProcess[str]:
    if emulator is not None:
        emulator.set_clock(as_of)
    return subprocess.run(
        [sys.executable, "-m", "ticketwarden", "sync", "--as-of", as_of, *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Emulator, dict[str, str]]]:
    emulator = Emulator(seed=5, tickets=25)
    env = environment(tmp_path, write_config(tmp_path, emulator.url))
    yield emulator, env
    emulator.stop()


def test_sync_applies_the_policy_and_logs_one_line_per_action(
    setup: tuple[Emulator, dict[str, str]],
) -> None:
    emulator, env = setup
    result = sync(env, AS_OF[0])
    assert result.returncode == 0, result.stdout + result.stderr
    records = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    lines = [r for r in records if "summary" not in r]
    assert lines and {"desk", "ticket", "rule", "action", "outcome"} <= set(lines[0])
    assert {line["outcome"] for line in lines} <= {"applied", "unchanged", "unsupported"}
    (summary,) = [r for r in records if "summary" in r]
    assert summary["tickets"] == 25 and summary["failures"] == []
    state = emulator.state()
    assert any(t["comments"] for t in state.values()), "the policy commented somewhere"
    again = sync(env, AS_OF[0])
    assert again.returncode == 0
    repeated = [x for x in again.stdout.splitlines() if x.startswith('{"at"')]
    assert not repeated, "nothing twice"
    assert emulator.state() == state


def test_dry_run_changes_nothing(setup: tuple[Emulator, dict[str, str]]) -> None:
    emulator, env = setup
    before = emulator.state()
    result = sync(env, AS_OF[0], "--dry-run")
    assert result.returncode == 0, result.stderr
    planned = [json.loads(x) for x in result.stdout.splitlines() if x.startswith('{"at"')]
    assert planned and {p["outcome"] for p in planned} == {"planned"}
    assert emulator.state() == before


def test_unknown_desk_and_bad_time_exit_2(setup: tuple[Emulator, dict[str, str]]) -> None:
    _, env = setup
    assert sync(env, AS_OF[0], "--desk", "nope").returncode == 2
    bad = sync(env, "yesterday")
    assert bad.returncode == 2 and "ISO time" in bad.stderr and "Traceback" not in bad.stderr


def _diff(expected: dict[str, Any], got: dict[str, Any]) -> str:
    lines = []
    for tid in sorted(set(expected) | set(got)):
        a, b = expected.get(tid, {}), got.get(tid, {})
        for key in sorted(set(a) | set(b)):
            if a.get(key) == b.get(key):
                continue
            if key == "comments":
                missing = sorted(set(a[key]) - set(b[key]))
                extra = sorted(set(b[key]) - set(a[key]))
                lines.append(f"ticket {tid} comments missing {missing!r}, extra {extra!r}")
            else:
                lines.append(f"ticket {tid} {key}: expected {a.get(key)!r}, got {b.get(key)!r}")
    return "\n".join(lines)


def test_killed_at_random_points_the_rerun_ends_in_the_same_state(tmp_path: Path) -> None:
    """SIGKILL mid-run, several times, then finish: the helpdesk ends exactly as after an
    uninterrupted run over the same simulated weeks, with no comment twice."""
    reference = Emulator(seed=9, tickets=25)
    victim = Emulator(seed=9, tickets=25)
    try:
        (tmp_path / "ref").mkdir()
        (tmp_path / "kill").mkdir()
        ref_env = environment(tmp_path / "ref", write_config(tmp_path / "ref", reference.url))
        env = environment(tmp_path / "kill", write_config(tmp_path / "kill", victim.url))
        for as_of in AS_OF:
            assert sync(ref_env, as_of, emulator=reference).returncode == 0
        rng = random.Random(20261126)
        for as_of in AS_OF:
            victim.set_clock(as_of)
            for _ in range(3):
                process = subprocess.Popen(
                    [sys.executable, "-m", "ticketwarden", "sync", "--as-of", as_of],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(rng.uniform(0.3, 2.0))
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=10)
            finished = sync(env, as_of)
            assert finished.returncode == 0, finished.stderr
        expected, got = reference.state(), victim.state()
        for ticket in got.values():
            assert len(ticket["comments"]) == len(set(ticket["comments"])), ticket
        assert got == expected, _diff(expected, got)
    finally:
        reference.stop()
        victim.stop()


def test_every_repeats_until_sigterm_and_finishes_cleanly(
    setup: tuple[Emulator, dict[str, str]],
) -> None:
    emulator, env = setup
    emulator.set_clock(AS_OF[0])
    process = subprocess.Popen(
        [sys.executable, "-m", "ticketwarden", "sync", "--every", "1s"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    summaries = 0
    assert process.stdout is not None
    while summaries < 2 and time.monotonic() < deadline:
        line = process.stdout.readline()
        summaries += line.startswith('{"summary"')
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert summaries >= 2, "two passes ran"
    assert process.returncode == 0
