"""Deprecated: moved to ``pytest_voicecb.conformance.inputs``; this path goes in the next release."""

from pytest_voicecb import _deprecation
from pytest_voicecb.conformance import inputs as _moved
from pytest_voicecb.conformance.inputs import *  # noqa: F403 - the names, for type checkers

_deprecation.moved_module(__name__, _moved)
