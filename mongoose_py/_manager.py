"""``Manager``: owns one ``struct mg_mgr``, its connections, timers and loop."""
from __future__ import annotations

import collections
import logging
import signal
import sys
import threading
import time
import weakref
from typing import Any, Callable, Iterable, Optional, Tuple, Type

from ._bridge import E_HTTP_MSG, E_WAKEUP, F_ACCEPTED, F_RESP, deliver, interrupted, log_from_callback
from ._connection import Connection, EventHandler
from ._limits import DEFAULT_LIMITS, Limits
from ._ffi import NULL, cstr, ffi, lib, reentrant, to_bytes
from ._threads import _Call, call_on_loop, get_ident, manager_on_loop
from ._timer import Timer

log = logging.getLogger("mongoose_py")

_HTTP_SCHEMES = ("http://", "https://", "ws://", "wss://")


def _is_http(url: str) -> bool:
    return url[:8].lower().startswith(_HTTP_SCHEMES)


def _system_dns() -> Optional[str]:
    """First ``nameserver`` of /etc/resolv.conf as a Mongoose DNS URL."""
    try:
        with open("/etc/resolv.conf") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    ip = parts[1].split("%")[0]
                    return "udp://[%s]:53" % ip if ":" in ip else "udp://%s:53" % ip
    except OSError:
        pass
    return None


def _destroy(cmgr) -> None:
    reentrant.mgpy_mgr_destroy(cmgr)


