"""Hypothesis' entry point: ``st.from_type`` strategies for the contract's models.

Hypothesis calls ``_hypothesis_setup_hook`` when it is imported (the ``hypothesis`` entry-point group),
so projects that never import Hypothesis pay nothing. The hook itself only imports the contract: the
strategies module is imported the first time ``st.from_type`` asks for one of the models.
"""

from __future__ import annotations

from typing import Any

__all__ = ["_hypothesis_setup_hook"]


def _resolve(model: type) -> Any:
    """The strategy for ``model``, built when Hypothesis first needs it."""
    from pytest_voicecb.contract import ReplyBody
    from pytest_voicecb.integrations.strategies import models, replies

    if model is ReplyBody:
        return replies()
    return models(getattr(model, "kind", None))


def _hypothesis_setup_hook() -> None:
    """Register the contract's models with Hypothesis (deferred: see ``_resolve``)."""
    from hypothesis import strategies as st

    from pytest_voicecb.contract import CALLBACK_MODELS, Callback, ReplyBody

    models: list[type] = [Callback, *CALLBACK_MODELS.values(), ReplyBody]
    for model in models:
        st.register_type_strategy(model, _resolve)
