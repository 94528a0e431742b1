"""MQTT on a connection: publish, subscribe, ping, disconnect."""
from __future__ import annotations

from typing import Union

from ._ffi import ffi, lib, to_bytes
from ._threads import on_loop


def mqtt_opts(**fields):
    """A zeroed ``struct mg_mqtt_opts`` with the given fields set; returns
    ``(opts, keepalive)``. String fields take str/bytes."""
    opts = ffi.new("struct mg_mqtt_opts *")
    keep = [opts]
    for name, value in fields.items():
        if name in ("user", "pass", "client_id", "topic", "message"):
            b = to_bytes(value)
            buf = ffi.from_buffer(b)
            keep.append(buf)
            getattr(opts, name).buf = buf
            getattr(opts, name).len = len(b)
        else:
            setattr(opts, name, value)
    return opts, keep


class MqttMethods:
    """Mixed into :class:`Connection`."""

    __slots__ = ()

    @on_loop
    def mqtt_pub(self, topic: str, message: Union[str, bytes], qos: int = 0, retain: bool = False) -> int:
        """Publish; returns the packet id (0 for QoS 0)."""
        c = self._require()
        opts, keep = mqtt_opts(topic=topic, message=message, qos=int(qos), retain=bool(retain))
        return lib.mg_mqtt_pub(c, opts)

    @on_loop
    def mqtt_sub(self, topic: str, qos: int = 0) -> None:
        c = self._require()
        opts, keep = mqtt_opts(topic=topic, qos=int(qos))
        lib.mg_mqtt_sub(c, opts)

    @on_loop
    def mqtt_unsub(self, topic: str) -> None:
        c = self._require()
        opts, keep = mqtt_opts(topic=topic)
        lib.mg_mqtt_unsub(c, opts)

    @on_loop
    def mqtt_ping(self) -> None:
        lib.mg_mqtt_ping(self._require())

    @on_loop
    def mqtt_pong(self) -> None:
        lib.mg_mqtt_pong(self._require())

    @on_loop
    def mqtt_disconnect(self) -> None:
        c = self._require()
        opts, keep = mqtt_opts()  # never NULL: MQTT 5 dereferences it (MONGOOSE.md §1.6)
        lib.mg_mqtt_disconnect(c, opts)
