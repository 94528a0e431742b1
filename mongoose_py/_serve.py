"""``serve()``: run a server in N worker processes sharing one port (SO_REUSEPORT)."""
from __future__ import annotations

import os
import signal
import sys
from typing import Any, Callable, Optional, Type, Union

from ._connection import Connection
from ._manager import Manager

PARENT_CHECK_MS = 250  # how soon a worker notices that its parent is gone


def _run_one(target: Union[Type[Connection], Callable[..., Any]], url: str, poll_ms: int, shutdown_timeout: Optional[float], reuse_port: bool,
             ready: Optional[Callable[[Connection], None]], parent: Optional[int] = None) -> None:
    with Manager() as mgr:
        if isinstance(target, type) and issubclass(target, Connection):
            listener = mgr.listen(url, connection_class=target, reuse_port=reuse_port)
        else:
            listener = mgr.listen(url, target, reuse_port=reuse_port)
        if parent is not None:
            def check_parent() -> None:
                if orphaned(parent):  # must not leave workers holding the port
                    mgr.stop()

            mgr.timer_add(PARENT_CHECK_MS, check_parent, repeat=True)
        if ready is not None:
            ready(listener)
        mgr.run(poll_ms, shutdown_timeout=shutdown_timeout)


def serve(target: Union[Type[Connection], Callable[..., Any]], url: str = "http://127.0.0.1:8000", *, workers: int = 1,
          poll_ms: int = 100, shutdown_timeout: Optional[float] = 5.0,
          ready: Optional[Callable[[Connection], None]] = None) -> None:
    """Serve ``target`` (a :class:`Connection` subclass or a handler function) on ``url``.

    >>> serve(Echo, "http://0.0.0.0:8000", workers=4)   # doctest: +SKIP

    With ``workers > 1`` the process forks that many workers, each with its own
    Manager listening on the same port with SO_REUSEPORT (the kernel spreads the
    connections); SIGINT/SIGTERM to the parent stop them all gracefully, and
    a worker whose parent died anyhow (SIGKILL) stops by itself within ~0.25 s.
    ``ready(listener)`` is called in each worker once it listens.
    """
    if workers <= 1:
        _run_one(target, url, poll_ms, shutdown_timeout, False, ready)
        return
    if url.rstrip("/").endswith(":0"):
        raise ValueError("workers > 1 need a fixed port: each worker would get its own with :0")
    run_forked(workers, lambda parent: _run_one(target, url, poll_ms, shutdown_timeout, True, ready, parent))


def run_forked(workers: int, child: Callable[[int], None]) -> None:
    """Fork ``workers`` processes running ``child(parent_pid)``; forward
    SIGINT/SIGTERM to them and wait for all. A child must stop by itself
    when ``os.getppid()`` is no longer ``parent_pid`` (see :func:`orphaned`)."""
    children = []
    parent = os.getpid()
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # worker
            code = 0
            try:
                child(parent)
            except BaseException:  # noqa: B902 - a worker must never return into the parent's code
                import traceback
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        children.append(pid)

    def forward(signum: int, frame: Any) -> None:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for pid in children:
            while True:
                try:
                    os.waitpid(pid, 0)
                    break
                except InterruptedError:
                    continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def orphaned(parent: Optional[int]) -> bool:
    """True in a forked worker whose parent died without forwarding a signal
    (SIGKILL, OOM killer): re-parented means orphaned."""
    return parent is not None and os.getppid() != parent
