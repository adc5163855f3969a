"""Delivering callbacks as the provider does: when due, through ``CallbackClient``, judged, retried.

One path for every callback: ``Dispatcher.run_due(now)`` posts each delivery whose time has come, judges
the reply with ``conformance.judge``, records the ``Attempt``, and schedules a retry by the
``RetryPolicy`` when it failed (non-2xx, ``result != 0``, a reply outside the contract, a timeout, a
refused connection). Retries and timeouts are *unconfirmed* for voice (CONTRACT.md): every number here
is an option. Each call's deliveries progress on their own: on a real-time clock ``dispatch_due`` hands
each due call to a bounded worker pool without waiting, so a handler hanging on one call holds that call
(for its timeout) and never the others; a call's own callbacks keep their order (a call with an attempt
in flight has its next deliveries parked until it is over). A reset moves the backend's generation:
an attempt in flight across it is neither recorded, retried nor reported.
"""

from __future__ import annotations

import functools
import heapq
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_voicecb import _arguments, _deprecation
from pytest_voicecb.client import CallbackClient, DeliveryError
from pytest_voicecb.conformance.verdict import judge
from pytest_voicecb.provider.models import Attempt, Delivery

if TYPE_CHECKING:
    from pytest_voicecb.provider.models import SimulatorBackend

__all__ = ["DEFAULT_BACKOFF", "Dispatcher", "RetryPolicy", "Route"]

_log = logging.getLogger("pytest_voicecb.provider")

DEFAULT_BACKOFF: tuple[float, ...] = (10.0, 60.0)
"""Seconds before the first and second retry (unconfirmed for voice; the last value repeats)."""


class RetryPolicy:
    """How failed deliveries are retried: ``retries`` more attempts, ``backoff`` seconds apart.

    ``backoff`` is a number (the same wait every time), a sequence (one wait per retry, the last
    repeating) or a callable taking the retry number (1, 2, ...). ``timeout`` bounds each attempt
    (real seconds). ``duplicate_after``: simulated seconds between an acknowledged status callback and
    its duplicate, when duplicates are configured.
    """

    def __init__(
        self,
        retries: int = 2,
        backoff: float | Sequence[float] | Callable[[int], float] = DEFAULT_BACKOFF,
        *,
        timeout: float = 5.0,
        duplicate_after: float = 5.0,
    ) -> None:
        self.retries = _arguments.whole("retries", retries, maximum=1000)
        if callable(backoff):
            self._backoff: Callable[[int], float] = backoff
        elif isinstance(backoff, (int, float)):
            wait = _arguments.seconds("backoff", backoff, allow_zero=True)
            self._backoff = lambda _n: wait
        elif isinstance(backoff, Sequence) and not isinstance(backoff, (str, bytes)) and backoff:
            waits = [_arguments.seconds("backoff", value, allow_zero=True) for value in backoff]
            self._backoff = lambda n: waits[min(n, len(waits)) - 1]
        else:
            raise ValueError(f"backoff must be seconds, a non-empty sequence of seconds or a callable, got {backoff!r}")
        self.backoff_spec = backoff
        self.timeout = _arguments.seconds("timeout", timeout)
        self.duplicate_after = _arguments.seconds("duplicate_after", duplicate_after, allow_zero=True)

    def __repr__(self) -> str:
        return f"RetryPolicy(retries={self.retries}, backoff={self.backoff_spec!r}, timeout={self.timeout:g})"

    def wait(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1-based)."""
        return _arguments.seconds(f"backoff({retry})", self._backoff(retry), allow_zero=True)


def _close_all(clients: list[CallbackClient]) -> None:
    for client in clients:
        client.close()


@dataclass(frozen=True)
class Route:
    """Where callbacks go: ``target`` (what ``CallbackClient`` takes), ``path``, and ``paths`` by kind.
    A lazy target's factory may return one (the ``voicecb_provider`` fixture does, with the configured path)."""

    target: object
    path: str | None = None
    paths: Mapping[str, str] | None = None


class _Slot:
    """Where a client is kept: per thread (``threading.local``) or shared (this)."""

    client: CallbackClient
    generation: int


