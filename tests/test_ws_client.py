"""Our WebSocket client (Manager.ws_connect) against our server and against a
server of the ``websockets`` library, over ws:// and wss://."""
import os
import ssl
import threading

import pytest
from websockets.sync.server import serve as ws_serve

from certs import make_pki
from conftest import pump
from mongoose_py import (MG_EV_CLOSE, MG_EV_ERROR, MG_EV_HTTP_MSG, MG_EV_WS_CTL, MG_EV_WS_MSG, MG_EV_WS_OPEN,
                         WEBSOCKET_OP_BINARY, WEBSOCKET_OP_CLOSE, WEBSOCKET_OP_PING, WEBSOCKET_OP_PONG,
                         WEBSOCKET_OP_TEXT, Connection, Manager, TlsOpts)


@pytest.fixture(scope="module")
def pki():
    return make_pki()


class Client(Connection):
    """Records everything; the test drives it from the pumping thread."""

    def __init__(self):
        super().__init__()
        self.opened = None
        self.msgs = []
        self.ctl = []
        self.errors = []
        self.closed = False

    def on_ws_open(self, msg):
        self.opened = (msg.uri, msg.header("X-Server"), msg.header("Sec-WebSocket-Protocol"))

    def on_ws_msg(self, msg):
        self.msgs.append((msg.opcode, msg.data))

    def on_ws_ctl(self, msg):
        self.ctl.append((msg.opcode, msg.data, msg.close_code, msg.close_reason))

    def on_error(self, message):
        self.errors.append(message)

    def on_close(self):
        self.closed = True


def echo_handler(conn, ev, data):
    if ev == MG_EV_HTTP_MSG:
        conn.ws_upgrade(data, {"X-Server": "ours"})
    elif ev == MG_EV_WS_MSG:
        if data.text == "bye":
            conn.ws_close(4000, "server bye")
        else:
            conn.ws_send(data.data, data.opcode)


def _exchange(mgr, c):
    assert pump(mgr, lambda: c.opened is not None or c.closed, 10), "no WS_OPEN"
    assert c.opened is not None, c.errors
    big = os.urandom(1024 * 1024) + b"\x00"
    c.ws_send("hello")
    c.ws_send(b"\x00bin\x00", WEBSOCKET_OP_BINARY)
    c.ws_send(big, WEBSOCKET_OP_BINARY)
    c.ws_send(b"are you there", WEBSOCKET_OP_PING)
    assert pump(mgr, lambda: len(c.msgs) == 3 and c.ctl, 20), (c.msgs[:2], c.ctl, c.errors)
    assert c.msgs[0] == (WEBSOCKET_OP_TEXT, b"hello")
    assert c.msgs[1] == (WEBSOCKET_OP_BINARY, b"\x00bin\x00")
    assert c.msgs[2] == (WEBSOCKET_OP_BINARY, big)
    assert (WEBSOCKET_OP_PONG, b"are you there", None, "") in c.ctl


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_our_client_against_our_server(pki, scheme):
    with Manager() as mgr:
        tls = TlsOpts(cert=pki.server, key=pki.server_key) if scheme == "wss" else None
        lst = mgr.listen("%s://127.0.0.1:0" % scheme, echo_handler, tls=tls)
        port = lst.local_addr[1]
        ctls = TlsOpts(ca=pki.ca, name="localhost") if scheme == "wss" else None
        c = mgr.ws_connect("%s://127.0.0.1:%d/path?q=1" % (scheme, port), connection_class=Client,
                           headers={"Sec-WebSocket-Protocol": "chat"}, tls=ctls)
        _exchange(mgr, c)
        assert c.opened[1:] == ("ours", "chat")
        # server-initiated close: we answer, both sides close cleanly
        c.ws_send("bye")
        assert pump(mgr, lambda: c.closed, 10)
        assert (WEBSOCKET_OP_CLOSE, (4000).to_bytes(2, "big") + b"server bye", 4000, "server bye") in c.ctl
        assert not c.errors


