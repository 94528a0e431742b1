"""The thread contract (API.md §2 "Threads").

Mongoose has no locks and cffi releases the GIL around every C call, so no two
threads may ever be inside one Manager's C memory at once. Every public method
that touches C is wrapped with :func:`on_loop`:

* on the thread that is running the Manager's loop (inside a handler, a timer,
  or between ``poll()`` calls of a single-threaded program) it runs directly:
  one ``get_ident()`` comparison;
* from any other thread it runs directly too if nobody is polling (it then
  holds the Manager's loop lock for the call); otherwise it is marshalled to the
  loop thread: queued, the doorbell rung (so a loop waiting in epoll wakes at
  once), and the caller waits for the result or exception. The loop runs queued
  calls between iterations, never while a handler is on the stack.

The loop lock is held by ``poll()`` for a whole iteration, including its wait,
which is fine because other threads never wait for the lock: they queue.
"""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Dict, Optional, Tuple, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])

get_ident = threading.get_ident


class _Call:
    __slots__ = ("fn", "args", "kwargs", "done", "result", "error")

    def __init__(self, fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.done = threading.Event()
        self.result: Any = None
        self.error: Optional[BaseException] = None

    def __call__(self) -> None:
        try:
            self.result = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:  # handed to the waiting caller
            self.error = exc
        finally:
            self.done.set()


def call_on_loop(mgr: Any, fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    """Run ``fn(*args, **kwargs)`` with exclusive access to ``mgr``'s C memory."""
    me = get_ident()
    if mgr._owner == me:
        return fn(*args, **kwargs)
    # The thread of an asyncio loop driving the Manager natively (aio.py) waits
    # for the lock: other threads only hold it for a short direct call, and
    # queueing would block that loop until it polls, which it is not doing.
    if mgr._lock.acquire(mgr._native_thread == me):
        try:
            mgr._owner = me
            return fn(*args, **kwargs)
        finally:
            mgr._owner = None
            mgr._lock.release()
            if mgr._after_call is not None:
                mgr._after_call()  # native mode: data queued between passes needs a pass
    call = _Call(fn, args, kwargs)
    mgr._post(call)
    while not call.done.wait(0.05):
        # The polling thread stopped polling without draining us: run the
        # queue here (we now own the loop lock). Not a blocking acquire: a
        # thread that calls in back to back would then take the lock between
        # every two iterations and starve the loop (measured: 20x fewer req/s).
        if mgr._lock.acquire(False):
            try:
                mgr._owner = me
                if not call.done.is_set():
                    if mgr._freed:  # closed after we queued: nobody will run it
                        raise RuntimeError("Manager has been freed")
                    mgr._run_posted()
            finally:
                mgr._owner = None
                mgr._lock.release()
                if mgr._after_call is not None:
                    mgr._after_call()
    if call.error is not None:
        raise call.error
    return call.result


def on_loop(fn: F) -> F:
    """Decorator for Connection methods: see the module docstring."""

    @functools.wraps(fn)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        mgr = self._mgr
        if mgr is None or mgr._owner == get_ident():
            return fn(self, *args, **kwargs)
        return call_on_loop(mgr, fn, (self,) + args, kwargs)

    return cast(F, method)


def on_loop_property(fn: Callable[[Any], Any]) -> property:
    return property(on_loop(fn))


def manager_on_loop(fn: F) -> F:
    """Like :func:`on_loop`, for Manager methods (``self`` is the Manager)."""

    @functools.wraps(fn)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self._owner == get_ident():
            return fn(self, *args, **kwargs)
        return call_on_loop(self, fn, (self,) + args, kwargs)

    return cast(F, method)
