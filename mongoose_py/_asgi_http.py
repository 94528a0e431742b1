"""One ASGI HTTP request/response cycle (spec 2.4), on the loop thread.

The request body reaches the app through :meth:`HttpCycle.feed_body` (today
the whole body at once, from MG_EV_HTTP_MSG). ``receive()`` then waits until
the client leaves or the response is complete, and says ``http.disconnect``.
``send()`` writes straight into the connection (native mode: the loop thread
owns the Manager between passes); past ``HIGH_WATER`` queued bytes it waits
for the socket to drain; once the client has left it raises ``OSError``.
"""
from __future__ import annotations

import asyncio
import collections
from typing import Any, Dict, Optional

from ._respond import Request, Response, WriteWaiter

HIGH_WATER = 256 * 1024


class HttpCycle:
    __slots__ = ("conn", "mgr", "req", "resp", "events", "waiter", "gone", "complete", "started",
                 "status", "headers", "access")

    def __init__(self, conn, req: Request, access: Optional[tuple]) -> None:
        self.conn = conn
        self.mgr = conn._mgr
        self.req = req
        self.resp: Optional[Response] = None
        self.events: collections.deque = collections.deque()
        self.waiter: Optional[asyncio.Future] = None
        self.gone = False
        self.complete = False
        self.started = False
        self.status = 0
        self.headers: list = []
        self.access = access  # (logger, client, method, path, proto) when access logging is on

    # ---- from the connection (loop thread) ----

    def feed_body(self, data: bytes, more: bool) -> None:
        """A piece of the request body (the last one with ``more=False``)."""
        self._push({"type": "http.request", "body": data, "more_body": more})

    def disconnected(self) -> None:
        self.gone = True
        self._wake()

    def _push(self, event: dict) -> None:
        self.events.append(event)
        self._wake()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    # ---- the app's side ----

    async def receive(self) -> Dict[str, Any]:
        while True:
            if self.events:
                return self.events.popleft()
            if self.gone or self.complete:
                return {"type": "http.disconnect"}
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None

    async def send(self, message: Dict[str, Any]) -> None:
        kind = message["type"]
        if self.gone:
            raise OSError("the client has disconnected")
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("ASGI: http.response.start sent twice")
            self.started = True
            self.status = int(message["status"])
            self.headers = message.get("headers", ())  # (bytes, bytes) pairs: written as they are
            return
        if kind != "http.response.body":
            raise RuntimeError("ASGI: unexpected message %r in an HTTP cycle" % kind)
        if not self.started:
            raise RuntimeError("ASGI: http.response.body before http.response.start")
        if self.complete:
            raise RuntimeError("ASGI: http.response.body after the response was complete")
        body = message.get("body", b"")
        more = bool(message.get("more_body", False))
        self.mgr._call(self._write, bytes(body) if not isinstance(body, bytes) else body, more)
        if more and not self.gone and self.conn.send_len > HIGH_WATER:
            await self._drained()
            if self.gone:
                raise OSError("the client has disconnected")

    def _write(self, body: bytes, more: bool) -> None:
        if self.conn._c is None:
            self.gone = True
            raise OSError("the client has disconnected")
        resp = self.resp
        if resp is None:
            resp = Response(self.conn)
            resp.start(self.req, self.status, self.headers, None if more else len(body))
            self.resp = resp  # only once the head is out: a refused head still gets a 500
            if self.access is not None:
                logger, client, method, path, proto = self.access
                logger.info('%s - "%s %s %s" %d', client, method, path, proto, self.status)
        resp.write(body)
        if not more:
            self.complete = True
            resp.end()
            self._wake()

    async def _drained(self) -> None:
        fut = asyncio.get_running_loop().create_future()

        def done(ok: bool) -> None:
            if not ok:
                self.gone = True
            if not fut.done():
                fut.set_result(ok)

        waiter = WriteWaiter(self.conn, HIGH_WATER // 2, done)
        if self.mgr._call(waiter.install):
            await fut

    def fail(self) -> None:
        """The app raised or returned early: answer 500, or cut a started response."""
        def on_loop():
            if self.conn._c is None or self.complete:
                return
            if self.resp is None:
                from ._respond import simple_response
                simple_response(self.conn, Request("GET", "HTTP/1.1", "close"), 500, b"Internal Server Error\n")
            else:
                self.resp.abort()
            self.complete = True

        self.mgr._call(on_loop)
