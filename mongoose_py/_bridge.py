"""The event bridge: the ONE ``extern "Python"`` trampoline and event routing.

C side (``_shim.c``): ``mgpy_shim`` is every connection's ``fn``; it checks the
connection's event mask and only then calls ``mgpy_dispatch`` (below). Timers
and log lines arrive through the same trampoline with ``c == NULL``.

Ownership of the per-connection handle:
  ``Connection._handle = ffi.new_handle(conn)`` is stored in the C state
  (``struct mgpy_conn.handle``). The Manager keeps ``conn`` (and so the handle)
  alive in ``Manager._conns`` from MG_EV_OPEN until MG_EV_CLOSE has been
  dispatched; right after that the shim frees the C state, so no C pointer to
  the handle outlives it. ``mg_mgr_free`` dispatches MG_EV_CLOSE for every
  connection too, so ``Manager.close`` keeps ``_conns`` until it returns.
"""
from __future__ import annotations

import logging

from ._ffi import NULL, ffi, lib
from ._messages import HttpMessage, MqttMessage, WsMessage

log = logging.getLogger("mongoose_py")
# Mongoose's own log lines ("socket error" on every peer reset...) go to a child
# logger with a NullHandler: visible once the application configures logging,
# never dumped on stderr by logging's last-resort handler. Handler exceptions
# stay on "mongoose_py" itself, so an unconfigured program still sees them.
c_log = logging.getLogger("mongoose_py.mongoose")
c_log.addHandler(logging.NullHandler())


def log_from_callback(logger, level, msg, *args, exc_info=None) -> None:
    """``logger.log()`` without ``findCaller()``: a C log line or a handler's
    error has no useful Python caller, and walking the stack from inside a C
    call would only force the frames below it (on PyPy that path is made safe
    by ``_ffi.reentrant``; this one is simply cheaper)."""
    if logger.isEnabledFor(level):
        if exc_info is not None and not isinstance(exc_info, tuple):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        logger.handle(logger.makeRecord(logger.name, level, __file__, 0, msg, args, exc_info))

EV = {name: getattr(lib, name) for name in dir(lib) if name.startswith("MG_EV_")}
EV_NAMES = {v: k for k, v in EV.items()}
ALL_EVENTS = 0xFFFFFFFF

E_ERROR, E_OPEN, E_POLL = lib.MG_EV_ERROR, lib.MG_EV_OPEN, lib.MG_EV_POLL
E_READ, E_WRITE, E_CLOSE = lib.MG_EV_READ, lib.MG_EV_WRITE, lib.MG_EV_CLOSE
E_HTTP_HDRS, E_HTTP_MSG, E_WS_OPEN = lib.MG_EV_HTTP_HDRS, lib.MG_EV_HTTP_MSG, lib.MG_EV_WS_OPEN
E_WS_MSG, E_WS_CTL = lib.MG_EV_WS_MSG, lib.MG_EV_WS_CTL
E_MQTT_CMD, E_MQTT_MSG, E_MQTT_OPEN = lib.MG_EV_MQTT_CMD, lib.MG_EV_MQTT_MSG, lib.MG_EV_MQTT_OPEN
E_SNTP_TIME, E_WAKEUP = lib.MG_EV_SNTP_TIME, lib.MG_EV_WAKEUP
F_RESP, F_ACCEPTED = lib.MGPY_F_RESP, lib.MGPY_F_ACCEPTED

# Hook name for each event (API.md §3); on_event catches the rest.
HOOKS = {
    lib.MG_EV_OPEN: "on_open", lib.MG_EV_ACCEPT: "on_accept", lib.MG_EV_CONNECT: "on_connect",
    lib.MG_EV_RESOLVE: "on_resolve", lib.MG_EV_TLS_HS: "on_tls_hs", E_READ: "on_read",
    E_WRITE: "on_write", E_CLOSE: "on_close", E_ERROR: "on_error", E_POLL: "on_poll",
    E_HTTP_HDRS: "on_http_hdrs", E_HTTP_MSG: "on_http_msg", E_WS_OPEN: "on_ws_open",
    E_WS_MSG: "on_ws_msg", E_WS_CTL: "on_ws_ctl", E_MQTT_CMD: "on_mqtt_cmd",
    E_MQTT_MSG: "on_mqtt_msg", E_MQTT_OPEN: "on_mqtt_open", E_SNTP_TIME: "on_sntp_time",
    E_WAKEUP: "on_wakeup",
}
_VIEWS = {E_HTTP_HDRS: HttpMessage, E_HTTP_MSG: HttpMessage, E_WS_OPEN: HttpMessage,
          E_WS_MSG: WsMessage, E_WS_CTL: WsMessage, E_MQTT_CMD: MqttMessage, E_MQTT_MSG: MqttMessage}
_PTR_TYPES = {HttpMessage: ffi.typeof("struct mg_http_message *"),
              WsMessage: ffi.typeof("struct mg_ws_message *"),
              MqttMessage: ffi.typeof("struct mg_mqtt_message *")}
_VIEW_OF = {ev: (cls, _PTR_TYPES[cls]) for ev, cls in _VIEWS.items()}
_cast = ffi.cast


