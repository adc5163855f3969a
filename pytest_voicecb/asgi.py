"""In-process ASGI apps (FastAPI, Starlette, plain ``async def app(scope, receive, send)``) as WSGI apps.

a2wsgi (a small, well-kept, dependency-free bridge) runs the app's HTTP side; what it leaves to a server,
the lifespan protocol, is added here: startup before the first delivery, shutdown on ``close()``, and
the lifespan state passed into each request as uvicorn does. So the client has one in-process path.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import threading
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

from pytest_voicecb.errors import TargetError

__all__ = ["AsgiBridge", "is_asgi"]


def is_asgi(app: object) -> bool:
    """ASGI apps are coroutine functions or objects whose ``__call__`` is one (FastAPI, Starlette, Django's)."""
    if inspect.iscoroutinefunction(app):
        return True
    if inspect.isfunction(app) or inspect.ismethod(app):
        return False
    return inspect.iscoroutinefunction(type(app).__call__)


class AsgiBridge:
    """An ASGI app as a WSGI app: a2wsgi's ``ASGIMiddleware`` on an event loop of our own, plus the
    lifespan protocol (startup before the first delivery, shutdown on ``close()``) that a2wsgi leaves
    to the server, with lifespan state passed into each request as uvicorn does."""

    startup_timeout = 10.0

    def __init__(self, app: Any) -> None:
        try:
            from a2wsgi import ASGIMiddleware
        except ImportError:  # pragma: no cover - depends on the environment
            raise TargetError(
                "delivering to an ASGI app in-process needs a2wsgi: pip install 'pytest-voicecb[asgi]'"
            ) from None
        self.app = app
        self.state: dict[str, Any] = {}
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="voicecb-asgi", daemon=True)
        self._thread.start()
        self._shutdown: asyncio.Queue[dict[str, str]] | None = None
        self._lifespan_done: asyncio.Future[None] | None = None
        self._wsgi = ASGIMiddleware(self._with_state, loop=self.loop)  # type: ignore[arg-type]
        try:
            self._run(self._startup(), self.startup_timeout)
        except (TimeoutError, concurrent.futures.TimeoutError):
            self._shutdown = None  # still starting: nothing to shut down gracefully
            self.close()
            seconds = self.startup_timeout
            raise TargetError(f"the ASGI app's lifespan startup did not finish within {seconds:g} s") from None
        except BaseException:
            self.close()
            raise

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        result: Iterable[bytes] = self._wsgi(environ, start_response)  # type: ignore[arg-type]
        return result

    async def _with_state(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            scope["state"] = dict(self.state)
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            # Starlette re-raises after sending its 500, when a2wsgi no longer reports it: keep the traceback.
            errors = scope.get("wsgi_environ", {}).get("wsgi.errors")
            if errors is not None:
                errors.write("".join(traceback.format_exception(exc)))
            raise

    def _run(self, coro: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _startup(self) -> None:
        loop = asyncio.get_running_loop()
        started: asyncio.Future[bool] = loop.create_future()
        self._lifespan_done = loop.create_future()
        messages: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._shutdown = messages
        await messages.put({"type": "lifespan.startup"})

        async def send(message: Mapping[str, Any]) -> None:
            kind = message.get("type")
            if kind == "lifespan.startup.complete" and not started.done():
                started.set_result(True)
            elif kind == "lifespan.startup.failed" and not started.done():
                reason = message.get("message", "")
                started.set_exception(TargetError(f"the ASGI app's lifespan startup failed: {reason}"))

        async def run() -> None:
            scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
            try:
                await self.app(scope, messages.get, send)
            except BaseException:  # an app raising on "lifespan" lacks it
                if not started.done():
                    started.set_result(False)
            finally:
                if self._lifespan_done is not None and not self._lifespan_done.done():
                    self._lifespan_done.set_result(None)

        self._task = loop.create_task(run())
        if not await started:
            self._shutdown = None  # lifespan unsupported: nothing to shut down

    async def _stop(self) -> None:
        if self._shutdown is not None and self._lifespan_done is not None:
            await self._shutdown.put({"type": "lifespan.shutdown"})
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._lifespan_done), 5.0)
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def close(self) -> None:
        """Run the lifespan shutdown, then stop the event loop."""
        if self.loop.is_closed():
            return
        with contextlib.suppress(Exception):
            self._run(self._stop(), 6.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(2.0)
        if not self._thread.is_alive():
            self.loop.close()
