"""One hanging handler against every other call: how late the other calls' callbacks arrive.

A ``Provider`` on a ``SystemClock`` (``--scale`` simulated seconds per second) delivers to a threaded
HTTP handler on loopback. The first call's callback hangs the handler ``--hang`` seconds; while it hangs,
``--calls`` more calls are placed, one every 0.1 s, and each callback's lateness is measured on the
simulator's own clock (arrival minus due, in real seconds). Ours: the dispatcher's bounded pool, each
call on its own (``concurrency=4``); the alternative, in the same run: one delivery at a time
(``concurrency=1``), where every call waits behind the hung one. Goal: ours within 0.5 s of due.

    python benchmarks/bench_provider_hang.py [--hang 4] [--calls 20] [--scale 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pytest_voicecb.provider import Provider, RetryPolicy, SystemClock

HUNG = "13800000001"


def measure(concurrency: int, hang: float, calls: int, scale: float) -> list[float]:
    """Real seconds each of the other calls' callbacks arrived after it fell due."""
    arrived: dict[str, float] = {}
    entered = threading.Event()
    clock = SystemClock(scale)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fields = body["voiceprompt_callback"]
            arrived.setdefault(fields["callid"], clock.now())
            if fields["mobile"] == HUNG:
                entered.set()
                time.sleep(hang)
            reply = b'{"result":0,"errmsg":"OK"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/voice/callback"
    policy = RetryPolicy(timeout=hang + 2)
    with Provider(url, seed=1, clock=clock, retry=policy, concurrency=concurrency) as provider:
        provider.backend.place("3.0", "SendTtsVoice", "86", HUNG, {})
        entered.wait(30)
        others = []
        for i in range(calls):
            sent = provider.backend.place("3.0", "SendTtsVoice", "86", f"138{i + 100:08d}", {})
            assert sent.call is not None
            others.append(sent.call.callid)
            time.sleep(0.1)
        provider.wait_for_deliveries(calls + 1, timeout=hang * 3 + calls)
        due = {d.callid: d.due for d in provider.deliveries}
    server.shutdown()
    return [(arrived[callid] - due[callid]) / scale for callid in others]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hang", type=float, default=4.0, help="seconds the hung handler hangs (4)")
    parser.add_argument("--calls", type=int, default=20, help="other calls placed while it hangs (20)")
    parser.add_argument("--scale", type=float, default=100.0, help="simulated seconds per second (100)")
    args = parser.parse_args()
    ours = measure(4, args.hang, args.calls, args.scale)
    serial = measure(1, args.hang, args.calls, args.scale)
    for name, late in (("ours (concurrency=4)", ours), ("one at a time", serial)):
        print(f"{name:<22} late by: median {statistics.median(late):.3f} s, max {max(late):.3f} s")
    ratio = max(serial) / max(ours) if max(ours) > 0 else float("inf")
    ok = max(ours) <= 0.5
    print(
        f"verdict: {'PASS' if ok else 'FAIL'}: with one handler hung {args.hang:g} s, the other calls' callbacks "
        f"arrive at most {max(ours):.3f} s after due (goal <= 0.5 s); one at a time: {max(serial):.3f} s ({ratio:.0f}x)"
    )


if __name__ == "__main__":
    main()
