#!/usr/bin/env python3
"""HTTP hello-world benchmark: mongoose_py against its peers, same run.

    python3 benchmarks/run.py                 # full: 3 rounds, -d5s (~10 min)
    python3 benchmarks/run.py --quick         # smoke: 1 round, -d1s
    python3 benchmarks/run.py --only raw_c,mg_idiomatic_pypy --rounds 1 --duration 2

Each server runs pinned to one core (``taskset -c 0``) and ``wrk`` to another
(``taskset -c 1``). Rounds are interleaved: every round starts each server
in turn (round-robin), warms it up, runs every workload against it, and stops
it by its pid. The tables report medians over rounds. The full run rewrites
the "HTTP hello world" and "Thread contract" sections of RESULTS.md (other
sections are left alone); ``--no-write`` only prints.

Only the Python standard library is needed here; the servers use
/work/main/.venv-python3 and .venv-pypy3 (mongoose_py installed) and
benchmarks/.venv-peers (cymongoose, aiohttp, uvicorn): see README.md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

from common import (BIN, HERE, ROOT, SERVER_CPU, build_c, cpu_seconds, interleaved_rounds, log, machine, per_unit_us,
                    py, raise_nofile, sh, start_server, summarize)

OUT = os.path.join(HERE, "out")
RESULTS = os.path.join(HERE, "RESULTS.md")

CPY = os.path.abspath(os.environ.get("MGPY_BENCH_CPYTHON", os.path.join(ROOT, ".venv-python3", "bin", "python")))
PYPY = os.path.abspath(os.environ.get("MGPY_BENCH_PYPY", os.path.join(ROOT, ".venv-pypy3", "bin", "python")))
PEERS = os.path.abspath(os.environ.get("MGPY_BENCH_PEERS", os.path.join(HERE, ".venv-peers", "bin", "python")))
WRK_CPU = os.environ.get("MGPY_BENCH_WRK_CPU", "1")
EXPECTED_BODY = b"Hello, World!"


# key, label, command (the port is appended as "--port N")
SERVERS = [
    ("raw_c", "raw C (Mongoose, mg_http_reply)", [os.path.join(BIN, "raw_c_server")]),
    ("mg_compat_cpython", "mongoose_py compat, CPython", [CPY, py("mg_compat.py")]),
    ("mg_idiomatic_cpython", "mongoose_py idiomatic, CPython", [CPY, py("mg_idiomatic.py")]),
    ("mg_compat_pypy", "mongoose_py compat, PyPy", [PYPY, py("mg_compat.py")]),
    ("mg_idiomatic_pypy", "mongoose_py idiomatic, PyPy", [PYPY, py("mg_idiomatic.py")]),
    ("mg_idiomatic_bg_cpython", "mongoose_py idiomatic + busy 2nd thread, CPython",
     [CPY, py("mg_idiomatic_bg.py")]),
    ("mg_idiomatic_bg_pypy", "mongoose_py idiomatic + busy 2nd thread, PyPy", [PYPY, py("mg_idiomatic_bg.py")]),
    ("cymongoose", "cymongoose 0.2.5, CPython", [PEERS, py("cymongoose_server.py")]),
    ("aiohttp", "aiohttp, CPython", [PEERS, py("aiohttp_server.py")]),
    ("uvicorn", "uvicorn (uvloop+httptools), CPython", [PEERS, py("uvicorn_server.py")]),
]

# key, label, wrk arguments (besides -t1 -d --latency)
WORKLOADS = [
    ("c50", "keep-alive, 50 connections", ["-c50"]),
    ("c2000", "keep-alive, 2000 connections", ["-c2000"]),
    ("close", "Connection: close, 50 connections", ["-c50", "-H", "Connection: close"]),
]


# ---------------------------------------------------------------- helpers

def fetch(port):
    """One plain GET; returns the raw response bytes (headers + body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        chunks = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            chunks.append(b)
            data = b"".join(chunks)
            head, sep, body = data.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if sep and m and len(body) >= int(m.group(1)):
                break
        return b"".join(chunks)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m|h)$", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def parse_wrk(out):
    r = {"rps": 0.0, "p50_ms": float("nan"), "p99_ms": float("nan"), "requests": 0,
         "connect": 0, "read": 0, "write": 0, "timeout": 0, "non2xx": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s+%s%%\s+(\S+)" % pct, out, re.M)
        if m:
            r[key] = to_ms(m.group(1))
    m = re.search(r"(\d+) requests in", out)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["connect"], r["read"], r["write"], r["timeout"] = map(int, m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        r["non2xx"] = int(m.group(1))
    return r


def wrk(port, args, duration, timeout_s=2):
    cmd = ["taskset", "-c", WRK_CPU, "wrk", "-t1", "-d%ss" % duration, "--latency",
           "--timeout", "%ds" % timeout_s] + args + ["http://127.0.0.1:%d/" % port]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=duration + 60)
    return p.stdout


# ---------------------------------------------------------------- run

BG_CALLS = {}  # key -> [(calls, seconds alive)] of the busy thread, per round


def run_bench(servers, rounds, duration, warmup):
    raise_nofile(65536)
    results = {k: {w[0]: [] for w in WORKLOADS} for k, _, _ in servers}
    responses = {}
    notes = {}

    def start(key, cmd, port):
        return start_server(key, cmd, port, OUT)

    def measure(rnd, key, port, proc):
        try:
            resp = fetch(port)
        except OSError as exc:
            resp = ("%s" % exc).encode()
        if not resp.startswith(b"HTTP/1.1 200") or not resp.endswith(EXPECTED_BODY):
            log("%s: unexpected response %r: skipped this round" % (key, resp[:300]))
            notes[key] = "unexpected response %r" % resp[:120]
            return
        responses[key] = resp
        if warmup:
            wrk(port, ["-c50"], warmup)
        for wkey, _, wargs in WORKLOADS:
            cpu0 = cpu_seconds(proc.pid)
            out = wrk(port, wargs, duration)
            cpu1 = cpu_seconds(proc.pid)
            r = parse_wrk(out)
            r["raw"] = out
            r["cpu_s"] = cpu1 - cpu0
            r["cpu_us_per_req"] = per_unit_us(cpu1 - cpu0, r["requests"])
            results[key][wkey].append(r)
            log("round %d %-26s %-6s %9.0f req/s  p99 %7.2f ms  cpu %5.1f us/req  err c/r/w/t/n "
                "%d/%d/%d/%d/%d"
                % (rnd + 1, key, wkey, r["rps"], r["p99_ms"], r["cpu_us_per_req"], r["connect"], r["read"],
                   r["write"],
                   r["timeout"], r["non2xx"]))
            time.sleep(0.3)

    def after_stop(key, rc, started):
        if not started:
            notes[key] = "did not start"
        if rc not in (0, -signal.SIGTERM, 1, 130, 143) and key not in notes:
            notes[key] = "exit code %s" % rc
        if key.startswith("mg_idiomatic_bg"):
            try:
                text = open(os.path.join(OUT, "%s.stderr" % key)).read()
                rates = re.findall(r"bg_calls=(\d+) elapsed=([\d.]+)s", text)
                if rates:
                    BG_CALLS.setdefault(key, []).append(rates[-1])
            except OSError:
                pass

    # 1 s between servers: let TIME_WAIT/accept queues settle a bit
    interleaved_rounds(servers, rounds, start, measure, 1.0, after_stop)
    return results, responses, notes


# ---------------------------------------------------------------- report

def summarize_http(results):
    return summarize(
        results, "rps", [("p99_ms", "p99_ms"), ("cpu_us", "cpu_us_per_req")],
        [("errors", lambda r: r["connect"] + r["write"] + r["non2xx"]), ("read_err", lambda r: r["read"]),
         ("timeouts", lambda r: r["timeout"])],
        rate_names=("rps", "rps_min", "rps_max"))


def machine_info():
    return dict(machine(), mem=sh("free -h | awk '/^Mem:/{print $2}'"))


def versions():
    probe = ("import sys, platform; import cffi, mongoose_py; "
             "print(sys.version.split()[0], platform.python_implementation(), "
             "getattr(sys, 'pypy_version_info', None) and '.'.join(map(str, sys.pypy_version_info[:3])), "
             "cffi.__version__, mongoose_py.__version__, mongoose_py.MONGOOSE_VERSION)")
    v = {}
    out = sh("cd /tmp && env -u PYTHONPATH %s -c \"%s\"" % (CPY, probe)).split()
    if len(out) >= 6:
        v["cpython"], v["cffi_cpython"], v["mongoose_py"], v["mongoose"] = out[0], out[3], out[4], out[5]
    out = sh("cd /tmp && env -u PYTHONPATH %s -c \"%s\"" % (PYPY, probe)).split()
    if len(out) >= 6:
        v["pypy"] = "%s (Python %s)" % (out[2], out[0])
        v["cffi_pypy"] = out[3]
    v["installed"] = {}
    for name, interp in (("CPython", CPY), ("PyPy", PYPY)):
        v["installed"][name] = installed_state(interp)
    v["cymongoose"] = sh("%s -c \"import importlib.metadata as m; print(m.version('cymongoose'))\"" % PEERS)
    v["aiohttp"] = sh("%s -c \"import aiohttp; print(aiohttp.__version__)\"" % PEERS)
    v["uvicorn"] = sh("%s -c \"import uvicorn, uvloop, httptools; print(uvicorn.__version__, 'uvloop', "
                      "uvloop.__version__, 'httptools', httptools.__version__)\"" % PEERS)
    v["peers_python"] = sh("%s -c \"import sys; print(sys.version.split()[0])\"" % PEERS)
    v["wrk"] = sh("wrk --version 2>&1 | head -1").split(" Copyright")[0]
    v["gcc"] = sh("gcc -dumpfullversion")
    return v


def installed_state(interp):
    """Does the mongoose_py installed for ``interp`` match the committed HEAD?"""
    where = sh("cd /tmp && env -u PYTHONPATH %s -c \"import os, mongoose_py; "
               "print(os.path.dirname(mongoose_py.__file__))\"" % interp).splitlines()[-1:]
    if not where or not os.path.isdir(where[0]):
        return "not importable"
    inst = where[0]
    head = sh("git -C %s rev-parse --short HEAD" % ROOT)
    names = [n[len("mongoose_py/"):] for n in sh("git -C %s ls-files mongoose_py" % ROOT).split()
             if n.endswith((".py", ".c", ".h"))]
    differ = []
    for n in names:
        committed = subprocess.run(["git", "-C", ROOT, "show", "HEAD:mongoose_py/%s" % n],
                                   stdout=subprocess.PIPE).stdout
        path = os.path.join(inst, n)
        if not os.path.exists(path) or open(path, "rb").read() != committed:
            differ.append(n)
    if not differ:
        return "same as HEAD %s" % head
    return "differs from HEAD %s in %d file(s): %s" % (head, len(differ), ", ".join(differ))


def load_snapshot():
    la = open("/proc/loadavg").read().split()[:3]
    top = sh("top -b -n1 -w 200 | sed -n '8,14p'")
    return {"loadavg": " ".join(la), "top": top}


def fmt_rps(x):
    return "%.0f" % x if x == x else "–"


def ratio(a, b):
    if not a or not b or a != a or b != b:
        return "–"
    return "%.2f×" % (a / b)


def http_table(summary, servers):
    lines = []
    for wkey, wlabel, wargs in WORKLOADS:
        lines.append("### %s (`wrk -t1 %s`)" % (wlabel, " ".join('"%s"' % a if " " in a else a for a in wargs)))
        lines.append("")
        lines.append("| server | req/s (median) | min–max | p99 latency | vs cymongoose | vs raw C | "
                     "server CPU/req² | errors | timeouts |" + (" wrk read errs¹ |" if wkey == "close" else ""))
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if wkey == "close" else ""))
        base_cy = summary.get("cymongoose", {}).get(wkey, {}).get("rps")
        base_c = summary.get("raw_c", {}).get(wkey, {}).get("rps")
        for key, label, _ in servers:
            s = summary.get(key, {}).get(wkey)
            if not s:
                continue
            row = "| %s | %s | %s–%s | %.2f ms | %s | %s | %.1f µs | %d | %d |" % (
                label, fmt_rps(s["rps"]), fmt_rps(s["rps_min"]), fmt_rps(s["rps_max"]), s["p99_ms"],
                ratio(s["rps"], base_cy), ratio(s["rps"], base_c), s["cpu_us"], s["errors"], s["timeouts"])
            if wkey == "close":
                row += " %d |" % s["read_err"]
            lines.append(row)
        lines.append("")
    return "\n".join(lines)


