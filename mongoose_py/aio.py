"""asyncio integration: the Manager driven by the asyncio loop, or by a thread.

>>> async def main():
...     async with AsyncManager(handler, native=True) as am:
...         am.listen("http://127.0.0.1:8000")
...         await asyncio.sleep(3600)

``native=True``: the asyncio loop drives the Manager itself (Mongoose's epoll
fd watched with ``add_reader``, timers with ``call_at``; see ``_native.py``).
Handlers run on the loop thread, between other callbacks and tasks: they may
start tasks (``asyncio.ensure_future``), and a coroutine may call any
Connection method directly; it returns at once (nothing waits for a poll).
No extra thread, and no CPU use while idle. Linux (epoll) only.

``native=False`` (the default, as before): a background thread polls every
``poll_interval`` ms at most; handlers run on that thread; use
``am.schedule(coro_or_callback)`` to hop onto the asyncio loop. A coroutine's
Connection call then waits for that thread (behind a slow handler, too).
Every Manager method is thread-safe (see the README's "Threads"), so the
delegated methods need no lock of their own.
"""
from __future__ import annotations

import asyncio
import threading
import warnings
from typing import Any, Callable, Optional

from ._connection import Connection
from ._manager import Manager
from ._native import NativeDriver
from ._timer import Timer


class AsyncManager:
    def __init__(self, handler: Optional[Callable[..., Any]] = None, poll_interval: int = 100,
                 error_handler: Optional[Callable[[Exception], Any]] = None,
                 shutdown_timeout: float = 30, *, native: bool = False) -> None:
        self._handler = handler
        self._native = bool(native)
        self._driver: Optional[NativeDriver] = None
        self._poll_interval = int(poll_interval)
        self._error_handler = error_handler
        self._shutdown_timeout = float(shutdown_timeout)
        self._mgr: Optional[Manager] = None
        self._thread: Optional[threading.Thread] = None
        self._stopping = threading.Event()
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    async def __aenter__(self) -> "AsyncManager":
        self._loop = asyncio.get_running_loop()
        self._mgr = Manager(self._handler, enable_wakeup=True, error_handler=self._error_handler)
        self._stopping.clear()
        if self._native:
            self._driver = NativeDriver(self._mgr, self._loop, tick_ms=self._poll_interval)
            return self
        self._thread = threading.Thread(target=self._run, name="mongoose_py-poll", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        mgr = self._mgr
        while not self._stopping.is_set():
            mgr.poll(self._poll_interval)

    async def __aexit__(self, *exc: Any) -> None:
        if self._driver is not None:
            driver, mgr = self._driver, self._mgr
            self._stopping.set()
            try:
                await driver.shutdown(self._shutdown_timeout)
            finally:
                driver.detach()
                mgr.close()
                self._mgr = self._driver = None
            return
        mgr, thread = self._mgr, self._thread
        self._stopping.set()
        mgr.stop()  # rings the doorbell: the poll thread wakes at once
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, thread.join, self._shutdown_timeout)
        if thread.is_alive():
            warnings.warn("AsyncManager: poll thread still busy after %.1f s (a handler is stuck); "
                          "abandoning it without closing the Manager" % self._shutdown_timeout, RuntimeWarning)
        else:
            mgr.close()
        self._mgr = self._thread = None

    def _started(self) -> Manager:
        if self._mgr is None or self._stopping.is_set():
            raise RuntimeError("AsyncManager is not started")
        return self._mgr

    @property
    def manager(self) -> Manager:
        return self._started()

    @property
    def running(self) -> bool:
        if self._driver is not None:
            return not self._stopping.is_set()
        return self._thread is not None and self._thread.is_alive() and not self._stopping.is_set()

    @property
    def native(self) -> bool:
        """True when the asyncio loop drives the Manager (no poll thread)."""
        return self._native

    def listen(self, url: str, handler: Optional[Callable[..., Any]] = None, *, http: Optional[bool] = None,
               **kwargs: Any) -> Connection:
        return self._started().listen(url, handler, http=http, **kwargs)

    def connect(self, url: str, handler: Optional[Callable[..., Any]] = None, *, http: Optional[bool] = None,
                **kwargs: Any) -> Connection:
        return self._started().connect(url, handler, http=http, **kwargs)

    def ws_connect(self, url: str, handler: Optional[Callable[..., Any]] = None, **kwargs: Any) -> Connection:
        return self._started().ws_connect(url, handler, **kwargs)

    def mqtt_connect(self, url: str, **kwargs: Any) -> Connection:
        return self._started().mqtt_connect(url, **kwargs)

    def mqtt_listen(self, url: str, handler: Optional[Callable[..., Any]] = None) -> Connection:
        return self._started().mqtt_listen(url, handler)

    def sntp_connect(self, url: str, handler: Optional[Callable[..., Any]] = None) -> Connection:
        return self._started().sntp_connect(url, handler)

    def wakeup(self, connection_id: int, data: bytes = b"") -> bool:
        return self._started().wakeup(connection_id, data)

    def timer_add(self, ms: int, callback: Callable[..., Any], *, repeat: bool = False,
                  run_now: bool = False) -> Timer:
        return self._started().timer_add(ms, callback, repeat=repeat, run_now=run_now)

    def schedule(self, coro_or_callback: Any) -> None:
        """Run a coroutine or a plain callable on the asyncio loop (from a handler)."""
        self._started()
        if asyncio.iscoroutine(coro_or_callback):
            asyncio.run_coroutine_threadsafe(coro_or_callback, self._loop)
        else:
            self._loop.call_soon_threadsafe(coro_or_callback)