class Manager:
    """The event loop: owns connections and timers.

    >>> mgr = Manager(handler)                       # doctest: +SKIP
    >>> mgr.listen("http://127.0.0.1:8000")          # doctest: +SKIP
    >>> mgr.run()                                    # doctest: +SKIP

    Thread contract: any thread may call any method at any time. Calls from a
    thread other than the one running the loop are run on the loop thread
    within one iteration (the caller waits); ``wakeup``, ``stop`` and
    ``Timer.cancel`` never block. Handlers always run on the loop thread.
    """

    def __init__(self, handler: Optional[EventHandler] = None, enable_wakeup: bool = False,
                 error_handler: Optional[Callable[[BaseException], Any]] = None, *,
                 connection_class: Type[Connection] = Connection, events: Optional[Iterable[int]] = None,
                 dns: Optional[str] = None, dns_timeout_ms: int = 3000) -> None:
        self._mgr = ffi.new("struct mg_mgr *")
        lib.mg_mgr_init(self._mgr)
        self._finalizer = weakref.finalize(self, _destroy, self._mgr)
        self._freed = False
        self._closing = False
        self._polling = False
        self._default_handler = handler
        self._default_events = frozenset(events) if events is not None else None
        self._error_handler = error_handler
        self._connection_class = connection_class
        self._conns = {}            # id -> Connection: keeps them (and their handles) alive until CLOSE
        self._timers = set()        # live Timers (and their handles)
        self._posted = collections.deque()    # callables to run on the loop thread
        self._wakeups = collections.deque()   # (conn_id, bytes) from wakeup()
        self._lock = threading.Lock()         # held by the thread inside poll() / a direct call
        self._poll_gate = threading.Lock()    # held for a whole poll(): tells reentrant/concurrent polls
        self._owner = None                    # ident of that thread
        self._bell_lock = threading.Lock()    # mg_wakeup vs mg_mgr_free
        self._bell_pending = False
        self._stop_requested = False
        self._stashed = None                  # KeyboardInterrupt/SystemExit raised in a handler
        self._wakeup_enabled = bool(enable_wakeup)
        self._native_thread = None            # aio native mode: the asyncio loop's thread
        self._after_call = None               # aio native mode: called after a direct call
        self._bell_id = lib.mgpy_doorbell_init(self._mgr)
        if not self._bell_id:
            raise RuntimeError("Failed to initialize wakeup support")
        dns = dns or _system_dns()
        self._dns_url = None
        if dns:
            self._dns_url = ffi.new("char[]", cstr(dns))  # Mongoose keeps the pointer: we keep the bytes
            self._mgr.dns4.url = self._dns_url
        # Mongoose retries a failed A lookup as AAAA through dns6, which is
        # Google's IPv6 resolver (the internet, even with dns= given) and which
        # re-asks forever on NXDOMAIN. An empty URL makes that retry fail at
        # once; the shim reports it as "DNS lookup failed".
        self._dns6_url = ffi.new("char[]", b"")
        self._mgr.dns6.url = self._dns6_url
        self._mgr.dnstimeout = int(dns_timeout_ms)

    # ---- context manager ----

    def __enter__(self) -> "Manager":
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False

    # ---- loop ----

    def poll(self, timeout_ms: int = 0) -> None:
        """Run one loop iteration, waiting at most ``timeout_ms`` for I/O or a timer."""
        if self._freed:
            raise RuntimeError("Manager has been freed")
        # Reentrancy is told by the poll gate, not by the loop lock: another
        # thread may hold the loop lock for a short direct call (nobody was
        # polling when it started); poll() then waits for it instead of failing.
        if not self._poll_gate.acquire(False):
            raise RuntimeError("poll() is not reentrant and must not be called concurrently. "
                               "Call it from one thread; other threads may call any other method.")
        try:
            self._lock.acquire()
            self._owner = get_ident()
            try:
                self._bell_pending = False
                if self._posted or self._wakeups:
                    self._drain()
                if not self._freed:
                    self._polling = True
                    try:
                        reentrant.mgpy_poll(self._mgr, int(timeout_ms))
                    finally:
                        self._polling = False
                    self._bell_pending = False
                    if self._posted or self._wakeups:
                        self._drain()
            finally:
                self._owner = None
                self._lock.release()
        finally:
            self._poll_gate.release()
        if interrupted and self._stashed is None:
            self._stashed = interrupted.pop()
        exc = self._stashed
        if exc is not None:
            self._stashed = None
            raise exc

    def _drain(self) -> None:
        posted = self._posted
        while posted and not self._freed:
            posted.popleft()()
        wakeups, conns = self._wakeups, self._conns
        while wakeups and not self._freed:
            cid, data = wakeups.popleft()
            conn = conns.get(cid)
            if conn is not None and conn._wants >> E_WAKEUP & 1:
                deliver(conn, E_WAKEUP, None, data)

    def _run_posted(self) -> None:
        if not self._freed:
            self._drain()

    def _post(self, fn: Callable[[], Any]) -> None:
        """Queue ``fn`` for the loop thread (never blocks)."""
        self._posted.append(fn)
        self._ring()

    def _ring(self) -> None:
        if self._bell_pending or self._owner == get_ident():
            return  # already rung, or we are the loop thread and will drain
        self._bell_pending = True
        with self._bell_lock:
            if not self._closing:
                lib.mg_wakeup(self._mgr, self._bell_id, NULL, 0)

    def _call(self, fn, *args):
        return call_on_loop(self, fn, args, {})

    def run(self, poll_ms: int = 100, *, shutdown_timeout: Optional[float] = None) -> None:
        """Loop until SIGINT/SIGTERM or :meth:`stop`, then close.

        With ``shutdown_timeout`` (seconds): listeners close first, idle
        connections are closed, and responses in flight get up to that long to
        finish before everything is closed.
        """
        if self._freed:
            raise RuntimeError("Manager has been freed")
        self._stop_requested = False
        previous = {}
        if threading.current_thread() is threading.main_thread():
            def on_signal(signum, frame):
                self._stop_requested = True

            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, on_signal)
        try:
            while not self._stop_requested and not self._freed:
                self.poll(poll_ms)
            if shutdown_timeout and not self._freed:
                self._shutdown(float(shutdown_timeout), poll_ms)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.close()

    def stop(self) -> None:
        """Make :meth:`run` return (gracefully, as on SIGTERM). Thread-safe, never blocks."""
        self._stop_requested = True
        if not self._freed:
            self._ring()

    def _shutdown(self, timeout: float, poll_ms: int) -> None:
        deadline = time.monotonic() + timeout
        self._call(self._close_listeners)
        while not self._freed:
            left = deadline - time.monotonic()
            if left <= 0 or not self._conns:
                break
            self._call(self._drain_idle)
            self.poll(max(1, min(poll_ms, int(left * 1000))))

    def _close_listeners(self) -> None:
        for conn in list(self._conns.values()):
            if conn._flag(lib.MGPY_F_LISTENING):
                conn._set_flag(lib.MGPY_F_CLOSING)

    def _drain_idle(self) -> None:
        """Close connections with nothing in flight (no response pending, nothing to send)."""
        for conn in list(self._conns.values()):
            c = conn._c
            if c is not None and not lib.mgpy_flags(c) & F_RESP and c.send.len == 0:
                lib.mgpy_set_flag(c, lib.MGPY_F_DRAINING, 1)

    def close(self) -> None:
        """Close every connection (their MG_EV_CLOSE handlers run) and free
        the manager. Idempotent. Inside a handler it happens right after the
        current iteration."""
        if self._freed:
            return
        if self._polling and self._owner == get_ident():
            self._posted.append(self._close_now)
            return
        call_on_loop(self, self._close_now, (), {})

    def _close_now(self) -> None:
        if self._freed:
            return
        with self._bell_lock:
            self._closing = True
        for t in list(self._timers):
            t._t = None  # mg_mgr_free frees the C timers
        self._finalizer.detach()
        reentrant.mg_mgr_free(self._mgr)  # dispatches MG_EV_CLOSE: _conns must still hold the handles
        self._freed = True
        self._timers.clear()
        self._conns.clear()
        self._wakeups.clear()
        error = RuntimeError("Manager has been freed")
        while self._posted:
            fn = self._posted.popleft()
            if isinstance(fn, _Call):
                fn.error = error
                fn.done.set()

    # ---- errors raised by handlers ----

    def _handler_failed(self, conn, ev, exc: BaseException) -> None:
        if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: re-raised by poll()
            if self._stashed is None:
                self._stashed = exc
            return
        if ev == E_HTTP_MSG and conn is not None:
            _answer_failed_request(conn)
        if self._error_handler is not None:
            try:
                self._error_handler(exc)
                return
            except Exception:
                log_from_callback(log, logging.ERROR, "error_handler raised", exc_info=sys.exc_info())
        log_from_callback(log, logging.ERROR, "handler raised in %r", conn if conn is not None else "timer",
                          exc_info=exc)

    # ---- creating connections ----

    def _check_open(self) -> None:
        if self._freed or self._closing:
            raise RuntimeError("Manager has been freed")

    def _new(self, connection_class, handler, events, tls, limits=None):
        cls = connection_class or self._connection_class
        conn = cls()
        conn._setup(self, handler, frozenset(events) if events is not None else None)
        if limits is not None and not isinstance(limits, Limits):
            raise TypeError("limits= needs a mongoose_py.Limits, got %s" % type(limits).__name__)
        (limits or DEFAULT_LIMITS)._apply(conn._st)
        if tls is not None:
            copts, keep = tls._c_opts()
            conn._st.tls = copts
            conn._keep = (copts, keep)
        return conn

    def _opened(self, conn, c, what: str, url: str):
        if c == NULL:
            if conn._c is None:  # no MG_EV_OPEN happened: the C state is still ours
                lib.mgpy_conn_free(conn._st)
                conn._st = conn._handle = None
            raise RuntimeError("Failed to %s '%s'" % (what, url))
        return conn

    @manager_on_loop
    def listen(self, url: str, handler: Optional[EventHandler] = None, *, http: Optional[bool] = None,
               connection_class: Optional[Type[Connection]] = None, events: Optional[Iterable[int]] = None,
               tls=None, reuse_port: bool = False, limits: Optional[Limits] = None) -> Connection:
        """Listen on ``url`` (``http://``, ``https://``, ``ws://``, ``tcp://``, ``udp://``...).

        Accepted connections inherit ``handler``, ``connection_class`` and
        ``limits`` (default: :class:`Limits` ``()``, safe defaults); with
        ``tls=TlsOpts(...)`` each one starts TLS by itself. ``reuse_port``
        sets SO_REUSEPORT so that several processes can share the port.
        """
        self._check_open()
        is_http = http if http is not None else _is_http(url)
        conn = self._new(connection_class, handler, events, tls, limits)
        opener = reentrant.mgpy_listen_reuse if reuse_port else reentrant.mgpy_listen
        c = opener(self._mgr, cstr(url), lib.MGPY_PROTO_HTTP if is_http else lib.MGPY_PROTO_RAW, conn._st)
        return self._opened(conn, c, "listen on", url)

    def http_listen(self, url: str, handler: Optional[EventHandler] = None, **kwargs) -> Connection:
        return self.listen(url, handler, http=True, **kwargs)

    @manager_on_loop
    def connect(self, url: str, handler: Optional[EventHandler] = None, *, http: Optional[bool] = None,
                connection_class: Optional[Type[Connection]] = None, events: Optional[Iterable[int]] = None,
                tls=None, limits: Optional[Limits] = None) -> Connection:
        """Open an outbound connection (asynchronous: MG_EV_CONNECT follows).
        HTTP clients write their request with ``send()`` on MG_EV_CONNECT."""
        self._check_open()
        is_http = http if http is not None else _is_http(url)
        conn = self._new(connection_class, handler, events, tls, limits)
        proto = lib.MGPY_PROTO_HTTP if is_http else lib.MGPY_PROTO_RAW
        c = reentrant.mgpy_connect(self._mgr, cstr(url), proto, conn._st)
        return self._opened(conn, c, "connect to", url)

    def http_connect(self, url: str, handler: Optional[EventHandler] = None, **kwargs) -> Connection:
        return self.connect(url, handler, http=True, **kwargs)

    @manager_on_loop
    def ws_connect(self, url: str, handler: Optional[EventHandler] = None, *, headers=None, tls=None,
                   connection_class: Optional[Type[Connection]] = None,
                   events: Optional[Iterable[int]] = None, limits: Optional[Limits] = None) -> Connection:
        """WebSocket client: MG_EV_WS_OPEN when the upgrade completes."""
        from ._ffi import header_block
        self._check_open()
        conn = self._new(connection_class, handler, events, tls, limits)
        c = reentrant.mgpy_ws_connect(self._mgr, cstr(url), header_block(headers).encode("utf-8"), conn._st)
        if c == NULL:
            return self._opened(conn, c, "create WebSocket connection to", url)
        return conn

    @manager_on_loop
    def mqtt_listen(self, url: str, handler: Optional[EventHandler] = None, *,
                    connection_class: Optional[Type[Connection]] = None,
                    events: Optional[Iterable[int]] = None, tls=None,
                    limits: Optional[Limits] = None) -> Connection:
        """Accept MQTT clients: MG_EV_MQTT_CMD for every packet (you write the broker,
        or use :class:`mongoose_py.mqtt.Broker`)."""
        self._check_open()
        conn = self._new(connection_class, handler, events, tls, limits)
        c = reentrant.mgpy_listen(self._mgr, cstr(url), lib.MGPY_PROTO_MQTT, conn._st)
        return self._opened(conn, c, "listen for MQTT on", url)

    @manager_on_loop
    def mqtt_connect(self, url: str, handler: Optional[EventHandler] = None, client_id: str = "",
                     username: str = "", password: str = "", clean_session: bool = True, keepalive: int = 60,
                     *, will_topic: Optional[str] = None, will_message=None, will_qos: int = 0,
                     will_retain: bool = False, version: int = 4, properties=None, will_properties=None, tls=None,
                     connection_class: Optional[Type[Connection]] = None,
                     events: Optional[Iterable[int]] = None, limits: Optional[Limits] = None) -> Connection:
        """MQTT client: sends CONNECT; MG_EV_MQTT_OPEN carries the CONNACK code."""
        from ._mqtt import mqtt_opts, start_keepalive
        self._check_open()
        fields = dict(client_id=client_id, user=username, pass_=password, clean=bool(clean_session),
                      keepalive=int(keepalive), version=int(version))
        fields["pass"] = fields.pop("pass_")
        if will_topic:
            fields.update(topic=will_topic, message=to_bytes(will_message or b""), qos=int(will_qos),
                          retain=bool(will_retain))
            if will_properties:
                fields["will_props"] = will_properties
        if properties:
            fields["props"] = properties
        opts, keep = mqtt_opts(**fields)
        conn = self._new(connection_class, handler, events, tls, limits)
        c = reentrant.mgpy_mqtt_connect(self._mgr, cstr(url), opts, conn._st)
        self._opened(conn, c, "connect to MQTT broker", url)
        # Mongoose sends no PINGREQ by itself: ping on time, close when the broker goes silent.
        conn._mqtt_keepalive = start_keepalive(conn, keepalive)
        return conn

    @manager_on_loop
    def sntp_connect(self, url: str, handler: Optional[EventHandler] = None, *,
                     connection_class: Optional[Type[Connection]] = None) -> Connection:
        """SNTP client: MG_EV_SNTP_TIME carries the server's time (epoch ms)."""
        self._check_open()
        conn = self._new(connection_class, handler, None, None)
        c = reentrant.mgpy_sntp_connect(self._mgr, cstr(url), conn._st)
        return self._opened(conn, c, "connect to SNTP server", url)

    # ---- timers and wakeup ----

    @manager_on_loop
    def timer_add(self, milliseconds: int, callback: Callable[[], Any], *, repeat: bool = False,
                  run_now: bool = False) -> Timer:
        """Call ``callback()`` after ``milliseconds`` (every period with ``repeat``).
        The Manager keeps the Timer: dropping it does not cancel it."""
        self._check_open()
        t = Timer(self, callback, bool(repeat))
        flags = (lib.MG_TIMER_REPEAT if repeat else 0) | (lib.MG_TIMER_RUN_NOW if run_now else 0)
        t._t = lib.mgpy_timer_add(self._mgr, int(milliseconds), flags, t._handle)
        if t._t == NULL:
            raise RuntimeError("Failed to add timer")
        self._timers.add(t)
        return t

    def wakeup(self, connection_id: int, data: bytes = b"") -> bool:
        """Deliver ``data`` to connection ``connection_id`` as MG_EV_WAKEUP, from
        any thread. Lossless and of any size (a queue; Mongoose's wakeup is only
        the doorbell). Returns False if wakeup is not enabled or the id is 0."""
        if self._freed:
            raise RuntimeError("Manager has been freed")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("wakeup() data must be bytes, not %s" % type(data).__name__)
        if not self._wakeup_enabled or not connection_id:
            return False
        self._wakeups.append((connection_id, bytes(data)))
        self._ring()
        return True

    # ---- introspection ----

    @property
    def connections(self) -> Tuple[Connection, ...]:
        return tuple(self._conns.values())

    @property
    def wakeup_id(self) -> int:
        return self._bell_id if self._wakeup_enabled and not self._freed else 0

    @property
    def closed(self) -> bool:
        return self._freed


def _answer_failed_request(conn) -> None:
    """The handler raised on MG_EV_HTTP_MSG: answer 500 if nothing was sent,
    else cut the half-written response."""
    c = conn._c
    if c is None:
        return
    flags = lib.mgpy_flags(c)
    if not (flags & F_ACCEPTED and flags & F_RESP):
        return
    if c.send.len == conn._st.send_mark:
        body = b"Internal Server Error\n"
        lib.mgpy_http_reply(c, 500, b"Content-Type: text/plain\r\nConnection: close\r\n", body, len(body), 0)
        lib.mgpy_set_flag(c, lib.MGPY_F_DRAINING, 1)
    else:
        lib.mgpy_set_flag(c, lib.MGPY_F_CLOSING, 1)
