"""TLS with the built-in TLS 1.3 against real peers: Python ssl + http.client,
curl, openssl s_client, and our own client. Certificates come from certs.py."""
import http.client
import os
import socket
import ssl
import subprocess
import time

import pytest

from certs import make_pki, retry_bad_signature, run_tls_tool
from conftest import pump, require_tool
from mongoose_py import (MG_EV_ACCEPT, MG_EV_CLOSE, MG_EV_CONNECT, MG_EV_ERROR, MG_EV_HTTP_MSG,
                         MG_EV_TLS_HS, Connection, Manager, TlsOpts)


@pytest.fixture(scope="module")
def pki():
    return make_pki()


def hello(conn, ev, data):
    if ev == MG_EV_HTTP_MSG:
        conn.reply(200, b"hello tls\x00" + data.uri.encode(), {"Content-Type": "application/octet-stream"})


def client_ctx(pki, ca=None):
    ctx = ssl.create_default_context(cafile=ca or pki.path("ca"))
    return ctx


def https_get(port, ctx, path="/x", host="127.0.0.1"):
    def once():
        c = http.client.HTTPSConnection(host, port, context=ctx, timeout=10)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read(), c.sock.version()
        finally:
            c.close()
    return retry_bad_signature(once)


# ---- TlsOpts ----

def test_tlsopts_accepts_str_bytes_and_paths(pki):
    a = TlsOpts(cert=pki.server, key=pki.server_key)
    b = TlsOpts(cert=pki.server.encode(), key=pki.server_key.encode())
    c = TlsOpts(cert=pki.path("server"), key=pki.path("server_key").encode())
    assert a.cert == b.cert == c.cert and a.key == b.key == c.key
    assert TlsOpts(ca=pki.ca, name="localhost").name == b"localhost"
    assert TlsOpts().ca == b""
    assert "BEGIN" not in repr(a)  # the key never shows up in a repr


@pytest.mark.parametrize("field,value,match", [
    ("key", "p384_key", "P-384"),
    ("key", "ed25519_key", "Ed25519"),
    ("key", "rsa_server_key", "RSA private keys do not work"),
])
def test_tlsopts_rejects_unusable_keys_before_connecting(pki, field, value, match):
    with pytest.raises(ValueError, match=match):
        TlsOpts(cert=pki.server, key=getattr(pki, value))


def test_tlsopts_rejects_bad_input(pki):
    with pytest.raises(ValueError, match="without key"):
        TlsOpts(cert=pki.server)
    with pytest.raises(ValueError, match="neither PEM"):
        TlsOpts(ca="/no/such/file.pem")
    with pytest.raises(TypeError):
        TlsOpts(ca=42)
    with pytest.raises(ValueError, match="no CERTIFICATE"):
        TlsOpts(ca=pki.server_key)
    with pytest.raises(ValueError):
        TlsOpts(name="a\0b")
    enc = subprocess.run(["openssl", "pkcs8", "-topk8", "-passout", "pass:x", "-in", pki.path("server_key")],
                         stdout=subprocess.PIPE, check=True, timeout=30).stdout
    with pytest.raises(ValueError, match="encrypted"):
        TlsOpts(cert=pki.server, key=enc)


def test_tls_init_none_raises_typeerror(manager):
    lst = manager.listen("tcp://127.0.0.1:0")
    with pytest.raises(TypeError):
        lst.tls_init(None)
    with pytest.raises(TypeError):
        lst.tls_init({"cert": "x"})


# ---- servers against real clients ----

def test_https_python_ssl_http_client(serve, pki):
    mgr, lst, port = serve(hello, url="https://127.0.0.1:0", tls=TlsOpts(cert=pki.server, key=pki.server_key))
    status, body, version = https_get(port, client_ctx(pki), "/a")
    assert (status, body, version) == (200, b"hello tls\x00/a", "TLSv1.3")
    # keep going: a second connection works too
    assert https_get(port, client_ctx(pki), "/b")[1] == b"hello tls\x00/b"


