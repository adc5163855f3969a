"""The provider simulator's memory over a long run: RSS per call with the retention limit against without it.

Each configuration runs in its own process: a ``Provider`` on a manual clock takes ``--calls`` signed
API 3.0 sends (through ``Provider.v3``, the send API's own request handling, without sockets) and
delivers every callback to an in-process WSGI handler (``run_until_idle`` after each batch), printing
its RSS every ``--step`` calls. ``keep`` is the default retention (10,000 calls); ``unbounded`` keeps
every call (what the simulator did before). Verdict: after the retention limit the kept run grows by at
most 5% of what the unbounded run grows per call ("flat").

    python benchmarks/bench_provider_memory.py [--calls 100000] [--step 10000] [--keep 10000]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from typing import Any


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise SystemExit("no VmRSS in /proc/self/status: this benchmark needs Linux")


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"result":0,"errmsg":"OK"}']


def child(calls: int, step: int, keep: int) -> None:
    """One run: print ``calls rss`` every ``step`` calls, as JSON lines."""
    from pytest_voicecb.provider import ManualClock, Provider
    from pytest_voicecb.provider.v3.signing import authorization_header
    from pytest_voicecb.provider.wire import ApiRequest

    provider = Provider(app, seed=1, clock=ManualClock(1_700_000_000), keep=keep)
    stamp = int(time.time())
    for n in range(1, calls + 1):
        body = json.dumps(
            {"TemplateId": "1", "CalledNumber": f"+86138{n % 100_000_000:08d}", "VoiceSdkAppid": "1400000000"}
        ).encode()
        auth = authorization_header(
            provider.secret_id, provider.secret_key, host=provider.endpoint, payload=body, timestamp=stamp
        )
        headers = {
            "content-type": "application/json",
            "host": provider.endpoint,
            "x-tc-action": "SendTtsVoice",
            "x-tc-version": "2020-09-02",
            "x-tc-timestamp": str(stamp),
            "authorization": auth,
        }
        response = provider.v3(ApiRequest("POST", "/", "", headers, body))
        if b'"Error"' in response.body:
            raise SystemExit(f"send {n} refused: {response.body[:200]!r}")
        if n % 1000 == 0:
            provider.run_until_idle()
        if n % step == 0:
            gc.collect()
            print(json.dumps({"calls": n, "rss": rss_bytes()}), flush=True)


def run(calls: int, step: int, keep: int) -> list[tuple[int, int]]:
    command = [sys.executable, __file__, "--child", "--calls", str(calls), "--step", str(step), "--keep", str(keep)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return [(row["calls"], row["rss"]) for row in map(json.loads, out.splitlines())]


def per_call(points: list[tuple[int, int]], after: int) -> float:
    """Bytes of RSS per call from the first point at or after ``after`` to the last."""
    tail = [p for p in points if p[0] >= after]
    if len(tail) < 2:
        raise SystemExit("too few points after the retention limit: raise --calls or lower --step")
    return (tail[-1][1] - tail[0][1]) / (tail[-1][0] - tail[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--step", type=int, default=10_000)
    parser.add_argument("--keep", type=int, default=10_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.calls, args.step, args.keep)
        return
    kept = run(args.calls, args.step, args.keep)
    unbounded = run(args.calls, args.step, args.calls + 1)
    print(f"{'calls':>8} {'keep=' + str(args.keep):>14} {'unbounded':>12}   (RSS, MiB)")
    for (n, a), (_, b) in zip(kept, unbounded, strict=True):
        print(f"{n:>8,} {a / 2**20:>14.1f} {b / 2**20:>12.1f}")
    after = args.keep + args.step  # past the limit, once the first evictions have settled
    ours, theirs = per_call(kept, after), per_call(unbounded, after)
    print(f"RSS per call after {after:,} calls: keep={args.keep:,} {ours:,.0f} B, unbounded {theirs:,.0f} B")
    flat = ours <= 0.05 * theirs
    ratio = ours / theirs if theirs else float("nan")
    print(f"verdict: {'PASS' if flat else 'FAIL'}: growth per call is {ratio:.1%} of the unbounded run's (goal <= 5%)")


if __name__ == "__main__":
    main()
