"""The conformance suite: how fast it runs, and which seeded handler bugs it finds next to Schemathesis.

Run: ``python benchmarks/bench_conformance.py`` (from the repository root; about a minute), or one part:
``--part effects`` (side effects watched against not, ``--repeat N``), ``--part speed``, ``size``, ``bugs``.

1. Speed: ``run_conformance`` against a correct Flask handler in-process (target < 250 ms, with the
   duplicate checks of every kind and outcome, at once too) and on a live loopback URL (target < 1 s).
   Report size: the line count of the default report for the naive handlers of the examples (a Flask
   handler written from the docs, a FastAPI pydantic body model; target < 60 lines, one screen).
   Side effects: the same suite with ``effects`` + ``effects_on`` + ``prepare`` against without, in-process,
   the same handler (target <= 1.5x and <= 250 ms).
2. Bugs: the same handler with one bug seeded at a time (``tests/handlers``), served on loopback, checked
   by ``run_conformance`` and by Schemathesis run against ``callback-openapi.yaml``, the OpenAPI
   description an integrator would write for the endpoint. Schemathesis runs as a user would run it
   after a first try: ``--checks all`` minus ``negative_data_rejection``, whose 4xx demand contradicts
   the contract (a handler answers HTTP 200 with ``result != 0``) and fails even the correct handler.
"""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_voicecb.conformance import Report, run_conformance  # noqa: E402
from tests.handlers import fastapi_app, flask_app  # noqa: E402
from tests.handlers.serve import serving  # noqa: E402

SEED = 2024
SPEC = ROOT / "benchmarks" / "callback-openapi.yaml"
SCHEMATHESIS_EXAMPLES = 100
USER_CHECKS = ["--checks", "all", "--exclude-checks", "negative_data_rejection"]

BUGS: list[tuple[str, Callable[[], Any]]] = [
    ('string "0" result', lambda: flask_app.create_app("string-result")),
    ("500 on bad JSON", lambda: flask_app.create_app("crash-on-bad-json")),
    ("crash on empty timestamps", lambda: flask_app.create_app("crash-on-empty-times")),
    ("rejected duplicates", lambda: flask_app.create_app("reject-duplicates")),
    ("dropped sibling kinds", lambda: flask_app.create_app("prompt-only")),
    ("422 from a pydantic body model", fastapi_app.create_pydantic_app),
    ("none (the correct handler)", flask_app.create_app),
]


def timed(run: Callable[[], Report], repeat: int) -> tuple[float, Report]:
    times, report = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        report = run()
        times.append(time.perf_counter() - began)
    assert report is not None
    return statistics.median(times), report


def speed() -> float:
    app = flask_app.create_app()
    run_conformance(app, seed=SEED)  # warm up imports and Flask
    in_process, report = timed(lambda: run_conformance(flask_app.create_app(), seed=SEED), 7)
    assert report.ok, str(report)
    with serving(app) as base:
        loopback, report = timed(lambda: run_conformance(base + "/voice/callback", seed=SEED), 3)
    assert report.ok, str(report)
    n = len(report.results)
    print(f"conformance suite, {n} checks, correct Flask handler (median):")
    for label, seconds, target in (("in-process WSGI", in_process, 0.25), ("loopback URL", loopback, 1.0)):
        verdict = "OK" if seconds < target else "SLOW"
        print(f"  {label:<16}: {seconds * 1000:7.1f} ms   (target < {target * 1000:.0f} ms) {verdict}")
    return loopback


def effects(repeat: int = 9) -> tuple[float, float]:
    """The suite with side effects watched (``effects`` + ``effects_on`` + ``prepare``: two snapshots and a
    prepare around every check) against the same run without, in-process, the same escalating handler,
    alternated run by run. Targets: <= 1.5x the plain run, and <= 250 ms for the whole suite."""
    from tests.handlers import escalation

    placed: set[str] = set()

    def prepare(callback: dict[str, Any]) -> None:
        placed.add(next(iter(callback.values()))["callid"])

    def plain() -> Report:
        return run_conformance(escalation.create_app(), seed=SEED, skip="deadline")

    def watched() -> Report:
        app = escalation.create_app()
        dialler = app.extensions["escalation"]

        def dialled() -> list[tuple[str, str]]:
            return list(dialler.calls)

        return run_conformance(
            app,
            seed=SEED,
            skip="deadline",
            effects=dialled,
            effects_on=["prompt/not-answered", "prompt/call-error", "code/not-answered", "code/call-error", "failure"],
            prepare=prepare,
        )

    plain(), watched()  # warm up
    times: dict[str, list[float]] = {"plain": [], "watched": []}
    for _ in range(repeat):
        for name, run in (("plain", plain), ("watched", watched)):
            began = time.perf_counter()
            report = run()
            times[name].append(time.perf_counter() - began)
            assert report.ok, str(report)
    base, slow = statistics.median(times["plain"]), statistics.median(times["watched"])
    ratio = slow / base
    verdict = "OK" if ratio <= 1.5 and slow <= 0.25 else "SLOW"
    print(f"side effects watched, {len(report.results)} checks, escalating Flask handler (median of {repeat}):")
    print(f"  without effects              : {base * 1000:7.1f} ms")
    print(f"  effects, effects_on, prepare : {slow * 1000:7.1f} ms")
    print(f"  ratio {ratio:.2f}x (target <= 1.5x); watched run {slow * 1000:.0f} ms (target <= 250 ms): {verdict}")
    return base, slow


