"""The demo's tickets: the shipped policy scenarios, replayed many times over, by fictitious
customers of fictitious organizations, at seeded moments of a simulated fortnight.

Each scenario in ``examples/scenarios/`` tells a ticket's life (created, customer replies,
agent replies and resolutions, field changes, silence) to show one rule. A *story* is one such
life re-cast: another organization, the requester its role calls for (an authorized contact,
a certified administrator, someone not on the roster, ...), shifted to a start time of its own.
Together the stories exercise every rule of the policy; the same seed gives the same stories.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from ticketwarden.core.scenario import (
    DEFAULT_ROSTER,
    Scenario,
    Step,
    StepKind,
    TicketSpec,
    _moment,
    load_scenario,
)

ORGANIZATIONS: tuple[tuple[str, str], ...] = (
    ("acme", "Acme Logistics"),
    ("globex", "Globex Manufacturing"),
    ("initech", "Initech Insurance"),
    ("umbrella", "Umbrella Clinics"),
    ("hooli", "Hooli Retail"),
    ("vandelay", "Vandelay Imports"),
)
"""The demo's customer organizations (slug, name): all fictitious."""

ON_CALL = frozenset({"umbrella", "hooli"})
"""Organizations with a contact available around the clock (clinics and retail run 24×7)."""

CERTIFIED_UNTIL = date(2027, 12, 31)
EXPIRED_CERTIFICATION = date(2026, 1, 31)


@dataclass(frozen=True)
class Person:
    """A customer contact and what the roster says about them."""

    email: str
    name: str
    phone: str = ""
    authorized: bool = True
    certified_until: date | None = None
    available_24x7: bool = False


def people(org: str) -> dict[str, Person]:
    """An organization's contacts by role: the roster the demo seeds into every desk."""
    domain = f"{org}.example"
    return {
        "authorized": Person(f"anna@{domain}", "Anna Berger", "+49 30 1234 0"),
        "second": Person(f"ben@{domain}", "Ben Hofmann"),
        "certified": Person(f"cora@{domain}", "Cora Lindqvist", certified_until=CERTIFIED_UNTIL),
        "expired": Person(f"dirk@{domain}", "Dirk Mertens", certified_until=EXPIRED_CERTIFICATION),
        "outsider": Person(f"mallory@{domain}", "Mallory Stone", authorized=False),
    } | (
        {"on_call": Person(f"elsa@{domain}", "Elsa Novak", "+49 30 1234 9", available_24x7=True)}
        if org in ON_CALL
        else {}
    )


@dataclass(frozen=True)
class StoryStep:
    """One step of a story, at an offset from the story's start."""

    offset: timedelta
    step: Step


@dataclass(frozen=True)
class Story:
    """One ticket's life in the demo."""

    index: int
    template: str
    rules: tuple[str, ...]
    org: str
    org_name: str
    requester: Person
    ticket: TicketSpec
    start: datetime
    steps: tuple[StoryStep, ...]
    desk: str = ""

    @property
    def simple(self) -> bool:
        """Only creation, customer replies and silence: every desk can play it."""
        return all(
            s.step.event in (StepKind.CREATED, StepKind.CUSTOMER_REPLY, StepKind.TIME_PASSES)
            for s in self.steps
        )

    @property
    def span(self) -> timedelta:
        return self.steps[-1].offset if self.steps else timedelta(0)


SKIPPED_STEPS = frozenset({StepKind.AGENT_ACTION, StepKind.ESCALATION_REQUEST})
"""Steps a helpdesk's data cannot show (an agent's intent, a form-only escalation request):
the demo leaves them out; the rules they test are shown by other steps and scenarios."""


def templates(directory: Path, policy_keys: Sequence[str] = ("versions",)) -> list[Scenario]:
    """The shipped scenarios the demo can replay: those that run on the default policy, plus
    those whose own policy only adds to ``policy_keys`` sections the demo policy merges in."""
    found = []
    for path in sorted(directory.glob("*.yaml")):
        scenario = load_scenario(path)
        if set(scenario.policy) <= set(policy_keys) and not _conflicting(scenario):
            found.append(scenario)
    return found


def _conflicting(scenario: Scenario) -> bool:
    """A scenario whose policy changes what another scenario relies on (a version *resolved*
    rather than flagged) cannot share the demo's one policy."""
    versions = scenario.policy.get("versions", {})
    return bool(set(versions) - {"end_of_life"})


def demo_policy_overrides(scenarios: Sequence[Scenario]) -> dict[str, Any]:
    """What the demo policy adds to the built-in preset: the templates' end-of-life dates."""
    end_of_life: list[Any] = []
    for scenario in scenarios:
        for entry in scenario.policy.get("versions", {}).get("end_of_life", []):
            if entry not in end_of_life:
                end_of_life.append(entry)
    return {"versions": {"end_of_life": end_of_life}} if end_of_life else {}


