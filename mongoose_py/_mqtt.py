"""MQTT on a connection: publish, subscribe, ping, disconnect, MQTT 5
properties, and the client keepalive (PINGREQ on time, close on silence)."""
from __future__ import annotations

from typing import Any, Callable, Iterable, List, Optional, Tuple, Union

from ._ffi import ffi, lib, reentrant, to_bytes
from ._threads import on_loop

# MQTT 5 property identifiers (MQTT 5.0 §2.2.2.2). Taken from mongoose.h when
# the cdef declares them, else the protocol's own numbers (they are fixed by
# the MQTT standard, not by Mongoose).
_PROP_IDS = (
    ("MQTT_PROP_PAYLOAD_FORMAT_INDICATOR", 0x01, "byte"),
    ("MQTT_PROP_MESSAGE_EXPIRY_INTERVAL", 0x02, "int"),
    ("MQTT_PROP_CONTENT_TYPE", 0x03, "string"),
    ("MQTT_PROP_RESPONSE_TOPIC", 0x08, "string"),
    ("MQTT_PROP_CORRELATION_DATA", 0x09, "binary"),
    ("MQTT_PROP_SUBSCRIPTION_IDENTIFIER", 0x0B, "varint"),
    ("MQTT_PROP_SESSION_EXPIRY_INTERVAL", 0x11, "int"),
    ("MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER", 0x12, "string"),
    ("MQTT_PROP_SERVER_KEEP_ALIVE", 0x13, "short"),
    ("MQTT_PROP_AUTHENTICATION_METHOD", 0x15, "string"),
    ("MQTT_PROP_AUTHENTICATION_DATA", 0x16, "binary"),
    ("MQTT_PROP_REQUEST_PROBLEM_INFORMATION", 0x17, "byte"),
    ("MQTT_PROP_WILL_DELAY_INTERVAL", 0x18, "int"),
    ("MQTT_PROP_REQUEST_RESPONSE_INFORMATION", 0x19, "byte"),
    ("MQTT_PROP_RESPONSE_INFORMATION", 0x1A, "string"),
    ("MQTT_PROP_SERVER_REFERENCE", 0x1C, "string"),
    ("MQTT_PROP_REASON_STRING", 0x1F, "string"),
    ("MQTT_PROP_RECEIVE_MAXIMUM", 0x21, "short"),
    ("MQTT_PROP_TOPIC_ALIAS_MAXIMUM", 0x22, "short"),
    ("MQTT_PROP_TOPIC_ALIAS", 0x23, "short"),
    ("MQTT_PROP_MAXIMUM_QOS", 0x24, "byte"),
    ("MQTT_PROP_RETAIN_AVAILABLE", 0x25, "byte"),
    ("MQTT_PROP_USER_PROPERTY", 0x26, "pair"),
    ("MQTT_PROP_MAXIMUM_PACKET_SIZE", 0x27, "int"),
    ("MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE", 0x28, "byte"),
    ("MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE", 0x29, "byte"),
    ("MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE", 0x2A, "byte"),
)
PROPS = {name: getattr(lib, name, value) for name, value, _ in _PROP_IDS}
_PROP_KIND = {PROPS[name]: kind for name, _, kind in _PROP_IDS}
_INT_LIMIT = {"byte": 0xFF, "short": 0xFFFF, "int": 0xFFFFFFFF, "varint": 268435455}

PropertiesLike = Union[None, Iterable[Any], dict]