def report_size() -> None:
    """Lines of the default report (``str(report)``) of the examples' naive handlers: one screen or not."""
    sys.path.insert(0, str(ROOT / "examples"))
    from fastapi_handler import naive as fastapi_naive
    from flask.logging import default_handler
    from flask_handler import naive as flask_naive

    flask_naive.app.logger.addHandler(default_handler)  # as deployed: the tracebacks reach wsgi.errors
    logging.disable(logging.NOTSET)  # the report groups by what the app logged: let it log (to wsgi.errors)
    print()
    print("default report of a naive handler (str(report); target < 60 lines):")
    for label, app in (("Flask, from the docs", flask_naive.app), ("FastAPI, pydantic body model", fastapi_naive.app)):
        report = run_conformance(app, seed=SEED)
        lines = len(str(report).splitlines())
        verbose = len(report.format(verbose=True).splitlines())
        verdict = "OK" if lines < 60 else "LONG"
        print(
            f"  {label:<29}: {lines:3d} lines for {len(report.failures)} failed and {len(report.warnings)} warned "
            f"checks in {len(report.causes)} causes (verbose: {verbose} lines) {verdict}"
        )
    logging.disable(logging.CRITICAL)


def summarize(ids: list[str]) -> str:
    """``valid/* x112, duplicate`` style: failing ids grouped by check family."""
    if not ids:
        return "-"
    families = Counter(i.split("/", 1)[0] for i in ids)
    parts = []
    for family, count in families.items():
        one = [i for i in ids if i.split("/", 1)[0] == family]
        parts.append(one[0] if count == 1 else f"{family}/* x{count}")
    return ", ".join(parts)


def _warned(report: Report) -> str:
    return f" (+{len(report.warnings)} warned)" if report.warnings else ""


def schemathesis(base: str, checks: list[str]) -> tuple[float, list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            str(SPEC),
            "--url",
            base,
            *checks,
            "--continue-on-failure",
            "--max-examples",
            str(SCHEMATHESIS_EXAMPLES),
            "--seed",
            "1",
            "--workers",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-database",
            "none",
            "--no-color",
            "--report",
            "json",
            "--report-json-path",
            str(report),
        ]
        began = time.perf_counter()
        subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        elapsed = time.perf_counter() - began
        data = json.loads(report.read_text())
    return elapsed, [f"{f['code']} {f['title']}" for f in data["failures"]]


def bugs() -> tuple[float, float]:
    rows = []
    ours_total = theirs_total = 0.0
    for name, make in BUGS:
        app = make()
        with serving(app) as base:
            began = time.perf_counter()
            report = run_conformance(base + "/voice/callback", seed=SEED)
            ours = time.perf_counter() - began
        with serving(make()) as base:
            theirs, found = schemathesis(base, USER_CHECKS)
        ours_total += ours
        theirs_total += theirs
        rows.append(
            (
                name,
                summarize([r.id for r in report.failures]) + _warned(report),
                f"{ours:.2f}",
                "; ".join(found) or "-",
                f"{theirs:.1f}",
            )
        )
    with serving(flask_app.create_app()) as base:
        _, false_positives = schemathesis(base, ["--checks", "all"])
    header = ("seeded bug", "pytest-voicecb: failing checks", "s", "Schemathesis: failures", "s")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(5)]
    print()
    print(
        f"seeded bugs, handler on a loopback URL; Schemathesis: {' '.join(USER_CHECKS)}, "
        f"--max-examples {SCHEMATHESIS_EXAMPLES}, phases examples,coverage,fuzzing"
    )
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print()
    print(f"Schemathesis --checks all on the correct handler: {'; '.join(false_positives) or 'no failures'}")
    return ours_total, theirs_total


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--part",
        choices=["speed", "effects", "size", "bugs", "all"],
        default="all",
        help="run one part (default: all; 'bugs' runs Schemathesis, about a minute)",
    )
    parser.add_argument("--repeat", type=int, default=9, metavar="N", help="runs per side in the effects part")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the buggy handlers' tracebacks would flood the output
    began = time.perf_counter()
    if args.part in ("speed", "all"):
        speed()
    if args.part in ("effects", "all"):
        effects(args.repeat)
    if args.part in ("size", "all"):
        report_size()
    if args.part not in ("bugs", "all"):
        return
    ours, theirs = bugs()
    began_cli = time.perf_counter()
    subprocess.run([sys.executable, "-m", "schemathesis.cli", "--version"], capture_output=True, check=False)
    startup = time.perf_counter() - began_cli
    print(
        f"time over the {len(BUGS)} handlers: pytest-voicecb {ours:.2f} s, Schemathesis {theirs:.1f} s "
        f"(ratio {theirs / ours:.0f}x; {theirs - len(BUGS) * startup:.1f} s without its CLI start-up of "
        f"{startup:.1f} s per run: ratio {(theirs - len(BUGS) * startup) / ours:.0f}x)"
    )
    print(f"benchmark total: {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
