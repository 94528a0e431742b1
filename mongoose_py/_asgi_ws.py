"""One ASGI WebSocket session (spec 2.4), on the loop thread.

The app decides: ``websocket.accept`` upgrades (with the subprotocol it picked
from ``scope["subprotocols"]`` and its extra headers), ``websocket.close``
before that denies with 403, and the ``websocket.http.response`` extension
sends any HTTP response instead. The upgrade is Mongoose's, fed a request
that carries only the client's key: Mongoose would otherwise echo every
offered subprotocol back instead of the chosen one.
"""
from __future__ import annotations

import asyncio
import collections
from typing import Any, Dict, List, Optional

from ._ffi import ffi, lib, reentrant
from ._respond import Request, Response, WriteWaiter, simple_response

HIGH_WATER = 256 * 1024
_DENIED = Request("GET", "HTTP/1.1", "close")


def offered_subprotocols(header: Optional[str]) -> List[str]:
    return [p.strip() for p in (header or "").split(",") if p.strip()]


class WsCycle:
    __slots__ = ("conn", "mgr", "key", "events", "waiter", "state", "close_code", "close_reason",
                 "resp", "resp_status", "resp_headers")

    def __init__(self, conn, key: str) -> None:
        self.conn = conn
        self.mgr = conn._mgr
        self.key = key
        self.events: collections.deque = collections.deque([{"type": "websocket.connect"}])
        self.waiter: Optional[asyncio.Future] = None
        self.state = "connecting"   # -> "open" -> "closed"; or "denied"
        self.close_code: Optional[int] = None
        self.close_reason = ""
        self.resp: Optional[Response] = None
        self.resp_status = 0
        self.resp_headers: list = []

    # ---- from the connection (loop thread) ----

    def message(self, data: bytes, binary: bool) -> None:
        if binary:
            self._push({"type": "websocket.receive", "bytes": data, "text": None})
        else:
            self._push({"type": "websocket.receive", "bytes": None, "text": data.decode("utf-8", "replace")})

    def peer_close(self, code: Optional[int], reason: str) -> None:
        if self.close_code is None:
            self.close_code = 1005 if code is None else code
            self.close_reason = reason

    def disconnected(self) -> None:
        prev, self.state = self.state, "closed"
        if prev != "denied":
            code = self.close_code if self.close_code is not None else 1006
            self._push({"type": "websocket.disconnect", "code": code, "reason": self.close_reason})
        else:
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
            if self.state in ("closed", "denied"):
                return {"type": "websocket.disconnect", "code": self.close_code or 1006, "reason": ""}
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None

    async def send(self, message: Dict[str, Any]) -> None:
        kind = message["type"]
        state = self.state
        if state == "closed" or (state == "denied" and self.resp is None):
            raise OSError("the WebSocket client has disconnected")
        if kind == "websocket.send":
            if state != "open":
                raise RuntimeError("ASGI: websocket.send before websocket.accept")
            data = message.get("bytes")
            if data is not None:
                self.mgr._call(self._frame, bytes(data), lib.WEBSOCKET_OP_BINARY)
            else:
                self.mgr._call(self._frame, str(message.get("text") or "").encode("utf-8"), lib.WEBSOCKET_OP_TEXT)
            if self.conn.send_len > HIGH_WATER:
                await self._drained()
        elif kind == "websocket.accept":
            if state != "connecting":
                raise RuntimeError("ASGI: websocket.accept in state %s" % state)
            self.mgr._call(self._accept, message.get("subprotocol"), message.get("headers") or ())
            self.state = "open"
        elif kind == "websocket.close":
            if state == "connecting":
                self.state = "denied"
                self.mgr._call(simple_response, self.conn, _DENIED, 403, b"Forbidden\n")
            elif state == "open":
                code = int(message.get("code") or 1000)
                self.conn.ws_close(code, message.get("reason") or "")
                self.state = "closed"
        elif kind == "websocket.http.response.start":
            if state != "connecting":
                raise RuntimeError("ASGI: websocket.http.response.start after the handshake")
            self.state = "denied"
            self.resp_status = int(message["status"])
            self.resp_headers = message.get("headers", ())
            self.resp = Response(self.conn)
        elif kind == "websocket.http.response.body":
            if self.resp is None:
                raise RuntimeError("ASGI: websocket.http.response.body before its start")
            body = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            self.mgr._call(self._deny_body, body, more)
        else:
            raise RuntimeError("ASGI: unexpected message %r in a WebSocket session" % kind)

    # ---- loop thread ----

    def _frame(self, data: bytes, op: int) -> None:
        c = self.conn._c
        if c is None:
            raise OSError("the WebSocket client has disconnected")
        lib.mg_ws_send(c, data, len(data), op)

    def _accept(self, subprotocol: Optional[str], headers) -> None:
        c = self.conn._c
        if c is None:
            raise OSError("the WebSocket client has disconnected")
        lines = []
        if subprotocol:
            lines.append("Sec-WebSocket-Protocol: %s\r\n" % subprotocol)
        for k, v in headers:
            name, value = bytes(k).decode("latin-1"), bytes(v).decode("latin-1")
            lines.append("%s: %s\r\n" % (name, value))
        extra = "".join(lines)
        if "\0" in extra or any(("\r" in ln[:-2] or "\n" in ln[:-2]) for ln in lines):
            raise ValueError("WebSocket accept headers contain CR/LF/NUL")
        request = b"GET / HTTP/1.1\r\nSec-WebSocket-Key: %s\r\n\r\n" % self.key.encode("latin-1")
        buf = ffi.new("char[]", request)
        hm = ffi.new("struct mg_http_message *")
        if lib.mg_http_parse(buf, len(request), hm) <= 0:
            raise ValueError("bad Sec-WebSocket-Key")
        reentrant.mgpy_ws_upgrade(c, hm, extra.encode("latin-1"))

    def _deny_body(self, body: bytes, more: bool) -> None:
        resp = self.resp
        if resp.status == 0:
            resp.start(_DENIED, self.resp_status, self.resp_headers, None if more else len(body))
        resp.write(body)
        if not more:
            resp.end()

    async def _drained(self) -> None:
        fut = asyncio.get_running_loop().create_future()
        waiter = WriteWaiter(self.conn, HIGH_WATER // 2,
                             lambda ok: fut.done() or fut.set_result(ok))
        if self.mgr._call(waiter.install):
            await fut
