"""A Manager driven by an asyncio loop itself: no poll thread, no busy loop.

Mongoose on Linux waits in ``epoll_wait`` on one fd (``mgr->epoll_fd``). An
epoll fd is itself pollable: it turns readable when one of its sockets has an
event. So the asyncio loop watches it with ``add_reader`` and runs one
``poll(0)`` per readiness; timers are ``call_at`` handles; work that needs a
pass without readiness (a closing connection, buffered TLS records, data a
coroutine queued between passes) gets a ``call_soon`` pass. After each pass
``mgpy_aio_arm`` (``_shim_aio.c``) does what Mongoose's own wait would have
done first (register EPOLLOUT for queued output) and says when the next pass
is due. Handlers run on the loop thread; a coroutine calls Connection methods
directly (they return at once); other threads take the loop lock for their
call, then ask the loop for a pass.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Optional

from ._ffi import ffi, lib


class NativeDriver:
    """Attach ``mgr`` to the running asyncio loop (see the module docstring).

    >>> driver = NativeDriver(mgr, asyncio.get_running_loop())   # doctest: +SKIP
    >>> ...; await driver.shutdown(5.0); driver.detach(); mgr.close()   # doctest: +SKIP
    """

    def __init__(self, mgr, loop: asyncio.AbstractEventLoop, tick_ms: int = 100) -> None:
        if mgr._mgr.epoll_fd < 0:
            raise RuntimeError("native asyncio mode needs Mongoose built with epoll (Linux)")
        self.mgr = mgr
        self.loop = loop
        self.tick_ms = max(1, int(tick_ms))
        self.passes = 0                       # loop passes run (tests: idle means no passes)
        self._fd = mgr._mgr.epoll_fd
        self._soon = False                    # a call_soon pass is queued
        self._timer: Optional[asyncio.TimerHandle] = None
        self._next = ffi.new("long *")
        self._ident = threading.get_ident()
        self._attached = True
        mgr._native_thread = self._ident
        mgr._after_call = self.kick
        loop.add_reader(self._fd, self._pass)
        self.kick()

    def kick(self) -> None:
        """Ask for a pass soon (from any thread; cheap when one is queued already)."""
        if self._soon or not self._attached:
            return
        self._soon = True
        if threading.get_ident() == self._ident:
            self.loop.call_soon(self._soon_pass)
        else:
            try:
                self.loop.call_soon_threadsafe(self._soon_pass)
            except RuntimeError:  # the loop is closed: nothing left to drive
                self._soon = False

    def _soon_pass(self) -> None:
        self._soon = False
        self._pass()

    def _timer_pass(self) -> None:
        self._timer = None
        self._pass()

    def _pass(self) -> None:
        mgr = self.mgr
        if not self._attached:
            return
        if mgr._freed:
            self.detach()
            return
        self.passes += 1
        try:
            mgr.poll(0)
        finally:
            if self._attached and not mgr._freed:
                self._arm()

    def _arm(self) -> None:
        mgr = self.mgr
        # Not through call_on_loop: its after-call hook would ask for another pass.
        if not mgr._lock.acquire(False):
            return  # another thread is in a direct call: it kicks us when it is done
        try:
            if mgr._freed:
                return
            now = lib.mgpy_aio_arm(mgr._mgr, self.tick_ms, self._next)
            next_ms = self._next[0]
        finally:
            mgr._lock.release()
        if now:
            self.kick()
            return
        if next_ms < 0:
            return
        when = self.loop.time() + (next_ms + 1) / 1000.0  # +1: never before Mongoose's ms clock
        timer = self._timer
        if timer is not None:
            if timer.when() <= when:
                return
            timer.cancel()
        self._timer = self.loop.call_at(when, self._timer_pass)

    def detach(self) -> None:
        """Stop driving the Manager (it is then free for ``poll()``/``close()``)."""
        if not self._attached:
            return
        self._attached = False
        try:
            self.loop.remove_reader(self._fd)
        except (RuntimeError, ValueError, OSError):
            pass  # the loop is closed already
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        mgr = self.mgr
        if mgr._after_call == self.kick:
            mgr._after_call = None
            mgr._native_thread = None

    async def shutdown(self, timeout: float) -> None:
        """Graceful stop: close listeners and idle connections, give responses in
        flight up to ``timeout`` seconds. The Manager stays open (close it next)."""
        mgr = self.mgr
        if mgr._freed:
            return
        mgr._call(mgr._close_listeners)
        deadline = self.loop.time() + timeout
        while mgr._conns and not mgr._freed and self.loop.time() < deadline:
            mgr._call(mgr._drain_idle)
            await asyncio.sleep(0.02)