def event_data(ev, ev_data):
    """Python value for an event's C data (the table in BEHAVIOUR.md §1.2)."""
    if ev in _VIEW_OF:
        cls, ptype = _VIEW_OF[ev]
        return cls(_cast(ptype, ev_data))
    if ev == E_ERROR:
        return ffi.string(_cast("char *", ev_data)).decode("utf-8", "ignore")
    if ev == E_MQTT_OPEN:
        return _cast("uint8_t *", ev_data)[0]  # Mongoose passes uint8_t*, not int* (MONGOOSE.md §10)
    if ev == E_SNTP_TIME:
        return _cast("int64_t *", ev_data)[0]
    if ev == E_WRITE or ev == E_READ:
        return None if ev_data == NULL else _cast("long *", ev_data)[0]
    return None


def _hook_args(ev, data):
    """Arguments of the specific hook for ``ev`` (``on_read()`` etc. take none)."""
    if ev == E_READ or ev == E_POLL or data is None:
        return ()
    return (data,)


_hook_cache = {}


def class_hooks(cls):
    """{ev: function} for the hooks ``cls`` overrides, plus the catch-all (key None)."""
    hooks = _hook_cache.get(cls)
    if hooks is None:
        from ._connection import Connection
        hooks = {}
        for ev, name in HOOKS.items():
            fn = getattr(cls, name, None)
            if fn is not None and fn is not getattr(Connection, name, None):
                hooks[ev] = fn
        catch_all = getattr(cls, "on_event", None)
        if catch_all is not None and catch_all is not Connection.on_event:
            hooks[None] = catch_all
        _hook_cache[cls] = hooks
    return hooks


def mask_of(events) -> int:
    if events is None:
        return ALL_EVENTS
    m = 0
    for ev in events:
        if not 0 <= ev < 32:
            raise ValueError("not an event number: %r" % (ev,))
        m |= 1 << ev
    return m


def deliver(conn, ev, ev_data, data=None):
    """Call the connection's handler or hook for one event; never raises.

    ``ev_data`` is the C pointer (or NULL); ``data`` a ready Python value for
    events that originate in Python (wakeup). This is the hot path: one
    dict lookup for the view type, one for the hook.
    """
    view = None
    try:
        if ev_data is not None:
            vo = _VIEW_OF.get(ev)
            if vo is not None:
                view = data = vo[0](_cast(vo[1], ev_data))
            else:
                data = event_data(ev, ev_data)
        handler = conn._handler
        if handler is not None:
            handler(conn, ev, data)
            return
        hooks = conn._hooks
        fn = hooks.get(ev)
        if fn is not None:
            if view is not None:
                fn(conn, view)
            else:
                fn(conn, *_hook_args(ev, data))
        elif None in hooks:
            hooks[None](conn, ev, data)
        else:
            default = conn._mgr._default_handler
            if default is not None:
                default(conn, ev, data)
    except BaseException as exc:  # noqa: B902 - routed, never lost (see Manager._handler_failed)
        conn._mgr._handler_failed(conn, ev, exc)
    finally:
        if view is not None:
            view._p = None  # live views only: copies are never handed to handlers


# A KeyboardInterrupt/SystemExit that lands outside deliver()'s try (signals
# can raise between any two bytecodes) must not vanish: poll() re-raises it.
interrupted = []


def _trampoline_error(exc_type, exc, tb):
    interrupted.append(exc if exc is not None else exc_type())


@ffi.def_extern(onerror=_trampoline_error)
def mgpy_dispatch(c, ev, ev_data, st):
    # Keep this short: it runs for every event Python asked for.
    if c == NULL:
        return _synthetic(ev, ev_data)
    handle = st.handle
    if handle == NULL:
        if ev != E_OPEN or st.parent == NULL:
            return
        conn = ffi.from_handle(st.parent.handle)._adopt_child(c, st)
    else:
        conn = ffi.from_handle(handle)
        if ev == E_OPEN:
            conn._bound(c)
    if ev == E_CLOSE:
        try:
            if conn._wants >> E_CLOSE & 1:
                deliver(conn, ev, ev_data)
            if conn._stream is not None:
                conn._stream._finish(False)
        finally:  # the C state is freed right after we return: forget it whatever happens
            conn._closed()
        return
    if ev == E_WRITE and conn._stream is not None:
        _pump(conn)
    if conn._wants >> ev & 1:
        deliver(conn, ev, ev_data)


def _pump(conn) -> None:
    """A stream (see _stream.py) continues when Mongoose has written bytes."""
    try:
        conn._stream.pump()
    except BaseException as exc:  # noqa: B902 - the generator's error, routed like a handler's
        conn._mgr._handler_failed(conn, E_WRITE, exc)


_log_levels = {"1": logging.ERROR, "2": logging.INFO, "3": logging.DEBUG, "4": 5}


def _synthetic(ev, ev_data):
    if ev == lib.MGPY_EV_TIMER:
        ffi.from_handle(ev_data)._fire()
    elif ev == lib.MGPY_EV_LOG:
        line = ffi.string(_cast("char *", ev_data)).decode("utf-8", "replace")
        # Mongoose's prefix: "<hex ms> <level> file:line:func" (MONGOOSE.md §1.12)
        parts = line.split(" ", 2)
        level = _log_levels.get(parts[1], logging.DEBUG) if len(parts) > 2 else logging.DEBUG
        log_from_callback(c_log, level, "%s", line)

