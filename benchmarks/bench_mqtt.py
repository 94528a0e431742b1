#!/usr/bin/env python3
"""MQTT broker throughput: messages/s, 4 publishers -> 4 subscribers, 64 B payloads, QoS 0 and QoS 1.

    python3 benchmarks/bench_mqtt.py                    # 3 rounds x 3 s per case
    python3 benchmarks/bench_mqtt.py --quick            # smoke: 1 round x 1 s

Brokers (pinned with ``taskset -c 0``): mongoose_py.mqtt.Broker on CPython
and PyPy (mqtt_broker_mongoose_py.py), mosquitto (Debian's, a config file
written at run time: one listener on 127.0.0.1, anonymous clients, defaults
otherwise) and amqtt (mqtt_broker_amqtt.py).

The load generator is this file's ``client`` mode, run on PyPy pinned with
``taskset -c 1``: raw non-blocking sockets + epoll, one thread, MQTT 3.1.1
written by hand. Publisher i publishes to ``bench/i``, to which subscriber i
subscribes (with the measured QoS): four independent pairs through the
broker. Each pair keeps at most ``--window`` messages in flight (published
and not yet received by its subscriber): publishers send pre-built batches
of ``--batch`` PUBLISH packets (QoS 1: fresh packet ids) whenever the pair's
in-flight count has room; subscribers PUBACK every QoS 1 message at once
(one send per receive). The result is the number of PUBLISH packets the
subscribers received during the measured time. After it, publishing stops
and the generator waits (at most 1 s) for the rest: ``lost`` counts what never
arrived (a broker that drops messages under load shows here).

Rounds are interleaved; the tables are medians. Results:
benchmarks/out/ws_mqtt/mqtt.json.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
import time

from bench_ws import CPY, LOADGEN_MEDIANS, OUT, PEERS, PYPY, machine, record, run_client, save, table
from common import (add_round_args, apply_quick, cpu_seconds, interleaved_rounds, log, only, per_unit_us, py,
                    raise_nofile, start_server, summarize)

# ---------------------------------------------------------------- the load generator (client mode)


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s):
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def connect_pkt(client_id, keepalive=60):
    body = _str("MQTT") + bytes((4, 0x02)) + keepalive.to_bytes(2, "big") + _str(client_id)
    return b"\x10" + _varint(len(body)) + body


def subscribe_pkt(topic, qos, pid=1):
    body = pid.to_bytes(2, "big") + _str(topic) + bytes((qos,))
    return b"\x82" + _varint(len(body)) + body


def publish_pkt(topic, payload, qos, pid=0):
    body = _str(topic) + (pid.to_bytes(2, "big") if qos else b"") + payload
    return bytes((0x30 | (qos << 1),)) + _varint(len(body)) + body


def _recv_exact_packet(s, want_type, timeout=10.0):
    """Blocking read of the first packet (CONNACK/SUBACK) during setup."""
    s.settimeout(timeout)
    buf = b""
    while True:
        d = s.recv(4096)
        if not d:
            raise RuntimeError("broker closed the connection during setup")
        buf += d
        if len(buf) >= 2 and len(buf) >= 2 + buf[1]:
            if buf[0] >> 4 != want_type:
                raise RuntimeError("expected packet type %d, got %r" % (want_type, buf[:8]))
            if len(buf) > 2 + buf[1]:
                raise RuntimeError("unexpected extra data during setup: %r" % buf[:20])
            return buf


def _connect(port, client_id):
    """A connected MQTT session (blocking during setup)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(connect_pkt(client_id))
    ack = _recv_exact_packet(s, 2)
    if ack[3] != 0:
        raise RuntimeError("CONNACK refused: %r" % ack)
    return s


