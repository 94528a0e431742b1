"""Thin, lazy, zero-copy views over Mongoose's event data.

Lifetime: a view points into the connection's receive buffer and is valid only
while the callback that received it runs. The bridge calls ``_invalidate()``
when the callback returns; any later use raises ``RuntimeError`` (never reads
freed memory) and ``bool(view)`` is ``False``. ``view.copy()`` gives an owned
snapshot (same class, pointing at Python-owned memory) usable from any thread.
"""
from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ._ffi import NULL, ffi, lib, mg_str_bytes, mg_str_of, mg_str_text, unpack

if TYPE_CHECKING:
    from ._mongoose_cffi import CData

_STALE = (
    "%s used after its callback returned: Mongoose has reused that memory. "
    "Call msg.copy() inside the handler to keep it."
)
_SIZE_MAX = ffi.cast("size_t", -1)


class _View:
    __slots__ = ("_p", "_keep")

    def __init__(self, ptr: Optional[CData] = None, keep: Any = None) -> None:
        self._p = ptr
        self._keep = keep  # owned buffers of a copy(); None for a live view

    def _ptr(self) -> CData:
        p = self._p
        if p is None:
            raise RuntimeError(_STALE % type(self).__name__)
        return p

    def _invalidate(self) -> None:
        if self._keep is None:
            self._p = None

    def __bool__(self) -> bool:
        return self._p is not None


def _text(field: str, doc: str = "") -> property:
    def get(self: _View) -> str:
        return mg_str_text(getattr(self._ptr(), field))
    get.__doc__ = doc
    return property(get)


def _bytes(field: str, doc: str = "") -> property:
    def get(self: _View) -> bytes:
        return mg_str_bytes(getattr(self._ptr(), field))
    get.__doc__ = doc
    return property(get)


def _int(field: str, doc: str = "") -> property:
    def get(self: _View) -> int:
        return int(getattr(self._ptr(), field))
    get.__doc__ = doc
    return property(get)


class HttpMessage(_View):
    """An HTTP request or response.

    >>> def handler(conn, ev, msg):
    ...     if ev == MG_EV_HTTP_MSG:
    ...         conn.reply(200, "you asked for " + msg.uri)
    """

    __slots__ = ()

    method = _text("method", "``\"GET\"``…; for a response, the protocol (``\"HTTP/1.1\"``).")
    uri = _text("uri", "The path, without the query string, not URL-decoded; for a response, the status code.")
    query = _text("query", "The query string, without the ``?``.")
    proto = _text("proto", "``\"HTTP/1.1\"``; for a response, the reason phrase.")

    @property
    def body_bytes(self) -> bytes:
        body = self._ptr().body
        if body.len == _SIZE_MAX:  # MG_EV_HTTP_HDRS of a response without Content-Length
            return b""
        return mg_str_bytes(body)

    @property
    def body_text(self) -> str:
        return self.body_bytes.decode("utf-8", "surrogateescape")

    @property
    def body_view(self) -> memoryview:
        """Zero-copy read-only view of the body; valid only during the callback."""
        body = self._ptr().body
        if body.len == _SIZE_MAX or body.len == 0:
            return memoryview(b"")
        return memoryview(ffi.buffer(body.buf, body.len)).toreadonly()

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """Case-insensitive header lookup; ``default`` when absent."""
        v = lib.mg_http_get_header(self._ptr(), name.encode("utf-8"))
        if v == NULL:
            return default
        return mg_str_text(v[0])

    def headers(self) -> List[Tuple[str, str]]:
        """All headers as ``(name, value)`` (Mongoose keeps at most MG_MAX_HTTP_HEADERS)."""
        hm = self._ptr()
        out = []
        for i in range(lib.MG_MAX_HTTP_HEADERS):
            h = hm.headers[i]
            if h.name.len == 0:
                break
            out.append((mg_str_text(h.name), mg_str_text(h.value)))
        return out

    def query_var(self, name: str) -> Optional[str]:
        """URL-decoded query parameter, ``None`` if absent or empty."""
        hm = self._ptr()
        buf = ffi.new("char[]", 2048)
        n = lib.mg_http_get_var(ffi.addressof(hm, "query"), name.encode("utf-8"), buf, 2048)
        if n == -3:
            raise ValueError("query variable %r is longer than 2048 bytes" % name)
        if n <= 0:
            return None
        return ffi.unpack(buf, n).decode("utf-8", "surrogateescape")

    def status(self) -> Optional[int]:
        """The status code of a response (``None`` if it does not parse)."""
        hm = self._ptr()
        n = lib.mg_http_status(hm)
        return n if n > 0 else None

    def header_var(self, header_name: str, var_name: str) -> Optional[str]:
        """A ``name=value`` inside a header, e.g. ``header_var("Content-Type", "boundary")``."""
        v = lib.mg_http_get_header(self._ptr(), header_name.encode("utf-8"))
        if v == NULL:
            return None
        name, keep = mg_str_of(var_name.encode("utf-8"))
        r = lib.mg_http_get_header_var(v[0], name)
        if r.len == 0 or r.buf == NULL:
            return None
        return mg_str_text(r)

    def credentials(self) -> Optional[Tuple[str, str]]:
        """``(user, password)`` from Basic auth, ``("", token)`` from a Bearer
        token (also the ``access_token`` cookie or query variable); ``None`` if none.
        """
        auth = self.header("Authorization")
        if auth:
            scheme, _, value = auth.strip().partition(" ")
            if scheme.lower() == "basic":
                try:
                    raw = base64.b64decode(value.strip(), validate=True).decode("utf-8", "surrogateescape")
                except ValueError:
                    return None
                user, _, password = raw.partition(":")
                return user, password
            if scheme.lower() == "bearer":
                return "", value.strip()
        cookie = self.header("Cookie")
        if cookie:
            for part in cookie.split(";"):
                k, _, v = part.strip().partition("=")
                if k == "access_token":
                    return "", v
        token = self.query_var("access_token")
        return ("", token) if token else None

    def copy(self) -> "HttpMessage":
        """An owned snapshot that stays valid after the callback, in any thread."""
        hm = self._ptr()
        head = mg_str_bytes(hm.head)
        body = self.body_bytes
        buf = ffi.new("char[]", head + body)
        own = ffi.new("struct mg_http_message *")
        if head and lib.mg_http_parse(buf, len(head), own) <= 0:
            own.method = hm.method  # unparsable head: keep the fields we had
        own.body.buf = buf + len(head)
        own.body.len = len(body)
        own.head.buf, own.head.len = buf, len(head)
        own.message.buf, own.message.len = buf, len(head) + len(body)
        return HttpMessage(own, (buf, own))

    def __repr__(self) -> str:
        if self._p is None:
            return "<HttpMessage (expired)>"
        return "<HttpMessage %s %s>" % (self.method, self.uri)


