"""``pytest_voicecb.strategies``: the Hypothesis strategies, under the name the issue and README use.

The code lives in ``pytest_voicecb.integrations.strategies`` (see there). Importing this module
imports Hypothesis. No library is called ``strategies``, so this name shadows nothing.
"""

from pytest_voicecb.integrations.strategies import (
    bodies,
    callbacks,
    every_variant,
    malformed,
    models,
    register_strategies,
    replies,
)

__all__ = ["bodies", "callbacks", "every_variant", "malformed", "models", "register_strategies", "replies"]