def test_our_client_initiates_close(pki):
    server_ctl = []

    def handler(conn, ev, data):
        if ev == MG_EV_WS_CTL:
            server_ctl.append((data.opcode, data.close_code, data.close_reason))
        else:
            echo_handler(conn, ev, data)

    with Manager() as mgr:
        lst = mgr.listen("ws://127.0.0.1:0", handler)
        c = mgr.ws_connect("ws://127.0.0.1:%d/" % lst.local_addr[1], connection_class=Client)
        assert pump(mgr, lambda: c.opened is not None, 10)
        c.ws_close(4100, "client bye")
        assert pump(mgr, lambda: c.closed, 10)
        # the server got our CLOSE, echoed it; we got the echo as WS_CTL
        assert (WEBSOCKET_OP_CLOSE, 4100, "client bye") in server_ctl
        assert [x[2:] for x in c.ctl if x[0] == WEBSOCKET_OP_CLOSE] == [(4100, "client bye")]


class _WebsocketsServer:
    """A ``websockets`` (sync API) echo server in a thread."""

    def __init__(self, ssl_context=None):
        self.received_close = []

        def handler(ws):
            try:
                for message in ws:
                    if message == "close please":
                        ws.close(4321, "lib bye")
                        break
                    ws.send(message)
            finally:
                self.received_close.append((ws.close_code, ws.close_reason))

        self.server = ws_serve(handler, "127.0.0.1", 0, ssl=ssl_context, max_size=4 * 1024 * 1024,
                               compression=None)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_our_client_against_websockets_library(pki, scheme):
    ctx = None
    if scheme == "wss":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki.path("server"), pki.path("server_key"))
    srv = _WebsocketsServer(ctx)
    try:
        with Manager() as mgr:
            ctls = TlsOpts(ca=pki.ca, name="localhost") if scheme == "wss" else None
            c = mgr.ws_connect("%s://127.0.0.1:%d/" % (scheme, srv.port), connection_class=Client, tls=ctls)
            _exchange(mgr, c)
            # the library closes with 4321: we see it, answer, and close
            c.ws_send("close please")
            assert pump(mgr, lambda: c.closed, 10)
            assert (WEBSOCKET_OP_CLOSE, (4321).to_bytes(2, "big") + b"lib bye", 4321, "lib bye") in c.ctl
        # the library saw a proper closing handshake (its close code, not 1006)
        assert pump_wait(lambda: srv.received_close, 10)
        assert srv.received_close[0][0] == 4321
    finally:
        srv.stop()


def test_client_close_handshake_with_websockets_library():
    srv = _WebsocketsServer()
    try:
        with Manager() as mgr:
            c = mgr.ws_connect("ws://127.0.0.1:%d/" % srv.port, connection_class=Client)
            assert pump(mgr, lambda: c.opened is not None, 10)
            c.ws_close(4200, "we leave")
            assert pump(mgr, lambda: c.closed, 10)
        assert pump_wait(lambda: srv.received_close, 10)
        assert srv.received_close[0] == (4200, "we leave")
        assert [x[2] for x in c.ctl if x[0] == WEBSOCKET_OP_CLOSE] == [4200]
    finally:
        srv.stop()


def pump_wait(cond, timeout):
    from conftest import wait_for
    return wait_for(cond, timeout)


def test_wss_client_wrong_ca_fails(pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.path("server"), pki.path("server_key"))
    srv = _WebsocketsServer(ctx)
    try:
        with Manager() as mgr:
            c = mgr.ws_connect("wss://127.0.0.1:%d/" % srv.port, connection_class=Client,
                               tls=TlsOpts(ca=pki.other_ca, name="localhost"))
            assert pump(mgr, lambda: c.closed, 10)
            assert c.opened is None
            assert any("failed to verify CA" in e for e in c.errors), c.errors
    finally:
        srv.stop()


def test_ws_connect_handler_style():
    got = []

    def client(conn, ev, data):
        if ev == MG_EV_WS_OPEN:
            conn.ws_send("hi")
        elif ev == MG_EV_WS_MSG:
            got.append(data.text)
            conn.ws_close()
        elif ev == MG_EV_CLOSE:
            got.append("closed")
        elif ev == MG_EV_ERROR:
            got.append("error " + data)

    with Manager() as mgr:
        lst = mgr.listen("ws://127.0.0.1:0", echo_handler)
        mgr.ws_connect("ws://127.0.0.1:%d/" % lst.local_addr[1], client)
        assert pump(mgr, lambda: "closed" in got, 10)
    assert got == ["hi", "closed"]


def test_ws_connect_rejects_header_injection(manager):
    with pytest.raises(ValueError):
        manager.ws_connect("ws://127.0.0.1:9/", headers={"X": "a\r\nB: c"})
