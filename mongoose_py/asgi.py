"""ASGI 3.0 on mongoose_py: HTTP, WebSocket and lifespan.

>>> from mongoose_py.asgi import serve
>>> serve(app, "http://127.0.0.1:8000")        # doctest: +SKIP

The Manager runs in its own poll thread; events go to the asyncio loop with
``call_soon_threadsafe``; the app's ``send`` calls the thread-safe Connection
methods from an executor thread (they are marshalled to the poll thread), so
the asyncio loop never blocks on the network loop. A WebSocket request is
upgraded when it arrives (the app cannot refuse it; ``websocket.accept`` is
then a no-op), as in the binding we replace.
"""
from __future__ import annotations

import asyncio
import signal
import threading
import traceback
from typing import Any, Callable, Dict, Optional
from urllib.parse import unquote

from ._connection import Connection
from ._ffi import lib
from ._manager import Manager


class _AsgiConnection(Connection):
    server: "ASGIServer" = None  # set on the per-server subclass

    def on_http_msg(self, msg) -> None:
        self.server._on_request(self, msg)

    def on_ws_msg(self, msg) -> None:
        data = msg.data
        if msg.opcode == lib.WEBSOCKET_OP_BINARY:
            event = {"type": "websocket.receive", "bytes": data}
        else:
            event = {"type": "websocket.receive", "text": data.decode("utf-8", "replace")}
        self.server._push(self, event)

    def on_close(self) -> None:
        self.server._on_close(self)