def mqtt_client(port, pairs, qos, size, window, batch, duration, ramp, tag, server_pid=0):
    payload = os.urandom(size)
    subs, pubs = [], []
    for i in range(pairs):
        s = _connect(port, "%s-sub%d" % (tag, i))
        s.sendall(subscribe_pkt("bench/%d" % i, qos))
        ack = _recv_exact_packet(s, 9)
        if ack[-1] != qos:
            raise RuntimeError("SUBACK granted %r, wanted QoS %d" % (ack, qos))
        subs.append(s)
    for i in range(pairs):
        pubs.append(_connect(port, "%s-pub%d" % (tag, i)))
    batch = max(1, min(batch, window))
    # pre-built packets: QoS 0 one batch per topic; QoS 1 a ring of ids 1..NIDS per topic
    nids = 60000 - 60000 % batch
    if qos == 0:
        ring = [[publish_pkt("bench/%d" % i, payload, 0) * batch] for i in range(pairs)]
    else:
        ring = []
        for i in range(pairs):
            pk = [publish_pkt("bench/%d" % i, payload, 1, pid) for pid in range(1, nids + 1)]
            ring.append([b"".join(pk[j:j + batch]) for j in range(0, nids, batch)])
    ep = select.epoll()
    # per socket: [sock, is_pub, pair, pending-out memoryview or None, inbuf bytearray]
    st = {}
    for i, s in enumerate(subs + pubs):
        s.setblocking(False)
        st[s.fileno()] = [s, i >= pairs, i % pairs, None, bytearray()]
        ep.register(s.fileno(), select.EPOLLIN)
    sent = [0] * pairs
    recv = [0] * pairs
    ring_i = [0] * pairs
    pub_fd = [s.fileno() for s in pubs]
    state = {"publishing": True}
    rbuf = bytearray(1 << 18)

    def write(fd, e, data):
        """Send data on e's socket, queueing what does not fit (returns False if queued)."""
        if e[3] is not None:
            e[3] = memoryview(bytes(e[3]) + data)
            return False
        mv = memoryview(data)
        try:
            k = e[0].send(mv)
        except BlockingIOError:
            k = 0
        if k < len(mv):
            e[3] = mv[k:]
            ep.modify(fd, select.EPOLLIN | select.EPOLLOUT)
            return False
        return True

    def flush(fd, e):
        pend = e[3]
        try:
            k = e[0].send(pend)
        except BlockingIOError:
            return
        if k < len(pend):
            e[3] = pend[k:]
        else:
            e[3] = None
            ep.modify(fd, select.EPOLLIN)

    def publish(i):
        if not state["publishing"]:
            return
        fd = pub_fd[i]
        e = st[fd]
        while e[3] is None and sent[i] - recv[i] <= window - batch:
            batches = ring[i]
            j = ring_i[i]
            ring_i[i] = (j + 1) % len(batches)
            sent[i] += batch
            if not write(fd, e, batches[j]):
                return

    want_rl = 2 + len("bench/0") + (2 if qos else 0) + size
    bad = [0]

    def on_sub_data(fd, e, data):
        buf = e[4]
        buf += data
        n = len(buf)
        i = 0
        got = 0
        acks = []
        while i + 2 <= n:
            b0 = buf[i]
            # remaining length (varint)
            rl = 0
            mult = 1
            j = i + 1
            while True:
                if j >= n:
                    rl = -1
                    break
                c = buf[j]
                rl += (c & 0x7F) * mult
                j += 1
                if c < 0x80:
                    break
                mult <<= 7
            if rl < 0 or j + rl > n:
                break
            if b0 >> 4 == 3:
                got += 1
                if rl != want_rl or buf[j + rl - 1] != payload[-1]:
                    bad[0] += 1
                if b0 & 0x06:
                    tl = (buf[j] << 8) | buf[j + 1]
                    acks.append(b"\x40\x02" + bytes(buf[j + 2 + tl:j + 4 + tl]))
            i = j + rl
        if i:
            del buf[:i]
        if acks:
            write(fd, e, b"".join(acks))
        return got

    for i in range(pairs):
        publish(i)
    t_measure = time.time() + ramp
    t_end = t_measure + duration
    base = None
    t_m = cpu0 = None
    drain_until = None
    while True:
        now = time.time()
        if base is None and now >= t_measure:
            base = sum(recv)
            cpu0 = os.times()
            scpu0 = cpu_seconds(server_pid) if server_pid else float("nan")
            t_m = now
        if drain_until is None and now >= t_end:
            t1 = now
            got = sum(recv) - base
            cpu1 = os.times()
            scpu1 = cpu_seconds(server_pid) if server_pid else float("nan")
            state["publishing"] = False
            drain_until = now + 1.0
        if drain_until is not None and (now >= drain_until or sum(recv) >= sum(sent)):
            break
        for fd, ev in ep.poll(0.05):
            e = st[fd]
            if ev & (select.EPOLLERR | select.EPOLLHUP):
                raise RuntimeError("socket error/hangup (%s %d)" % ("pub" if e[1] else "sub", e[2]))
            if ev & select.EPOLLOUT and e[3] is not None:
                flush(fd, e)
            if ev & select.EPOLLIN:
                s = e[0]
                while True:
                    try:
                        k = s.recv_into(rbuf)
                    except BlockingIOError:
                        break
                    if k == 0:
                        raise RuntimeError("broker closed a connection (%s %d)" % ("pub" if e[1] else "sub", e[2]))
                    if not e[1]:
                        recv[e[2]] += on_sub_data(fd, e, rbuf[:k])
                    # publishers: PUBACKs (QoS 1) are read and dropped
                    if k < len(rbuf):
                        break
            if not e[1]:
                publish(e[2])
            elif e[3] is None:
                publish(e[2])
    lost = sum(sent) - sum(recv)
    for s in subs + pubs:
        s.close()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {"msgs": got, "seconds": t1 - t_m, "rate": got / (t1 - t_m), "client_cpu": cpu / (t1 - t_m),
            "sent_total": sum(sent), "lost": lost, "bad": bad[0], "server_cpu_s": scpu1 - scpu0}