def test_https_curl_cacert(serve, pki):
    curl = require_tool("curl")
    mgr, lst, port = serve(hello, url="https://127.0.0.1:0", tls=TlsOpts(cert=pki.server, key=pki.server_key))
    r = run_tls_tool([curl, "-sS", "--cacert", pki.path("ca"), "https://localhost:%d/curl" % port,
                      "--resolve", "localhost:%d:127.0.0.1" % port, "-o", "-", "--max-time", "10"], timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello tls\x00/curl"
    # wrong CA: curl refuses
    r = run_tls_tool([curl, "-sS", "--cacert", pki.path("other_ca"), "https://127.0.0.1:%d/" % port,
                      "--max-time", "10"], timeout=20)
    assert r.returncode == 60, r.stderr  # CURLE_PEER_FAILED_VERIFICATION


def test_openssl_s_client_handshake(serve, pki):
    openssl = require_tool("openssl")
    mgr, lst, port = serve(hello, url="https://127.0.0.1:0", tls=TlsOpts(cert=pki.server, key=pki.server_key))
    r = run_tls_tool([openssl, "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", pki.path("ca"),
                      "-verify_return_error", "-servername", "localhost", "-ign_eof"],
                     input=b"GET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=20)
    out = r.stdout.decode("latin-1")
    assert "Verify return code: 0 (ok)" in out, out[-2000:]
    assert "TLSv1.3" in out
    assert "TLS_CHACHA20_POLY1305_SHA256" in out  # the one cipher suite of the built-in TLS
    assert "hello tls\x00/s" in out


def test_tls12_only_client_is_refused(serve, pki):
    mgr, lst, port = serve(hello, url="https://127.0.0.1:0", tls=TlsOpts(cert=pki.server, key=pki.server_key))
    ctx = client_ctx(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(port, ctx)
    assert https_get(port, client_ctx(pki))[0] == 200  # the server is fine afterwards


def test_python_client_wrong_ca_or_name_fails(serve, pki):
    mgr, lst, port = serve(hello, url="https://127.0.0.1:0",
                           tls=TlsOpts(cert=pki.wrong_name, key=pki.wrong_name_key))
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        https_get(port, client_ctx(pki))
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(port, client_ctx(pki, pki.path("other_ca")))


def test_manual_tls_init_in_accept_still_works(serve, pki):
    opts = TlsOpts(cert=pki.server, key=pki.server_key)

    def handler(conn, ev, data):
        if ev == MG_EV_ACCEPT:
            conn.tls_init(opts)
        hello(conn, ev, data)

    mgr, lst, port = serve(handler, url="https://127.0.0.1:0")
    assert https_get(port, client_ctx(pki), "/m")[1] == b"hello tls\x00/m"


def test_tls_url_without_tls_is_closed_never_plaintext(serve):
    errors = []

    def handler(conn, ev, data):
        if ev == MG_EV_ERROR:
            errors.append(data)
        hello(conn, ev, data)

    mgr, lst, port = serve(handler, url="https://127.0.0.1:0")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        assert data == b""  # closed (FIN or RST), no plaintext answer
    assert any("TLS not initialised" in e for e in errors), errors


def test_tls_garbage_closes_cleanly(serve, pki):
    mgr, lst, port = serve(hello, url="https://127.0.0.1:0", tls=TlsOpts(cert=pki.server, key=pki.server_key))
    for junk in (b"\x16\x03\x01\x00\x05hello", b"GET / HTTP/1.1\r\n\r\n", os.urandom(3000),
                 b"\x16\x03\x03\xff\xff" + b"A" * 100, b"\x17\x03\x03\x00\x10" + b"\0" * 16):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    if not s.recv(4096):
                        break
                except ConnectionResetError:
                    break
            else:
                pytest.fail("server did not close after TLS garbage %r" % junk[:10])
    assert https_get(port, client_ctx(pki))[0] == 200


# ---- our client (one Manager, pumped on this thread) ----

def _our_client(mgr, port, opts, host="127.0.0.1"):
    got = {"errors": []}

    def client(conn, ev, data):
        if ev == MG_EV_CONNECT:
            conn.send(b"GET /ours HTTP/1.1\r\nHost: localhost\r\n\r\n")
        elif ev == MG_EV_TLS_HS:
            got["hs"] = True
        elif ev == MG_EV_HTTP_MSG:
            got["body"] = data.body_bytes
            conn.close()
        elif ev == MG_EV_ERROR:
            got["errors"].append(data)
        elif ev == MG_EV_CLOSE:
            got["closed"] = True

    mgr.connect("https://%s:%d" % (host, port), client, tls=opts)
    assert pump(mgr, lambda: "closed" in got, 10)
    return got


@pytest.fixture
def tls_server(pki):
    made = []

    def start(cert="server"):
        mgr = Manager()
        lst = mgr.listen("https://127.0.0.1:0", hello, tls=TlsOpts(cert=getattr(pki, cert),
                                                                    key=getattr(pki, cert + "_key")))
        made.append(mgr)
        return mgr, lst.local_addr[1]

    yield start
    for m in made:
        m.close()


def test_our_client_verifies(tls_server, pki):
    mgr, port = tls_server()
    got = _our_client(mgr, port, TlsOpts(ca=pki.ca, name="localhost"))
    assert got.get("hs") and got.get("body") == b"hello tls\x00/ours", got


def test_our_client_verifies_an_rsa_server(pki):
    """RSA signatures verify fine (only RSA signing is broken): a Python ssl
    server with an RSA certificate, our client with the test CA."""
    import threading
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.path("rsa_server"), pki.path("rsa_server_key"))
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(10)

    def serve_one():
        try:
            conn, _ = srv.accept()
            with ctx.wrap_socket(conn, server_side=True) as s:
                s.settimeout(10)
                buf = b""
                while b"\r\n\r\n" not in buf:
                    buf += s.recv(4096)
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nrsa")
                s.recv(10)
        except (OSError, ssl.SSLError):
            pass

    t = threading.Thread(target=serve_one, daemon=True)
    t.start()
    try:
        with Manager() as mgr:
            got = _our_client(mgr, srv.getsockname()[1], TlsOpts(ca=pki.ca, name="localhost"))
        assert got.get("body") == b"rsa", got
    finally:
        t.join(10)
        srv.close()


@pytest.mark.parametrize("case,expect", [
    ("wrong_ca", "failed to verify CA"),
    ("wrong_name", "failed to verify hostname"),
    ("expired", "cert is no longer valid"),
])
def test_our_client_verification_failures(tls_server, pki, case, expect):
    if case == "wrong_ca":
        mgr, port = tls_server()
        opts = TlsOpts(ca=pki.other_ca, name="localhost")
    elif case == "wrong_name":
        # Mongoose accepts any name when an IP SAN matches the peer's address,
        # so the wrong-name certificate has no IP SAN (only example.invalid)
        mgr, port = tls_server("wrong_name")
        opts = TlsOpts(ca=pki.ca, name="localhost")
    else:
        mgr, port = tls_server("expired")
        opts = TlsOpts(ca=pki.ca, name="localhost")
    got = _our_client(mgr, port, opts)
    assert "body" not in got and not got.get("hs")
    assert any(e.startswith("TLS handshake failed: ") and expect in e for e in got["errors"]), got["errors"]


def test_our_client_tls_url_without_tls_is_refused(tls_server):
    mgr, port = tls_server()
    got = _our_client(mgr, port, None)
    assert "body" not in got
    assert any("TLS not initialised" in e for e in got["errors"]), got["errors"]


def test_mutual_tls(pki):
    """Server with ca= asks for a client certificate (two-way TLS)."""
    seen = {}
    with Manager() as mgr:
        lst = mgr.listen("https://127.0.0.1:0", hello,
                         tls=TlsOpts(ca=pki.ca, cert=pki.server, key=pki.server_key))
        port = lst.local_addr[1]
        got = _our_client(mgr, port, TlsOpts(ca=pki.ca, cert=pki.client, key=pki.client_key, name="localhost"))
        seen.update(got)
    assert seen.get("body") == b"hello tls\x00/ours", seen


class _Hs(Connection):
    hs = 0

    def on_tls_hs(self):
        type(self).hs += 1

    def on_http_msg(self, msg):
        self.reply(200, "hook")


def test_on_tls_hs_hook_on_the_server(serve, pki):
    """Mongoose's built-in TLS fires MG_EV_TLS_HS on clients only; the shim
    synthesises it for accepted connections (before their first data event)."""
    mgr, lst, port = serve(url="https://127.0.0.1:0", connection_class=_Hs,
                           tls=TlsOpts(cert=pki.server, key=pki.server_key))
    assert https_get(port, client_ctx(pki))[1] == b"hook"
    assert _Hs.hs >= 1
