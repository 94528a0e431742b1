"""Timers: one-shot, repeat, run_now, cancel (also from other threads and from
the callback itself), dropped Timers, precision under long polls, errors."""
import gc
import logging
import threading
import time

import pytest

from conftest import LoopThread, pump, wait_for
from mongoose_py import Manager, Timer


def test_one_shot_fires_once_and_becomes_inactive(manager):
    calls = []
    t = manager.timer_add(20, lambda: calls.append(time.monotonic()))
    assert isinstance(t, Timer)
    assert t.active
    start = time.monotonic()
    assert pump(manager, lambda: calls, 5)
    assert calls[0] - start >= 0.015  # not before its time (ms clock granularity)
    assert not t.active
    for _ in range(10):
        manager.poll(5)
    assert len(calls) == 1
    t.cancel()  # cancelling a fired one-shot: harmless
    t.cancel()
    assert not t.active


def test_repeat_fires_until_cancelled(manager):
    calls = []
    t = manager.timer_add(5, lambda: calls.append(1), repeat=True)
    assert pump(manager, lambda: len(calls) >= 5, 5)
    assert t.active
    t.cancel()
    assert not t.active
    n = len(calls)
    for _ in range(10):
        manager.poll(5)
    assert len(calls) == n


def test_run_now_fires_on_the_first_poll(manager):
    calls = []
    t = manager.timer_add(60000, lambda: calls.append(1), repeat=True, run_now=True)
    manager.poll(0)
    assert calls == [1]
    for _ in range(5):
        manager.poll(1)
    assert calls == [1]  # next one is a minute away
    assert t.active
    t.cancel()


def test_run_now_one_shot_fires_once_then_is_done(manager):
    calls = []
    t = manager.timer_add(60000, lambda: calls.append(1), run_now=True)
    manager.poll(0)
    assert calls == [1]
    assert not t.active


def test_zero_ms_timer_fires_on_the_next_poll(manager):
    calls = []
    manager.timer_add(0, lambda: calls.append(1))
    start = time.monotonic()
    manager.poll(1000)  # the wait is clamped: a due timer means no wait
    assert calls == [1]
    assert time.monotonic() - start < 0.5


def test_zero_ms_repeat_fires_every_iteration(manager):
    calls = []
    t = manager.timer_add(0, lambda: calls.append(1), repeat=True)
    start = time.monotonic()
    for _ in range(20):
        manager.poll(1000)
    assert len(calls) >= 19
    assert time.monotonic() - start < 5  # a due timer means no wait, not 20 x 1 s
    t.cancel()


def test_cancel_before_firing(manager):
    calls = []
    t = manager.timer_add(10, lambda: calls.append(1))
    t.cancel()
    assert not t.active
    for _ in range(10):
        manager.poll(5)
    assert calls == []
    assert t not in manager._timers


def test_cancel_inside_its_own_callback(manager):
    calls = []
    holder = {}

    def cb():
        calls.append(1)
        if len(calls) == 3:
            holder["t"].cancel()
            assert not holder["t"].active

    holder["t"] = manager.timer_add(1, cb, repeat=True)
    assert pump(manager, lambda: len(calls) >= 3, 5)
    for _ in range(20):
        manager.poll(2)
    assert len(calls) == 3
    assert not holder["t"].active


def test_cancel_from_another_thread_while_the_loop_runs():
    mgr = Manager()
    loop = LoopThread(mgr, poll_ms=50).start()
    try:
        calls = []
        t = mgr.timer_add(2, lambda: calls.append(1), repeat=True)
        assert wait_for(lambda: len(calls) >= 10, 5)
        done = threading.Event()

        def canceller():
            t.cancel()  # never blocks
            done.set()

        th = threading.Thread(target=canceller)
        th.start()
        th.join(5)
        assert done.is_set()
        at_cancel = len(calls)
        assert not t.active
        time.sleep(0.2)
        # At most one callback that had already started when cancel() ran.
        assert len(calls) <= at_cancel + 1
        assert wait_for(lambda: t not in mgr._timers, 5)
    finally:
        loop.stop()


