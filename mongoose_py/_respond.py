"""Response framing shared by the ASGI and WSGI adapters.

The app gives a status, its header list and then the body in parts. What
goes on the wire follows the request and what the app declared:

* a ``Content-Length`` the app set is kept, however many parts follow (more
  bytes than declared is the app's error: the connection is cut);
* a body known in one piece gets its exact ``Content-Length``;
* ``HEAD`` sends the head only, keeping the length the GET would have had;
* 1xx, 204 and 304 carry no body and no framing header is added;
* otherwise HTTP/1.1 streams chunked, and HTTP/1.0 (which has no chunked
  encoding) gets the body raw, delimited by closing the connection.

All functions here run on the Manager's loop thread (the adapters call them
through ``Manager._call``).
"""
from __future__ import annotations

from http import HTTPStatus
from typing import Iterable, List, Optional, Tuple

from ._ffi import lib

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_REASONS_B = {k: v.encode("latin-1") for k, v in _REASONS.items()}
_BAD = (b"\r", b"\n", b"\0")


def reason(status: int) -> str:
    return _REASONS.get(status, "")


class Request:
    """What the response framing needs to know about the request it answers."""

    __slots__ = ("head", "http10", "keep_alive")

    def __init__(self, method: str, proto: str, connection_header: str) -> None:
        self.head = method == "HEAD"
        self.http10 = proto.upper() == "HTTP/1.0"
        tokens = connection_header.lower()
        self.keep_alive = ("keep-alive" in tokens) if self.http10 else ("close" not in tokens)


class Response:
    """One response being written: ``start`` once, then ``write`` parts, then ``end``."""

    __slots__ = ("conn", "mode", "left", "close_after", "sent", "status")

    def __init__(self, conn) -> None:
        self.conn = conn
        self.mode = ""        # "length", "chunked", "close" (HTTP/1.0, no length) or "none"
        self.left = 0         # "length": bytes still expected
        self.close_after = False
        self.sent = 0
        self.status = 0

    def start(self, req: Request, status: int, headers: Iterable[Tuple[bytes, bytes]],
              known_length: Optional[int], phrase: Optional[bytes] = None) -> None:
        """Send the head. ``headers``: ``(name, value)`` bytes pairs (as ASGI has
        them); ``known_length``: the whole body's size when the app gave it in one
        piece, else ``None``; ``phrase``: the app's reason phrase."""
        status = int(status)
        self.status = status
        if phrase is None:
            phrase = _REASONS_B.get(status, b"")
        parts: List[bytes] = [b"HTTP/1.1 %d %s\r\n" % (status, phrase)]
        lines = 1
        declared = None
        has_connection = False
        for name, value in headers:
            low = name.lower()
            if low == b"content-length":
                try:
                    declared = int(value.strip())
                except ValueError:
                    raise ValueError("bad Content-Length in the app's response: %r" % value) from None
                if declared < 0:
                    raise ValueError("negative Content-Length in the app's response: %r" % value)
                continue  # written once, below
            elif low == b"transfer-encoding":
                continue  # the framing is ours to choose
            elif low == b"connection":
                has_connection = True
                if b"close" in value.lower():
                    self.close_after = True
            parts += (name, b": ", value, b"\r\n")
            lines += 1
        tail = []
        if declared is not None:
            tail.append(b"Content-Length: %d\r\n" % declared)
        if status < 200 or status in (204, 304):
            self.mode = "none"
        elif req.head:
            self.mode = "none"
            if declared is None and known_length is not None:
                tail.append(b"Content-Length: %d\r\n" % known_length)
        elif declared is not None:
            self.mode, self.left = "length", declared
        elif known_length is not None:
            self.mode, self.left = "length", known_length
            tail.append(b"Content-Length: %d\r\n" % known_length)
        elif req.http10:
            self.mode = "close"
        else:
            self.mode = "chunked"
            tail.append(b"Transfer-Encoding: chunked\r\n")
        if not req.keep_alive or self.mode == "close":
            self.close_after = True
        if self.close_after and not has_connection:
            tail.append(b"Connection: close\r\n")
        tail.append(b"\r\n")
        block = b"".join(parts)
        # one check for the app's part of the head: every CR and LF a line end we wrote
        if block.count(b"\n") != lines or block.count(b"\r") != lines or b"\0" in block:
            bad = [(n, v) for n, v in headers if any(ch in n or ch in v for ch in _BAD)]
            raise ValueError("response header contains CR/LF/NUL: %r" % (bad or phrase,))
        self._send(block + b"".join(tail))

    def write(self, data: bytes) -> None:
        """One body part (may be empty)."""
        if not data:
            return
        mode = self.mode
        if mode == "none":
            return
        if mode == "length":
            if len(data) > self.left:
                self.abort()
                raise RuntimeError("response body longer than its Content-Length")
            self.left -= len(data)
            self._send(data)
        elif mode == "chunked":
            c = self._c()
            lib.mgpy_http_chunk(c, data, len(data))
        else:
            self._send(data)
        self.sent += len(data)

    def end(self) -> None:
        """The body is complete: let the connection read its next request (or close)."""
        if self.mode == "length" and self.left:
            self.abort()
            raise RuntimeError("response body shorter than its Content-Length (%d bytes missing)" % self.left)
        c = self.conn._c
        if c is None:
            return
        if self.mode == "chunked":
            lib.mgpy_http_chunk(c, b"", 0)
        else:
            lib.mgpy_resp_done(c)
        if self.close_after:
            lib.mgpy_set_flag(c, lib.MGPY_F_DRAINING, 1)

    def abort(self) -> None:
        """Cut the connection: a half-sent body must not look complete."""
        c = self.conn._c
        if c is not None:
            lib.mgpy_set_flag(c, lib.MGPY_F_CLOSING, 1)

    def _c(self):
        c = self.conn._c
        if c is None:
            raise OSError("the client has disconnected")
        return c

    def _send(self, data: bytes) -> None:
        if not lib.mg_send(self._c(), data, len(data)):
            raise MemoryError("mg_send failed (out of memory)")


def simple_response(conn, req: Request, status: int, body: bytes, headers=()) -> None:
    """A complete small response (errors, denials) on the loop thread."""
    r = Response(conn)
    r.start(req, status, list(headers) + [(b"Content-Type", b"text/plain; charset=utf-8")], len(body))
    r.write(body)
    r.end()


class WriteWaiter:
    """Wakes a writer once the connection's send buffer has drained below
    ``low`` bytes, or the connection closed (``on_done(ok)``). It rides on the
    bridge's stream hook (``conn._stream``: MG_EV_WRITE pumps, MG_EV_CLOSE
    finishes), so MG_EV_WRITE reaches Python only while someone waits."""

    __slots__ = ("conn", "low", "on_done", "done")

    def __init__(self, conn, low: int, on_done) -> None:
        self.conn, self.low, self.on_done, self.done = conn, low, on_done, False

    def install(self) -> bool:
        """On the loop thread. False when there is nothing to wait for."""
        conn = self.conn
        c = conn._c
        if c is None or c.send.len <= self.low or conn._stream is not None:
            return False
        conn._stream = self
        conn._st.mask |= 1 << lib.MG_EV_WRITE
        return True

    def pump(self) -> None:
        c = self.conn._c
        if c is None or c.send.len <= self.low:
            self._finish(c is not None)

    def _finish(self, ok: bool) -> None:
        if self.done:
            return
        self.done = True
        conn = self.conn
        if conn._stream is self:
            conn._stream = None
            if conn._st is not None:
                conn._update_mask()
        self.on_done(ok)
