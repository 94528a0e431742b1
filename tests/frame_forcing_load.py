"""Load for test_reentrant_calls.py, run as a script: handlers that force the
Python frames below them (logging with funcName, traceback.extract_stack, an
exception's context, warnings.warn) inside every kind of C call that runs
Python before it returns, on a loop thread, while the main thread keeps the
interpreter busy. On PyPy 7.3.11 this crashed the JIT (see _ffi.reentrant).

Prints one line of JSON with how often each path ran; exits non-zero on a
failed check. Every loop is bounded in count and time.
"""
import base64
import collections
import io
import json
import logging
import os
import socket
import struct
import sys
import threading
import time
import traceback
import warnings

from mongoose_py import Connection, Manager

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 60
DEADLINE = time.monotonic() + 120
counts = collections.Counter()
sink = io.StringIO()
log = logging.getLogger("frame_forcing_load")
_h = logging.StreamHandler(sink)
_h.setFormatter(logging.Formatter("%(threadName)s %(funcName)s:%(lineno)d %(message)s"))
log.addHandler(_h)
log.setLevel(logging.INFO)
log.propagate = False
warnings.simplefilter("ignore")


def force(tag):
    """Everything ordinary code does that walks the frames of its callers."""
    counts[tag] += 1
    log.info("%s", tag)                      # findCaller: every frame below
    traceback.extract_stack()
    try:
        raise ValueError(tag)                # the exception's context lookup
    except ValueError:
        pass
    warnings.warn(tag, UserWarning, stacklevel=3)
    if sink.tell() > 1 << 16:
        sink.seek(0)
        sink.truncate()


class Server(Connection):
    def on_accept(self):
        force("accept")

    def on_http_msg(self, msg):
        force("http_msg")
        if msg.uri == "/ws":
            self.ws_upgrade(msg)             # runs on_ws_open before it returns
        elif msg.uri == "/err":
            self.error("asked to fail")      # runs on_error before it returns
        else:
            self.reply(200, "ok")            # lets the next pipelined request in

    def on_ws_open(self, msg):
        force("ws_open")

    def on_ws_msg(self, msg):
        force("ws_msg")
        self.ws_send(msg.data, msg.opcode)

    def on_error(self, message):
        force("error")

    def on_close(self):
        force("close")


class Dialer(Connection):
    """Outbound connections made from a timer: on_open runs inside connect()."""

    def on_open(self):
        force("dial_open")

    def on_connect(self):
        self.close()


mgr = Manager(connection_class=Server)
port = mgr.listen("http://127.0.0.1:0").local_addr[1]
stop = threading.Event()
loop_errors = []


def dial():
    force("timer")
    mgr.connect("tcp://127.0.0.1:%d" % port, connection_class=Dialer)


mgr.timer_add(5, dial, repeat=True)


def run_loop():
    try:
        while not stop.is_set() and time.monotonic() < DEADLINE:
            mgr.poll(10)
    except BaseException as exc:  # reported by the main thread
        loop_errors.append(exc)


def masked(payload, op):
    key = os.urandom(4)
    body = bytes(b ^ key[i & 3] for i, b in enumerate(payload))  # Python work on purpose
    n = len(payload)
    hdr = struct.pack("!BB", 0x80 | op, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x80 | op, 0xFE, n)
    return hdr + key + body


def recv_until(s, pred, buf=b""):
    while not pred(buf):
        if time.monotonic() > DEADLINE:
            raise SystemExit("timed out; counts so far: %r" % dict(counts))
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def websocket_round(i):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n" % key).encode())
        buf = recv_until(s, lambda b: b"\r\n\r\n" in b)
        head, rest = buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        payload = os.urandom(50 + i % 200)
        s.sendall(masked(payload, 2))
        want = len(payload) + (2 if len(payload) < 126 else 4)
        out = recv_until(s, lambda b: len(b) >= want, rest)
        assert out[want - len(payload):want] == payload, "echo mismatch"


def http_round():
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n" * 3)  # pipelined
        out = recv_until(s, lambda b: b.count(b"\r\n\r\nok") == 3)
        assert out.count(b"HTTP/1.1 200") == 3, out
        s.sendall(b"GET /err HTTP/1.1\r\nHost: x\r\n\r\n")
        recv_until(s, lambda b: False)       # the server closes


loop = threading.Thread(target=run_loop, name="loop")
loop.start()
try:
    for i in range(ROUNDS):
        websocket_round(i)
        http_round()
finally:
    stop.set()
    mgr.stop()
    loop.join(30)
assert not loop.is_alive(), "loop thread did not stop"
assert not loop_errors, loop_errors
mgr.close()
print(json.dumps(dict(counts), sort_keys=True))