def test_many_timers_cancelled_from_threads_while_the_loop_runs():
    mgr = Manager()
    loop = LoopThread(mgr, poll_ms=20).start()
    try:
        fired = {}
        timers = []
        for i in range(200):
            timers.append(mgr.timer_add(1 + i % 7, (lambda i=i: fired.__setitem__(i, fired.get(i, 0) + 1)),
                                        repeat=True))
        assert wait_for(lambda: len(fired) == 200, 10)

        def cancel_some(ts):
            for x in ts:
                x.cancel()

        threads = [threading.Thread(target=cancel_some, args=(timers[k::4],)) for k in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(10)
            assert not th.is_alive()
        assert wait_for(lambda: not mgr._timers, 5)
        snapshot = dict(fired)
        time.sleep(0.1)
        assert fired == snapshot
    finally:
        loop.stop()


def test_dropped_timer_keeps_firing(manager):
    calls = []
    manager.timer_add(2, lambda: calls.append(1), repeat=True)  # no reference kept
    for _ in range(3):
        gc.collect()
    assert pump(manager, lambda: len(calls) >= 5, 5)
    n = len(calls)
    gc.collect()
    assert pump(manager, lambda: len(calls) >= n + 5, 5)


def test_dropped_timer_reachable_only_from_itself_keeps_firing_until_it_cancels(manager):
    calls = []

    def make():
        holder = {}

        def cb():
            calls.append(1)
            if len(calls) == 8:
                holder["t"].cancel()

        holder["t"] = manager.timer_add(2, cb, repeat=True)
        # Timer -> callback -> holder -> Timer: a cycle that only the Manager keeps.

    make()
    gc.collect()
    assert pump(manager, lambda: len(calls) >= 8, 5)
    for _ in range(10):
        gc.collect()
        manager.poll(3)
    assert len(calls) == 8
    assert not manager._timers


def test_timer_precision_under_long_poll(manager):
    fired = []
    start = time.monotonic()
    manager.timer_add(50, lambda: fired.append(time.monotonic()))
    for _ in range(3):
        manager.poll(1000)
        if fired:
            break
    assert fired
    # The shim clamps the wait to the next timer: nowhere near poll's 1 s.
    assert 0.04 <= fired[0] - start < 0.6, fired[0] - start


def test_timer_added_from_another_thread_wakes_a_long_poll():
    mgr = Manager()
    loop = LoopThread(mgr, poll_ms=1000).start()
    try:
        time.sleep(0.05)  # the loop is now waiting in a 1 s poll
        fired = []
        start = time.monotonic()
        mgr.timer_add(50, lambda: fired.append(time.monotonic()))
        assert wait_for(lambda: fired, 5)
        assert fired[0] - start < 0.7, fired[0] - start
    finally:
        loop.stop()


def test_exception_in_timer_callback_is_logged_and_the_loop_goes_on(manager, caplog):
    calls = []

    def cb():
        calls.append(1)
        if len(calls) <= 2:
            raise ValueError("timer boom %d" % len(calls))

    with caplog.at_level(logging.ERROR, logger="mongoose_py"):
        t = manager.timer_add(2, cb, repeat=True)
        assert pump(manager, lambda: len(calls) >= 5, 5)
        t.cancel()
    texts = [r.getMessage() + str(r.exc_info[1] if r.exc_info else "") for r in caplog.records]
    assert any("timer boom 1" in x for x in texts), texts
    assert any("timer boom 2" in x for x in texts), texts


def test_exception_in_timer_goes_to_error_handler():
    errors = []
    with Manager(error_handler=errors.append) as mgr:
        mgr.timer_add(1, lambda: 1 / 0)
        ok = []
        mgr.timer_add(5, lambda: ok.append(1))
        assert pump(mgr, lambda: ok, 5)
    assert len(errors) == 1 and isinstance(errors[0], ZeroDivisionError)


def test_keyboard_interrupt_in_timer_propagates_out_of_poll(manager):
    def cb():
        raise KeyboardInterrupt

    manager.timer_add(1, cb)
    with pytest.raises(KeyboardInterrupt):
        pump(manager, lambda: False, 5)
    later = []
    manager.timer_add(1, lambda: later.append(1))
    assert pump(manager, lambda: later, 5)


def test_timer_callback_adds_and_cancels_timers(manager):
    order = []
    holder = {}

    def first():
        order.append("first")
        holder["second"] = manager.timer_add(1, lambda: order.append("second"))
        holder["never"] = manager.timer_add(1, lambda: order.append("never"))
        holder["never"].cancel()

    manager.timer_add(1, first)
    assert pump(manager, lambda: "second" in order, 5)
    for _ in range(10):
        manager.poll(2)
    assert order == ["first", "second"]


def test_timers_stop_on_close_and_cancel_after_close_is_harmless():
    calls = []
    mgr = Manager()
    t = mgr.timer_add(1, lambda: calls.append(1), repeat=True)
    assert pump(mgr, lambda: calls, 5)
    mgr.close()
    assert not t.active
    t.cancel()
    with pytest.raises(RuntimeError):
        mgr.timer_add(1, lambda: None)
