"""Small network helpers shared by the tests and the benchmarks: free ports,
waiting for a listener, blocking client exchanges, a UDP responder thread, a
DNS probe and a dnsmasq on loopback. A plain module (no pytest): the
benchmarks import it too (benchmarks/common.py)."""
import contextlib
import grp
import http.client
import os
import pwd
import shutil
import socket
import struct
import threading
import time

HOST = "127.0.0.1"


def free_port(udp=False):
    """A TCP port of 127.0.0.1 that nobody listens on right now (it can be
    taken before you bind it: retry). ``udp=True``: one free for UDP as well
    (dnsmasq binds both), or None when the UDP one is taken."""
    t = socket.socket()
    try:
        t.bind((HOST, 0))
        port = t.getsockname()[1]
        if udp:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind((HOST, port))
            except OSError:
                port = None
            finally:
                u.close()
        return port
    finally:
        t.close()


def wait_port(port, timeout=5.0, proc=None):
    """Wait until ``port`` accepts a TCP connection: True, or False after
    ``timeout`` seconds or as soon as ``proc`` (a Popen) has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def raw_exchange(port, data, timeout=10):
    """Send ``data`` and read until the server closes (or timeout)."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def http_get(port, path="/", timeout=10, headers=None):
    """``(status, body)`` of one GET with http.client."""
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def in_thread(fn, *args):
    """Run a blocking client ``fn(*args)`` on a worker thread (while this
    thread polls the server): a dict with "thread", then "result" or "error"."""
    out = {}

    def run():
        try:
            out["result"] = fn(*args)
        except BaseException as exc:  # reported by the test
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    out["thread"] = t
    return out


@contextlib.contextmanager
def silent_udp_port():
    """A bound UDP port of 127.0.0.1 where nobody answers, for the ``with`` block."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((HOST, 0))
        yield s.getsockname()[1]
    finally:
        s.close()


class UdpResponder:
    """A UDP server thread on 127.0.0.1: ``reply(request) -> bytes or None``
    shapes each answer; ``requests`` lists what came in. ``close()`` it."""

    def __init__(self, reply):
        self.reply = reply
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            self.requests.append(data)
            out = self.reply(data)
            if out is not None:
                self.sock.sendto(out, peer)

    def close(self):
        self._stop.set()
        self.thread.join(5)
        self.sock.close()


NTP_DELTA = 2208988800  # 1900 -> 1970, seconds


def ntp_ts(epoch_ms):
    sec, ms = divmod(epoch_ms, 1000)
    return struct.pack(">II", sec + NTP_DELTA, int(ms / 1000 * 2 ** 32))


def sntp_reply(request, epoch_ms):
    """An SNTP server reply (mode 4, version 4, stratum 1) per RFC 4330 §4/§5
    telling ``epoch_ms``: a ``reply`` for UdpResponder."""
    header = struct.pack(">BBbb", (0 << 6) | (4 << 3) | 4, 1, 6, -20)
    header += struct.pack(">II", 0, 0) + b"GPS\0"
    origin = request[40:48] if len(request) >= 48 else b"\0" * 8  # client's transmit time
    return header + ntp_ts(epoch_ms) + origin + ntp_ts(epoch_ms) + ntp_ts(epoch_ms)


def dns_query(port, name, timeout=0.5):
    """rcode of an A query for ``name`` to 127.0.0.1:port, or None if no answer came."""
    qname = b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\0"
    pkt = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(pkt, (HOST, port))
        reply = s.recv(512)
    except OSError:
        return None
    finally:
        s.close()
    return reply[3] & 15


def dnsmasq_path():
    path = shutil.which("dnsmasq") or shutil.which("dnsmasq", path="/usr/sbin:/sbin")
    assert path, "dnsmasq is not installed (Debian package dnsmasq-base): scripts/test-all installs it"
    return path


def start_dnsmasq(start, hosts, known_name, tries=10):
    """A dnsmasq on a free port of 127.0.0.1 answering from the hosts file
    ``hosts`` (``.test`` names: anything else there is NXDOMAIN): ``(proc,
    port)`` once it answers for ``known_name``. ``start(argv)`` starts a
    process stopped by its pid (conftest's ``Proc`` or the ``procs`` fixture)."""
    exe = dnsmasq_path()
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    for _ in range(tries):  # the port can be taken between probe and bind: retry
        port = free_port(udp=True)
        if port is None:
            continue
        proc = start([exe, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                      "--addn-hosts=%s" % hosts, "--listen-address=127.0.0.1", "--bind-interfaces",
                      "--port=%d" % port, "--user=%s" % user, "--group=%s" % group, "--pid-file=",
                      "--log-facility=-", "--local=/test/", "--cache-size=0"])
        deadline = time.monotonic() + 5
        while proc.p.poll() is None and time.monotonic() < deadline:
            if dns_query(port, known_name, 0.2) == 0:
                break
        if proc.p.poll() is None and dns_query(port, known_name) == 0:
            return proc, port
        proc.stop()
    raise AssertionError("could not start dnsmasq on 127.0.0.1")
