"""The ``voicecb`` commands agree, for scripts: URLs without a scheme everywhere, exit 2 for "nothing to do"
and for a URL with no handler (one message in check, replay and serve --forward-to), a mistyped option
refused by its own sub-command with a guess, and --skip patterns that skip nothing said in one line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_voicecb import PayloadFactory
from pytest_voicecb.server import CallbackServer
from tests.handlers.flask_app import create_app
from tests.handlers.serve import serving
from tests.node_project import running_provider
from tests.provider_calls import place_call
from tests.test_cli import assert_one_line_error, voicecb

WRONG = "is this the callback URL?"


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    """A correct handler at /voice/callback; every other path is werkzeug's 404 page."""
    with serving(create_app()) as url:
        yield url


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """A log as voicecb serve --log writes it, holding one valid callback."""
    body = PayloadFactory(3).body(PayloadFactory(3).answered())
    record = {"event": "callback", "method": "POST", "path": "/voice/callback", "body": body.decode()}
    record.update(content_type="application/json", kind="voiceprompt_callback", valid=True)
    path = tmp_path / "callbacks.jsonl"
    path.write_text(json.dumps(record) + "\n")
    return path


def test_provider_takes_a_callback_url_without_a_scheme(tmp_path: Path) -> None:
    with CallbackServer() as receiver:
        where = receiver.url.removeprefix("http://")
        with running_provider(where, "--scale", "200") as settings:
            callid = place_call(settings, "+8613800138000")
            (record,) = receiver.wait_for(1, callid=callid, timeout=10)
    assert record.path == "/voice/callback"


@pytest.mark.parametrize("content", ["", "\n\n", "not a record\n"])
def test_replay_of_a_file_with_no_records_exits_2(tmp_path: Path, base: str, content: str) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text(content)
    done = voicecb("replay", str(empty), base + "/voice/callback")
    assert_one_line_error(done, f"no records in {empty}")
    assert done.stdout == ""


def test_a_url_with_no_handler_is_exit_2_with_one_message_in_check_replay_and_serve(base: str, log: Path) -> None:
    wrong = base + "/voice/callbak"
    check = assert_one_line_error(voicecb("check", wrong), "HTTP 404", WRONG, "--path")
    replay = assert_one_line_error(voicecb("replay", str(log), wrong), "HTTP 404", WRONG, "--keep-paths")
    serve = assert_one_line_error(voicecb("serve", "--port", "0", "--forward-to", wrong), "HTTP 404", WRONG)
    for said, command in ((check, "check"), (replay, "replay"), (serve, "serve")):
        assert said.startswith(f"voicecb {command}: {wrong} answered HTTP 404 (text/html, ")
    right = voicecb("replay", str(log), base + "/voice/callback")
    assert right.returncode == 0, right.stderr


def test_serve_forward_to_says_at_start_up_when_nothing_listens_and_serves_anyway() -> None:
    command = [sys.executable, "-m", "pytest_voicecb", "serve", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--forward-to", "127.0.0.1:9/voice/callback"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        warning = process.stderr.readline()
        assert process.stdout.readline().startswith("listening on http://127.0.0.1:")
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)
    assert warning.startswith("voicecb serve: warning: nothing answers at http://127.0.0.1:9/voice/callback (")
    assert "connection refused" in warning
    assert process.returncode == 0


@pytest.mark.parametrize(
    ("args", "typo", "guess"),
    [
        (["check", "127.0.0.1:9", "--jsn", "r.json"], "--jsn r.json", "--json"),
        (["send", "127.0.0.1:9", "--knd", "failure"], "--knd failure", "--kind"),
        (["replay", "log.jsonl", "127.0.0.1:9", "--only-vaild"], "--only-vaild", "--only-valid"),
        (["provider", "--callback-url", "127.0.0.1:9", "--scael=60"], "--scael=60", "--scale"),
        (["serve", "--prot", "9000"], "--prot 9000", "--port"),
    ],
)
def test_a_mistyped_option_points_at_its_sub_commands_help(args: list[str], typo: str, guess: str) -> None:
    done = voicecb(*args)
    command = args[0]
    assert_one_line_error(
        done,
        f"voicecb {command}: error: unrecognized arguments: {typo}; did you mean {guess}? "
        f"(see 'voicecb {command} --help')",
    )


def test_skip_patterns_that_match_no_check_are_one_warning_line(base: str) -> None:
    done = voicecb("check", base + "/voice/callback", "--skip", "robst/*", "--skip", "robust/*", "--skip", "dupe")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "voicecb check: warning: --skip 'robst/*', 'dupe' matched no check (check ids look like 'robust/*', "
        "'reject/envelope/empty-body', 'duplicate'; -v lists them)"
    ]
    quiet = voicecb("check", base + "/voice/callback", "--skip", "robust/*")
    assert quiet.stderr == ""
