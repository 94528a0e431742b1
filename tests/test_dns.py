"""DNS: Mongoose's resolver against a real DNS server on loopback.

The tests start Debian's ``dnsmasq`` on an ephemeral UDP port of 127.0.0.1
with a hosts file of their own (names under ``.test``, which it answers
locally: anything else there is NXDOMAIN) and point ``Manager(dns=...)`` at
it. Nothing leaves the machine.
"""
import socket
import time

import pytest

from conftest import Proc, pump
from mongoose_py import (
    MG_EV_CLOSE, MG_EV_CONNECT, MG_EV_HTTP_MSG, MG_EV_OPEN, MG_EV_POLL, MG_EV_RESOLVE,
    Connection, Manager, _ffi,
)
from netutil import dns_query, silent_udp_port, start_dnsmasq

FFI = _ffi.ffi


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory):
    """``udp://127.0.0.1:PORT`` of a dnsmasq that knows myhost.test and other.test."""
    hosts = tmp_path_factory.mktemp("dns") / "hosts"
    hosts.write_text("127.0.0.1 myhost.test\n127.0.0.1 other.test\n")
    proc, port = start_dnsmasq(Proc, hosts, "myhost.test")
    assert dns_query(port, "nope.test") == 3  # NXDOMAIN
    yield "udp://127.0.0.1:%d" % port
    proc.stop()


@pytest.fixture
def dead_dns():
    """A UDP port where nobody answers."""
    with silent_udp_port() as port:
        yield "udp://127.0.0.1:%d" % port


class Recorder(Connection):
    """Records the events of a client connection, echoes nothing."""

    def __init__(self):
        super().__init__()
        self.events = []
        self.data = b""

    def on_resolve(self):
        self.events.append(("resolve", self.remote_addr))

    def on_connect(self):
        self.events.append(("connect", self.remote_addr))
        self.send(b"hi via dns")

    def on_read(self):
        self.data += self.read()

    def on_error(self, message):
        self.events.append(("error", message))

    def on_close(self):
        self.events.append(("close", None))

    def kinds(self):
        return [k for k, _ in self.events]


class Echo(Connection):
    def on_read(self):
        self.send(self.read())


def test_connect_by_name_resolves_and_connects(dns_server):
    with Manager(dns=dns_server) as mgr:
        listener = mgr.listen("tcp://127.0.0.1:0", connection_class=Echo)
        port = listener.local_addr[1]
        conn = mgr.connect("tcp://myhost.test:%d" % port, connection_class=Recorder)
        pump(mgr, lambda: conn.data == b"hi via dns" or "close" in conn.kinds(), timeout=5)
        assert conn.kinds()[:2] == ["resolve", "connect"], conn.events
        assert conn.events[0][1] == ("127.0.0.1", port, False)  # the address dnsmasq gave
        assert conn.data == b"hi via dns"


def test_handler_sees_open_resolve_connect_in_order(dns_server):
    events = []

    def handler(conn, ev, data):
        if ev != MG_EV_POLL:
            events.append(ev)

    with Manager(dns=dns_server) as mgr:
        listener = mgr.listen("tcp://127.0.0.1:0")
        mgr.connect("tcp://other.test:%d" % listener.local_addr[1], handler)
        pump(mgr, lambda: MG_EV_CONNECT in events or MG_EV_CLOSE in events, timeout=5)
    assert events[:3] == [MG_EV_OPEN, MG_EV_RESOLVE, MG_EV_CONNECT]


