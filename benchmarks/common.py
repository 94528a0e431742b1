"""What the benchmark drivers share (run.py, bench_ws.py, bench_https.py,
bench_mqtt.py, bench_threads.py): logging, ports, starting and stopping a
server by its pid, CPU accounting, medians and summaries, machine facts,
building the C servers, and the interleaved-rounds driver.

Only the Python standard library. The port helpers are the tests' own
(tests/netutil.py), not a copy.
"""
from __future__ import annotations

import ast
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.join(HERE, "bin")
SERVER_CPU = os.environ.get("MGPY_BENCH_SERVER_CPU", "0")

sys.path.insert(0, os.path.join(ROOT, "tests"))
from netutil import free_port, wait_port  # noqa: E402,F401  (re-exported for the drivers)


def py(script):
    """The path of a script of this folder."""
    return os.path.join(HERE, script)


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def raise_nofile(limit=None):
    """Raise this process's (and so its children's) soft RLIMIT_NOFILE to the
    hard limit, at most ``limit``; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if limit is not None:
        want = min(want, limit)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def env_without_pythonpath():
    """os.environ minus PYTHONPATH: each venv then uses its *installed* mongoose_py."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def start_server(key, cmd, port, out_dir, extra=(), port_args=True):
    """Start ``cmd [--port N] [extra]`` pinned to SERVER_CPU, cwd this folder,
    its stderr appended to ``out_dir/KEY.stderr`` (``proc.stderr_path``)."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "%s.stderr" % key)
    full = ["taskset", "-c", SERVER_CPU] + list(cmd) + (["--port", str(port)] if port_args else []) + list(extra)
    with open(path, "ab") as errf:
        proc = subprocess.Popen(full, cwd=HERE, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf,
                                env=env_without_pythonpath())
    proc.stderr_path = path
    return proc


def stop_server(proc, timeout=5.0):
    """Stop one server by its pid: SIGTERM, then SIGKILL; returns its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds, from /proc/PID/stat."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return float("nan")


def per_unit_us(cpu_s, count):
    """CPU microseconds per request/message (nan when none was counted)."""
    return cpu_s * 1e6 / count if count else float("nan")


def med(vals):
    """Median of the numbers that are not nan (nan if none)."""
    vals = [v for v in vals if v == v]
    return statistics.median(vals) if vals else float("nan")


def summarize(res, rate, medians, sums=(), rate_names=("rate", "min", "max")):
    """``{server: {workload: runs}}`` -> ``{server: {workload: summary}}`` over
    the workloads that have runs: median, min and max of ``run[rate]`` (named
    ``rate_names``), then the median of ``run[key]`` for each ``(name, key)``
    of ``medians``, the sum of ``fn(run)`` for each ``(name, fn)`` of ``sums``,
    and ``n``, the number of runs."""
    s = {}
    for key, per in res.items():
        s[key] = {}
        for wkey, runs in per.items():
            if not runs:
                continue
            rates = [r[rate] for r in runs]
            out = dict(zip(rate_names, (med(rates), min(rates), max(rates))))
            for name, rkey in medians:
                out[name] = med([r[rkey] for r in runs])
            for name, fn in sums:
                out[name] = sum(fn(r) for r in runs)
            out["n"] = len(runs)
            s[key][wkey] = out
    return s


def interleaved_rounds(servers, rounds, start, measure, gap, after_stop=None):
    """The rounds of a benchmark: every round starts each ``(key, label,
    entry)`` of ``servers`` in turn (round-robin, so that drifts in machine
    load hit every server alike) with ``start(key, entry, port)`` on a free
    port, waits for it to listen, runs ``measure(rnd, key, port, proc)``
    (rnd from 0), stops it by its pid, calls ``after_stop(key, returncode,
    started)`` and sleeps ``gap`` seconds before the next."""
    for rnd in range(rounds):
        for key, _, entry in servers:
            port = free_port()
            proc = start(key, entry, port)
            started = False
            try:
                if not wait_port(port, timeout=20.0, proc=proc):
                    log("%s: did not start (see %s)" % (key, os.path.relpath(proc.stderr_path, HERE)))
                    continue
                started = True
                measure(rnd, key, port, proc)
            finally:
                rc = stop_server(proc)
                if after_stop is not None:
                    after_stop(key, rc, started)
            time.sleep(gap)


def add_round_args(ap):
    """The options of bench_ws.py, bench_https.py and bench_mqtt.py's benchmark mode."""
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--only", default="")
    ap.add_argument("--quick", action="store_true")


def apply_quick(args):
    """``--quick``: 1 round x 1 s after a 0.5 s warm-up."""
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 1.0, 0.5


def only(entries, keys):
    """The entries whose key is in the comma-separated ``keys`` (all when empty)."""
    return [e for e in entries if not keys or e[0] in keys.split(",")]


def sh(cmd, timeout=60):
    """Output of a shell command (a version probe: never fails)."""
    try:
        return subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=timeout).stdout.strip()
    except Exception as exc:  # noqa: BLE001 - report, never fail on a version probe
        return "? (%s)" % exc


def machine():
    """CPU count and model, kernel release."""
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release()}


def build_defines():
    """The define_macros and CFLAGS of build_ffi.py, read without importing it."""
    tree = ast.parse(open(os.path.join(ROOT, "build_ffi.py")).read())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("DEFINES", "CFLAGS"):
                found[node.targets[0].id] = ast.literal_eval(node.value)
    return found["DEFINES"], found["CFLAGS"]


def build_c(src_name, exe_name, force=False):
    """Compile a C server of this folder on the vendored Mongoose with
    build_ffi.py's defines and CFLAGS into bin/ (when missing or older than
    its sources); returns the executable."""
    src = os.path.join(HERE, src_name)
    mg = os.path.join(ROOT, "vendor", "mongoose")
    exe = os.path.join(BIN, exe_name)
    deps = [src, os.path.join(HERE, "bench_server.h"), os.path.join(mg, "mongoose.c"), os.path.join(mg, "mongoose.h"),
            os.path.join(ROOT, "build_ffi.py")]
    if not force and os.path.exists(exe) and all(os.path.getmtime(exe) >= os.path.getmtime(d) for d in deps):
        return exe
    if not os.path.exists(os.path.join(mg, "mongoose.c")):
        raise SystemExit("vendor/mongoose/mongoose.c is missing: run python vendor/mongoose/fetch.py")
    defines, cflags = build_defines()
    os.makedirs(BIN, exist_ok=True)
    cmd = (["gcc"] + cflags + ["-D%s=%s" % d for d in defines]
           + ["-I", mg, src, os.path.join(mg, "mongoose.c"), "-o", exe])
    log("building %s" % " ".join(cmd))
    subprocess.run(cmd, check=True)
    return exe
