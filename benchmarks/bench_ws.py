#!/usr/bin/env python3
"""WebSocket echo benchmark: messages/s for 64 B and 64 KiB messages.

    python3 benchmarks/bench_ws.py                      # 3 rounds x 3 s per case
    python3 benchmarks/bench_ws.py --quick              # smoke: 1 round x 1 s
    python3 benchmarks/bench_ws.py --only mg_pypy,raw_c --rounds 1 --duration 2

Servers (each ``SERVER --port N``, pinned with ``taskset -c 0``):
mongoose_py on CPython and PyPy (ws_echo_mongoose_py.py), cymongoose 0.2.5
(ws_echo_cymongoose.py), the ``websockets`` library (ws_echo_websockets.py)
and C on the same vendored Mongoose (ws_raw_c_server.c, the ceiling).

The load generator is this file's ``client`` mode, run on PyPy pinned with
``taskset -c 1``: raw non-blocking sockets + epoll, one thread. It does the
HTTP upgrade itself, then keeps ``--window`` masked BINARY frames in flight
on each of ``--conns`` connections (it sends pre-built batches of frames
whenever the in-flight count drops by ``--batch``) and counts the echoed
bytes; the server's frames have a fixed size, so messages = bytes / frame
size. It reports its own CPU time, so one can see that it is not saturated,
and the raw C server shows its ceiling.

Rounds are interleaved (each round starts every server in turn); the tables
are medians over rounds. Results: benchmarks/out/ws_mqtt/ws.json.
The settings here (interpreters, CPUs, out/ws_mqtt/, versions, the table) are
shared by bench_https.py and bench_mqtt.py; generic helpers are in common.py.
"""
from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import select
import socket
import subprocess
import time

from common import (BIN, HERE, ROOT, add_round_args, apply_quick, build_c, cpu_seconds, interleaved_rounds, log,
                    machine as common_machine, only, per_unit_us, py, raise_nofile, sh, start_server, summarize)

OUT = os.path.join(HERE, "out", "ws_mqtt")


def _interp(env, own, repo):
    """$env, else our own venv (``bench_ws.py setup``: the working tree, both interpreters alike), else the repo's."""
    if os.environ.get(env):
        return os.path.abspath(os.environ[env])
    own = os.path.join(HERE, own, "bin", "python")
    return own if os.path.exists(own) else os.path.join(ROOT, repo, "bin", "python")


CPY = _interp("MGPY_BENCH_CPYTHON", ".venv-ws-mqtt-cpython", ".venv-python3")
PYPY = _interp("MGPY_BENCH_PYPY", ".venv-ws-mqtt-pypy", ".venv-pypy3")
PEERS = os.path.abspath(os.environ.get("MGPY_BENCH_WS_PEERS", os.path.join(HERE, ".venv-ws-mqtt", "bin", "python")))
# the load generators (pure standard library) run on PyPy: a plain pypy3 is enough
LOADGEN_PY = os.environ.get("MGPY_BENCH_LOADGEN", PYPY)
CLIENT_CPU = os.environ.get("MGPY_BENCH_CLIENT_CPU", "1")


# ---------------------------------------------------------------- shared settings and helpers

# the busiest processes right now (second top frame: %CPU over 0.5 s)
TOP = "top -bn2 -d0.5 -w 120 | awk '/^top -/{n++} n==2' | sed -n 7,12p"


def machine():
    return dict(common_machine(), uptime=sh("uptime"), top=sh(TOP),
                date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def versions():
    v = {}
    v["cpython"] = sh("%s -c 'import sys; print(sys.version.split()[0])'" % CPY)
    v["pypy"] = sh("%s -c 'import sys; print(sys.version.split()[0], sys.pypy_version_info[:3])'" % PYPY)
    v["mongoose_py"] = sh("cd /tmp && %s -c 'import mongoose_py as m; print(m.__version__, m.MONGOOSE_VERSION)'"
                          % CPY)
    v["peers"] = sh("%s -m pip list 2>/dev/null | grep -iE '^(cymongoose|websockets|amqtt) '" % PEERS)
    v["mosquitto"] = sh("mosquitto -h 2>&1 | head -1")
    v["wrk"] = sh("wrk -v 2>&1 | head -1")
    v["openssl"] = sh("openssl version")
    v["git"] = sh("git -C %s rev-parse --short HEAD" % ROOT)
    v["interpreters"] = {"cpython": CPY, "pypy": PYPY, "peers": PEERS, "loadgen": LOADGEN_PY}
    return v


def run_client(args, timeout):
    """Run a load generator (this directory's script in client mode) pinned to CLIENT_CPU; JSON out."""
    cmd = ["taskset", "-c", CLIENT_CPU, LOADGEN_PY] + list(args)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       universal_newlines=True)
    if p.returncode != 0:
        raise RuntimeError("load generator failed (%d): %s" % (p.returncode, p.stderr.strip()[-500:]))
    return json.loads(p.stdout.strip().splitlines()[-1])


