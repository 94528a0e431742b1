"""mongoose_py.asgi with real clients: http.client and websocket-client."""
import asyncio
import http.client

import websocket

from mongoose_py.asgi import ASGIServer


def run_with_server(app, client):
    """Start ``app`` on an ephemeral port, run ``client(port)`` in a thread, stop."""
    async def main():
        server = ASGIServer(app)
        listener = await server.start("http://127.0.0.1:0")
        port = listener.local_addr[1]
        try:
            return await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, client, port), 30)
        finally:
            await server.stop()

    return asyncio.run(main())


def get(port, path, method="GET", body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body)
    r = c.getresponse()
    return r.status, r.headers, r.read()


def test_http_scope_body_duplicate_headers_and_500():
    events = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                events.append(msg["type"])
                await send({"type": msg["type"] + ".complete"})
                if msg["type"] == "lifespan.shutdown":
                    return
        if scope["path"] == "/boom":
            raise RuntimeError("boom")
        req = await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"x-d", b"1"), (b"x-d", b"2")]})
        await send({"type": "http.response.body",
                    "body": b"%s %s %s %s" % (scope["method"].encode(), scope["path"].encode(),
                                              scope["query_string"], req["body"])})

    def client(port):
        return get(port, "/a%20b?q=1", "POST", b"data"), get(port, "/boom")

    (status, headers, body), (status500, _, _) = run_with_server(app, client)
    assert (status, body) == (200, b"POST /a b q=1 data")
    assert headers.get_all("x-d") == ["1", "2"]
    assert status500 == 500
    assert events == ["lifespan.startup", "lifespan.shutdown"]


def test_streaming_response_is_chunked():
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(5):
            await send({"type": "http.response.body", "body": b"part%d;" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    status, headers, body = run_with_server(app, lambda port: get(port, "/s"))
    assert headers["Transfer-Encoding"] == "chunked"
    assert body == b"part0;part1;part2;part3;part4;"


def test_websocket_echo_and_close_code():
    async def app(scope, receive, send):
        if scope["type"] != "websocket":
            return
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                return
            if msg.get("text") == "bye":
                await send({"type": "websocket.close", "code": 4001, "reason": "done"})
                return
            if msg.get("bytes") is not None:
                await send({"type": "websocket.send", "bytes": msg["bytes"][::-1]})
            else:
                await send({"type": "websocket.send", "text": msg["text"].upper()})

    def client(port):
        ws = websocket.create_connection("ws://127.0.0.1:%d/ws" % port, timeout=10)
        ws.send("hello")
        text = ws.recv()
        ws.send_binary(b"\x00\x01\x02")
        binary = ws.recv()
        ws.send("bye")
        op, frame = ws.recv_data(control_frame=True)
        ws.close()
        return text, binary, op, frame

    text, binary, op, frame = run_with_server(app, client)
    assert text == "HELLO"
    assert binary == b"\x02\x01\x00"
    assert op == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(frame[:2], "big") == 4001 and frame[2:] == b"done"


def test_pipelined_requests_and_http10_keepalive():
    import socket

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await receive()
        await asyncio.sleep(0.01 * (hash(scope["path"]) % 3))  # answers finish out of order
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    def client(port):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(6)))
        buf = b""
        while buf.count(b"HTTP/1.1 200") < 6 or not buf.endswith(b"/5"):
            chunk = s.recv(65536)
            assert chunk, "server closed early"
            buf += chunk
        # HTTP/1.0 with keep-alive: an exact length, the connection stays open
        s.sendall(b"GET /ten HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        ten = b""
        while not ten.endswith(b"/ten"):
            chunk = s.recv(65536)
            assert chunk, "server closed early"
            ten += chunk
        s.sendall(b"GET /again HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        last = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            last += chunk
        s.close()
        return buf, ten, last

    buf, ten, last = run_with_server(app, client)
    assert [part.rsplit(b"\r\n\r\n", 1)[1] for part in buf.split(b"HTTP/1.1 200")[1:]] == \
        [b"/%d" % i for i in range(6)]
    assert b"Content-Length: 4" in ten and b"chunked" not in ten
    assert last.endswith(b"/again") and b"Connection: close" in last


def test_header_injection_is_refused_with_500():
    errors = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-evil", b"a\r\nSet-Cookie: stolen=1")]})
        await send({"type": "http.response.body", "body": b"never"})

    async def main():
        server = ASGIServer(app, error_handler=errors.append)
        port = (await server.start("http://127.0.0.1:0")).local_addr[1]
        try:
            return await asyncio.get_running_loop().run_in_executor(None, get, port, "/")
        finally:
            await server.stop()

    status, headers, body = asyncio.run(main())
    assert status == 500 and "Set-Cookie" not in headers and body == b"Internal Server Error\n"
    assert isinstance(errors[0], ValueError)


def test_stop_closes_websockets_with_1001():
    async def app(scope, receive, send):
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async def main():
        server = ASGIServer(app)
        port = (await server.start("http://127.0.0.1:0")).local_addr[1]
        loop = asyncio.get_running_loop()
        ws = await loop.run_in_executor(None, lambda: websocket.create_connection(
            "ws://127.0.0.1:%d/" % port, timeout=10))
        await server.stop()
        op, frame = await loop.run_in_executor(None, lambda: ws.recv_data(control_frame=True))
        ws.close()
        return op, frame

    op, frame = asyncio.run(main())
    assert op == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(frame[:2], "big") == 1001


def test_app_oserror_is_reported_and_answered_500():
    errors = []

    async def app(scope, receive, send):
        if scope["type"] == "http":
            raise ConnectionRefusedError("the app's database is down")

    async def main():
        server = ASGIServer(app, error_handler=errors.append)
        port = (await server.start("http://127.0.0.1:0")).local_addr[1]
        try:
            return await asyncio.get_running_loop().run_in_executor(None, get, port, "/")
        finally:
            await server.stop()

    status, _, _ = asyncio.run(main())
    assert status == 500 and isinstance(errors[0], ConnectionRefusedError)
