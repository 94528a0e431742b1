"""Timers: Mongoose's timer list, callbacks through the one trampoline.

Lifetime: the Manager holds every live Timer in ``Manager._timers`` (so a
Timer the caller drops keeps firing until cancelled) and the Timer holds the
handle stored as the C timer's ``arg``. A one-shot timer is forgotten in its
own callback (Mongoose frees the C struct right after it returns); a cancelled
one is unlinked and freed on the loop thread between iterations, never inside
``mg_timer_poll`` (MONGOOSE.md §1.8 lists the use-after-frees that avoids).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from ._ffi import ffi, lib


class Timer:
    """Returned by :meth:`Manager.timer_add`. ``cancel()`` is thread-safe and
    never blocks; ``active`` is False once it has fired (one-shot) or been cancelled."""

    __slots__ = ("_mgr", "_callback", "_t", "_handle", "_repeat", "_cancelled")

    def __init__(self, mgr: Any, callback: Callable[[], object], repeat: bool) -> None:
        self._mgr = mgr
        self._callback = callback
        self._repeat = repeat
        self._cancelled = False
        self._t: Optional[Any] = None  # the C timer while it is armed
        self._handle = ffi.new_handle(self)

    @property
    def active(self) -> bool:
        return self._t is not None and not self._cancelled

    def cancel(self) -> None:
        if self._cancelled:
            return
        self._cancelled = True  # the callback is skipped from now on, in any thread
        mgr = self._mgr
        if mgr is not None and not mgr._freed:
            mgr._post(self._free)

    def _free(self) -> None:
        """On the loop thread, outside mg_timer_poll."""
        t = self._t
        if t is not None and not self._mgr._freed:
            self._t = None
            lib.mgpy_timer_cancel(self._mgr._mgr, t)
        self._mgr._timers.discard(self)

    def _fire(self) -> None:
        """From the trampoline, inside mg_timer_poll."""
        if not self._repeat:
            self._t = None  # Mongoose frees the C timer as soon as we return
            self._mgr._timers.discard(self)
        if self._cancelled:
            return
        try:
            self._callback()
        except BaseException as exc:  # noqa: B902
            self._mgr._handler_failed(None, None, exc)

    def __repr__(self) -> str:
        return "<Timer %s%s>" % ("repeat " if self._repeat else "", "active" if self.active else "inactive")
