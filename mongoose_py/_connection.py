"""``Connection``: one Python object per C connection, for its whole life.

Subclass it and override ``on_*`` hooks (API.md §3), or give a handler
function ``handler(conn, ev, data)`` (the style of the binding we replace).
Only the events a subclass overrides (or a handler asked for) cross into
Python: the C shim filters the rest.
"""
from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Tuple

from ._bridge import ALL_EVENTS, class_hooks, mask_of
from ._ffi import NULL, cstr, ffi, lib, reentrant, to_bytes, unpack
from ._http import HttpMethods
from ._mqtt import MqttMethods
from ._threads import call_on_loop, get_ident, on_loop, on_loop_property
from ._ws import WsMethods

if TYPE_CHECKING:
    from ._limits import Limits

EventHandler = Callable[["Connection", int, Any], Any]
_ALWAYS = (1 << lib.MG_EV_OPEN) | (1 << lib.MG_EV_CLOSE)
_F = lib


def _as_chars(buf):
    """iobuf.buf is ``unsigned char *``: unpacked as is it would give a list of ints."""
    return ffi.cast("char *", buf)


def _addr(a) -> Tuple[str, int, bool]:
    port = socket.ntohs(a.port)
    if a.is_ip6:
        raw = bytes(ffi.buffer(a.addr.ip, 16))
        return ":".join("%02x%02x" % (raw[i], raw[i + 1]) for i in range(0, 16, 2)), port, True
    ip = a.addr.ip
    return "%d.%d.%d.%d" % (ip[0], ip[1], ip[2], ip[3]), port, False


