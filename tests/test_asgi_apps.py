"""A Starlette app (and a FastAPI one where pydantic builds: not on PyPy 3.9)
under mongoose_py.asgi, checked with requests, httpx, websockets and curl."""
import asyncio
import contextlib
import platform
import socket
import time

import httpx
import pytest
import requests
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from conftest import wait_for
from web_helpers import asgi_server, curl, raw_request

EVENTS = []      # what the app saw: lifespan, background tasks, stream ends, close codes
FILE_DATA = bytes(range(256)) * 40
SSE_SENT = [0]   # events the SSE endpoint produced


@contextlib.asynccontextmanager
async def lifespan(app):
    EVENTS.append("startup")
    yield {"greeting": "hello from lifespan"}
    EVENTS.append("shutdown")


async def echo_json(request):
    data = await request.json()
    return JSONResponse({"got": data, "greeting": request.state.greeting})


async def form(request):
    f = await request.form()
    out = {}
    for k, v in f.multi_items():
        out[k] = (v.filename, (await v.read()).decode()) if hasattr(v, "filename") else v
    return JSONResponse(out)


async def cookies(request):
    r = PlainTextResponse("seen=%s" % request.cookies.get("who", ""))
    r.set_cookie("who", "mongoose", httponly=True)
    return r


async def file(request):
    return FileResponse(request.app.state.file_path, media_type="application/octet-stream")


async def declared(request):
    async def parts():
        for i in range(4):
            yield b"%d" % i * 5
    return StreamingResponse(parts(), headers={"Content-Length": "20"})


async def chunks(request):
    async def parts():
        for i in range(3):
            yield b"part%d;" % i
    return StreamingResponse(parts(), media_type="text/plain")


async def sse(request):
    async def events():
        try:
            for i in range(100000):
                SSE_SENT[0] = i
                yield "data: %d\n\n" % i
                await asyncio.sleep(0.02)
        finally:
            EVENTS.append("sse stopped")
    return StreamingResponse(events(), media_type="text/event-stream")


async def background(request):
    def later(tag):
        EVENTS.append("background " + tag)
    return PlainTextResponse("queued", background=BackgroundTask(later, request.query_params["tag"]))


async def slow(request):
    await asyncio.sleep(1.0)
    return PlainTextResponse("slow")


async def fast(request):
    return PlainTextResponse("fast " + request.url.path + " " + request.scope["root_path"])


async def ws_echo(websocket):
    if websocket.query_params.get("deny") == "403":
        await websocket.close()
        return
    if websocket.query_params.get("deny") == "custom":
        await websocket.send_denial_response(PlainTextResponse("go away", status_code=401))
        return
    offered = websocket.scope["subprotocols"]
    await websocket.accept(subprotocol=offered[-1] if offered else None)
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(text.upper())
    except Exception:
        pass
    EVENTS.append("ws closed %s" % websocket.client_state.name)


async def ws_code(websocket):
    await websocket.accept()
    msg = await websocket.receive()
    EVENTS.append("ws code %s" % msg.get("code"))


