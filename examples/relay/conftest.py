"""The relay forwards to the recording server; the provider-facing side is the target of the suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_voicecb import CallbackServer
from relay.relay import Relay


@pytest.fixture
def relay(voicecb_server: CallbackServer) -> Iterator[Relay]:
    """A relay whose only customer is the recording server; short backoff so retries take milliseconds."""
    with Relay(lambda kind, fields: [voicecb_server.url], attempts=4, backoff=0.01, timeout=2.0) as relay:
        yield relay


@pytest.fixture
def voicecb_target(relay: Relay) -> Relay:
    return relay