class Connection(HttpMethods, WsMethods, MqttMethods):
    """A network connection managed by a :class:`Manager`.

    >>> class Echo(Connection):
    ...     def on_http_msg(self, msg):
    ...         self.reply(200, msg.body_bytes)
    >>> mgr.listen("http://127.0.0.1:8000", connection_class=Echo)  # doctest: +SKIP

    Calls on a closed connection raise ``RuntimeError``; ``close()`` is safe
    anywhere, also inside the connection's own handler.
    """

    # Class-level defaults: a subclass __init__ that forgets super().__init__()
    # still gets a consistent (closed) object.
    _c = None            # struct mg_connection *, None once closed
    _st = None           # struct mgpy_conn * (C-owned, freed after MG_EV_CLOSE)
    _mgr = None
    _handle = None       # ffi.new_handle(self): alive while the C side may call us
    _handler = None
    _events = None
    _wants = 0
    _id = 0
    _userdata = None
    _child_class = None
    _keep = None         # C buffers the connection must keep alive (TLS opts, ...)
    _stream = None       # the running _stream.Stream, driven by MG_EV_WRITE

    def __init__(self) -> None:
        self._hooks = class_hooks(type(self))

    # ---- binding internals (called by Manager / the bridge) ----

    def _setup(self, mgr, handler, events, child_class=None) -> None:
        self._mgr = mgr
        self._handler = handler
        self._events = events
        self._child_class = child_class or type(self)
        if "_hooks" not in self.__dict__:
            self._hooks = class_hooks(type(self))
        self._handle = ffi.new_handle(self)
        self._st = lib.mgpy_conn_new(self._compute_wants() | _ALWAYS, self._handle)
        if self._st == NULL:
            raise MemoryError("mgpy_conn_new")

    def _compute_wants(self) -> int:
        if self._handler is not None:
            wants = mask_of(self._events)
        else:
            wants = 0
            for ev in self._hooks:
                wants = ALL_EVENTS if ev is None else wants | (1 << ev)
            mgr = self._mgr
            if mgr is not None and mgr._default_handler is not None:
                wants |= mask_of(self._events if self._events is not None else mgr._default_events)
        self._wants = wants
        return wants

    def _update_mask(self) -> None:
        wants = self._compute_wants()
        if self._st is not None:
            self._st.mask = (wants | _ALWAYS) & 0xFFFFFFFF

    def _bound(self, c) -> None:
        """MG_EV_OPEN: the C connection exists (inside mg_listen/mg_connect)."""
        self._c = c
        self._id = c.id
        self._mgr._conns[self._id] = self

    def _adopt_child(self, c, st):
        """MG_EV_OPEN of a connection accepted by this listener."""
        child = self._child_class()
        child._mgr = self._mgr
        child._handler = self._handler
        child._events = self._events
        child._child_class = self._child_class
        if "_hooks" not in child.__dict__:
            child._hooks = class_hooks(type(child))
        child._handle = ffi.new_handle(child)
        child._st = st
        st.handle = child._handle
        st.parent = NULL
        child._update_mask()
        child._bound(c)
        return child

    def _closed(self) -> None:
        """After MG_EV_CLOSE was dispatched: the shim frees the C state next."""
        mgr = self._mgr
        if mgr is not None:
            mgr._conns.pop(self._id, None)
        self._c = self._st = None
        self._handle = None
        self._keep = None
        self._id = 0

    def _require(self):
        c = self._c
        if c is None:
            raise RuntimeError("Connection has been closed")
        return c

    def _flag(self, f: int) -> bool:
        c = self._c
        return c is not None and bool(lib.mgpy_flags(c) & f)

    # ---- handler / userdata ----

    @property
    def handler(self) -> Optional[EventHandler]:
        return self._handler

    def set_handler(self, handler: Optional[EventHandler], *, events: Optional[Iterable[int]] = None) -> None:
        """Replace this connection's handler; on a listener also the one future
        accepted connections inherit. ``events`` narrows what it receives."""
        self._handler = handler
        if events is not None:
            self._events = frozenset(events)
        if self._c is not None:
            self._mgr._call(self._update_mask)

    @property
    def limits(self) -> "Limits":
        """This connection's :class:`Limits` (a listener's: those its accepted connections get)."""
        from ._limits import Limits
        st = self._st
        if st is None:
            raise RuntimeError("Connection has been closed")
        return Limits._read(st)

    def set_limits(self, limits: "Limits") -> None:
        """Replace this connection's limits; on a listener, those of connections accepted from now on."""
        from ._limits import Limits
        if not isinstance(limits, Limits):
            raise TypeError("set_limits() needs a mongoose_py.Limits, got %s" % type(limits).__name__)

        def apply() -> None:
            if self._st is None:
                raise RuntimeError("Connection has been closed")
            limits._apply(self._st)

        if self._mgr is None:
            raise RuntimeError("Connection has been closed")
        self._mgr._call(apply)

    @property
    def userdata(self) -> Any:
        return self._userdata

    @userdata.setter
    def userdata(self, value: Any) -> None:
        self._userdata = value

    @property
    def id(self) -> int:
        return self._id

    @property
    def manager(self):
        """The :class:`Manager` this connection belongs to (``None`` once closed)."""
        return self._mgr if self._c is not None else None

    # ---- flags and buffers ----

    is_listening = on_loop_property(lambda self: self._flag(_F.MGPY_F_LISTENING))
    is_client = on_loop_property(lambda self: self._flag(_F.MGPY_F_CLIENT))
    is_accepted = on_loop_property(lambda self: self._flag(_F.MGPY_F_ACCEPTED))
    is_tls = on_loop_property(lambda self: self._flag(_F.MGPY_F_TLS))
    is_udp = on_loop_property(lambda self: self._flag(_F.MGPY_F_UDP))
    is_websocket = on_loop_property(lambda self: self._flag(_F.MGPY_F_WEBSOCKET))
    is_readable = on_loop_property(lambda self: self._flag(_F.MGPY_F_READABLE))
    is_writable = on_loop_property(lambda self: self._flag(_F.MGPY_F_WRITABLE))
    is_full = on_loop_property(lambda self: self._flag(_F.MGPY_F_FULL))
    is_draining = on_loop_property(lambda self: self._flag(_F.MGPY_F_DRAINING))

    @on_loop_property
    def is_closing(self) -> bool:
        c = self._c
        return c is None or bool(lib.mgpy_flags(c) & _F.MGPY_F_CLOSING)

    @on_loop_property
    def local_addr(self) -> Optional[Tuple[str, int, bool]]:
        c = self._c
        return None if c is None else _addr(c.loc)

    @on_loop_property
    def remote_addr(self) -> Optional[Tuple[str, int, bool]]:
        c = self._c
        return None if c is None else _addr(c.rem)

    recv_len = on_loop_property(lambda self: 0 if self._c is None else self._c.recv.len)
    send_len = on_loop_property(lambda self: 0 if self._c is None else self._c.send.len)
    recv_size = on_loop_property(lambda self: 0 if self._c is None else self._c.recv.size)
    send_size = on_loop_property(lambda self: 0 if self._c is None else self._c.send.size)

    @on_loop
    def recv_data(self, length: int = -1) -> bytes:
        """Peek at the receive buffer (not consumed; see :meth:`read`)."""
        c = self._c
        if c is None:
            return b""
        n = c.recv.len if length < 0 else min(length, c.recv.len)
        return unpack(_as_chars(c.recv.buf), n) if n else b""

    @on_loop
    def send_data(self, length: int = -1) -> bytes:
        """Peek at the bytes queued for sending."""
        c = self._c
        if c is None:
            return b""
        n = c.send.len if length < 0 else min(length, c.send.len)
        return unpack(_as_chars(c.send.buf), n) if n else b""

    @on_loop
    def read(self, n: int = -1) -> bytes:
        """Take up to ``n`` bytes (all if ``n < 0``) from the receive buffer."""
        c = self._require()
        k = c.recv.len if n < 0 else min(n, c.recv.len)
        if k == 0:
            return b""
        data = unpack(_as_chars(c.recv.buf), k)
        lib.mg_iobuf_del(ffi.addressof(c, "recv"), 0, k)
        return data

    @on_loop
    def consume(self, n: int) -> None:
        """Discard ``n`` bytes from the front of the receive buffer."""
        c = self._require()
        k = min(max(n, 0), c.recv.len)
        if k:
            lib.mg_iobuf_del(ffi.addressof(c, "recv"), 0, k)

    # ---- I/O and lifecycle ----

    def send(self, data) -> None:
        """Queue bytes (str is UTF-8 encoded). UDP: sent at once as one datagram."""
        mgr = self._mgr  # the thread contract (see on_loop), inlined: a hot path
        if mgr is not None and mgr._owner != get_ident():
            return call_on_loop(mgr, Connection.send, (self, data), {})
        c = self._c
        if c is None:
            raise RuntimeError("Connection has been closed")
        b = data if type(data) is bytes else to_bytes(data)
        if not lib.mg_send(c, b, len(b)):
            if lib.mgpy_flags(c) & _F.MGPY_F_UDP:
                raise OSError("UDP send failed (no peer yet, or the datagram was refused)")
            raise RuntimeError("mg_send failed")

    def close(self) -> None:
        """Close at the end of the current loop iteration, discarding unsent data
        (use :meth:`drain` to flush first). Safe inside the connection's own
        handler; a no-op on an already closed connection."""
        if self._c is not None:
            self._mgr._call(self._set_flag, _F.MGPY_F_CLOSING)

    def drain(self) -> None:
        """Stop reading, send what is queued, then close."""
        if self._c is not None:
            self._mgr._call(self._set_flag, _F.MGPY_F_DRAINING)

    def _set_flag(self, flag: int, on: bool = True) -> None:
        c = self._c
        if c is not None:
            lib.mgpy_set_flag(c, flag, 1 if on else 0)

    @on_loop
    def error(self, message: str) -> None:
        """Raise MG_EV_ERROR with ``message`` and close the connection."""
        reentrant.mgpy_error(self._require(), cstr(message))

    @on_loop
    def resolve(self, url: str) -> None:
        """Resolve ``url``'s host and connect this client there (MG_EV_RESOLVE,
        then MG_EV_CONNECT). Only for a client that has no socket yet, e.g.
        after :meth:`resolve_cancel`; ``connect()`` resolves host names itself."""
        c = self._require()
        if int(ffi.cast("intptr_t", c.fd)) != -1 or lib.mgpy_flags(c) & _F.MGPY_F_LISTENING:
            # mg_resolve() would open a new socket over the existing one (leaking it)
            raise RuntimeError("resolve() needs a client connection that has no socket yet "
                               "(call resolve_cancel() first); connect() resolves host names by itself")
        reentrant.mg_resolve(c, cstr(url))

    @on_loop
    def resolve_cancel(self) -> None:
        lib.mg_resolve_cancel(self._require())

    @on_loop
    def sntp_request(self) -> None:
        """Send an SNTP request on an ``sntp_connect`` connection (it sends one on connect by itself)."""
        lib.mg_sntp_request(self._require())

    @on_loop
    def tls_init(self, opts) -> None:
        """Start TLS on this connection (in MG_EV_ACCEPT or MG_EV_CONNECT)."""
        from ._tls import TlsOpts
        if not isinstance(opts, TlsOpts):
            raise TypeError("tls_init() needs a TlsOpts, got %s" % type(opts).__name__)
        c = self._require()
        if c.tls != NULL:  # re-init would leak the first TLS context
            lib.mg_tls_free(c)
        copts, keep = opts._c_opts()
        reentrant.mg_tls_init(c, copts)

    @on_loop
    def tls_free(self) -> None:
        lib.mg_tls_free(self._require())

    # ---- backpressure (see _stream.py) ----

    def stream(self, iterable, *, high_water: int = 256 * 1024, chunked: bool = False, close: bool = False,
               on_done=None):
        """Send ``iterable``'s chunks keeping at most ``high_water`` bytes queued;
        continues as the peer reads. See :func:`mongoose_py._stream.stream`."""
        from ._stream import stream
        return stream(self, iterable, high_water=high_water, chunked=chunked, close=close, on_done=on_done)

    def stream_response(self, iterable, status: int = 200, headers=None, *, high_water: int = 256 * 1024,
                        on_done=None):
        """Answer the current request with a chunked response streamed from ``iterable``.

        >>> def on_http_msg(self, msg):
        ...     self.stream_response(open_file_chunks(path), headers={"Content-Type": "text/plain"})
        """
        from ._stream import stream_response
        return stream_response(self, iterable, status, headers, high_water=high_water, on_done=on_done)

    def stream_sse(self, events, headers=None, *, high_water: int = 256 * 1024, on_done=None):
        """Answer the current request with Server-Sent Events from ``events``
        (``data`` or ``(event_type, data)`` items)."""
        from ._stream import stream_sse
        return stream_sse(self, events, headers, high_water=high_water, on_done=on_done)

    def set_read_high_water(self, nbytes: int) -> None:
        """Stop reading once ``nbytes`` unread bytes are buffered (0 = never), without spinning the CPU."""
        from ._stream import set_read_high_water
        set_read_high_water(self, nbytes)

    def pause_reading(self) -> None:
        from ._stream import pause_reading
        pause_reading(self)

    def resume_reading(self) -> None:
        from ._stream import resume_reading
        resume_reading(self)

    # ---- hooks (override in a subclass; the base versions are never called) ----

    def on_open(self) -> None: pass
    def on_accept(self) -> None: pass
    def on_connect(self) -> None: pass
    def on_resolve(self) -> None: pass
    def on_tls_hs(self) -> None: pass
    def on_read(self) -> None: pass
    def on_write(self, nbytes: int) -> None: pass
    def on_close(self) -> None: pass
    def on_error(self, message: str) -> None: pass
    def on_poll(self) -> None: pass
    def on_http_hdrs(self, msg) -> None: pass
    def on_http_msg(self, msg) -> None: pass
    def on_ws_open(self, msg) -> None: pass
    def on_ws_msg(self, msg) -> None: pass
    def on_ws_ctl(self, msg) -> None: pass
    def on_mqtt_cmd(self, msg) -> None: pass
    def on_mqtt_msg(self, msg) -> None: pass
    def on_mqtt_open(self, status: int) -> None: pass
    def on_sntp_time(self, epoch_ms: int) -> None: pass
    def on_wakeup(self, data: bytes) -> None: pass
    def on_event(self, ev: int, data: Any) -> None: pass

    def __repr__(self) -> str:
        c = self._c
        if c is None:
            return "<%s closed>" % type(self).__name__
        f = lib.mgpy_flags(c)
        return "<%s id=%d readable=%s writable=%s>" % (
            type(self).__name__, self._id, bool(f & _F.MGPY_F_READABLE), bool(f & _F.MGPY_F_WRITABLE))