def _role(scenario: Scenario) -> str:
    """Which kind of contact the scenario's requester is."""
    requester = scenario.ticket.requester.lower()
    for entry in scenario.roster or []:
        for contact in entry.get("contacts", []):
            if str(contact.get("email", "")).lower() != requester:
                continue
            until = contact.get("certified_until")
            if until is not None:
                expired = date.fromisoformat(str(until)) < scenario.start.date()
                return "expired" if expired else "certified"
            if contact.get("available_24x7"):
                return "on_call"
            return "authorized"
    roster = scenario.roster if scenario.roster is not None else DEFAULT_ROSTER
    listed = {
        str(c.get("email", "")).lower() for entry in roster for c in entry.get("contacts", [])
    }
    return "authorized" if requester in listed else "outsider"


def _recast(text: str, org: str) -> str:
    return text.replace("acme", org).replace("Acme", org.title())


def build_stories(
    scenarios: Sequence[Scenario],
    count: int,
    *,
    start: datetime,
    days: int,
    seed: int,
    desks: Sequence[str],
    rich_desk: str,
) -> list[Story]:
    """``count`` stories cast from the templates in turn (each template at least once when
    ``count`` allows), at seeded start times that leave each story room to finish in ``days``.
    Stories that need agent actions go to ``rich_desk``; simple ones are spread over ``desks``."""
    rng = random.Random(seed)
    stories: list[Story] = []
    order = list(scenarios)
    for index in range(count):
        template = order[index % len(order)]
        role = _role(template)
        # a severity-1 story about asking for a 24×7 contact needs an organization without
        # one; a story about the 24×7 contact needs one with
        if role == "on_call":
            choices = [o for o in ORGANIZATIONS if o[0] in ON_CALL]
        elif template.ticket.severity == 1:
            choices = [o for o in ORGANIZATIONS if o[0] not in ON_CALL]
        else:
            choices = list(ORGANIZATIONS)
        slug, name = choices[rng.randrange(len(choices))]
        person = people(slug)[role]
        steps = tuple(
            StoryStep(_moment(step.at, template.start) - template.start, step)
            for step in template.timeline
            if step.event not in SKIPPED_STEPS
        )
        span = steps[-1].offset if steps else timedelta(0)
        room = max(timedelta(days=days) - span - timedelta(hours=6), timedelta(0))
        # whole minutes, during the first part of the fortnight for long stories
        offset = timedelta(minutes=rng.randrange(int(room.total_seconds() // 60) + 1))
        spec = template.ticket.model_copy(
            update={
                "number": f"demo-{index + 1}",
                "requester": person.email,
                "requester_name": person.name,
                "organization": slug if template.ticket.organization else None,
                "subject": _recast(template.ticket.subject, slug),
                "description": _recast(template.ticket.description, slug),
                "fields": {
                    k: (_recast(v, slug) if v else v) for k, v in template.ticket.fields.items()
                },
            }
        )
        story = Story(
            index=index,
            template=template.name,
            rules=tuple(template.rules),
            org=slug,
            org_name=name,
            requester=person,
            ticket=spec,
            start=start + offset,
            steps=steps,
        )
        # agents' steps and roster details beyond "authorized" play on the rich desk
        plain = story.simple and role in ("authorized", "outsider")
        desk = desks[rng.randrange(len(desks))] if plain else rich_desk
        stories.append(dataclasses.replace(story, desk=desk))
    return stories


def ticket_fields(story: Story) -> dict[str, str]:
    """The story's intake fields, the scenario defaults re-cast for its organization."""
    return {k: _recast(v, story.org) for k, v in story.ticket.fields_with_defaults().items()}


def roster_delta(step: Step, org: str) -> tuple[list[Person], list[str]]:
    """A template's roster change as the demo applies it to one organization: contacts added
    or changed (as :class:`Person`) and e-mails removed — the difference between the default
    roster and the step's, so the organization's other contacts stay as they are."""
    before = {
        str(c["email"]).lower(): c for entry in DEFAULT_ROSTER for c in entry.get("contacts", [])
    }
    after = {
        str(c["email"]).lower(): c for entry in step.roster or [] for c in entry.get("contacts", [])
    }
    changed = [
        Person(
            email=_recast(email, org),
            name=str(c.get("name", "")),
            phone=str(c.get("phone", "")),
        )
        for email, c in after.items()
        if before.get(email) != c
    ]
    removed = [_recast(email, org) for email in before if email not in after]
    return changed, removed