class Dispatcher:
    """Posts due deliveries to the target and keeps the queue of what is still owed.

    ``target``: what ``CallbackClient`` accepts (a URL, a WSGI/ASGI app, ``module:attribute``), or a
    callable returning it (resolved at the first delivery, so a pytest fixture can be looked up late).
    ``concurrency``: how many calls' deliveries to a URL run at once (each worker thread has its own
    client); an in-process app gets one delivery at a time, each bounded by the policy's timeout.
    ``cacert``: a PEM file of the CA an ``https://`` target's certificate must chain to.
    """

    def __init__(
        self,
        backend: SimulatorBackend,
        policy: RetryPolicy | None = None,
        *,
        target: object = None,
        path: str | None = None,
        concurrency: int = 4,
        strict: bool = False,
        on_attempt: Callable[[Delivery, Attempt], None] | None = None,
        cacert: str | None = None,
    ) -> None:
        self.backend = backend
        self.cacert = cacert  # the CA an https:// target's certificate is checked against (None: the system's)
        self.policy = policy or RetryPolicy()
        self.concurrency = _arguments.whole("concurrency", concurrency, minimum=1, maximum=64)
        self.strict = strict
        self.on_attempt = on_attempt
        self._target: object = target
        self._route = Route(None, path)
        self._lazy = False
        self._queue: list[tuple[float, int, Delivery]] = []
        self._lock = threading.RLock()
        self.changed = threading.Condition(self._lock)
        self._local = threading.local()
        self._shared = _Slot()
        self._clients: list[CallbackClient] = []
        self._generation = 0
        self._pool: ThreadPoolExecutor | None = None
        self._busy: set[str] = set()
        self._parked: dict[str, list[Delivery]] = {}
        self._in_flight: set[Future[list[Attempt]]] = set()
        self._closing = False  # set by close(): a delivery not yet begun goes back to the queue
        self.hook_errors = 0
        """How many times ``on_attempt`` raised (each logged on the ``pytest_voicecb.provider`` logger)."""

    # -- the target --------------------------------------------------------------------------------

    def deliver_to(
        self, target: object, *, path: str | None = None, paths: Mapping[str, str] | None = None, lazy: bool = False
    ) -> None:
        """Deliver to ``target`` from now on (closes the clients of the previous one).

        ``target``: what ``CallbackClient`` accepts, or a ``CallbackClient`` (used as it is, with its own
        path, paths and timeout; never closed here). ``path``/``paths``: where callbacks go (``paths`` maps
        kinds to paths). ``lazy``: ``target`` is a zero-argument callable returning the target or a
        ``Route``, called at the first delivery.
        """
        if lazy and not callable(target):
            raise TypeError(f"a lazy target is a callable returning the target, got {target!r}")
        if paths is not None:
            CallbackClient("http://127.0.0.1:1", paths=paths).close()  # the client's own check, now
        with self._lock:
            self._target, self._lazy = target, lazy
            self._route = Route(None, path, paths)
            self._close_clients()
            pool, self._pool = self._pool, None  # its size depended on the old target
        if pool is not None:
            pool.shutdown(wait=False)

    def retarget(self, *args: Any, **kwargs: Any) -> None:
        """Deprecated: ``deliver_to``, the provider's one verb for where callbacks go."""
        _deprecation.warn("Dispatcher.retarget", "Dispatcher.deliver_to (as Provider.deliver_to)")
        self.deliver_to(*args, **kwargs)

    def _client(self) -> CallbackClient:
        # One client per worker thread for a URL; one shared client for an in-process app (its transport
        # calls the app one delivery at a time, and an ASGI app's lifespan must run once).
        if isinstance(self._target, CallbackClient):
            return self._target
        local: Any = self._local if self._fans_out() else self._shared
        if getattr(local, "generation", None) != self._generation or local.client.closed:
            with self._lock:
                target, route = self._target, self._route
                if target is None:
                    raise RuntimeError(
                        "the provider has callbacks to deliver but no callback target: pass target= "
                        "(a URL or a WSGI/ASGI app) or call provider.deliver_to(target)"
                    )
                client = CallbackClient(
                    target, path=route.path, paths=route.paths, timeout=self.policy.timeout, cacert=self.cacert
                )
                self._clients.append(client)
                local.client, local.generation = client, self._generation
        current: CallbackClient = local.client
        return current

    def _close_clients(self) -> None:
        self._generation += 1
        clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    def close(self, timeout: float | None = None) -> None:
        """Close the worker pool and every client, promptly: deliveries not yet begun go back to the queue
        (still owed, in the record); attempts in flight get ``timeout`` seconds (default: the policy's
        timeout, which bounds each attempt) and are recorded when they end."""
        with self._lock:
            self._closing = True
            pool, self._pool = self._pool, None
            in_flight = list(self._in_flight)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        _, running = wait_for_futures(in_flight, timeout=self.policy.timeout if timeout is None else timeout)
        with self._lock:
            self._generation += 1
            clients, self._clients = self._clients, []
        if running:  # a client in use closes when its attempt ends: never wait for it here
            threading.Thread(target=_close_all, args=(clients,), name="voicecb-provider-close", daemon=True).start()
        else:
            _close_all(clients)

    # -- the queue -------------------------------------------------------------------------------

    def schedule(self, deliveries: list[Delivery]) -> None:
        """Queue deliveries (in order: equal due times keep the order given); a delivery from before the
        last reset (another generation) is dropped."""
        with self.changed:
            for delivery in deliveries:
                if delivery.generation == self.backend.generation:
                    heapq.heappush(self._queue, (delivery.due, delivery.seq, delivery))
            self.changed.notify_all()

    def clear(self) -> None:
        """Forget everything queued; attempts in flight finish unrecorded (``backend.reset`` moved the generation)."""
        with self.changed:
            self._queue.clear()
            self._parked.clear()
            self.changed.notify_all()

    def next_due(self) -> float | None:
        """When the earliest queued delivery falls due, or None when nothing is owed."""
        with self._lock:
            return self._queue[0][0] if self._queue else None

    @property
    def pending(self) -> int:
        """Deliveries queued or waiting for their call's attempt in flight."""
        with self._lock:
            return len(self._queue) + sum(len(parked) for parked in self._parked.values())

    @property
    def idle(self) -> bool:
        """Nothing queued and no attempt in flight."""
        with self._lock:
            return not self._queue and not self._busy

    def resolve_target(self) -> None:
        """Call a lazy target's factory now, in the calling thread (a pytest fixture lookup must not run
        in a worker thread)."""
        with self._lock:
            if self._lazy:
                found = self._target()  # type: ignore[operator]
                if isinstance(found, Route):
                    self._target, self._route = found.target, found
                else:
                    self._target = found
                self._lazy = False

    def _take_due(self, now: float) -> list[list[Delivery]]:
        """The due deliveries, one group per call, each call marked busy; a busy call's deliveries wait
        (parked) until its attempt in flight is over, so a call's callbacks keep their order."""
        groups: dict[str, list[Delivery]] = {}
        with self._lock:
            while self._queue and self._queue[0][0] <= now:
                delivery = heapq.heappop(self._queue)[2]
                if delivery.callid in self._busy:
                    self._parked.setdefault(delivery.callid, []).append(delivery)
                else:
                    groups.setdefault(delivery.callid, []).append(delivery)
            self._busy.update(groups)
        return list(groups.values())

    def _release(self, callid: str) -> None:
        with self.changed:
            self._busy.discard(callid)
            for delivery in self._parked.pop(callid, []):
                heapq.heappush(self._queue, (delivery.due, delivery.seq, delivery))
            self.changed.notify_all()

    def _fans_out(self) -> bool:
        # An in-process app is called one delivery at a time by its client (a hung one times out), and
        # one client per thread would run an ASGI app's lifespan once per thread: only URLs fan out.
        return self.concurrency > 1 and isinstance(self._target, str)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._closing = False
                workers = self.concurrency if self._fans_out() else 1
                self._pool = ThreadPoolExecutor(workers, thread_name_prefix="voicecb-provider")
            return self._pool

    def run_due(self, now: float) -> list[Attempt]:
        """Attempt every delivery due at ``now`` and wait for them; returns the attempts made, in order."""
        if self._lazy and self.next_due() is not None and self.next_due() <= now:  # type: ignore[operator]
            self.resolve_target()
        self._closing = False  # delivering on request: a close() before this is over
        groups = self._take_due(now)
        if not groups:
            return []
        if len(groups) == 1 or not self._fans_out():
            return [attempt for group in groups for attempt in self._run_group(group, now)]
        pool = self._executor()
        futures = [pool.submit(self._run_group, group, now) for group in groups]
        return [attempt for future in futures for attempt in future.result()]

    def dispatch_due(self, now: float) -> int:
        """Start every delivery due at ``now`` on the worker pool without waiting (the real-time pump): a
        hanging handler holds only its own call. Returns how many calls were started."""
        if self._lazy and self.next_due() is not None and self.next_due() <= now:  # type: ignore[operator]
            self.resolve_target()
        groups = self._take_due(now)
        pool = self._executor() if groups else None
        for group in groups:
            assert pool is not None
            future = pool.submit(self._run_group, group, now)
            with self._lock:
                self._in_flight.add(future)
            future.add_done_callback(functools.partial(self._finished, group=group))
        return len(groups)

    def _finished(self, future: Future[list[Attempt]], *, group: list[Delivery]) -> None:
        """A pool task ended; one cancelled by ``close()`` never ran: its deliveries are owed again."""
        with self._lock:
            self._in_flight.discard(future)
        if future.cancelled():
            self._requeue(group)
            self._release(group[0].callid)

    def _requeue(self, deliveries: list[Delivery]) -> None:
        with self.changed:
            for delivery in deliveries:
                if delivery.generation == self.backend.generation:
                    heapq.heappush(self._queue, (delivery.due, delivery.seq, delivery))

    def _run_group(self, group: list[Delivery], now: float) -> list[Attempt]:
        try:
            attempts = []
            for index, delivery in enumerate(group):
                if self._closing:  # stopping: what has not begun stays owed
                    self._requeue(group[index:])
                    break
                attempt = self._attempt(delivery, now)
                if attempt is not None:
                    attempts.append(attempt)
            return attempts
        finally:
            self._release(group[0].callid)

    def _attempt(self, delivery: Delivery, now: float) -> Attempt | None:
        """Post ``delivery`` once and record the attempt; None (nothing recorded) when a reset came first."""
        if delivery.generation != self.backend.generation:
            return None
        body = delivery.body
        number = len(delivery.attempts) + 1
        begin = time.perf_counter()
        reply = None
        error = verdict = None
        try:
            reply = self._client().post(delivery.payload)  # a payload: the client picks its kind's path
        except DeliveryError as exc:
            error = exc.reason
        except Exception as exc:  # a target that cannot be used at all is a failed delivery, recorded
            error = f"{type(exc).__name__}: {exc}"
        if reply is not None:
            try:
                verdict = judge(reply, delivery.payload, strict=self.strict)
            except Exception as exc:  # never lose the delivery: an unjudged reply is a failed attempt, retried
                reply, error = None, f"the reply could not be judged: {type(exc).__name__}: {exc}"
        acknowledged = reply is not None and verdict is not None and not verdict.problems
        attempt = Attempt(number, now, body, reply, error, verdict, acknowledged, time.perf_counter() - begin)
        with self.changed:
            if delivery.generation != self.backend.generation:
                return None  # reset while in flight: nothing from before a reset is retried, logged or counted
            delivery.attempts.append(attempt)
            if acknowledged:
                for i in range(self.backend.status_duplicates(delivery)):
                    due = now + self.policy.duplicate_after * (i + 1)
                    copy = self.backend.duplicate(delivery, due)
                    heapq.heappush(self._queue, (copy.due, copy.seq, copy))
            elif number <= self.policy.retries:
                delivery.due = now + self.policy.wait(number)
                heapq.heappush(self._queue, (delivery.due, delivery.seq, delivery))
            else:
                delivery.gave_up = True
            self.changed.notify_all()
        self._report(delivery, attempt)
        return attempt

    def _report(self, delivery: Delivery, attempt: Attempt) -> None:
        """``on_attempt``, whose failure (a closed stdout, a bug in a hook) never touches the queue."""
        if self.on_attempt is None:
            return
        try:
            self.on_attempt(delivery, attempt)
        except Exception as exc:
            self.hook_errors += 1
            _log.warning("on_attempt failed for delivery #%s: %s: %s", delivery.seq, type(exc).__name__, exc)
