"""The kind registry: one entry per callback kind, and everything that lists kinds reads it.

The proof is a fifth kind (``voicetts_callback``, a text-to-speech call's status, shaped like a prompt)
registered for one test, which then gets payloads, variants, a malformed corpus, Hypothesis strategies,
input classes, command-line help and a conformance run over real HTTP with no other change; and the
registry is the real one again afterwards.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import given, settings

from pytest_voicecb import contract
from pytest_voicecb.cli import build_parser
from pytest_voicecb.conformance import run_conformance
from pytest_voicecb.conformance.checklist import checks
from pytest_voicecb.conformance.inputs import classify
from pytest_voicecb.contract import (
    CALLBACK_MODELS,
    KINDS,
    OUTCOMES,
    RESULTS,
    SHORT_NAMES,
    CallbackError,
    CallbackKind,
    PromptCallback,
    extra_kinds,
    input_classes,
    kind_info,
    kind_named,
    parse_callback,
    registered_kinds,
)
from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.integrations.strategies import callbacks
from pytest_voicecb.malformed import cases
from tests.handlers.flask_app import create_app
from tests.handlers.serve import serving

TTS = "voicetts_callback"


class TtsCallback(PromptCallback):
    """``voicetts_callback``: how a text-to-speech call went (the same fields as a prompt)."""

    kind: ClassVar[str] = TTS


def _tts() -> CallbackKind:
    prompt = kind_info("prompt")
    return CallbackKind(
        TTS, TtsCallback, "tts", "text-to-speech call", prompt.build, prompt.variants, OUTCOMES, prompt.steering
    )


@pytest.fixture
def tts() -> Iterator[CallbackKind]:
    """The fifth kind, registered for one test; the real registry is restored after it."""
    kind = _tts()
    with extra_kinds(kind):
        yield kind
    assert TTS not in CALLBACK_MODELS


def test_the_registry_holds_every_documented_kind_once() -> None:
    kinds = registered_kinds()
    assert tuple(kind.key for kind in kinds) == KINDS
    assert {kind.short: kind.key for kind in kinds} == SHORT_NAMES
    assert {kind.key: kind.model for kind in kinds} == CALLBACK_MODELS
    assert all(kind.model.kind == kind.key for kind in kinds)
    with_result = [kind.short for kind in kinds if kind.outcomes]
    assert with_result == [kind.short for kind in kinds if "result" in kind.model.model_fields]
    assert all(kind.outcomes == OUTCOMES for kind in kinds if kind.outcomes)
    assert set(OUTCOMES) == set(RESULTS)
    assert len(input_classes()) == sum(len(kind.outcomes) or 1 for kind in kinds)


def test_an_unknown_kind_raises_everywhere_instead_of_passing_for_a_failure() -> None:
    factory = PayloadFactory(1)
    for attempt in (
        lambda: factory.build("tts"),
        lambda: factory.variants("tts"),
        lambda: factory.malformed("tts"),
        lambda: callbacks("tts"),
        lambda: kind_named(TTS),
    ):
        with pytest.raises(ValueError, match=r"unknown callback kind '(tts|voicetts_callback)'"):
            attempt()


def test_a_kind_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="registered already"), extra_kinds(kind_info("prompt")):
        pass
    assert registered_kinds() == tuple(kind_info(key) for key in KINDS)


def test_a_fifth_kind_gets_payloads_and_variants(tts: CallbackKind) -> None:
    factory = PayloadFactory(5)
    payload = factory.build("tts", result="1")
    assert list(payload) == [TTS]
    parsed = parse_callback(payload)
    assert isinstance(parsed, TtsCallback)
    assert parsed.result == "1"
    ids = [variant.id for variant in factory.variants("tts")]
    assert {"tts/typical", "tts/answered-long-call", "tts/not-answered-times-empty", "tts/keys-rotated"} <= set(ids)
    for variant in factory.variants("tts"):
        parse_callback(variant.payload)
    assert "tts/call-error" in input_classes()
    assert classify(factory.body(payload)).cls == "tts/not-answered"
    assert kind_named("tts") == TTS


def test_a_fifth_kind_gets_a_malformed_corpus(tts: CallbackKind) -> None:
    corpus = {case.id: case for case in cases(PayloadFactory(5), "tts")}
    assert {
        "tts/callback-null",
        "tts/callback-array",
        "tts/callid-empty",
        "tts/missing-callid",
        "tts/missing-result",
        "tts/missing-result-times-empty",
    } <= set(corpus)
    for case in corpus.values():
        if case.kind == TTS and case.expect == "reject":
            with pytest.raises(CallbackError):
                parse_callback(case.body)


def test_a_fifth_kind_keeps_every_other_case_body() -> None:
    """Registering a kind adds its cases and leaves every other case's body as it was."""
    before = {case.id: case.body for case in cases(PayloadFactory("fifth-kind"))}
    with extra_kinds(_tts()):
        after = {case.id: case.body for case in cases(PayloadFactory("fifth-kind-too"))}
        again = {case.id: case.body for case in cases(PayloadFactory("fifth-kind"))}
    assert {case_id for case_id in after if case_id.startswith("tts/")}
    assert {case_id: body for case_id, body in again.items() if not case_id.startswith("tts/")} == before
    assert {case.id for case in cases(PayloadFactory("fifth-kind"))} == set(before), "no stale cached corpus"
    plain = {case.id: case.body for case in cases(PayloadFactory("fifth-kind-too"))}
    assert {case_id: body for case_id, body in after.items() if not case_id.startswith("tts/")} == plain