def aims(summary):
    out = []
    def c50(key, what):
        return summary.get(key, {}).get("c50", {}).get(what)

    for ours, impl, base, base_label, aim in (("mg_idiomatic_cpython", "CPython", "cymongoose", "cymongoose", 1.15),
                                              ("mg_idiomatic_pypy", "PyPy", "raw_c", "raw C", 0.90)):
        if c50(base, "rps") and c50(ours, "rps"):
            r = c50(ours, "rps") / c50(base, "rps")
            out.append("- Idiomatic mongoose_py on %s vs %s (keep-alive, 50 conns): **%.2f×** req/s "
                       "(aim ≥ %.2f×: %s); by server CPU per request: %.2f× (%.1f µs vs %.1f µs)."
                       % (impl, base_label, r, aim, "met" if r >= aim else "**not met**",
                          c50(base, "cpu_us") / c50(ours, "cpu_us"), c50(ours, "cpu_us"), c50(base, "cpu_us")))
    c2k = summary.get("mg_idiomatic_cpython", {}).get("c2000", {})
    if c2k:
        out.append("- `-c2000` (backlog 4096): idiomatic CPython had %d timeouts and %d errors over all rounds."
                   % (c2k["timeouts"], c2k["errors"]))
    return "\n".join(out)


def replace_section(text, name, body):
    begin, end = "<!-- BEGIN %s -->" % name, "<!-- END %s -->" % name
    block = "%s\n%s\n%s" % (begin, body.rstrip(), end)
    if begin in text and end in text:
        pre, rest = text.split(begin, 1)
        _, post = rest.split(end, 1)
        return pre + block + post
    return text.rstrip() + "\n\n" + block + "\n"


