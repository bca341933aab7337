"""Hostile input at the webhook endpoint: fuzzed headers and bodies never get a 5xx, and nothing
unsigned is ever stored. A second property signs fuzzed bodies with the real secret, so they
reach the connector's parser: still never a 5xx."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from ticketwarden.core.connector import hmac_sha256

from .test_sidecar import SECRET, Rig

HEADER_NAMES = st.sampled_from(
    [
        "content-type",
        "content-length",
        "x-zendesk-webhook-signature",
        "x-zendesk-webhook-signature-timestamp",
        "x-zendesk-webhook-invocation-id",
        "x-zendesk-webhook-id",
        "x-request-id",
        "user-agent",
    ]
)
HEADER_VALUES = st.one_of(
    st.text(
        alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=0, max_size=80
    ),
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "2026-11-23T09:00:00Z",
            "9999999999",
            "-1",
            "A" * 44,
        ]
    ),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=12,
)
PAYLOADS = st.one_of(
    st.binary(max_size=300),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {},
        optional={
            "ticket_id": st.one_of(st.text(max_size=20), st.integers(), st.none()),
            "event": st.one_of(st.sampled_from(["created", "updated", "x"]), st.integers()),
            "updated_at": st.one_of(st.text(max_size=30), st.integers()),
            "status": st.one_of(st.text(max_size=10), st.none()),
        },
    ).map(lambda d: json.dumps(d).encode()),
)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path: Path = tmp_path_factory.mktemp("fuzz") / "tw.db"
    made = Rig(f"sqlite:///{path}")
    made.add()
    yield made
    made.store.close()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=8), body=PAYLOADS)
def test_fuzzed_unsigned_deliveries_get_a_4xx_and_store_nothing(
    rig: Rig, headers: dict[str, str], body: bytes
) -> None:
    headers.pop("content-length", None)  # httpx sets the true length; a lying one is tested apart
    response = asyncio.run(rig.post(headers, body))
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]
    assert rig.inbox.rows() == []


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=PAYLOADS, invocation=st.text(max_size=40))
def test_fuzzed_bodies_signed_with_the_secret_never_get_a_5xx(
    rig: Rig, body: bytes, invocation: str
) -> None:
    stamp = rig.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = base64.b64encode(hmac_sha256(SecretStr(SECRET), stamp.encode(), body)).decode()
    headers = {
        "content-type": "application/json",
        "x-zendesk-webhook-signature": signature,
        "x-zendesk-webhook-signature-timestamp": stamp,
        "x-zendesk-webhook-invocation-id": invocation.encode("ascii", "ignore").decode()[:40],
    }
    response = asyncio.run(rig.post(headers, body))
    assert response.status_code in (202, 400, 401, 409), response.text
    if response.status_code != 202:
        assert response.json()["error"]