def starter(prefix, extra=()):
    """``start(key, cmd, port)`` for interleaved_rounds: ``cmd --port N extra``, its
    stderr in out/ws_mqtt/PREFIXKEY.stderr."""
    def start(key, cmd, port):
        return start_server(prefix + key, cmd, port, OUT, extra)
    return start


def record(m, args, t0, **fields):
    """The JSON of a benchmark run: ``machine()`` taken before it, versions,
    the round options, ``fields``, and the load at its end."""
    return dict(machine=m, versions=versions(), rounds=args.rounds, duration=args.duration, warmup=args.warmup,
                uptime_end=sh("uptime"), top_end=sh(TOP), elapsed_s=time.time() - t0, **fields)


def save(name, data):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    log("wrote %s" % path)


# ---------------------------------------------------------------- the load generator (client mode)

def ws_frame(payload, mask):
    """One masked BINARY frame (FIN set), as a client sends it."""
    n = len(payload)
    if n < 126:
        hdr = bytes((0x82, 0x80 | n))
    elif n < 65536:
        hdr = bytes((0x82, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        hdr = bytes((0x82, 0x80 | 127)) + n.to_bytes(8, "big")
    m = (mask * (n // 4 + 1))[:n]
    masked = bytes(a ^ b for a, b in zip(payload, m))
    return hdr + mask + masked


def server_frame_len(n):
    return n + (2 if n < 126 else 4 if n < 65536 else 10)


def _recv_n(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            raise RuntimeError("connection closed")
        buf += d
    return buf


def ws_handshake(port, frame=None, payload=None):
    """Upgrade a new connection; with ``frame``, check one echo of ``payload`` first (blocking)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (port, key)).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise RuntimeError("connection closed during the upgrade: %r" % buf)
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError("upgrade refused: %r" % head[:200])
    if rest:
        raise RuntimeError("unexpected data after the upgrade: %r" % rest[:50])
    if frame is not None:
        s.sendall(frame)
        got = _recv_n(s, server_frame_len(len(payload)))
        if got[0] != 0x82 or got[-len(payload):] != payload:
            raise RuntimeError("the echo differs from what was sent: %r..." % got[:20])
    s.setblocking(False)
    return s


def ws_client(port, size, conns, window, batch, duration, ramp, server_pid=0):
    """Closed loop: at most ``window`` messages in flight per connection."""
    mask = os.urandom(4)
    payload = os.urandom(size)
    frame = ws_frame(payload, mask)
    flen = server_frame_len(size)
    batch = max(1, min(batch, window))
    batch_bytes = frame * batch
    socks = [ws_handshake(port, frame, payload) for _ in range(conns)]
    ep = select.epoll()
    st = {}
    for s in socks:
        # fd -> [sock, sent msgs, received bytes, pending out (memoryview or None)]
        st[s.fileno()] = [s, 0, 0, None]
        ep.register(s.fileno(), select.EPOLLIN)
    rbuf = bytearray(1 << 20)

    def pump(fd, e):
        s, sent, rbytes, pend = e
        if pend is not None:
            try:
                k = s.send(pend)
            except BlockingIOError:
                return
            pend = pend[k:] if k < len(pend) else None
            e[3] = pend
            if pend is not None:
                return
            ep.modify(fd, select.EPOLLIN)
        while sent - rbytes // flen <= window - batch:
            sent += batch
            e[1] = sent
            mv = memoryview(batch_bytes)
            try:
                k = s.send(mv)
            except BlockingIOError:
                k = 0
            if k < len(mv):
                e[3] = mv[k:]
                ep.modify(fd, select.EPOLLIN | select.EPOLLOUT)
                return

    for fd, e in st.items():
        pump(fd, e)
    t_start = time.time()
    t_measure = t_start + ramp
    t_end = t_measure + duration
    base = None
    cpu0 = None
    while True:
        now = time.time()
        if base is None and now >= t_measure:
            base = sum(e[2] // flen for e in st.values())
            cpu0 = os.times()
            scpu0 = cpu_seconds(server_pid) if server_pid else float("nan")
            t_m = now
        if now >= t_end:
            break
        for fd, ev in ep.poll(0.05):
            e = st[fd]
            if ev & select.EPOLLIN:
                s = e[0]
                while True:
                    try:
                        n = s.recv_into(rbuf)
                    except BlockingIOError:
                        break
                    if n == 0:
                        raise RuntimeError("server closed a connection")
                    e[2] += n
                    if n < len(rbuf):
                        break
            if ev & (select.EPOLLERR | select.EPOLLHUP):
                raise RuntimeError("socket error/hangup")
            pump(fd, e)
    t1 = time.time()
    cpu1 = os.times()
    got = sum(e[2] // flen for e in st.values()) - base
    scpu1 = cpu_seconds(server_pid) if server_pid else float("nan")
    for s in socks:
        s.close()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {"msgs": got, "seconds": t1 - t_m, "rate": got / (t1 - t_m), "client_cpu": cpu / (t1 - t_m),
            "server_cpu_s": scpu1 - scpu0}


# ---------------------------------------------------------------- the benchmark

SERVERS = [
    ("mg_cpython", "mongoose_py, CPython", [CPY, py("ws_echo_mongoose_py.py")]),
    ("mg_pypy", "mongoose_py, PyPy", [PYPY, py("ws_echo_mongoose_py.py")]),
    ("cymongoose", "cymongoose 0.2.5, CPython", [PEERS, py("ws_echo_cymongoose.py")]),
    ("websockets", "websockets (asyncio), CPython", [PEERS, py("ws_echo_websockets.py")]),
    ("raw_c", "C on the same Mongoose (ceiling)", [os.path.join(BIN, "ws_raw_c_server")]),
]

# key, label, size, conns, window per connection, batch
WORKLOADS = [
    ("64B", "64 B messages", 64, 4, 64, 16),
    ("64KiB", "64 KiB messages", 65536, 4, 4, 1),
]


def bench(servers, rounds, duration, warmup):
    raise_nofile()
    build_c("ws_raw_c_server.c", "ws_raw_c_server")
    res = {k: {w[0]: [] for w in WORKLOADS} for k, _, _ in servers}

    def measure(rnd, key, port, proc):
        for wkey, _, size, conns, window, batch in WORKLOADS:
            cargs = [os.path.abspath(__file__), "client", "--port", str(port), "--size", str(size),
                     "--conns", str(conns), "--window", str(window), "--batch", str(batch),
                     "--server-pid", str(proc.pid)]
            try:
                if warmup:
                    run_client(cargs + ["--duration", str(warmup), "--ramp", "0.2"], 30 + warmup)
                r = run_client(cargs + ["--duration", str(duration), "--ramp", "0.3"], 30 + duration)
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                log("round %d %s %s: FAILED %s" % (rnd + 1, key, wkey, exc))
                continue
            # server CPU time read by the load generator at the start and end of the measured time
            r["server_cpu_us_per_msg"] = per_unit_us(r["server_cpu_s"], r["msgs"])
            res[key][wkey].append(r)
            log("round %d %-11s %-6s %10.0f msg/s  server %6.2f us/msg  client cpu %3.0f%%"
                % (rnd + 1, key, wkey, r["rate"], r["server_cpu_us_per_msg"], 100 * r["client_cpu"]))

    interleaved_rounds(servers, rounds, starter(""), measure, 0.5)
    return res


# medians of a load-generator run (the ws and mqtt tables)
LOADGEN_MEDIANS = [("cpu_us", "server_cpu_us_per_msg"), ("client_cpu", "client_cpu")]


def table(summary, servers, workloads, unit="msg/s", peers=("cymongoose", "websockets")):
    """Markdown: one row per server, medians (min-max) and server CPU per message, ratios vs peers."""
    lines = []
    for wkey, wlabel in workloads:
        lines.append("**%s**\n" % wlabel)
        hdr = "| server | %s (median) | min – max | server CPU µs/msg | load-gen CPU |" % unit
        sep = "|---|---:|---:|---:|---:|"
        for p in peers:
            hdr += " vs %s |" % p
            sep += "---:|"
        lines += [hdr, sep]
        for key, label, _ in servers:
            r = summary.get(key, {}).get(wkey)
            if not r:
                lines.append("| %s | – | | | |%s" % (label, " |" * len(peers)))
                continue
            row = "| %s | %.0f | %.0f – %.0f | %.2f | %.0f%% |" % (label, r["rate"], r["min"], r["max"], r["cpu_us"],
                                                                100 * r["client_cpu"])
            for p in peers:
                pr = summary.get(p, {}).get(wkey)
                row += " %.2f× |" % (r["rate"] / pr["rate"]) if pr and pr["rate"] else " – |"
            lines.append(row)
        lines.append("")
    return "\n".join(lines)


SETUP_SH = r"""
set -eu
cd "$ROOT"
python3 -m venv benchmarks/.venv-ws-mqtt
benchmarks/.venv-ws-mqtt/bin/pip install -q cymongoose==0.2.5 websockets amqtt
SRC=$(mktemp -d /tmp/mgpy-src-XXXXXX)
tar --exclude='./.venv*' --exclude='./build' --exclude='./benchmarks' --exclude='./.git' --exclude='*.so' \
    --exclude='__pycache__' --exclude='./mongoose_py/_mongoose_cffi.c' -cf - . | tar -xf - -C "$SRC"
for pair in cpython:python3 pypy:pypy3; do
  name=${pair%%:*}; interp=${pair#*:}
  venv="$ROOT/benchmarks/.venv-ws-mqtt-$name"
  [ -x "$venv/bin/python" ] || "$interp" -m venv "$venv"
  if [ "$name" = cpython ]; then "$venv/bin/python" -m pip install -q cffi; fi
  rm -rf "$venv"/lib/*/site-packages/mongoose_py "$venv"/lib/*/site-packages/mongoose_py-*
  (cd "$SRC" && "$venv/bin/python" -m pip install -q --force-reinstall --no-deps .)
  SP=$(cd /tmp && "$venv/bin/python" -c "import mongoose_py, os; print(os.path.dirname(mongoose_py.__file__))")
  # pyproject.toml lists packages = ["mongoose_py"] only: a mongoose_py/mqtt/ subpackage is not installed
  if [ -d "$SRC/mongoose_py/mqtt" ] && ! grep -q '^mongoose_py/mqtt/' "$SP"/../mongoose_py-*.dist-info/RECORD; then
    echo "$name: mongoose_py/mqtt/ is not packaged: copied"; rm -rf "$SP/mqtt"; cp -r "$SRC/mongoose_py/mqtt" "$SP/"
  fi
  (cd /tmp && "$venv/bin/python" -c "import mongoose_py, mongoose_py.mqtt; print('$name:', mongoose_py.__file__)")
done
rm -rf "$SRC"
"""


def setup():
    """Peers in benchmarks/.venv-ws-mqtt; mongoose_py from the working tree in .venv-ws-mqtt-{cpython,pypy}."""
    env = dict(os.environ, ROOT=ROOT)
    subprocess.run(["sh", "-c", SETUP_SH], check=True, env=env)
    print("now: export MGPY_BENCH_CPYTHON=%s/.venv-ws-mqtt-cpython/bin/python "
          "MGPY_BENCH_PYPY=%s/.venv-ws-mqtt-pypy/bin/python" % (HERE, HERE))


def report(path):
    """RESULTS-ws-mqtt.md from out/ws_mqtt/{ws,https,mqtt}.json (whichever exist)."""
    import bench_https
    import bench_mqtt

    def load(name):
        try:
            with open(os.path.join(OUT, name)) as f:
                return json.load(f)
        except OSError:
            return None

    ws, https, mqtt = load("ws.json"), load("https.json"), load("mqtt.json")
    first = ws or https or mqtt
    if first is None:
        raise SystemExit("no results in %s" % OUT)
    m, v = first["machine"], first["versions"]
    out = ["# WebSocket, HTTPS and MQTT benchmarks", "",
           "Written by `python3 benchmarks/bench_ws.py report` from the JSON files of the three runs "
           "(benchmarks/out/ws_mqtt/). Not run by CI.", "",
           "## Machine and versions", "",
           "- %s, %s CPUs (`nproc`), Linux %s; run on %s" % (m["cpu"], m["nproc"], m["kernel"], m["date"]),
           "- CPython %s, PyPy %s; mongoose_py %s (git %s plus the working tree)"
           % (v["cpython"], v["pypy"], v["mongoose_py"], v["git"]),
           "- peers (benchmarks/.venv-ws-mqtt, CPython): %s" % ", ".join(" ".join(x.split()) for x in v["peers"].split("\n")),
           "- %s; %s; %s" % (v["mosquitto"], v["wrk"].split(" Copyright")[0], v["openssl"]), ""]
    for name, d in (("bench_ws.py", ws), ("bench_https.py", https), ("bench_mqtt.py", mqtt)):
        if d:
            out.append("- `%s`: %d rounds x %gs per case (+%gs warm-up), %.0f s in all; `uptime` before: `%s`; "
                       "after: `%s`" % (name, d["rounds"], d["duration"], d["warmup"], d["elapsed_s"],
                                        d["machine"]["uptime"], d["uptime_end"]))
    out.append("")
    if ws:
        servers = [(k, label, None) for k, label in ws["servers"]]
        out += ["## WebSocket echo (messages/s)", "",
                "Each message is a BINARY frame sent by the load generator and echoed back by the server. "
                "4 connections; 64 B: 64 messages in flight per connection (sent in batches of 16); "
                "64 KiB: 4 in flight per connection. Server CPU µs/msg is the server's CPU time during the "
                "measured seconds divided by the messages echoed; load-gen CPU is the load generator's "
                "share of its core.", "",
                table(ws["summary"], servers, [(w[0], w[1]) for w in ws["workloads"]])]
    if https:
        servers = [(k, label, None) for k, label in https["servers"]]
        out += ["## HTTPS hello world (requests/s)", "",
                "wrk over TLS 1.3 (TLS_CHACHA20_POLY1305_SHA256, P-256 certificate made at run time). "
                "Server CPU µs/req is the server's CPU time during the wrk run divided by the requests.", "",
                bench_https.table(https["summary"], servers)]
    if mqtt:
        servers = [(k, label, None) for k, label in mqtt["brokers"]]
        out += ["## MQTT broker (messages/s received by the subscribers)", "",
                "4 publisher -> subscriber pairs (publisher i publishes to `bench/i`, subscriber i subscribes "
                "to it with the measured QoS), 64 B payloads, at most %d messages in flight per pair, "
                "published in batches of %d. Broker CPU µs/msg is the broker's CPU time during the measured "
                "seconds divided by the messages delivered. Lost messages over all runs: %s." % (
                    mqtt["window"], mqtt["batch"],
                    ", ".join("%s %s %d" % (k, w, r["lost"]) for k, per in mqtt["summary"].items()
                              for w, r in per.items() if r["lost"]) or "none"), "",
                table(mqtt["summary"], servers, [(w[0], w[1]) for w in bench_mqtt.WORKLOADS],
                      peers=("mosquitto", "amqtt"))]
    with open(path, "w") as f:
        f.write("\n".join(out).rstrip() + "\n")
    log("wrote %s" % path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode")
    sub.add_parser("report", help="write RESULTS-ws-mqtt.md from the JSON results")
    sub.add_parser("setup", help="create the venvs (peers; mongoose_py from the working tree)")
    c = sub.add_parser("client", help="the load generator")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--size", type=int, default=64)
    c.add_argument("--conns", type=int, default=4)
    c.add_argument("--window", type=int, default=64)
    c.add_argument("--batch", type=int, default=16)
    c.add_argument("--duration", type=float, default=3.0)
    c.add_argument("--ramp", type=float, default=0.3)
    c.add_argument("--server-pid", type=int, default=0)
    add_round_args(ap)
    args = ap.parse_args()
    if args.mode == "setup":
        setup()
        return
    if args.mode == "report":
        report(os.path.join(HERE, "RESULTS-ws-mqtt.md"))
        return
    if args.mode == "client":
        r = ws_client(args.port, args.size, args.conns, args.window, args.batch, args.duration, args.ramp,
                      args.server_pid)
        print(json.dumps(r))
        return
    apply_quick(args)
    servers = only(SERVERS, args.only)
    t0 = time.time()
    m = machine()
    res = bench(servers, args.rounds, args.duration, args.warmup)
    summary = summarize(res, "rate", LOADGEN_MEDIANS)
    data = record(m, args, t0, workloads=WORKLOADS, servers=[s[:2] for s in servers], runs=res, summary=summary)
    save("ws.json", data)
    print(table(summary, servers, [(w[0], w[1]) for w in WORKLOADS]))


if __name__ == "__main__":
    main()