SKELETON = """# Benchmark results

Generated sections are rewritten by the scripts named in them; everything else
is hand-written. How to reproduce: [README.md](README.md).

## HTTP hello world (issue 2)

<!-- BEGIN http-hello -->
(not measured yet: `python3 benchmarks/run.py`)
<!-- END http-hello -->

## Thread contract cost (issue 2)

<!-- BEGIN threads -->
(not measured yet: `python3 benchmarks/run.py` or `bench_threads.py`)
<!-- END threads -->

## WebSocket echo and HTTPS hello (issue 3)

<!-- BEGIN ws-https -->
(not measured yet)
<!-- END ws-https -->

## MQTT broker throughput (issue 4)

<!-- BEGIN mqtt-broker -->
(not measured yet)
<!-- END mqtt-broker -->
"""


def response_sizes(responses, servers):
    parts = []
    for key, label, _ in servers:
        r = responses.get(key)
        if r is not None:
            parts.append("%s %d B" % (key, len(r)))
    return ", ".join(parts)


def render_http(summary, servers, responses, notes, meta):
    v, m = meta["versions"], meta["machine"]
    lines = [
        "Measured %s by `benchmarks/run.py` (%d interleaved round(s), `-d%ss` per workload after a %ss "
        "warm-up at `-c50`; medians over rounds; `wrk --timeout 2s`)."
        % (meta["date"], meta["rounds"], meta["duration"], meta["warmup"]),
        "",
        "- Machine: %s CPU(s), %s, kernel %s, RAM %s. Server pinned to CPU %s, wrk to CPU %s (`taskset`)."
        % (m["nproc"], m["cpu"], m["kernel"], m["mem"], SERVER_CPU, WRK_CPU),
        "- Versions: CPython %s (cffi %s), PyPy %s (cffi %s), mongoose_py %s, Mongoose %s (%s), cymongoose %s "
        "(on CPython %s), aiohttp %s, uvicorn %s, %s, gcc %s."
        % (v.get("cpython"), v.get("cffi_cpython"), v.get("pypy"), v.get("cffi_pypy"), v.get("mongoose_py"),
           v.get("mongoose"), "MG_SOCK_LISTEN_BACKLOG_SIZE=4096", v.get("cymongoose"), v.get("peers_python"),
           v.get("aiohttp"), v.get("uvicorn"), v.get("wrk"), v.get("gcc")),
        "- mongoose_py for CPython (`%s`): %s; for PyPy (`%s`): %s."
        % (os.path.relpath(CPY, ROOT), v.get("installed", {}).get("CPython"), os.path.relpath(PYPY, ROOT),
           v.get("installed", {}).get("PyPy")),
        "- Load: loadavg before `%s`, after `%s` (1/5/15 min). %s"
        % (meta["load_before"]["loadavg"], meta["load_after"]["loadavg"], meta.get("load_note", "")),
        "- Response sizes (headers + body): %s." % response_sizes(responses, servers),
        "",
        aims(summary),
        "",
        http_table(summary, servers),
        "¹ Mongoose honours `Connection: close` by closing after the response without sending a "
        "`Connection: close` header, and wrk counts every such server-side close as a \"read\" socket "
        "error (then reconnects). Those are not failures; `errors` (connect + write + non-2xx) and "
        "`timeouts` are.",
        "",
        "² CPU time (user + system, all threads) the server process used during the measured wrk run, "
        "divided by the requests wrk completed (median over rounds; /proc/PID/stat, 10 ms ticks). "
        "Less sensitive than req/s to other load on the machine, and it includes the kernel's "
        "share of the socket work.",
    ]
    bg = []
    for key, label, _ in servers:
        if key in BG_CALLS:
            per = ["%d calls in %.0f s" % (int(c), float(t)) for c, t in BG_CALLS[key]]
            bg.append("%s: %s" % (label, "; ".join(per)))
    if bg:
        lines += ["", "Busy second thread (`mg_idiomatic_bg.py`, `mgr.timer_add(…).cancel()` back to back, the "
                  "whole life of the server incl. warm-up and idle gaps; its CPU is in the server CPU/req column): "
                  + " — ".join(bg) + "."]
    if notes:
        lines += ["", "Notes: " + "; ".join("%s: %s" % kv for kv in sorted(notes.items()))]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of discarded wrk before measuring")
    ap.add_argument("--quick", action="store_true", help="1 round, 1 s, 1 s warm-up (smoke test)")
    ap.add_argument("--only", default="", help="comma-separated server keys (default: all)")
    ap.add_argument("--no-threads", action="store_true", help="skip bench_threads.py")
    ap.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    ap.add_argument("--load-note", default="", help="free text about other load on the machine")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 1, 1
    for tool in ("wrk", "taskset", "gcc"):
        if shutil.which(tool) is None:
            raise SystemExit("%s is required" % tool)
    servers = SERVERS
    if args.only:
        keys = set(args.only.split(","))
        unknown = keys - {k for k, _, _ in SERVERS}
        if unknown:
            raise SystemExit("unknown server(s): %s; known: %s" % (", ".join(sorted(unknown)),
                                                                   ", ".join(k for k, _, _ in SERVERS)))
        servers = [s for s in SERVERS if s[0] in keys]
    for key, _, cmd in servers:
        if cmd[0].endswith("raw_c_server"):
            build_c("raw_c_server.c", "raw_c_server")
        elif not os.path.exists(cmd[0]):
            raise SystemExit("%s: interpreter %s missing (see README.md)" % (key, cmd[0]))

    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "rounds": args.rounds, "duration": args.duration, "warmup": args.warmup,
            "machine": machine_info(), "versions": versions(), "load_before": load_snapshot(),
            "load_note": args.load_note}
    log("load before: %s" % meta["load_before"]["loadavg"])
    results, responses, notes = run_bench(servers, args.rounds, args.duration, args.warmup)
    meta["load_after"] = load_snapshot()
    summary = summarize_http(results)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "http.json"), "w") as f:
        json.dump({"meta": meta, "summary": summary, "runs": results,
                   "responses": {k: v.decode("latin-1") for k, v in responses.items()}}, f, indent=1)
    http_md = render_http(summary, servers, responses, notes, meta)
    print(http_md)

    threads_md = None
    if not args.no_threads:
        import bench_threads  # noqa: E402  (same folder)
        threads_md = bench_threads.run_both(CPY, PYPY, quick=args.quick)
        print(threads_md)

    if not args.no_write:
        text = open(RESULTS).read() if os.path.exists(RESULTS) else SKELETON
        text = replace_section(text, "http-hello", http_md)
        if threads_md:
            text = replace_section(text, "threads", threads_md)
        with open(RESULTS, "w") as f:
            f.write(text)
        log("wrote %s" % RESULTS)


if __name__ == "__main__":
    main()