def test_udp_and_http_clients_resolve_too(dns_server):
    """Every connect-style call goes through the same resolver."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(5)
    replies = []

    def http_handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            if conn.is_accepted:
                conn.reply(200, "host=" + (data.header("Host") or ""))
            else:
                replies.append(data.body_text)

    try:
        with Manager(dns=dns_server) as mgr:
            u = mgr.connect("udp://myhost.test:%d" % udp.getsockname()[1], connection_class=Recorder)
            pump(mgr, lambda: "connect" in u.kinds() or "close" in u.kinds(), timeout=5)
            assert u.kinds()[:2] == ["resolve", "connect"]
            data, peer = udp.recvfrom(100)
            assert data == b"hi via dns"

            web = mgr.listen("http://127.0.0.1:0", http_handler)
            port = web.local_addr[1]

            def client(conn, ev, data):
                if ev == MG_EV_CONNECT:
                    conn.send(b"GET / HTTP/1.1\r\nHost: other.test\r\n\r\n")
                else:
                    http_handler(conn, ev, data)

            mgr.connect("http://other.test:%d/" % port, client)
            pump(mgr, lambda: replies, timeout=5)
            assert replies == ["host=other.test"]
    finally:
        udp.close()


def failed_connect(dns, dns_timeout_ms, url):
    """A connect whose lookup fails: ``(Recorder, seconds until its close)``."""
    with Manager(dns=dns, dns_timeout_ms=dns_timeout_ms) as mgr:
        start = time.monotonic()
        conn = mgr.connect(url, connection_class=Recorder)
        pump(mgr, lambda: "close" in conn.kinds(), timeout=5)
        return conn, time.monotonic() - start


def test_nxdomain_gives_clear_error(dns_server):
    conn, elapsed = failed_connect(dns_server, 3000, "tcp://nope.test:80")
    errors = [m for k, m in conn.events if k == "error"]
    assert conn.kinds() == ["error", "close"], conn.events  # one error, no resolve/connect
    assert "DNS lookup failed" in errors[0], errors
    assert elapsed < 2.5  # the answer, not the 3 s timeout


def test_timeout_gives_error(dead_dns):
    conn, elapsed = failed_connect(dead_dns, 300, "tcp://myhost.test:80")
    assert conn.kinds() == ["error", "close"], conn.events
    assert conn.events[0][1] == "DNS timeout"
    assert 0.25 <= elapsed < 4


def test_resolve_cancel_stops_the_lookup(dead_dns):
    with Manager(dns=dead_dns, dns_timeout_ms=300) as mgr:
        conn = mgr.connect("tcp://myhost.test:80", connection_class=Recorder)
        conn.resolve_cancel()
        end = time.monotonic() + 1.0
        pump(mgr, lambda: time.monotonic() > end, timeout=2)
        assert conn.events == []  # neither RESOLVE nor "DNS timeout"
        conn.close()
        pump(mgr, lambda: "close" in conn.kinds(), timeout=2)
        assert conn.kinds() == ["close"]


def test_resolve_redirects_a_cancelled_lookup(dns_server):
    """``resolve(url)`` on a client whose lookup was cancelled: it resolves the
    new name and connects there (MG_EV_RESOLVE, MG_EV_CONNECT)."""
    with Manager(dns=dns_server) as mgr:
        first = mgr.listen("tcp://127.0.0.1:0")
        second = mgr.listen("tcp://127.0.0.1:0", connection_class=Echo)
        conn = mgr.connect("tcp://myhost.test:%d" % first.local_addr[1], connection_class=Recorder)
        conn.resolve_cancel()
        conn.resolve("tcp://other.test:%d" % second.local_addr[1])
        pump(mgr, lambda: conn.data == b"hi via dns" or "close" in conn.kinds(), timeout=5)
        assert conn.kinds()[:2] == ["resolve", "connect"], conn.events
        assert conn.remote_addr == ("127.0.0.1", second.local_addr[1], False)
        assert conn.data == b"hi via dns"


def test_resolve_refuses_a_connection_that_has_a_socket(dns_server):
    """Mongoose's mg_resolve would replace the socket of a listener or a
    connected client (leaking it): the binding refuses."""
    with Manager(dns=dns_server) as mgr:
        listener = mgr.listen("tcp://127.0.0.1:0", connection_class=Echo)
        with pytest.raises(RuntimeError):
            listener.resolve("tcp://myhost.test:80")
        conn = mgr.connect("tcp://127.0.0.1:%d" % listener.local_addr[1], connection_class=Recorder)
        pump(mgr, lambda: conn.data == b"hi via dns", timeout=5)
        with pytest.raises(RuntimeError):
            conn.resolve("tcp://myhost.test:80")
        assert listener.is_listening  # untouched
        conn.send(b"!")
        pump(mgr, lambda: conn.data == b"hi via dns!", timeout=5)


def test_default_resolver_is_first_nameserver_of_resolv_conf():
    first = None
    with open("/etc/resolv.conf") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                first = parts[1]
                break
    with Manager() as mgr:
        url = FFI.string(mgr._mgr.dns4.url).decode()
    if first is None:
        assert url == "udp://8.8.8.8:53"  # Mongoose's own default
    elif ":" in first:
        assert url == "udp://[%s]:53" % first.split("%")[0]
    else:
        assert url == "udp://%s:53" % first


def test_dns_argument_and_timeout_are_used(dns_server):
    with Manager(dns=dns_server, dns_timeout_ms=1234) as mgr:
        assert FFI.string(mgr._mgr.dns4.url).decode() == dns_server
        assert mgr._mgr.dnstimeout == 1234
