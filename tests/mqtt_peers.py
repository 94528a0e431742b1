"""Real MQTT peers for the MQTT tests: a raw-socket MQTT client, a mosquitto
broker on an ephemeral port (stopped by pid), a test CA made by openssl, and
our Broker on a background loop."""
import os
import socket
import struct
import subprocess
import time

from conftest import LoopThread, require_tool
from mongoose_py import Manager
from mongoose_py.mqtt import Broker


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


# ---- packets ----

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def s16(b):
    if isinstance(b, str):
        b = b.encode("utf-8")
    return struct.pack(">H", len(b)) + b


def packet(b0, body):
    return bytes([b0]) + varint(len(body)) + body


def connect_pkt(client_id="raw", keepalive=60, clean=True, will=None, username=None, password=None,
                level=4, proto="MQTT"):
    flags = 0x02 if clean else 0
    payload = s16(client_id)
    if will is not None:
        topic, msg, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        payload += s16(topic) + s16(msg)
    if username is not None:
        flags |= 0x80
        payload += s16(username)
    if password is not None:
        flags |= 0x40
        payload += s16(password)
    return packet(0x10, s16(proto) + bytes([level, flags]) + struct.pack(">H", keepalive) + payload)


def publish_pkt(topic, payload, qos=0, pid=0, retain=False, dup=False):
    body = s16(topic) + (struct.pack(">H", pid) if qos else b"") + payload
    return packet(0x30 | (qos << 1) | (1 if retain else 0) | (8 if dup else 0), body)


def subscribe_pkt(pid, *filters):
    body = struct.pack(">H", pid)
    for f, q in filters:
        body += s16(f) + bytes([q])
    return packet(0x82, body)


class RawMqtt:
    """A blocking MQTT client on a plain socket, for exact packets."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no MQTT packet in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed by the broker")
            self.buf += chunk
            return

    def read(self, timeout=5.0):
        """``(first_byte, body)`` of the next packet."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                n = mul = 0
                i = 1
                while i < len(self.buf):
                    b = self.buf[i]
                    n += (b & 0x7F) << mul
                    mul += 7
                    i += 1
                    if not b & 0x80:
                        if len(self.buf) >= i + n:
                            pkt = self.buf[0], self.buf[i:i + n]
                            self.buf = self.buf[i + n:]
                            return pkt
                        break
            self._fill(deadline)

    def connect(self, **kw):
        self.send(connect_pkt(**kw))
        b0, body = self.read()
        assert b0 == 0x20, hex(b0)
        return body[0], body[1]  # session present, return code

    def closed_by_peer(self, timeout=5.0):
        """True when the broker closes the connection within ``timeout``."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.buf = b""
                self._fill(deadline)
        except EOFError:
            return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


# ---- our broker ----

class RunningBroker:
    def __init__(self, broker_kwargs=None, url="mqtt://127.0.0.1:0", tls=None, broker_class=Broker):
        self.errors = []
        self.mgr = Manager(error_handler=self.errors.append)
        self.broker = broker_class(self.mgr, **(broker_kwargs or {}))
        self.listener = self.broker.listen(url, tls=tls)
        self.port = self.listener.local_addr[1]
        self.loop = LoopThread(self.mgr, poll_ms=10).start()

    def stop(self):
        self.loop.stop()
        assert not self.errors, self.errors


# ---- TLS material ----

def make_ca(dirpath):
    """A P-256 test CA and a server certificate for localhost / 127.0.0.1."""
    openssl = require_tool("openssl")
    d = str(dirpath)

    def run(*args):
        subprocess.run([openssl] + list(args), cwd=d, check=True, capture_output=True, timeout=30)

    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
    run("req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "2", "-subj", "/CN=mongoose_py test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-out", "ca.pem")
    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "server.key")
    run("req", "-new", "-key", "server.key", "-subj", "/CN=localhost", "-out", "server.csr")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-sha256", "-extfile", "ext.cnf", "-out", "server.pem")
    # (Mongoose 7.23 builtin TLS refuses a non-critical basicConstraints.)
    # A second, unrelated CA: a client trusting only it must refuse the server.
    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "other.key")
    run("req", "-x509", "-new", "-key", "other.key", "-sha256", "-days", "2", "-subj", "/CN=other CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-out", "other.pem")
    paths = {name: os.path.join(d, name) for name in ("ca.pem", "server.pem", "server.key", "other.pem")}
    return paths


# ---- mosquitto ----

def start_mosquitto(procs, tmp_path, tls=None):
    """Debian's mosquitto on an ephemeral port; ``tls`` = make_ca() paths.
    Returns the port. ``procs`` stops it by pid."""
    exe = require_tool("mosquitto")
    for _ in range(3):
        port = free_port()
        conf = ["listener %d 127.0.0.1" % port, "allow_anonymous true", "persistence false"]
        if os.geteuid() == 0:
            conf.append("user root")  # keep the rights to read the test's files
        if tls:
            conf += ["cafile %s" % tls["ca.pem"], "certfile %s" % tls["server.pem"],
                     "keyfile %s" % tls["server.key"]]
        path = os.path.join(str(tmp_path), "mosquitto-%d.conf" % port)
        with open(path, "w") as f:
            f.write("\n".join(conf) + "\n")
        p = procs([exe, "-c", path])
        if wait_port(port):
            return port, p
        p.stop()
    raise AssertionError("mosquitto did not start")
