"""Deprecated: moved to ``pytest_voicecb.conformance.explore``; this path goes in the next release."""

from pytest_voicecb import _deprecation
from pytest_voicecb.conformance import explore as _moved
from pytest_voicecb.conformance.explore import *  # noqa: F403 - the names, for type checkers

_deprecation.moved_module(__name__, _moved)
