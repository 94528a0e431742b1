"""Bad WebSocket input from a raw socket: invalid frames, over-size messages,
random bytes after the upgrade. Each ends in a CLOSE frame with the right
code (where the protocol calls for one) and a clean TCP close: never a crash
or a hang, and the server keeps serving."""
import base64
import os
import socket
import struct
import threading
import time

import pytest
import websocket
from hypothesis import HealthCheck, given, settings, strategies as st

from mongoose_py import MG_EV_ERROR, MG_EV_HTTP_MSG, MG_EV_WS_MSG, Manager
from mongoose_py._ws import WS_MAX_MESSAGE
from conftest import LoopThread


class Server:
    def __init__(self):
        self.msgs = []
        self.errors = []

        def handler(conn, ev, data):
            if ev == MG_EV_HTTP_MSG:
                conn.ws_upgrade(data)
            elif ev == MG_EV_WS_MSG:
                self.msgs.append(data.data)
                conn.ws_send(data.data, data.opcode)
            elif ev == MG_EV_ERROR:
                self.errors.append(data)

        self.mgr = Manager()
        self.port = self.mgr.listen("ws://127.0.0.1:0", handler).local_addr[1]
        self.loop = LoopThread(self.mgr).start()

    def stop(self):
        self.loop.stop()


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.stop()


def upgraded(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n" % key).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        assert chunk, "closed during the upgrade"
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s, rest


def frame(payload, op=1, fin=True, mask=True, rsv=0, length=None):
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | rsv << 4 | op
    if n < 126:
        hdr = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if not mask:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def read_until_eof(s, first=b"", timeout=10):
    """Everything the server sends until it closes; 'reset' if it reset us."""
    s.settimeout(timeout)
    data = first
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return data, "reset"
        except socket.timeout:
            return data, "timeout"
        if not chunk:
            return data, "eof"
        data += chunk
    return data, "timeout"


def parse_frames(data):
    out = []
    while len(data) >= 2:
        op, n = data[0] & 15, data[1] & 127
        i = 2
        if n == 126:
            n, i = struct.unpack("!H", data[2:4])[0], 4
        elif n == 127:
            n, i = struct.unpack("!Q", data[2:10])[0], 10
        out.append((op, data[i:i + n]))
        data = data[i + n:]
    return out


def close_code_of(frames):
    closes = [p for op, p in frames if op == 8]
    assert closes, "no CLOSE frame in %r" % (frames,)
    return struct.unpack("!H", closes[0][:2])[0]


BAD = [
    ("reserved opcode", frame(b"x", op=3), 1002),
    ("reserved opcode 11", frame(b"x", op=11), 1002),
    ("unmasked client frame", frame(b"hello", mask=False), 1002),
    ("rsv bits", frame(b"x", rsv=4), 1002),
    ("control frame too long", frame(b"p" * 126, op=9), 1002),
    ("fragmented control frame", frame(b"p", op=9, fin=False), 1002),
    ("stray continuation", frame(b"c", op=0), 1002),
    ("missing continuation", frame(b"a", fin=False) + frame(b"b"), 1002),
    ("length beyond the limit", frame(b"", op=2, length=WS_MAX_MESSAGE + 1) + b"x" * 100, 1009),
    ("64-bit length", struct.pack("!BBQ", 0x82, 0xFF, 1 << 62) + os.urandom(4) + b"y" * 100, 1009),
    ("fragments beyond the limit", None, 1009),
]


def _bad_bytes(name, data):
    if name == "fragments beyond the limit":
        # a real first fragment of 2 MiB, then a continuation header claiming 2 MiB more
        first = frame(os.urandom(2 * 1024 * 1024), op=2, fin=False)
        second = frame(b"", op=0, length=2 * 1024 * 1024)
        return first + second
    return data


@pytest.mark.parametrize("name,data,code", BAD, ids=[b[0] for b in BAD])
def test_invalid_frame_closes_with_code(server, name, data, code):
    s, rest = upgraded(server.port)
    with s:
        s.sendall(frame(b"before", op=1))  # a good frame first: delivered and echoed
        s.sendall(_bad_bytes(name, data))
        out, how = read_until_eof(s, rest)
    frames = parse_frames(out)
    assert frames[0] == (1, b"before")
    assert close_code_of(frames) == code, frames
    assert how == "eof", how  # the CLOSE is followed by a clean FIN, not a reset or a hang
    assert any(("closing with %d" % code) in e for e in server.errors), server.errors


def test_over_size_message_from_real_client_gets_1009(server):
    ws = websocket.create_connection("ws://127.0.0.1:%d/" % server.port, timeout=10)
    try:
        ws.send_binary(b"ok")
        assert ws.recv() == b"ok"
        try:
            ws.send_binary(os.urandom(WS_MAX_MESSAGE + 1))
        except (BrokenPipeError, ConnectionResetError, websocket.WebSocketConnectionClosedException):
            pass
        frame_ = ws.recv_frame()
        assert frame_.opcode == websocket.ABNF.OPCODE_CLOSE
        assert struct.unpack("!H", frame_.data[:2])[0] == 1009
    finally:
        ws.shutdown()


def test_largest_message_passes(server):
    ws = websocket.create_connection("ws://127.0.0.1:%d/" % server.port, timeout=20)
    try:
        blob = os.urandom(WS_MAX_MESSAGE)
        threading.Thread(target=ws.send_binary, args=(blob,), daemon=True).start()
        assert ws.recv() == blob
    finally:
        ws.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(min_size=1, max_size=600))
