"""The smallest use of pytest-voicecb: realistic payloads that the contract accepts."""

from pytest_voicecb import PayloadFactory, parse_callback


def test_a_payload_is_a_valid_callback(voicecb_payload: PayloadFactory) -> None:
    callback = parse_callback(voicecb_payload.answered())
    assert callback.kind == "voiceprompt_callback"
    assert int(callback.start_calltime) <= int(callback.accept_time) <= int(callback.end_calltime)