def make_app(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(FILE_DATA)
    app = Starlette(routes=[
        Route("/json", echo_json, methods=["POST"]), Route("/form", form, methods=["POST"]),
        Route("/cookies", cookies), Route("/file", file, methods=["GET", "HEAD"]),
        Route("/declared", declared), Route("/chunks", chunks), Route("/sse", sse),
        Route("/background", background), Route("/slow", slow), Route("/fast", fast),
        WebSocketRoute("/ws", ws_echo), WebSocketRoute("/ws-code", ws_code),
    ], lifespan=lifespan)
    app.state.file_path = str(path)
    return app


@pytest.fixture
def app_port(tmp_path):
    EVENTS.clear()
    with asgi_server(make_app(tmp_path)) as port:
        yield port
    assert "shutdown" in EVENTS


def test_json_form_multipart_cookies(app_port):
    base = "http://127.0.0.1:%d" % app_port
    r = requests.post(base + "/json", json={"a": [1, 2]}, timeout=10)
    assert r.json() == {"got": {"a": [1, 2]}, "greeting": "hello from lifespan"}
    r = requests.post(base + "/form", data={"x": "1", "y": "zz"}, timeout=10)
    assert r.json() == {"x": "1", "y": "zz"}
    r = requests.post(base + "/form", data={"x": "1"}, files={"up": ("a.txt", b"file body")}, timeout=10)
    assert r.json() == {"x": "1", "up": ["a.txt", "file body"]}
    s = requests.Session()
    assert s.get(base + "/cookies", timeout=10).text == "seen="
    assert s.get(base + "/cookies", timeout=10).text == "seen=mongoose"
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.post("/json", json=[1]).json()["got"] == [1]


def test_file_range_and_head_keep_content_length(app_port):
    base = "http://127.0.0.1:%d" % app_port
    r = requests.get(base + "/file", timeout=10)
    assert r.content == FILE_DATA and r.headers["Content-Length"] == str(len(FILE_DATA))
    r = requests.get(base + "/file", headers={"Range": "bytes=10-19"}, timeout=10)
    assert r.status_code == 206 and r.content == FILE_DATA[10:20]
    assert r.headers["Content-Range"] == "bytes 10-19/%d" % len(FILE_DATA)
    code, out, err = curl("-I", base + "/file")
    assert code == 0, err
    assert b"content-length: %d" % len(FILE_DATA) in out.lower()


def test_declared_length_kept_and_http10_never_chunked(app_port):
    r = requests.get("http://127.0.0.1:%d/declared" % app_port, timeout=10)
    assert r.headers["Content-Length"] == "20" and "Transfer-Encoding" not in r.headers
    assert r.content == b"00000111112222233333"
    r = requests.get("http://127.0.0.1:%d/chunks" % app_port, timeout=10)
    assert r.headers["Transfer-Encoding"] == "chunked" and r.content == b"part0;part1;part2;"
    raw = raw_request(app_port, b"GET /chunks HTTP/1.0\r\nHost: x\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"chunked" not in head.lower() and body == b"part0;part1;part2;"  # close-delimited
    code, out, err = curl("--http1.0", "-i", "http://127.0.0.1:%d/chunks" % app_port)
    assert code == 0 and out.endswith(b"part0;part1;part2;") and b"chunked" not in out.lower()


def test_sse_stream_stops_when_the_client_leaves(app_port):
    with requests.get("http://127.0.0.1:%d/sse" % app_port, stream=True, timeout=10) as r:
        lines = r.iter_lines()
        got = [next(lines) for _ in range(3)]
    assert got[0] == b"data: 0"
    # Starlette stops iterating (its generator's finally runs when collected:
    # at once on CPython, at a later GC on PyPy). The count must stop growing.
    def stopped():
        before = SSE_SENT[0]
        time.sleep(0.2)
        return SSE_SENT[0] == before
    assert wait_for(stopped, 10), "the app's stream kept running"
    assert SSE_SENT[0] < 100


def test_background_task_lifespan_and_slow_beside_fast(app_port):
    base = "http://127.0.0.1:%d" % app_port
    assert requests.get(base + "/background?tag=t1", timeout=10).text == "queued"
    assert wait_for(lambda: "background t1" in EVENTS, 10)

    async def both():
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            order = []

            async def get(path):
                r = await client.get(path)
                order.append(r.text)

            await asyncio.gather(get("/slow"), get("/fast"), get("/fast"))
            return order

    order = asyncio.run(both())
    assert order[:2] == ["fast /fast ", "fast /fast "] and order[2] == "slow"
    assert EVENTS[0] == "startup"


def test_websocket_accept_subprotocol_deny_and_close_code(app_port):
    url = "ws://127.0.0.1:%d" % app_port
    with ws_connect(url + "/ws", subprotocols=["a", "b"], open_timeout=10) as ws:
        assert ws.subprotocol == "b"
        ws.send("hi")
        assert ws.recv(timeout=10) == "HI"
    with pytest.raises(InvalidStatus) as denied:
        ws_connect(url + "/ws?deny=403", open_timeout=10)
    assert denied.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as custom:
        ws_connect(url + "/ws?deny=custom", open_timeout=10)
    assert custom.value.response.status_code == 401 and custom.value.response.body == b"go away"
    with ws_connect(url + "/ws-code", open_timeout=10) as ws:
        ws.close(code=4002, reason="bye")
    assert wait_for(lambda: "ws code 4002" in EVENTS, 10), EVENTS


def test_send_after_disconnect_raises_oserror_and_receive_says_disconnect():
    seen = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        seen.append((await receive())["type"])   # the body
        seen.append((await receive())["type"])   # waits: the client leaves
        try:
            for _ in range(1000):
                await send({"type": "http.response.body", "body": b"x", "more_body": True})
                await asyncio.sleep(0.01)
        except OSError:
            seen.append("OSError")

    with asgi_server(app) as port:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"first" in s.recv(4096)
        s.close()
        assert wait_for(lambda: len(seen) == 3, 10), seen
    assert seen == ["http.request", "http.disconnect", "OSError"]


def test_root_path(tmp_path):
    with asgi_server(make_app(tmp_path), root_path="/api") as port:
        r = requests.get("http://127.0.0.1:%d/fast" % port, timeout=10)
        assert r.text == "fast /api/fast /api"


@pytest.mark.skipif(platform.python_implementation() == "PyPy",
                    reason="FastAPI needs pydantic-core, which has no PyPy 3.9 build (tests/requirements.txt)")
def test_fastapi_models_and_dependencies():
    from fastapi import Depends, FastAPI
    from pydantic import BaseModel

    class Item(BaseModel):
        name: str
        price: float

    app = FastAPI()

    def token(x_token: str = "none"):
        return x_token

    @app.post("/items")
    async def create(item: Item, tok: str = Depends(token)):
        return {"name": item.name, "double": item.price * 2, "tok": tok}

    with asgi_server(app) as port:
        r = requests.post("http://127.0.0.1:%d/items?x_token=t" % port, json={"name": "a", "price": 2.5}, timeout=10)
        assert r.json() == {"name": "a", "double": 5.0, "tok": "t"}
        r = requests.post("http://127.0.0.1:%d/items" % port, json={"name": "a"}, timeout=10)
        assert r.status_code == 422
        r = requests.get("http://127.0.0.1:%d/openapi.json" % port, timeout=10)
        assert r.json()["paths"]["/items"]["post"]
