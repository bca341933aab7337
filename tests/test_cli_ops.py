"""The operator commands end to end: init, check (--ping), explain, audit (--verify), and two
sync processes racing on one PostgreSQL store."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .pg import fresh_database, postgres_or_skip
from .test_sync_e2e import AS_OF, Emulator, environment, sync, write_config


def tw(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ticketwarden", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    running = Emulator(seed=11, tickets=12)
    yield running
    running.stop()


def test_init_writes_a_starter_that_check_accepts(tmp_path: Path) -> None:
    env = environment(tmp_path, tmp_path / "ticketwarden.toml")
    del env["TICKETWARDEN_CONFIG"]
    first = tw(env, "init", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "ticketwarden.toml").read_text().startswith("#")
    again = tw(env, "init", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    assert tw(env, "init", "--force", cwd=tmp_path).returncode == 0
    check = tw(env, "check", cwd=tmp_path)
    assert check.returncode == 0 and "valid" in check.stdout, check.stderr


def test_check_ping_says_exactly_what_fails(tmp_path: Path, emulator: Emulator) -> None:
    env = environment(tmp_path, write_config(tmp_path, emulator.url))
    ok = tw(env, "check", "--ping")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok   zd" in ok.stdout
    env["TICKETWARDEN_DESK_ZD_API_TOKEN"] = "wrong"
    bad = tw(env, "check", "--ping")
    assert bad.returncode == 1
    assert "FAIL zd" in bad.stdout and "wrong" not in bad.stdout + bad.stderr
    del env["TICKETWARDEN_DESK_ZD_API_TOKEN"]
    missing = tw(env, "check", "--ping")
    assert missing.returncode == 1 and "TICKETWARDEN_DESK_ZD_API_TOKEN" in missing.stdout


def test_explain_is_read_only_and_says_what_fires_when(tmp_path: Path, emulator: Emulator) -> None:
    env = environment(tmp_path, write_config(tmp_path, emulator.url))
    before = emulator.state()
    ticket = sorted(before)[0]
    result = tw(env, "explain", "zd", ticket, "--as-of", AS_OF[0])
    assert result.returncode == 0, result.stderr
    assert "on_ticket_created: ran" in result.stdout
    assert "next " in result.stdout and "fired" in result.stdout
    assert emulator.state() == before


def test_audit_filters_formats_and_verifies_the_chain(tmp_path: Path) -> None:
    running = Emulator(seed=12, tickets=8)
    try:
        env = environment(tmp_path, write_config(tmp_path, running.url))
        assert sync(env, AS_OF[0]).returncode == 0
        jsonl = tw(env, "audit", "--format", "jsonl", "--rule", "INTAKE-2")
        rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
        assert rows and {r["rule_id"] for r in rows} == {"INTAKE-2"}
        csv_out = tw(env, "audit", "--format", "csv", "--desk", "zd")
        assert csv_out.stdout.splitlines()[0].startswith("id,at,actor,desk")
        assert tw(env, "audit", "--verify").returncode == 0
        database = tmp_path / "tw.db"
        with sqlite3.connect(database) as db:
            db.execute("UPDATE audit_log SET reason = 'nothing happened' WHERE id = 3")
        broken = tw(env, "audit", "--verify")
        assert broken.returncode == 1 and "row 3" in broken.stderr
        assert tw(env, "audit", "--format", "xml").returncode == 2
    finally:
        running.stop()


def test_two_syncs_at_once_on_postgresql_apply_every_action_once(tmp_path: Path) -> None:
    url = postgres_or_skip()
    reference = Emulator(seed=13, tickets=20)
    racing = Emulator(seed=13, tickets=20)
    try:
        with fresh_database(url) as ref_db, fresh_database(url) as race_db:
            (tmp_path / "ref").mkdir()
            ref_env = environment(tmp_path / "ref", write_config(tmp_path / "ref", reference.url))
            ref_env["TICKETWARDEN_DATABASE_URL"] = ref_db
            env = environment(tmp_path, write_config(tmp_path, racing.url))
            env["TICKETWARDEN_DATABASE_URL"] = race_db
            for as_of in AS_OF:
                assert sync(ref_env, as_of, emulator=reference).returncode == 0
                racing.set_clock(as_of)
                both = [
                    subprocess.Popen(
                        [sys.executable, "-m", "ticketwarden", "sync", "--as-of", as_of],
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                    for _ in range(2)
                ]
                outputs = [p.communicate(timeout=120) for p in both]
                assert [p.returncode for p in both] == [0, 0], outputs
            got = racing.state()
            for ticket in got.values():
                assert len(ticket["comments"]) == len(set(ticket["comments"])), ticket
            assert got == reference.state()
    finally:
        reference.stop()
        racing.stop()