# ---------------------------------------------------------------- the benchmark

def mosquitto_cmd(port, tmp):
    conf = os.path.join(tmp, "mosquitto-%d.conf" % port)
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n" % port)
    return [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", conf], False


BROKERS = [
    ("mg_cpython", "mongoose_py Broker, CPython", lambda port, tmp: ([CPY, py("mqtt_broker_mongoose_py.py")], True)),
    ("mg_pypy", "mongoose_py Broker, PyPy", lambda port, tmp: ([PYPY, py("mqtt_broker_mongoose_py.py")], True)),
    ("mosquitto", "mosquitto (C)", mosquitto_cmd),
    ("amqtt", "amqtt (asyncio), CPython", lambda port, tmp: ([PEERS, py("mqtt_broker_amqtt.py")], True)),
]

# key, label, qos
WORKLOADS = [
    ("qos0", "QoS 0, 64 B, 4 publishers -> 4 subscribers", 0),
    ("qos1", "QoS 1, 64 B, 4 publishers -> 4 subscribers", 1),
]


def bench(brokers, rounds, duration, warmup, window, batch, tmp):
    raise_nofile()
    res = {k: {w[0]: [] for w in WORKLOADS} for k, _, _ in brokers}
    n = [0]

    def start(key, mk, port):
        cmd, port_args = mk(port, tmp)
        return start_server("mqtt_" + key, cmd, port, OUT, port_args=port_args)

    def measure(rnd, key, port, proc):
        for wkey, _, qos in WORKLOADS:
            n[0] += 1
            cargs = [os.path.abspath(__file__), "client", "--port", str(port), "--qos", str(qos),
                     "--window", str(window), "--batch", str(batch), "--server-pid", str(proc.pid)]
            try:
                if warmup:
                    run_client(cargs + ["--duration", str(warmup), "--ramp", "0.2", "--tag", "w%d" % n[0]],
                               30 + warmup)
                r = run_client(cargs + ["--duration", str(duration), "--ramp", "0.3", "--tag", "m%d" % n[0]],
                               30 + duration)
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                log("round %d %s %s: FAILED %s" % (rnd + 1, key, wkey, exc))
                continue
            if r["bad"]:
                log("round %d %s %s: %d messages with a wrong length or payload" % (rnd + 1, key, wkey, r["bad"]))
            r["server_cpu_us_per_msg"] = per_unit_us(r["server_cpu_s"], r["msgs"])
            res[key][wkey].append(r)
            log("round %d %-10s %-4s %9.0f msg/s  broker %6.2f us/msg  client cpu %3.0f%%  lost %d"
                % (rnd + 1, key, wkey, r["rate"], r["server_cpu_us_per_msg"], 100 * r["client_cpu"],
                   r["lost"]))

    interleaved_rounds(brokers, rounds, start, measure, 0.5)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode")
    c = sub.add_parser("client", help="the load generator")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--pairs", type=int, default=4)
    c.add_argument("--qos", type=int, default=0)
    c.add_argument("--size", type=int, default=64)
    c.add_argument("--window", type=int, default=100)
    c.add_argument("--batch", type=int, default=20)
    c.add_argument("--duration", type=float, default=3.0)
    c.add_argument("--ramp", type=float, default=0.3)
    c.add_argument("--tag", default="b")
    c.add_argument("--server-pid", type=int, default=0)
    add_round_args(ap)
    ap.add_argument("--window", type=int, default=100, help="messages in flight per publisher/subscriber pair")
    ap.add_argument("--batch", type=int, default=20)
    args = ap.parse_args()
    if args.mode == "client":
        r = mqtt_client(args.port, args.pairs, args.qos, args.size, args.window, args.batch, args.duration,
                        args.ramp, args.tag, args.server_pid)
        print(json.dumps(r))
        return
    apply_quick(args)
    if shutil.which("mosquitto") is None and not os.path.exists("/usr/sbin/mosquitto"):
        raise SystemExit("mosquitto is required (apt-get install mosquitto)")
    brokers = only(BROKERS, args.only)
    t0 = time.time()
    m = machine()
    tmp = tempfile.mkdtemp(prefix="mgpy-mqtt-")
    try:
        res = bench(brokers, args.rounds, args.duration, args.warmup, args.window, args.batch, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = summarize(res, "rate", LOADGEN_MEDIANS, [("lost", lambda r: r["lost"])])
    save("mqtt.json", record(m, args, t0, window=args.window, batch=args.batch, brokers=[b[:2] for b in brokers],
                             runs=res, summary=summary))
    print(table(summary, brokers, [(w[0], w[1]) for w in WORKLOADS], peers=("mosquitto", "amqtt")))
    for key, _, _ in brokers:
        for wkey, r in summary.get(key, {}).items():
            if r["lost"]:
                print("note: %s %s lost %d messages in total" % (key, wkey, r["lost"]))


if __name__ == "__main__":
    main()