def test_random_bytes_after_upgrade(server, junk):
    s, rest = upgraded(server.port)
    with s:
        s.sendall(junk)
        s.shutdown(socket.SHUT_WR)  # then EOF: the server must close, whatever it made of the bytes
        out, how = read_until_eof(s, rest, timeout=10)
    assert how in ("eof", "reset"), how  # closed, never hung
    # whatever came back is well-formed frames
    for op, payload in parse_frames(out):
        assert op in (1, 2, 8, 10), op


def test_server_still_serves_after_abuse(server):
    ws = websocket.create_connection("ws://127.0.0.1:%d/" % server.port, timeout=10)
    ws.send("still alive")
    assert ws.recv() == "still alive"
    ws.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=6),
       pings=st.lists(st.booleans(), max_size=7), binary=st.booleans(), split_writes=st.integers(1, 50))
def test_fragmented_messages_reassemble(server, payload, cuts, pings, binary, split_writes):
    """Any split of a message into fragments, with pings in between and the
    bytes written in arbitrary pieces, arrives as the one original message."""
    bounds = sorted(set(c for c in cuts if 0 < c < len(payload)))
    parts = [payload[a:b] for a, b in zip([0] + bounds, bounds + [len(payload)])]
    wire = b""
    for i, part in enumerate(parts):
        op = (2 if binary else 1) if i == 0 else 0
        wire += frame(part, op=op, fin=(i == len(parts) - 1))
        if i < len(pings) and pings[i] and i < len(parts) - 1:
            wire += frame(b"pi%d" % i, op=9)
    s, rest = upgraded(server.port)
    with s:
        step = max(1, len(wire) // split_writes)
        for i in range(0, len(wire), step):
            s.sendall(wire[i:i + step])
        want_pongs = sum(1 for i, p in enumerate(pings) if p and i < len(parts) - 1)
        data = rest
        s.settimeout(10)
        while True:
            frames = parse_frames(data)
            msgs = [f for f in frames if f[0] in (1, 2)]
            if msgs and len(msgs[0][1]) == len(payload) and len([f for f in frames if f[0] == 10]) >= want_pongs:
                break
            chunk = s.recv(65536)
            assert chunk, "closed early: %r" % (frames,)
            data += chunk
    assert msgs[0] == (2 if binary else 1, payload)
