"""How long ``voicecb check`` takes against the Flask example handler served on loopback (target: < 2 s).

The example (``examples/flask_handler``) is served by werkzeug's threaded server in this process; the
command runs as a subprocess, as a user runs it, so the time includes interpreter start and imports.
For scale, the same run with ``--help`` only (start-up cost) and the suite run in-process.

    python benchmarks/bench_check.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler, make_server

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from flask_handler.app import create_app  # noqa: E402 - the examples directory is on sys.path now

from pytest_voicecb.conformance import run_conformance  # noqa: E402


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: object) -> None:
        pass


def timed(*args: str) -> tuple[float, int]:
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest_voicecb", *args], capture_output=True, text=True)
    return time.perf_counter() - began, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    server = make_server("127.0.0.1", 0, create_app(), threaded=True, request_handler=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.port}/voice/callback"
    try:
        checks = [timed("check", url) for _ in range(runs)]
        startup = [timed("--version")[0] for _ in range(runs)]
        in_process = []
        for _ in range(runs):
            began = time.perf_counter()
            report = run_conformance(url)
            in_process.append(time.perf_counter() - began)
    finally:
        server.shutdown()
    codes = {code for _, code in checks}
    check_median = statistics.median(t for t, _ in checks)
    print(f"voicecb check {url} ({len(report.results)} checks), {runs} runs, exit codes {sorted(codes)}:")
    print(f"  voicecb check (subprocess)      median {check_median:.2f} s, max {max(t for t, _ in checks):.2f} s")
    print(f"  voicecb --version (start-up)    median {statistics.median(startup):.2f} s")
    print(f"  run_conformance(url) in-process median {statistics.median(in_process):.2f} s")
    print(f"target < 2 s: {'met' if check_median < 2 and codes == {0} else 'NOT met'}")


if __name__ == "__main__":
    main()
