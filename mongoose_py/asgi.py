"""ASGI 3.0 (spec 2.4) on mongoose_py: HTTP, WebSocket and lifespan.

>>> from mongoose_py.asgi import serve
>>> serve(app, "http://127.0.0.1:8000")        # doctest: +SKIP

or from a shell: ``python -m mongoose_py.asgi main:app --port 8000``.

The Manager is driven by the asyncio loop itself (``_native.py``: Mongoose's
epoll fd watched with ``add_reader``): no poll thread, no executor. Each
request runs the app in a task; its ``send()`` writes into the connection
directly. HTTP cycles live in ``_asgi_http.py``, WebSocket sessions in
``_asgi_ws.py``, response framing in ``_respond.py``.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import sys
import traceback
from typing import Any, Callable, Dict, Optional
from urllib.parse import unquote

from ._asgi_http import HttpCycle
from ._asgi_ws import WsCycle, offered_subprotocols
from ._connection import Connection
from ._ffi import lib
from ._manager import Manager
from ._native import NativeDriver
from ._request import read_head
from ._respond import Request

access_log = logging.getLogger("mongoose_py.access")


class _AsgiConnection(Connection):
    server: "ASGIServer" = None  # set on the per-server subclass
    _asgi_peer = None            # (client address, is TLS): read once per connection

    def on_http_msg(self, msg) -> None:
        self.server._on_request(self, msg)

    def on_ws_msg(self, msg) -> None:
        cycle = self.userdata
        if cycle is not None:
            cycle.message(msg.data, msg.opcode == lib.WEBSOCKET_OP_BINARY)

    def on_ws_ctl(self, msg) -> None:
        if msg.opcode == lib.WEBSOCKET_OP_CLOSE and self.userdata is not None:
            self.userdata.peer_close(msg.close_code, msg.close_reason)

    def on_close(self) -> None:
        cycle = self.userdata
        if cycle is not None:
            self.userdata = None
            cycle.disconnected()


class ASGIServer:
    """Serve an ASGI app; ``await start(url)``, later ``await stop()``.

    >>> server = ASGIServer(app, root_path="/api")     # doctest: +SKIP
    >>> listener = await server.start("http://127.0.0.1:0")   # doctest: +SKIP
    """

    def __init__(self, app: Callable, error_handler: Optional[Callable] = None, *, root_path: str = "",
                 access_log: bool = False, shutdown_timeout: float = 5.0, lifespan_timeout: float = 10.0,
                 tls=None, limits=None) -> None:
        self.app = app
        self._limits = limits
        self.root_path = root_path.rstrip("/")
        self.access_log = bool(access_log)
        self.shutdown_timeout = float(shutdown_timeout)
        self.lifespan_timeout = float(lifespan_timeout)
        self._tls = tls
        self._error_handler = error_handler
        self._mgr: Optional[Manager] = None
        self._driver: Optional[NativeDriver] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._tasks: set = set()
        self._lifespan_queue: Optional[asyncio.Queue] = None
        self._lifespan_task = None
        self._lifespan_state: Optional[dict] = None
        self._conn_class = type("AsgiConnection", (_AsgiConnection,), {"server": self})
        self._server = ("127.0.0.1", 0)

    @property
    def manager(self) -> Manager:
        return self._mgr

    # ---- lifecycle ----

    async def start(self, url: str = "http://127.0.0.1:8000", *, reuse_port: bool = False) -> Connection:
        self._loop = asyncio.get_running_loop()
        await self._lifespan("startup")
        self._mgr = Manager(error_handler=self._error_handler)
        self._driver = NativeDriver(self._mgr, self._loop)
        listener = self._mgr.listen(url, connection_class=self._conn_class, tls=self._tls, reuse_port=reuse_port,
                                    limits=self._limits)
        host, port, _ = listener.local_addr
        self._server = (host, port)
        return listener

    async def stop(self) -> None:
        """Stop accepting, give requests in flight ``shutdown_timeout`` seconds,
        cancel what is left, run the lifespan shutdown."""
        if self._mgr is not None and not self._mgr.closed:
            for conn in self._mgr.connections:  # WebSocket sessions: "going away", not a reset
                cycle = conn.userdata
                if isinstance(cycle, WsCycle) and cycle.state == "open":
                    conn.ws_close(1001, "server shutting down")
        if self._driver is not None:
            await self._driver.shutdown(self.shutdown_timeout)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.shutdown_timeout)
        if self._driver is not None:
            self._driver.detach()
            self._driver = None
        if self._mgr is not None:
            self._mgr.close()
        await self._lifespan("shutdown")

    async def _lifespan(self, phase: str) -> None:
        if phase == "startup":
            self._lifespan_queue = asyncio.Queue()
            scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
            self._lifespan_state = scope["state"]
            done: Dict[str, Any] = {}
            answered = asyncio.Event()

            async def send(message):
                done[message["type"]] = message
                answered.set()

            async def run():
                try:
                    await self.app(scope, self._lifespan_queue.get, send)
                except Exception:
                    if done:  # it spoke lifespan, then failed: say so (else: no lifespan support)
                        traceback.print_exc()
                finally:
                    answered.set()

            self._lifespan_task = asyncio.ensure_future(run())
            self._lifespan_done = done
            self._lifespan_answered = answered
        if self._lifespan_task is None or self._lifespan_task.done():
            return  # the app does not speak lifespan (or is gone): nothing to wait for
        await self._lifespan_queue.put({"type": "lifespan.%s" % phase})
        try:
            await asyncio.wait_for(self._lifespan_answered.wait(), self.lifespan_timeout)
        except asyncio.TimeoutError:
            return
        self._lifespan_answered.clear()
        failed = self._lifespan_done.get("lifespan.%s.failed" % phase)
        if failed is not None:
            raise RuntimeError("ASGI lifespan %s failed: %s" % (phase, failed.get("message", "")))

    # ---- a request (loop thread, inside a pass) ----

    def _on_request(self, conn: Connection, msg) -> None:
        method_b, path_b, query, proto_b, headers = read_head(msg)
        upgrade = connection_hdr = ws_key = ws_proto = None
        for name, value in headers:
            if name == b"upgrade":
                upgrade = value
            elif name == b"connection":
                connection_hdr = value
            elif name == b"sec-websocket-key":
                ws_key = value
            elif name == b"sec-websocket-protocol":
                ws_proto = value if ws_proto is None else ws_proto + b"," + value
        method, proto = method_b.decode("latin-1"), proto_b.decode("latin-1")
        is_ws = ws_key is not None and upgrade is not None and upgrade.lower() == b"websocket" and method == "GET"
        peer = conn._asgi_peer
        if peer is None:  # per connection, not per request
            addr = conn.remote_addr
            peer = conn._asgi_peer = (addr[:2] if addr else None, conn.is_tls)
        client, tls = peer
        root = self.root_path
        raw_path = path_b.decode("latin-1")
        scope = {
            "type": "websocket" if is_ws else "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": proto[5:] if proto.startswith("HTTP/") else "1.1",
            "scheme": ("wss" if tls else "ws") if is_ws else ("https" if tls else "http"),
            "path": root + unquote(raw_path, "latin-1") if "%" in raw_path else root + raw_path,
            "raw_path": (root + raw_path).encode("latin-1") if root else path_b,
            "query_string": query,
            "root_path": root,
            "headers": headers,
            "server": self._server,
            "client": client,
            "state": dict(self._lifespan_state) if self._lifespan_state else {},
        }
        if is_ws:
            scope["subprotocols"] = offered_subprotocols(ws_proto.decode("latin-1") if ws_proto else None)
            scope["extensions"] = {"websocket.http.response": {}}
            cycle = WsCycle(conn, ws_key.decode("latin-1"))
        else:
            scope["method"] = method
            access = None
            if self.access_log:
                access = (access_log, "%s:%d" % client if client else "-", method, raw_path, proto)
            conn_hdr = connection_hdr.decode("latin-1") if connection_hdr is not None else ""
            cycle = HttpCycle(conn, Request(method, proto, conn_hdr), access)
            cycle.feed_body(msg.body_bytes, False)  # (streamed bodies: feed pieces from on_http_body)
        conn.userdata = cycle
        task = self._loop.create_task(self._run_app(conn, scope, cycle))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_app(self, conn: Connection, scope: dict, cycle) -> None:
        try:
            await self.app(scope, cycle.receive, cycle.send)
            if isinstance(cycle, HttpCycle) and not cycle.complete and not cycle.gone:
                raise RuntimeError("ASGI app returned without completing the response")
            if isinstance(cycle, WsCycle) and cycle.state == "connecting":
                await cycle.send({"type": "websocket.close"})  # returned without accepting: 403
        except asyncio.CancelledError:
            raise
        except OSError as exc:
            left = cycle.gone if isinstance(cycle, HttpCycle) else cycle.state in ("closed", "denied")
            if not left:  # an OSError of the app's own, not "the client has disconnected"
                self._report(exc)
                if isinstance(cycle, HttpCycle):
                    cycle.fail()
        except Exception as exc:
            self._report(exc)
            if isinstance(cycle, HttpCycle):
                cycle.fail()
            elif cycle.state == "connecting":
                await cycle.send({"type": "websocket.close"})
            elif cycle.state == "open":
                conn.ws_close(1011, "")
        finally:
            if conn.userdata is cycle and isinstance(cycle, HttpCycle):
                conn.userdata = None

    def _report(self, exc: BaseException) -> None:
        if self._error_handler is not None:
            self._error_handler(exc)
        else:
            traceback.print_exception(type(exc), exc, exc.__traceback__)


def serve(app: Callable, url: str = "http://127.0.0.1:8000", *, root_path: str = "", access_log: bool = False,
          tls=None, shutdown_timeout: float = 5.0, reuse_port: bool = False, limits=None,
          ready: Optional[Callable[[Connection], None]] = None) -> None:
    """Run ``app`` until SIGINT/SIGTERM (graceful: ``shutdown_timeout`` seconds for requests in flight).
    ``limits``: a :class:`mongoose_py.Limits` for the listener (default: safe defaults)."""

    async def main():
        server = ASGIServer(app, root_path=root_path, access_log=access_log, tls=tls,
                            shutdown_timeout=shutdown_timeout, limits=limits)
        listener = await server.start(url, reuse_port=reuse_port)
        if ready is not None:
            ready(listener)
        else:
            print("mongoose_py ASGI server on %s (port %d)" % (url, listener.local_addr[1]), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    asyncio.run(main())


if __name__ == "__main__":
    from .__main__ import main as _main
    _main(["--interface", "asgi"] + sys.argv[1:])
