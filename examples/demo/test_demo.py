"""The smallest use of pytest-voicecb: realistic payloads that the contract accepts, and the ones it must not.

Rerun with the seed printed in pytest's header (``--voicecb-seed N``) to get the very same payloads.
"""

import pytest

from pytest_voicecb import MISSING, PayloadFactory, parse_callback
from pytest_voicecb.contract import CallbackError, PromptCallback


def test_a_payload_is_a_valid_callback(voicecb_payload: PayloadFactory) -> None:
    callback = parse_callback(voicecb_payload.answered())
    assert isinstance(callback, PromptCallback)
    assert int(callback.start_calltime) <= int(callback.accept_time) <= int(callback.end_calltime)


def test_every_documented_variant_is_valid(voicecb_payload: PayloadFactory) -> None:
    for variant in voicecb_payload.variants():
        parse_callback(variant.payload)


def test_a_missing_field_is_named_in_the_error(voicecb_payload: PayloadFactory) -> None:
    with pytest.raises(CallbackError) as caught:
        parse_callback(voicecb_payload.failure(failure_code=MISSING))
    assert [problem.path for problem in caught.value.problems] == ["$.voice_failure_callback.failure_code"]