def mqtt_props(properties: PropertiesLike):
    """MQTT 5 properties → ``(struct mg_mqtt_prop[] or NULL, count, keepalive)``.

    ``properties`` is a list of ``(id, value)`` pairs, of dicts shaped like
    :meth:`MqttMessage.properties` (``{"id", "iv", "key", "val"}``), or a dict
    ``{id: value}``. Integers for byte/short/int/varint properties, str/bytes
    for strings and binary data, ``(key, value)`` for a user property.
    """
    if not properties:
        return ffi.NULL, 0, ()
    items = list(properties.items()) if isinstance(properties, dict) else list(properties)
    arr = ffi.new("struct mg_mqtt_prop[]", len(items))
    keep: List[Any] = [arr]
    for i, item in enumerate(items):
        if isinstance(item, dict):
            pid = int(item["id"])
            kind = _PROP_KIND.get(pid)
            if kind == "pair":
                value: Any = (item.get("key", ""), item.get("val", ""))
            elif kind in _INT_LIMIT:
                value = item.get("iv", 0)
            else:
                value = item.get("val", "")
        else:
            pid, value = item
            pid = int(pid)
            kind = _PROP_KIND.get(pid)
        if kind is None:
            raise ValueError("unknown MQTT 5 property id %r" % (pid,))
        p = arr[i]
        p.id = pid
        if kind in _INT_LIMIT:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _INT_LIMIT[kind]:
                raise ValueError("MQTT 5 property 0x%02x needs an integer in 0..%d, got %r"
                                 % (pid, _INT_LIMIT[kind], value))
            p.iv = value
        else:
            if kind == "pair":
                if not isinstance(value, (tuple, list)) or len(value) != 2:
                    raise ValueError("a user property is a (key, value) pair, got %r" % (value,))
                parts = (("key", value[0]), ("val", value[1]))
            else:
                parts = (("val", value),)
            for field, v in parts:
                b = to_bytes(v)
                if len(b) > 0xFFFF:
                    raise ValueError("MQTT 5 property 0x%02x is longer than 65535 bytes" % pid)
                buf = ffi.from_buffer(b)
                keep.append(buf)
                s = getattr(p, field)
                s.buf, s.len = buf, len(b)
    return arr, len(items), keep


def mqtt_opts(**fields):
    """A zeroed ``struct mg_mqtt_opts`` with the given fields set; returns
    ``(opts, keepalive)``. String fields take str/bytes; ``props`` and
    ``will_props`` take what :func:`mqtt_props` takes."""
    opts = ffi.new("struct mg_mqtt_opts *")
    keep: List[Any] = [opts]
    for name, value in fields.items():
        if name in ("user", "pass", "client_id", "topic", "message"):
            b = to_bytes(value)
            if name != "message" and len(b) > 0xFFFF:
                raise ValueError("MQTT %s is longer than 65535 bytes" % name)
            buf = ffi.from_buffer(b)
            keep.append(buf)
            getattr(opts, name).buf = buf
            getattr(opts, name).len = len(b)
        elif name in ("props", "will_props"):
            arr, n, k = mqtt_props(value)
            keep.append(k)
            setattr(opts, name, arr)
            setattr(opts, "num_" + name, n)
        else:
            setattr(opts, name, value)
    return opts, keep


def _check_props(c, properties) -> None:
    if properties and not lib.mgpy_flags(c) & lib.MGPY_F_MQTT5:
        raise ValueError("MQTT properties need an MQTT 5 connection (mqtt_connect(..., version=5))")


def _check_topic(topic, what: str = "topic") -> None:
    b = to_bytes(topic)
    if not b:
        raise ValueError("MQTT %s must not be empty" % what)
    if len(b) > 0xFFFF:
        raise ValueError("MQTT %s is longer than 65535 bytes" % what)


def _check_qos(qos) -> int:
    q = int(qos)
    if q not in (0, 1, 2):
        raise ValueError("MQTT QoS must be 0, 1 or 2, got %r" % (qos,))
    return q


class MqttMethods:
    """Mixed into :class:`Connection`."""

    __slots__ = ()

    @on_loop
    def mqtt_pub(self, topic: str, message: Union[str, bytes], qos: int = 0, retain: bool = False,
                 properties: PropertiesLike = None) -> int:
        """Publish; returns the packet id (0 for QoS 0). QoS 1 completes with
        PUBACK, QoS 2 with PUBREC → PUBREL (sent by Mongoose) → PUBCOMP; both
        arrive as MG_EV_MQTT_CMD with ``msg.id`` equal to the returned id.
        ``properties`` (MQTT 5 only): see :func:`mongoose_py.mqtt.PROPS`."""
        c = self._require()
        _check_topic(topic)
        _check_props(c, properties)
        opts, keep = mqtt_opts(topic=topic, message=message, qos=_check_qos(qos), retain=bool(retain),
                               props=properties)
        return lib.mg_mqtt_pub(c, opts)

    @on_loop
    def mqtt_sub(self, topic: str, qos: int = 0, properties: PropertiesLike = None) -> None:
        c = self._require()
        _check_topic(topic, "topic filter")
        _check_props(c, properties)
        opts, keep = mqtt_opts(topic=topic, qos=_check_qos(qos), props=properties)
        lib.mg_mqtt_sub(c, opts)

    @on_loop
    def mqtt_unsub(self, topic: str, properties: PropertiesLike = None) -> None:
        c = self._require()
        _check_topic(topic, "topic filter")
        _check_props(c, properties)
        opts, keep = mqtt_opts(topic=topic, props=properties)
        lib.mg_mqtt_unsub(c, opts)

    @on_loop
    def mqtt_ping(self) -> None:
        lib.mg_mqtt_ping(self._require())

    @on_loop
    def mqtt_pong(self) -> None:
        lib.mg_mqtt_pong(self._require())

    @on_loop
    def mqtt_disconnect(self, properties: PropertiesLike = None) -> None:
        """Send DISCONNECT (the broker then drops the will). The connection
        stays open: call :meth:`drain` to close it after the packet is sent."""
        c = self._require()
        _check_props(c, properties)
        opts, keep = mqtt_opts(props=properties)  # never NULL: MQTT 5 dereferences it (MONGOOSE.md §1.6)
        lib.mg_mqtt_disconnect(c, opts)


