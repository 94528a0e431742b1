#!/usr/bin/env python3
"""HTTPS hello-world benchmark: req/s over Mongoose's built-in TLS 1.3.

    python3 benchmarks/bench_https.py                   # 3 rounds x 3 s per case
    python3 benchmarks/bench_https.py --quick           # smoke: 1 round x 1 s

A P-256 (prime256v1) EC key and a self-signed certificate are generated with
``openssl`` into a temporary directory at run time and deleted afterwards
(never committed). Servers, pinned with ``taskset -c 0``: mongoose_py on
CPython and PyPy (ws_https_mongoose_py.py: ``listen("https://...",
tls=TlsOpts(cert, key))``), cymongoose 0.2.5 (ws_https_cymongoose.py:
``tls_init`` in MG_EV_ACCEPT) and C on the same vendored Mongoose
(ws_raw_c_server --cert --key). Load: ``wrk -t1 --latency`` pinned with
``taskset -c 1`` (OpenSSL client; Mongoose's server negotiates TLS 1.3
with TLS_CHACHA20_POLY1305_SHA256), keep-alive with 50 connections, and
also ``Connection: close`` (one full handshake per request: ECDHE +
ECDSA P-256 signature on the server).

Rounds are interleaved; the tables are medians. Results:
benchmarks/out/ws_mqtt/https.json.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time

from bench_ws import CLIENT_CPU, CPY, PEERS, PYPY, machine, record, save, starter
from common import (BIN, add_round_args, apply_quick, build_c, cpu_seconds, interleaved_rounds, log, only,
                    per_unit_us, py, raise_nofile, sh, summarize)

SERVERS = [
    ("mg_cpython", "mongoose_py, CPython", [CPY, py("ws_https_mongoose_py.py")]),
    ("mg_pypy", "mongoose_py, PyPy", [PYPY, py("ws_https_mongoose_py.py")]),
    ("cymongoose", "cymongoose 0.2.5, CPython", [PEERS, py("ws_https_cymongoose.py")]),
    ("raw_c", "C on the same Mongoose (ceiling)", [os.path.join(BIN, "ws_raw_c_server")]),
]

WORKLOADS = [
    ("keepalive", "HTTPS keep-alive, 50 connections (wrk -t1 -c50)", ["-c50"]),
    ("close", "HTTPS Connection: close, 50 connections (a TLS handshake per request)",
     ["-c50", "-H", "Connection: close"]),
]


def make_keys(d):
    key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key], check=True)
    subprocess.run(["openssl", "req", "-new", "-x509", "-key", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=localhost"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def unit(v, u):
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "": 1.0}[u]


def parse_wrk(out):
    r = {"rps": float("nan"), "p99_ms": float("nan"), "requests": 0, "errors": 0, "non2xx": 0, "timeouts": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in", out)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    if m:
        r["p99_ms"] = unit(m.group(1), m.group(2))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["errors"] = int(m.group(1)) + int(m.group(3))
        r["read_errors"] = int(m.group(2))
        r["timeouts"] = int(m.group(4))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        r["non2xx"] = int(m.group(1))
    return r


def wrk(port, args, duration):
    cmd = (["taskset", "-c", CLIENT_CPU, "wrk", "-t1", "-d%gs" % duration, "--latency"] + args
           + ["https://127.0.0.1:%d/" % port])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                         timeout=duration + 30).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out, cpu / duration


def check(port):
    out = sh("curl -sk --max-time 5 -w ' %%{http_code}' https://127.0.0.1:%d/" % port)
    return out == "Hello, World! 200", out


def bench(servers, rounds, duration, warmup, cert, key):
    raise_nofile()
    build_c("ws_raw_c_server.c", "ws_raw_c_server")
    res = {k: {w[0]: [] for w in WORKLOADS} for k, _, _ in servers}

    def measure(rnd, skey, port, proc):
        ok, got = check(port)
        if not ok:
            log("%s: unexpected answer %r: skipped" % (skey, got))
            return
        if warmup:
            wrk(port, ["-c50"], warmup)
        for wkey, _, wargs in WORKLOADS:
            c0 = cpu_seconds(proc.pid)
            out, wrk_cpu = wrk(port, wargs, duration)
            c1 = cpu_seconds(proc.pid)
            r = parse_wrk(out)
            r["raw"] = out
            r["client_cpu"] = wrk_cpu
            r["server_cpu_us_per_req"] = per_unit_us(c1 - c0, r["requests"])
            res[skey][wkey].append(r)
            log("round %d %-11s %-9s %9.0f req/s  p99 %7.2f ms  server %6.1f us/req  wrk cpu %3.0f%%  err %d/%d/%d"
                % (rnd + 1, skey, wkey, r["rps"], r["p99_ms"], r["server_cpu_us_per_req"],
                   100 * r["client_cpu"], r["errors"],
                   r["non2xx"], r["timeouts"]))
            time.sleep(0.3)

    interleaved_rounds(servers, rounds, starter("https_", ["--cert", cert, "--key", key]), measure, 0.5)
    return res


def summarize_https(res):
    return summarize(res, "rps", [("p99_ms", "p99_ms"), ("cpu_us", "server_cpu_us_per_req"),
                                  ("client_cpu", "client_cpu")],
                     [("errors", lambda r: r["errors"] + r["non2xx"] + r["timeouts"])])


def table(summary, servers):
    lines = []
    for wkey, wlabel, _ in WORKLOADS:
        lines += ["**%s**\n" % wlabel,
                  "| server | req/s (median) | min – max | p99 ms | server CPU µs/req | wrk CPU | errors | vs cymongoose |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        base = summary.get("cymongoose", {}).get(wkey)
        for key, label, _ in servers:
            r = summary.get(key, {}).get(wkey)
            if not r:
                lines.append("| %s | – | | | | | | |" % label)
                continue
            ratio = "%.2f×" % (r["rate"] / base["rate"]) if base and base["rate"] else "–"
            lines.append("| %s | %.0f | %.0f – %.0f | %.2f | %.1f | %.0f%% | %d | %s |"
                         % (label, r["rate"], r["min"], r["max"], r["p99_ms"], r["cpu_us"], 100 * r["client_cpu"],
                            r["errors"], ratio))
        lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_round_args(ap)
    args = ap.parse_args()
    apply_quick(args)
    for tool in ("wrk", "taskset", "openssl", "curl", "gcc"):
        if shutil.which(tool) is None:
            raise SystemExit("%s is required" % tool)
    servers = only(SERVERS, args.only)
    t0 = time.time()
    m = machine()
    d = tempfile.mkdtemp(prefix="mgpy-https-")
    try:
        cert, key = make_keys(d)
        res = bench(servers, args.rounds, args.duration, args.warmup, cert, key)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    summary = summarize_https(res)
    save("https.json", record(m, args, t0, servers=[s[:2] for s in servers], runs=res, summary=summary))
    print(table(summary, servers))


if __name__ == "__main__":
    main()