class WsMessage(_View):
    """A WebSocket message (``MG_EV_WS_MSG``) or control frame (``MG_EV_WS_CTL``)."""

    __slots__ = ()

    text = _text("data", "The payload decoded as UTF-8 (surrogateescape).")

    # data, flags and opcode are read for every message: one frame each, not three.
    @property
    def data(self) -> bytes:
        """The payload (reassembled if it came in fragments)."""
        p = self._p
        if p is None:
            raise RuntimeError(_STALE % "WsMessage")
        d = p.data
        n = d.len
        return unpack(d.buf, n) if n else b""

    @property
    def flags(self) -> int:
        """First byte of the frame header: FIN (0x80) | opcode."""
        p = self._p
        if p is None:
            raise RuntimeError(_STALE % "WsMessage")
        flags: int = p.flags
        return flags

    @property
    def opcode(self) -> int:
        p = self._p
        if p is None:
            raise RuntimeError(_STALE % "WsMessage")
        opcode: int = p.flags & 0x0F
        return opcode

    @property
    def close_code(self) -> Optional[int]:
        """For a CLOSE frame: the status code (``None`` if the frame has none)."""
        if self.opcode != lib.WEBSOCKET_OP_CLOSE:
            return None
        d = self.data
        return int.from_bytes(d[:2], "big") if len(d) >= 2 else None

    @property
    def close_reason(self) -> str:
        if self.opcode != lib.WEBSOCKET_OP_CLOSE:
            return ""
        return self.data[2:].decode("utf-8", "replace")

    def copy(self) -> "WsMessage":
        m = self._ptr()
        data = mg_str_bytes(m.data)
        buf = ffi.new("char[]", data or b"\0")
        own = ffi.new("struct mg_ws_message *")
        own.data.buf, own.data.len, own.flags = buf, len(data), m.flags
        return WsMessage(own, (buf, own))

    def __repr__(self) -> str:
        if self._p is None:
            return "<WsMessage (expired)>"
        return "<WsMessage opcode=%d len=%d>" % (self.opcode, self._p.data.len)


class MqttMessage(_View):
    """An MQTT packet (``MG_EV_MQTT_CMD``) or PUBLISH (``MG_EV_MQTT_MSG``)."""

    __slots__ = ()

    topic = _text("topic")
    data = _bytes("data", "The PUBLISH payload.")
    text = _text("data", "The PUBLISH payload decoded as UTF-8 (surrogateescape).")
    id = _int("id", "Packet id (QoS > 0 PUBLISH, acks, SUBACK...).")
    cmd = _int("cmd", "Packet type: 1 CONNECT, 3 PUBLISH, 8 SUBSCRIBE...")
    qos = _int("qos")
    ack = _int("ack", "CONNACK return code.")
    dgram = _bytes("dgram", "The whole raw packet, fixed header included.")

    def properties(self) -> List[Dict[str, object]]:
        """MQTT 5 properties: ``[{"id", "iv", "key", "val"}, ...]``."""
        mm = self._ptr()
        if mm.props_size == 0:
            return []
        prop = ffi.new("struct mg_mqtt_prop *")
        out = []
        ofs = 0
        while True:
            ofs = lib.mg_mqtt_next_prop(mm, prop, ofs)
            if ofs == 0:
                break
            out.append({"id": prop.id, "iv": prop.iv,
                        "key": mg_str_text(prop.key), "val": mg_str_text(prop.val)})
        return out

    def copy(self) -> "MqttMessage":
        mm = self._ptr()
        dgram = mg_str_bytes(mm.dgram)
        buf = ffi.new("char[]", dgram or b"\0")
        own = ffi.new("struct mg_mqtt_message *")
        base = mm.dgram.buf
        keep = [buf, own]
        own.dgram.buf, own.dgram.len = buf, len(dgram)
        for name in ("topic", "data"):
            s = getattr(mm, name)
            inside = s.len and base != NULL and 0 <= s.buf - base <= len(dgram) - s.len
            if inside:
                getattr(own, name).buf = buf + (s.buf - base)
                getattr(own, name).len = s.len
            elif s.len:  # not inside the packet: keep a separate copy
                extra = ffi.new("char[]", mg_str_bytes(s))
                getattr(own, name).buf, getattr(own, name).len = extra, s.len
                keep.append(extra)
        own.id, own.cmd, own.qos, own.ack = mm.id, mm.cmd, mm.qos, mm.ack
        own.props_start, own.props_size = mm.props_start, mm.props_size
        return MqttMessage(own, keep)

    def __repr__(self) -> str:
        if self._p is None:
            return "<MqttMessage (expired)>"
        return "<MqttMessage cmd=%d topic=%r>" % (self.cmd, self.topic)