def _shim_has_last_rx() -> bool:
    try:
        return any(name == "last_rx" for name, _ in ffi.typeof("struct mgpy_conn").fields)
    except (AttributeError, TypeError):  # pragma: no cover
        return False


SHIM_LAST_RX = _shim_has_last_rx()


class Keepalive:
    """The client side of MQTT keepalive, on a Manager timer.

    Sends PINGREQ every ``keepalive`` seconds (never later), and closes the
    connection with MG_EV_ERROR ``"MQTT server silent"`` when nothing has been
    received for 1.5 × ``keepalive`` (the PINGRESP to the last ping is
    overdue). ``last_rx()`` returns the ``mg_millis()`` of the last packet
    received; without it the shim's per-connection receive clock is used.
    Stops by itself when the connection closes.
    """

    __slots__ = ("conn", "ka_ms", "tick_ms", "last_ping", "started", "last_rx", "timer")

    def __init__(self, conn, keepalive: float, last_rx: Optional[Callable[[], int]] = None) -> None:
        if last_rx is None and not SHIM_LAST_RX:
            raise RuntimeError("Keepalive needs last_rx= (this build's shim has no receive clock)")
        self.conn = conn
        self.ka_ms = int(keepalive * 1000)
        self.tick_ms = max(20, min(1000, self.ka_ms // 4))
        self.started = self.last_ping = lib.mg_millis()
        self.last_rx = last_rx
        self.timer = conn._mgr.timer_add(self.tick_ms, self._tick, repeat=True)

    def cancel(self) -> None:
        self.timer.cancel()

    def _rx(self) -> int:
        if self.last_rx is not None:
            return self.last_rx()
        st = self.conn._st
        return st.last_rx if st is not None else 0

    def _tick(self) -> None:
        conn = self.conn
        c = conn._c
        if c is None:
            self.timer.cancel()
            return
        now = lib.mg_millis()
        rx = max(self._rx(), self.started)
        if now - rx > self.ka_ms * 3 // 2:
            self.timer.cancel()
            reentrant.mgpy_error(c, b"MQTT server silent for %d ms (keepalive %d s)"
                           % (now - rx, self.ka_ms // 1000))
            return
        if now - self.last_ping >= self.ka_ms - self.tick_ms:
            self.last_ping = now
            lib.mg_mqtt_ping(c)


def start_keepalive(conn, keepalive: float, last_rx: Optional[Callable[[], int]] = None) -> Optional[Keepalive]:
    """Start :class:`Keepalive` on an MQTT client connection (``keepalive`` ≤ 0: none)."""
    if keepalive <= 0:
        return None
    return Keepalive(conn, keepalive, last_rx)


def split_packet_header(buf: bytes) -> Tuple[int, int]:
    """``(header_length, remaining_length)`` of the MQTT packet at the start
    of ``buf``; ``(0, 0)`` if incomplete; ``ValueError`` if the remaining
    length runs past 4 bytes (malformed)."""
    n = mul = 0
    for i in range(1, min(len(buf), 5)):
        b = buf[i]
        n += (b & 0x7F) << mul
        if not b & 0x80:
            return i + 1, n
        mul += 7
    if len(buf) >= 5:
        raise ValueError("MQTT remaining length longer than 4 bytes")
    return 0, 0