def test_a_fifth_kind_gets_strategies_and_command_line_help(
    tts: CallbackKind, capsys: pytest.CaptureFixture[str]
) -> None:
    @settings(max_examples=30, database=None, deadline=None)
    @given(callbacks("tts", result="2"))
    def drawn(payload: dict[str, object]) -> None:
        parsed = parse_callback(payload)
        assert isinstance(parsed, TtsCallback)
        assert parsed.result == "2"

    drawn()
    with pytest.raises(SystemExit):
        build_parser().parse_args(["send", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "prompt, code, keypress, failure or tts (or the full key" in shown
    assert 'call result for prompt/code/tts: "0" answered, "1" not answered, "2" call error' in shown


def test_a_fifth_kind_gets_a_conformance_run_over_http(tts: CallbackKind) -> None:
    ids = [check.id for check in checks(seed=3)]
    assert {"valid/tts/typical", "reject/tts/missing-callid", "duplicate/tts/not-answered", "sibling/tts"} <= set(ids)
    with serving(create_app()) as base:
        report = run_conformance(base + "/voice/callback", seed=3)
    assert report.ok, report.format()
    assert {"valid/tts/typical", "duplicate/tts/call-error", "sibling/tts"} <= {r.id for r in report.results}
    with serving(create_app("prompt-only")) as base:
        broken = run_conformance(base + "/voice/callback", seed=3)
    failed = {result.id for result in broken.results if result.outcome == "failed"}
    assert {"sibling/tts", "valid/tts/typical", "duplicate/tts/answered"} <= failed


def test_the_real_registry_is_back_after_the_fifth_kind() -> None:
    with extra_kinds(_tts()):
        assert len(registered_kinds()) == len(KINDS) + 1
    assert len(registered_kinds()) == len(KINDS)
    assert "tts" not in SHORT_NAMES
    assert contract.CALLBACK_MODELS is CALLBACK_MODELS


def test_failure_code_meaning_is_deprecated_and_still_answers() -> None:
    """``FailureCode.meaning`` was read nowhere (CONTRACT.md lists the meanings): it warns for a release."""
    code = contract.FAILURE_CODES[2]
    assert code == ("占线",)
    with pytest.warns(DeprecationWarning, match="FailureCode.meaning is deprecated"):
        assert code.meaning == "line busy"
    contract_text = (Path(__file__).resolve().parents[1] / "CONTRACT.md").read_text(encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        meanings = {number: known.meaning for number, known in contract.FAILURE_CODES.items()}
    words = " ".join(contract_text.split())
    assert [number for number, meaning in meanings.items() if f"{number} {meaning}" not in words] == []


def test_the_example_handlers_field_lists_match_the_models() -> None:
    """``examples/voice_callbacks.FIELDS`` is integrator code that must not import the plugin, so it spells
    the field lists out: this keeps that copy equal to the models'."""
    path = Path(__file__).resolve().parents[1] / "examples" / "voice_callbacks.py"
    spec = importlib.util.spec_from_file_location("voice_callbacks_copy", path)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert {key: set(fields) for key, fields in example.FIELDS.items()} == {
        kind.key: {name for name, field in kind.model.model_fields.items() if field.is_required()}
        for kind in registered_kinds()
    }


@pytest.mark.parametrize("kind", [kind.key for kind in registered_kinds()])
def test_every_builder_and_strategy_writes_exactly_the_models_fields(kind: str) -> None:
    """The builders and the strategies draw a value per field by a rule of that field; which fields there
    are is the model's to say."""
    fields = set(kind_info(kind).model.model_fields)
    factory = PayloadFactory(9)
    assert {name for _ in range(20) for name in factory.build(kind)[kind]} == fields

    @settings(max_examples=20, database=None, deadline=None)
    @given(callbacks(kind))
    def drawn(payload: dict[str, dict[str, object]]) -> None:
        assert fields <= set(payload[kind])
        assert set(payload[kind]) - fields <= {"future_field", "sessionid", "ext", "sign", "version"}

    drawn()