class ASGIServer:
    def __init__(self, app: Callable, error_handler: Optional[Callable] = None) -> None:
        self.app = app
        self._error_handler = error_handler
        self._mgr: Optional[Manager] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._queues: Dict[int, asyncio.Queue] = {}  # conn id -> app's receive queue (asyncio thread only)
        self._tasks: set = set()
        self._lifespan_queue: Optional[asyncio.Queue] = None
        self._lifespan_task = None
        self._conn_class = type("AsgiConnection", (_AsgiConnection,), {"server": self})
        self._server = ("127.0.0.1", 0)

    @property
    def manager(self) -> Manager:
        return self._mgr

    # ---- lifecycle (asyncio side) ----

    async def start(self, url: str = "http://127.0.0.1:8000") -> Connection:
        self._loop = asyncio.get_running_loop()
        await self._lifespan("startup")
        self._mgr = Manager(error_handler=self._error_handler)
        listener = self._mgr.listen(url, connection_class=self._conn_class)
        host, port, _ = listener.local_addr
        self._server = (host, port)
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="mongoose_py-asgi", daemon=True)
        self._thread.start()
        return listener

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._mgr.poll(100)

    async def stop(self) -> None:
        self._stop.set()
        if self._mgr is not None:
            self._mgr.stop()
        if self._thread is not None:
            await self._loop.run_in_executor(None, self._thread.join, 5)
        for task in list(self._tasks):
            task.cancel()
        if self._mgr is not None and not (self._thread and self._thread.is_alive()):
            self._mgr.close()
        await self._lifespan("shutdown")

    async def _lifespan(self, phase: str) -> None:
        if phase == "startup":
            self._lifespan_queue = asyncio.Queue()
            scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
            done: Dict[str, Any] = {}
            answered = asyncio.Event()

            async def send(message):
                done[message["type"]] = message
                answered.set()

            async def run():
                try:
                    await self.app(scope, self._lifespan_queue.get, send)
                except Exception:  # an app without lifespan support
                    pass
                finally:
                    answered.set()

            self._lifespan_task = asyncio.ensure_future(run())
            self._lifespan_done = done
            self._lifespan_answered = answered
        if self._lifespan_task.done():
            return  # the app does not speak lifespan (or is gone): nothing to wait for
        await self._lifespan_queue.put({"type": "lifespan.%s" % phase})
        try:
            await asyncio.wait_for(self._lifespan_answered.wait(), 5)
        except asyncio.TimeoutError:
            return
        self._lifespan_answered.clear()
        failed = self._lifespan_done.get("lifespan.startup.failed")
        if phase == "startup" and failed is not None:
            raise RuntimeError("ASGI lifespan startup failed: %s" % failed.get("message", ""))

    # ---- poll thread → asyncio ----

    # Events go through call_soon_threadsafe, which keeps their order: the
    # request's _begin (which makes the queue) always runs before them.

    def _push(self, conn: Connection, event: dict) -> None:
        self._loop.call_soon_threadsafe(self._put, conn.id, event)

    def _put(self, cid: int, event: dict) -> None:
        q = self._queues.get(cid)
        if q is not None:
            q.put_nowait(event)

    def _on_close(self, conn: Connection) -> None:
        kind = "websocket.disconnect" if conn.userdata == "ws" else "http.disconnect"
        event = {"type": kind, "code": 1000} if kind == "websocket.disconnect" else {"type": kind}
        self._loop.call_soon_threadsafe(self._closed, conn.id, event)

    def _closed(self, cid: int, event: dict) -> None:
        q = self._queues.pop(cid, None)
        if q is not None:
            q.put_nowait(event)

    def _on_request(self, conn: Connection, msg) -> None:
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1", "replace")) for k, v in msg.headers()]
        is_ws = (msg.header("Upgrade") or "").lower() == "websocket"
        scope = {
            "type": "websocket" if is_ws else "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": msg.proto.partition("/")[2] or "1.1",
            "method": msg.method,
            "scheme": ("wss" if conn.is_tls else "ws") if is_ws else ("https" if conn.is_tls else "http"),
            "path": unquote(msg.uri),
            "raw_path": msg.uri.encode("latin-1"),
            "query_string": msg.query.encode("latin-1"),
            "root_path": "",
            "headers": headers,
            "server": self._server,
            "client": (conn.remote_addr or ("", 0, False))[:2],
        }
        body = msg.body_bytes
        if is_ws:
            conn.userdata = "ws"
            conn.ws_upgrade(msg)
        self._loop.call_soon_threadsafe(self._begin, conn, scope, body, is_ws)

    # ---- asyncio side ----

    def _begin(self, conn: Connection, scope: dict, body: bytes, is_ws: bool) -> None:
        q: asyncio.Queue = asyncio.Queue()
        self._queues[conn.id] = q
        if is_ws:
            q.put_nowait({"type": "websocket.connect"})
        else:
            q.put_nowait({"type": "http.request", "body": body, "more_body": False})
        task = asyncio.ensure_future(self._run_app(conn, scope, q, is_ws))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_app(self, conn: Connection, scope: dict, q: asyncio.Queue, is_ws: bool) -> None:
        loop = self._loop
        state: Dict[str, Any] = {"started": False, "done": False}

        async def call(fn, *args):
            return await loop.run_in_executor(None, lambda: fn(*args))

        async def send(message: dict) -> None:
            kind = message["type"]
            try:
                if kind == "http.response.start":
                    state["started"] = True
                    state["status"] = message["status"]
                    state["headers"] = message.get("headers", [])
                elif kind == "http.response.body":
                    await self._send_body(conn, state, message, call)
                elif kind == "websocket.accept":
                    pass  # already upgraded
                elif kind == "websocket.send":
                    if message.get("bytes") is not None:
                        await call(conn.ws_send, message["bytes"], lib.WEBSOCKET_OP_BINARY)
                    else:
                        await call(conn.ws_send, message.get("text", ""), lib.WEBSOCKET_OP_TEXT)
                elif kind == "websocket.close":
                    await call(conn.ws_close, message.get("code", 1000), message.get("reason", "") or "")
            except RuntimeError:
                pass  # the connection closed under us: the app sees a disconnect next

        try:
            await self.app(scope, q.get, send)
            if not is_ws and not state["done"]:
                raise RuntimeError("ASGI app returned without completing the response")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._error_handler is not None:
                self._error_handler(exc)
            else:
                traceback.print_exc()
            if not is_ws and not state["started"]:
                try:
                    await call(conn.reply, 500, "Internal Server Error\n")
                except RuntimeError:
                    pass

    async def _send_body(self, conn, state, message, call) -> None:
        data = message.get("body", b"")
        more = message.get("more_body", False)
        raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in state.get("headers", [])]
        if not state.get("streaming") and not more:
            # One complete response: exact Content-Length; duplicate headers kept.
            lines = "".join("%s: %s\r\n" % (k, v) for k, v in raw if k.lower() != "content-length")
            await call(self._reply_raw, conn, state["status"], lines, data)
            state["done"] = True
            return
        if not state.get("streaming"):
            state["streaming"] = True
            lines = "".join("%s: %s\r\n" % (k, v) for k, v in raw
                            if k.lower() not in ("content-length", "transfer-encoding"))
            await call(self._reply_raw, conn, state["status"], lines + "Transfer-Encoding: chunked\r\n", None)
        while await call(lambda: conn.send_len) > (1 << 20):  # backpressure
            await asyncio.sleep(0.005)
        if data:
            await call(conn.http_chunk, data)
        if not more:
            await call(conn.http_chunk, b"")
            state["done"] = True

    @staticmethod
    def _reply_raw(conn: Connection, status: int, header_lines: str, body: Optional[bytes]) -> None:
        """Status + the app's header lines (duplicates kept) + body; ``body=None``
        starts a chunked response. Runs the C calls on the loop thread."""
        if "\0" in header_lines:
            raise ValueError("NUL in response headers")
        hdr = header_lines.encode("latin-1")

        def on_loop():
            c = conn._require()
            if body is None:
                lib.mgpy_http_reply(c, int(status), hdr, b"", 0, 1)
            else:
                lib.mgpy_http_reply(c, int(status), hdr, body, len(body), 0)

        conn._mgr._call(on_loop)


def serve(app: Callable, url: str = "http://127.0.0.1:8000") -> None:
    """Run ``app`` until SIGINT/SIGTERM."""

    async def main():
        server = ASGIServer(app)
        listener = await server.start(url)
        print("mongoose_py ASGI server on %s (port %d)" % (url, listener.local_addr[1]), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    asyncio.run(main())
