"""The escalation handler in-process, and what it dialled as the conformance suite's ``effects``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from escalation.app import Dialler, create_app


@pytest.fixture
def dialler() -> Dialler:
    return Dialler()


@pytest.fixture
def app(dialler: Dialler) -> Flask:
    return create_app(dialler)


@pytest.fixture
def voicecb_target(app: Flask) -> Flask:
    return app


@pytest.fixture
def voicecb_effects(dialler: Dialler) -> Callable[[], object]:
    """What the handler did, for ``--voicecb-conformance``: the calls it placed (a copy, compared before
    and after each duplicate or unprocessable delivery)."""
    return lambda: list(dialler.placed)
