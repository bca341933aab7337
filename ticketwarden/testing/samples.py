"""Seeded, realistic sample tickets for emulators (``ticketwarden emulate --seed``)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from ticketwarden.core.model import Contact, Organization, Severity, Status, Ticket

_SUBJECTS = (
    "Agents offline after the server update",
    "Patch scan fails on several machines",
    "Dashboard totals differ from the exported report",
    "Remote control sessions do not connect",
    "Backup job reports success but no files",
    "Monitoring alarms arrive twice",
    "Training for our new administrators",
    "Licence count looks wrong",
)
_MODULES = ("Agent", "Patch Management", "Reporting", "Remote Control", "Backup", "Monitoring")
_PEOPLE = (
    ("anna@acme.example", "Anna Berger", "acme"),
    ("ben@acme.example", "Ben Hofmann", "acme"),
    ("chloe@globex.example", "Chloé Martin", "globex"),
    ("dev@initech.example", "Devika Rao", "initech"),
    ("mallory@acme.example", "Mallory Stone", "acme"),
)


def sample_tickets(seed: int, count: int, now: datetime | None = None) -> list[Ticket]:
    """``count`` varied tickets, the same for the same seed: mixed severities and statuses,
    some with missing intake fields, from authorized and unknown requesters."""
    rng = random.Random(seed)
    end = now or datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    tickets = []
    for i in range(count):
        email, name, org = rng.choice(_PEOPLE)
        created = end - timedelta(minutes=rng.randrange(10, 60 * 24 * 14))
        fields = {
            "server_url": f"https://kaseya.{org}.example",
            "module": rng.choice(_MODULES),
            "steps": "1. Open the console. 2. Run the job. 3. Compare the result.",
            "sample_machines": f"{org}.hq / ws-{rng.randrange(1, 999):04d}",
            "version": rng.choice(("10.1.2", "10.1.0", "10.0.5", "9.5.3")),
        }
        for key in list(fields):
            if rng.random() < 0.08:
                del fields[key]
        tickets.append(
            Ticket(
                id=str(i + 1),
                number=f"#{1000 + i}",
                subject=rng.choice(_SUBJECTS),
                description="Since yesterday the problem occurs on all machines. "
                "Expected: it works as before.",
                status=rng.choice(
                    (Status.NEW, Status.OPEN, Status.OPEN, Status.WAITING_ON_CUSTOMER)
                ),
                severity=rng.choice(
                    (
                        Severity.CRITICAL,
                        Severity.HIGH,
                        Severity.MEDIUM,
                        Severity.MEDIUM,
                        Severity.LOW,
                    )
                ),
                requester=Contact(id=f"u-{email}", name=name, email=email),
                organization=Organization(id=org, name=org.title()),
                fields=fields,
                created_at=created,
                updated_at=created + timedelta(minutes=rng.randrange(0, 600)),
            )
        )
    return tickets
