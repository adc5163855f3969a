"""``VoiceCallbackUser``: a Locust user that posts callbacks to a handler and judges every reply.

It answers the question a team asks before a campaign: does our handler keep answering correctly,
and within the deadline, when 50,000 calls end in ten minutes? Each user posts the traffic of
``load.CallbackMix`` (every kind, a share of failure callbacks and of duplicate deliveries) and holds
each reply to the contract (``conformance.judge``). A reply that breaks it is a Locust failure whose
text names the rule and the problem; a refused, reset, hanging or garbage-answering handler is a
failure with its cause, never a crash of the run. The first failure of each cause is logged with a
curl command that reproduces it.

Run the shipped locustfile (``pytest_voicecb.integrations.LOCUSTFILE``)::

    locust -f "$(python -m pytest_voicecb.integrations)" --host http://127.0.0.1:8000 \\
        --headless -u 50 -r 10 -t 10m --voicecb-duplicates 0.1 --voicecb-failures 0.1

or subclass ``VoiceCallbackUser`` in a locustfile of your own (``wait_time``, the shares, ``path``).
Importing this module imports Locust, which patches the standard library for gevent: import it only
in a locustfile, never in a test process.
"""

from __future__ import annotations

import argparse
import logging
import time
from importlib import import_module
from typing import Any

import locust
from locust import events, task
from locust.contrib.fasthttp import FastHttpUser

from pytest_voicecb import _arguments
from pytest_voicecb.contract import DEFAULT_PATH
from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.integrations._versions import require
from pytest_voicecb.integrations.load import DEFAULT_DEADLINE, CallbackMix, ReplyJudge, check_share, no_reply

__all__ = ["VoiceCallbackUser"]

require("locust", locust.__version__, (2, 0), "load", "FastHttpUser, catch_response and custom arguments")

log = logging.getLogger("pytest_voicecb.load")

_LOGGED_CAUSES_MAX = 100
"""Distinct failure causes logged with a curl reproducer per process (the rest are only counted)."""
_logged_causes: set[str] = set()
_process_seed: list[object] = []  # the random seed this process drew, when no seed was given


def _share_argument(text: str) -> float:
    try:
        return check_share("the share", float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (got {text!r})") from None


def _seconds_argument(text: str) -> float:
    try:
        return _arguments.seconds("the number of seconds", float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_arguments(parser: Any, **_kwargs: Any) -> None:
    """``--voicecb-*`` options; Locust sends them to every worker of a distributed run."""
    group = parser.add_argument_group("pytest-voicecb", "what VoiceCallbackUser posts and how it judges replies")
    group.add_argument("--voicecb-path", default=None, help=f"callback path on the host (default {DEFAULT_PATH})")
    group.add_argument("--voicecb-duplicates", type=_share_argument, default=None, help="share of duplicates (0.1)")
    group.add_argument("--voicecb-failures", type=_share_argument, default=None, help="share of failure callbacks")
    group.add_argument("--voicecb-deadline", type=_seconds_argument, default=None, help="seconds a reply may take")
    group.add_argument("--voicecb-timeout", type=_seconds_argument, default=None, help="seconds before giving up")
    group.add_argument("--voicecb-seed", default=None, help="payload seed (default: random; printed at start)")
    group.add_argument("--voicecb-strict", action="store_true", default=False, help="strict verdicts")


events.init_command_line_parser.add_listener(_add_arguments)  # type: ignore[no-untyped-call]


class VoiceCallbackUser(FastHttpUser):
    """Posts realistic callbacks of every kind to ``host`` + ``path`` and fails any reply that breaks the contract.

    Class attributes (or the ``--voicecb-*`` options, which win): ``path``, ``duplicate_share``,
    ``failure_share``, ``deadline`` (seconds, rule 6), ``seed``, ``strict``. ``network_timeout`` (or
    ``--voicecb-timeout``) bounds how long a hanging handler holds a user (a timed-out delivery is a failure).
    """

    path: str = DEFAULT_PATH
    duplicate_share: float = 0.1
    failure_share: float = 0.1
    deadline: float = DEFAULT_DEADLINE
    seed: object = None
    strict: bool = False
    network_timeout = 10.0
    connection_timeout = 5.0

    _users_started = 0

    def __init__(self, environment: Any) -> None:
        timeout = getattr(getattr(environment, "parsed_options", None), "voicecb_timeout", None)
        if timeout is not None:  # before FastHttpUser builds its client, which reads them
            self.network_timeout = self.connection_timeout = timeout
        super().__init__(environment)

    def on_start(self) -> None:
        options = getattr(self.environment, "parsed_options", None)

        def option(name: str, default: Any) -> Any:
            value = getattr(options, f"voicecb_{name}", None)
            return default if value is None else value

        self.path = option("path", self.path)
        self.deadline = option("deadline", self.deadline)
        self.strict = bool(option("strict", False)) or self.strict
        seed = option("seed", self.seed)
        if seed is None:
            if not _process_seed:  # one random seed for the process, logged once
                _process_seed.append(PayloadFactory().seed)
                log.info("pytest-voicecb: payload seed %s (pass --voicecb-seed to replay)", _process_seed[0])
            seed = _process_seed[0]
        runner = self.environment.runner
        worker = getattr(runner, "worker_index", 0) if runner is not None else 0
        VoiceCallbackUser._users_started += 1
        self.mix = CallbackMix(
            PayloadFactory((seed, worker, VoiceCallbackUser._users_started)),
            duplicate_share=option("duplicates", self.duplicate_share),
            failure_share=option("failures", self.failure_share),
        )
        self.judge = ReplyJudge((self.host or "").rstrip("/") + self.path, deadline=self.deadline, strict=self.strict)

    @task
    def post_callback(self) -> None:
        """Post the next callback of the mix and judge the reply."""
        delivery = self.mix.next()
        began = time.perf_counter()
        with self.client.post(
            self.path,
            data=delivery.body,  # type: ignore[arg-type]  # bytes are sent as they are; the annotation is narrower
            headers={"Content-Type": "application/json"},
            name=delivery.name,
            catch_response=True,
        ) as response:
            try:
                if not response.status_code:  # refused, reset or timed out (a 5xx reply also sets .error)
                    error = getattr(response, "error", None)
                    response.failure(no_reply(error or "the connection closed without a reply"))
                    return
                body = response.content or b""
                elapsed = time.perf_counter() - began
                cause = self.judge(delivery, response.status_code, body, elapsed, response.headers)
                if cause is None:
                    response.success()
                    return
                response.failure(cause)
                if cause not in _logged_causes and len(_logged_causes) < _LOGGED_CAUSES_MAX:
                    _logged_causes.add(cause)
                    reply = self.judge.reply(delivery, response.status_code, response.headers, body, 0.0)
                    log.warning("%s: %s\nreproduce:\n  %s", delivery.name, cause, reply.curl().replace("\n", "\n  "))
            except Exception as exc:  # a reply we cannot even read: a failure of the handler, never of the run
                response.failure(no_reply(exc))


# Locust times ``-t`` from gevent's cached clock, which stands still while modules import: refresh it,
# so the seconds spent importing this module (pydantic, werkzeug; many on a busy machine) are not taken
# from the run (without this, a short run on a loaded machine could end before its first request).
getattr(import_module("gevent").get_hub().loop, "update_now", lambda: None)()  # gevent ships no type stubs
