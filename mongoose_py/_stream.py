"""Backpressure: stream a large or endless iterable without growing the send
buffer, and pause reading when the receive buffer is full.

Mongoose's send buffer is unbounded: ``send()``/``http_chunk()`` always
append. A producer that writes faster than the peer reads therefore grows the
process without limit. :func:`stream` is the high-water pattern: it takes the
next chunk from the iterable only while ``conn.send_len`` is below
``high_water``, and continues each time Mongoose has written bytes to the
socket (``MG_EV_WRITE``), so at most ``high_water`` plus one chunk is ever
buffered, whatever the size of the whole stream::

    def on_http_msg(self, msg):
        def numbers():
            for i in range(10 ** 9):
                yield b"%d\\n" % i
        stream_response(self, numbers(), headers={"Content-Type": "text/plain"})

    # raw TCP, then close once everything is sent:
    stream(conn, file_chunks(path), close=True)

The iterable runs on the loop thread, one chunk at a time: it must not block
(read a file, compute, take from a queue with ``get_nowait`` ...). Empty chunks
are skipped. If the connection closes first, the iterable's ``close()`` is
called (a generator's ``finally`` runs) and ``on_done(False)`` is called.

Reading side: ``set_read_high_water(conn, n)`` makes the binding stop reading
from the socket once ``n`` unread bytes are buffered (``conn.is_full``); the
connection is then taken out of the poll set, so the loop sleeps instead of
spinning (Mongoose's epoll loop alone would busy-loop). Consume the data
(``conn.read()``/``consume()``) and call :func:`resume_reading`. On a
listener the setting is inherited by accepted connections.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Optional, Union

from ._bridge import E_WRITE
from ._ffi import lib, to_bytes

DEFAULT_HIGH_WATER = 256 * 1024
Conn = Any  # a Connection (typed loosely until _connection.py is strict)


class Stream:
    """One running :func:`stream`; ``done`` tells whether it finished, ``sent``
    counts the bytes handed to the connection."""

    __slots__ = ("conn", "it", "high_water", "mode", "close", "on_done", "sent", "done")

    def __init__(self, conn: Conn, iterable: Iterable[Any], high_water: int, mode: str, close: bool,
                 on_done: Optional[Callable[[bool], Any]]) -> None:
        self.conn = conn
        self.it = iter(iterable)
        self.high_water = int(high_water)
        self.mode = mode
        self.close = close
        self.on_done = on_done
        self.sent = 0
        self.done = False

    # ---- driving ----

    def pump(self) -> None:
        """Send chunks while the send buffer is below the high-water mark."""
        conn = self.conn
        c = conn._c
        if self.done:
            return
        if c is None:
            self._finish(False)
            return
        put = self._writer()
        hw = self.high_water
        try:
            while c.send.len < hw:
                try:
                    chunk = next(self.it)
                except StopIteration:
                    self._end()
                    return
                if self.mode == "sse":
                    put(chunk)
                    continue
                b = to_bytes(chunk)
                if b:
                    put(b)
                    self.sent += len(b)
        except BaseException:
            self._finish(False)
            conn.close()  # a half-sent body must not look complete
            raise

    def _writer(self) -> Callable[[Any], None]:
        conn = self.conn
        if self.mode == "chunked":
            http_chunk: Callable[[Any], None] = conn.http_chunk
            return http_chunk
        if self.mode == "sse":
            def sse(item: Any) -> None:
                if isinstance(item, tuple):
                    event, data = item
                else:
                    event, data = "", item
                conn.http_sse(event, data)
            return sse
        send: Callable[[Any], None] = conn.send
        return send

    def _end(self) -> None:
        conn = self.conn
        if self.mode in ("chunked", "sse"):
            conn.http_chunk(b"")
        if self.close:
            conn.drain()
        self._finish(True)

    def _finish(self, ok: bool) -> None:
        if self.done:
            return
        self.done = True
        _untap(self)
        if not ok:
            closer = getattr(self.it, "close", None)
            if closer is not None:
                try:
                    closer()
                except Exception:
                    pass
        if self.on_done is not None:
            self.on_done(ok)

    def cancel(self) -> None:
        """Stop streaming (the connection stays open)."""
        self._finish(False)


# ---- the bridge drives a running stream: MG_EV_WRITE pumps, MG_EV_CLOSE ends ----
# (_bridge.mgpy_dispatch looks at conn._stream; the C mask gets MG_EV_WRITE
# while a stream runs, without changing what the application receives.)

def _tap(s: Stream) -> None:
    conn = s.conn
    active = conn._stream
    if active is not None and not active.done:
        raise RuntimeError("a stream is already running on this connection")
    conn._stream = s
    conn._st.mask |= 1 << E_WRITE


def _untap(s: Stream) -> None:
    conn = s.conn
    if conn._stream is s:
        conn._stream = None
        if conn._st is not None:
            conn._update_mask()


# ---- public helpers ----

def stream(conn: Conn, iterable: Iterable[Union[bytes, str]], *, high_water: int = DEFAULT_HIGH_WATER,
           chunked: bool = False, close: bool = False,
           on_done: Optional[Callable[[bool], Any]] = None) -> Stream:
    """Send ``iterable``'s chunks on ``conn`` with at most ``high_water`` bytes
    (plus one chunk) waiting in the send buffer.

    ``chunked=True`` sends each chunk as an HTTP chunk and ends the response
    with the empty chunk (send the headers first, e.g. with
    :func:`stream_response`); otherwise chunks go out raw (TCP, or a body whose
    headers carry a Content-Length). ``close=True`` drains and closes the
    connection at the end. ``on_done(ok)`` is called once: ``True`` when the
    iterable was exhausted, ``False`` when the connection closed first or the
    stream was cancelled. Returns the :class:`Stream`.
    """
    return _start(conn, iterable, high_water, "chunked" if chunked else "raw", close, on_done)


def stream_response(conn: Conn, iterable: Iterable[Union[bytes, str]], status: int = 200,
                    headers: Optional[Dict[str, str]] = None, *,
                    high_water: int = DEFAULT_HIGH_WATER,
                    on_done: Optional[Callable[[bool], Any]] = None) -> Stream:
    """Answer the current HTTP request with a chunked response streamed from ``iterable``."""
    h = dict(headers or {})
    h["Transfer-Encoding"] = "chunked"
    conn.reply(status, b"", h)
    return _start(conn, iterable, high_water, "chunked", False, on_done)


def stream_sse(conn: Conn, events: Iterable[Any], headers: Optional[Dict[str, str]] = None, *, high_water: int = DEFAULT_HIGH_WATER,
               on_done: Optional[Callable[[bool], Any]] = None) -> Stream:
    """Answer the current HTTP request with Server-Sent Events: each item is
    ``data`` (str) or ``(event_type, data)``. The response ends when the iterable does."""
    h = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    h.update(headers or {})
    h["Transfer-Encoding"] = "chunked"
    conn.reply(200, b"", h)
    return _start(conn, events, high_water, "sse", False, on_done)


def _start(conn: Conn, iterable: Iterable[Any], high_water: int, mode: str, close: bool,
           on_done: Optional[Callable[[bool], Any]]) -> Stream:
    if high_water <= 0:
        raise ValueError("high_water must be positive")
    s = Stream(conn, iterable, high_water, mode, close, on_done)

    def begin() -> Stream:
        if conn._c is None:
            raise RuntimeError("Connection has been closed")
        _tap(s)
        s.pump()
        return s

    mgr = conn._mgr
    if mgr is None:
        raise RuntimeError("Connection has been closed")
    started: Stream = mgr._call(begin)
    return started


def set_read_high_water(conn: Conn, nbytes: int) -> None:
    """Stop reading from the socket once ``nbytes`` unread bytes are buffered
    (0 = never). Paused connections cost no CPU; see :func:`resume_reading`."""
    if nbytes < 0:
        raise ValueError("nbytes must be >= 0")

    def setit() -> None:
        st = conn._st
        if st is None:
            raise RuntimeError("Connection has been closed")
        st.high_water = int(nbytes)
        c = conn._c
        if c is not None and (nbytes == 0 or c.recv.len < nbytes) and lib.mgpy_flags(c) & lib.MGPY_F_FULL:
            lib.mgpy_resume(c)

    conn._mgr._call(setit)


def pause_reading(conn: Conn) -> None:
    """Stop reading from the socket now (until :func:`resume_reading`)."""
    def pause() -> None:
        if conn._c is not None:
            lib.mgpy_set_flag(conn._c, lib.MGPY_F_FULL, 1)

    conn._mgr._call(pause)


def resume_reading(conn: Conn) -> None:
    """Read again (after consuming the buffered input)."""
    def go() -> None:
        c = conn._c
        if c is not None:
            lib.mgpy_resume(c)

    conn._mgr._call(go)
