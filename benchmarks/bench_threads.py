#!/usr/bin/env python3
"""Cost of the thread contract (API.md §2): the same call made

  A. without the contract's wrapper (the method body alone: the floor);
  B. on the loop thread, e.g. inside a handler or timer (the fast path: one
     ``get_ident()`` comparison);
  C. from a thread that does not run the loop while nobody polls: the call
     takes the Manager's loop lock (what a single-threaded program that calls
     between ``poll()`` calls pays);
  D. from another thread while the loop thread sits in ``poll(100)``: the
     call is marshalled (queued, doorbell, loop thread runs it, caller waits).

Two operations: ``conn.send(b"x")`` on a connected TCP client, and
``mgr.timer_add(3600000, noop)`` followed by ``Timer.cancel()``.

    python bench_threads.py                  # this interpreter, prints µs/call
    python bench_threads.py --json           # machine-readable (run.py uses it)
    (run.py calls run_both(), which runs it under CPython and PyPy)

Run it from the benchmarks/ folder (or anywhere but the repo root) so that
the *installed* mongoose_py of the interpreter's venv is used.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time

from common import HERE, env_without_pythonpath


def noop():
    pass


def measure(mgr, conn, n, reps):
    from mongoose_py import Manager
    from mongoose_py._ffi import lib

    def send_raw(conn, data):  # send() inlines its thread check: the bare C call is the baseline
        lib.mg_send(conn._c, data, len(data))
    timer_add_raw = Manager.timer_add.__wrapped__

    ops = {
        "send": (lambda: conn.send(b"x"), lambda: send_raw(conn, b"x")),
        "timer_add+cancel": (lambda: mgr.timer_add(3_600_000, noop).cancel(),
                             lambda: timer_add_raw(mgr, 3_600_000, noop).cancel()),
    }

    def loop_for(k, fn):
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        return (time.perf_counter() - t0) / k * 1e6

    def settle():
        for _ in range(5):
            mgr.poll(0)

    res = {}
    for name, (wrapped, raw) in ops.items():
        r = {}
        # A: body only. Run "as the loop thread" so the body's own nested calls
        # (e.g. _check_open) do not take another path: set the owner like poll() does.
        samples = []
        for rep in range(reps + 1):
            mgr._lock.acquire()
            mgr._owner = threading.get_ident()
            try:
                t = loop_for(n, raw)
            finally:
                mgr._owner = None
                mgr._lock.release()
            settle()
            if rep:
                samples.append(t)
        r["A_unwrapped"] = statistics.median(samples)

        # B: inside a timer callback, i.e. on the loop thread during poll().
        samples = []
        for rep in range(reps + 1):
            out = []
            mgr.timer_add(0, lambda: out.append(loop_for(n, wrapped)), run_now=True)
            deadline = time.monotonic() + 30
            while not out and time.monotonic() < deadline:
                mgr.poll(10)
            settle()
            if rep:
                samples.append(out[0])
        r["B_loop_thread"] = statistics.median(samples)

        # C: nobody polls; the caller takes the loop lock.
        samples = []
        for rep in range(reps + 1):
            t = loop_for(n, wrapped)
            settle()
            if rep:
                samples.append(t)
        r["C_other_thread_idle_loop"] = statistics.median(samples)

        # D: a loop thread polls; every call is marshalled to it.
        stop = threading.Event()
        collisions = [0]
        posted = [0]
        real_post = mgr._post

        from mongoose_py._threads import _Call

        def counting_post(fn):  # instance attribute: counts calls that really were marshalled
            if isinstance(fn, _Call):
                posted[0] += 1
            real_post(fn)

        def loop():
            while not stop.is_set():
                try:
                    mgr.poll(100)
                except RuntimeError:  # see report: poll() vs a direct call holding the loop lock
                    collisions[0] += 1

        th = threading.Thread(target=loop)
        mgr._post = counting_post
        th.start()
        try:
            time.sleep(0.05)
            samples = []
            m = max(200, n // 20)
            for rep in range(reps + 1):
                t = loop_for(m, wrapped)
                if rep:
                    samples.append(t)
        finally:
            stop.set()
            mgr.wakeup(0)  # harmless; stop is seen within poll(100) anyway
            th.join(5)
            del mgr._post
        settle()
        r["D_other_thread_marshalled"] = statistics.median(samples)
        r["D_calls"] = (reps + 1) * m
        r["D_marshalled"] = posted[0]
        r["D_poll_collisions"] = collisions[0]
        res[name] = r
    return res


def bench(n, reps):
    import platform
    from mongoose_py import Connection, Manager

    class Sink(Connection):
        def on_read(self):
            self.consume(self.recv_len)

    mgr = Manager()
    lst = mgr.listen("tcp://127.0.0.1:0", connection_class=Sink)
    port = lst.local_addr[1]
    conn = mgr.connect("tcp://127.0.0.1:%d" % port)
    deadline = time.monotonic() + 5
    while len(mgr._conns) < 3 and time.monotonic() < deadline:  # listener, client, accepted
        mgr.poll(10)
    res = measure(mgr, conn, n, reps)
    mgr.close()
    impl = platform.python_implementation()
    if impl == "PyPy":
        impl = "PyPy %s" % ".".join(map(str, sys.pypy_version_info[:3]))
    else:
        impl = "CPython %s" % platform.python_version()
    return {"impl": impl, "n": n, "reps": reps, "results": res}


SCEN = [("A_unwrapped", "A. body only, no wrapper"),
        ("B_loop_thread", "B. loop thread (in a handler/timer)"),
        ("C_other_thread_idle_loop", "C. other thread, nobody polling (lock)"),
        ("D_other_thread_marshalled", "D. other thread, loop in poll() (marshalled)")]


def render(runs):
    lines = ["| call | path | " + " | ".join(r["impl"] for r in runs) + " |",
             "|---|---|" + "---:|" * len(runs)]
    for op in ("send", "timer_add+cancel"):
        for key, label in SCEN:
            cells = []
            for r in runs:
                v = r["results"][op][key]
                base = r["results"][op]["A_unwrapped"]
                cells.append("%.2f µs (+%.2f)" % (v, v - base) if key != "A_unwrapped" else "%.2f µs" % v)
            lines.append("| `%s` | %s | %s |" % ("conn.send(b'x')" if op == "send" else
                                                   "mgr.timer_add(…).cancel()", label, " | ".join(cells)))
    for r in runs:
        for op in ("send", "timer_add+cancel"):
            x = r["results"][op]
            lines.append("")
            lines.append("%s, `%s`, path D: %d of %d calls were marshalled (the rest took the lock "
                         "between two polls); the loop thread's `poll()` raised RuntimeError %d time(s)."
                         % (r["impl"], op, x["D_marshalled"], x["D_calls"], x["D_poll_collisions"]))
    return "\n".join(lines)


def run_one(python, quick=False, cpu="0"):
    cmd = ["taskset", "-c", cpu, python, os.path.join(HERE, "bench_threads.py"), "--json"]
    if quick:
        cmd.append("--quick")
    p = subprocess.run(cmd, cwd=HERE, env=env_without_pythonpath(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=600)
    if p.returncode != 0:
        raise RuntimeError("bench_threads.py failed under %s:\n%s" % (python, p.stderr[-3000:]))
    return json.loads(p.stdout)


def run_both(cpython, pypy, quick=False):
    """Run under both interpreters (pinned to CPU 0 like the servers) and
    return the RESULTS.md section."""
    runs = [run_one(cpython, quick), run_one(pypy, quick)]
    tmp = os.path.join(HERE, "out")
    os.makedirs(tmp, exist_ok=True)
    with open(os.path.join(tmp, "threads.json"), "w") as f:
        json.dump(runs, f, indent=1)
    n = runs[0]["n"]
    text = [
        "Measured %s by `benchmarks/bench_threads.py` (µs per call, median of %d repetitions of %d calls "
        "after one warm-up repetition; path D uses %d calls per repetition; in parentheses: the cost over A). "
        "Process pinned to CPU 0, so in D the two threads share one core, as in the server rows above."
        % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), runs[0]["reps"], n, max(200, n // 20)),
        "",
        render(runs),
        "",
        "The busy-second-thread rows of the HTTP table above show the same contract under load: "
        "`mg_idiomatic_bg.py` is the idiomatic server plus a thread calling `mgr.timer_add(…).cancel()` "
        "back to back (run on the loop thread: marshalled while it polls, the caller waiting); the calls it "
        "completed are in `benchmarks/out/mg_idiomatic_bg_*.stderr`.",
    ]
    return "\n".join(text)


def main():
    quick = "--quick" in sys.argv
    n, reps = (2000, 2) if quick else (20000, 3)
    r = bench(n, reps)
    if "--json" in sys.argv:
        print(json.dumps(r))
    else:
        print(render([r]))


if __name__ == "__main__":
    main()
