"""MqttClient: a client that keeps itself connected."""
from __future__ import annotations

import collections
import random
from typing import Any, Callable, Optional, Union

from .._bridge import E_CLOSE, E_MQTT_CMD
from .._ffi import lib, to_bytes
from .._manager import Manager
from .._mqtt import Keepalive, PropertiesLike, mqtt_opts

from ._packets import (
    _PUBACK, _PUBCOMP, _PUBLISH, _PUBREL, log,
)


class MqttClient:
    """An MQTT client that keeps itself connected.

    It sends PINGREQ on time, closes a connection whose broker went silent
    (1.5 × keepalive), reconnects with exponential backoff (``reconnect=True``)
    and then re-subscribes, re-sends unacknowledged QoS 1/2 publishes (DUP)
    and publishes what was queued while offline. An incoming QoS 2 message
    re-sent by the broker before PUBREL is delivered once.

    Callbacks (on the loop thread): ``on_message(client, topic, payload, qos,
    retain)``, ``on_connect(client, status)`` (CONNACK code),
    ``on_disconnect(client)``. Every method may be called from any thread.
    """

    def __init__(self, manager: Manager, url: str, *, client_id: str = "", username: str = "",
                 password: Union[str, bytes] = "", clean_session: bool = True, keepalive: int = 60,
                 will_topic: Optional[str] = None, will_message: Union[str, bytes, None] = None,
                 will_qos: int = 0, will_retain: bool = False, version: int = 4,
                 properties: PropertiesLike = None, tls=None, reconnect: bool = True,
                 backoff_min: float = 0.2, backoff_max: float = 30.0, max_offline: int = 1000,
                 on_message: Optional[Callable[..., Any]] = None,
                 on_connect: Optional[Callable[..., Any]] = None,
                 on_disconnect: Optional[Callable[..., Any]] = None) -> None:
        self.manager = manager
        self.url = url
        self.client_id = client_id or "mgpy-" + "".join(random.choice("0123456789abcdef") for _ in range(12))
        self._connect_kwargs = dict(client_id=self.client_id, username=username, password=password,
                                    clean_session=clean_session, keepalive=keepalive,
                                    will_topic=will_topic, will_message=will_message, will_qos=will_qos,
                                    will_retain=will_retain, version=version, tls=tls,
                                    events=(E_MQTT_CMD, lib.MG_EV_MQTT_OPEN, E_CLOSE))
        if properties:
            self._connect_kwargs["properties"] = properties
        self.keepalive = keepalive
        self.reconnect = reconnect
        self.backoff_min, self.backoff_max = float(backoff_min), float(backoff_max)
        self.max_offline = max_offline
        self.on_message, self.on_connect, self.on_disconnect = on_message, on_connect, on_disconnect
        self.conn = None
        self.connected = False
        self.connects = 0          # successful CONNACKs so far
        self._subs: "collections.OrderedDict[str, int]" = collections.OrderedDict()
        self._inflight: "collections.OrderedDict[int, tuple]" = collections.OrderedDict()
        self._offline: "collections.deque[tuple]" = collections.deque()
        self._qos2_in: set = set()
        self._last_rx = 0
        self._ka: Optional[Keepalive] = None
        self._retry_timer = None
        self._attempt = 0
        self._stopped = True

    # ---- public (any thread) ----

    def start(self) -> "MqttClient":
        """Connect (and keep reconnecting if ``reconnect``)."""
        self.manager._call(self._start)
        return self

    def stop(self) -> None:
        """Send DISCONNECT (no will), close, and stop reconnecting."""
        self.manager._call(self._stop)

    def subscribe(self, topic: str, qos: int = 0) -> None:
        self.manager._call(self._subscribe, topic, int(qos))

    def unsubscribe(self, topic: str) -> None:
        self.manager._call(self._unsubscribe, topic)

    def publish(self, topic: str, payload: Union[str, bytes] = b"", qos: int = 0, retain: bool = False,
                properties: PropertiesLike = None) -> int:
        """Publish; returns the packet id (0 for QoS 0, and for a message
        queued while offline: it gets its id when sent)."""
        return self.manager._call(self._publish, topic, to_bytes(payload), int(qos), bool(retain), properties)

    @property
    def inflight(self) -> int:
        """Outgoing QoS 1/2 messages not yet acknowledged."""
        return len(self._inflight)

    # ---- loop thread ----

    def _start(self) -> None:
        self._stopped = False
        if self.conn is None:
            self._dial()

    def _dial(self) -> None:
        self._retry_timer = None
        if self._stopped:
            return
        self._last_rx = lib.mg_millis()
        try:
            self.conn = self.manager.mqtt_connect(self.url, self._on_event, **self._connect_kwargs)
        except RuntimeError as exc:
            log.info("MQTT connect to %s failed: %s", self.url, exc)
            self.conn = None
            self._schedule_retry()
            return
        # Manager.mqtt_connect may run a keepalive itself (shim receive clock); else ours.
        if self.keepalive > 0 and getattr(self.conn, "_mqtt_keepalive", None) is None:
            self._ka = Keepalive(self.conn, self.keepalive, self._rx)
        else:
            self._ka = None

    def _rx(self) -> int:
        return self._last_rx

    def _schedule_retry(self) -> None:
        if self._stopped or not self.reconnect or self._retry_timer is not None:
            return
        delay = min(self.backoff_max, self.backoff_min * (2 ** min(self._attempt, 20)))
        delay *= random.uniform(0.5, 1.0)
        self._attempt += 1
        self._retry_timer = self.manager.timer_add(max(1, int(delay * 1000)), self._dial)

    def _stop(self) -> None:
        self._stopped = True
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None
        conn = self.conn
        if conn is not None and conn._c is not None:
            if self.connected:
                conn.mqtt_disconnect()
                conn.drain()
            else:
                conn.close()

    def _subscribe(self, topic: str, qos: int) -> None:
        self._subs[topic] = qos
        if self.connected:
            self.conn.mqtt_sub(topic, qos)

    def _unsubscribe(self, topic: str) -> None:
        self._subs.pop(topic, None)
        if self.connected:
            self.conn.mqtt_unsub(topic)

    def _publish(self, topic, payload, qos, retain, properties) -> int:
        if not self.connected:
            if len(self._offline) >= self.max_offline:
                raise RuntimeError("MQTT client offline and its queue is full")
            self._offline.append((topic, payload, qos, retain, properties))
            return 0
        pid = self.conn.mqtt_pub(topic, payload, qos, retain, properties)
        if qos:
            self._inflight[pid] = (topic, payload, qos, retain, properties)
        return pid

    def _on_event(self, conn, ev, data) -> None:
        if conn is not self.conn:
            return
        if ev == E_MQTT_CMD:
            self._last_rx = lib.mg_millis()
            cmd = data.cmd
            if cmd == _PUBLISH:
                qos = data.qos
                if qos == 2:
                    if data.id in self._qos2_in:
                        return  # broker re-sent it before PUBREL: delivered already
                    self._qos2_in.add(data.id)
                if self.on_message is not None:
                    retain = bool(ord(data._p.dgram.buf[0]) & 1)
                    self.on_message(self, data.topic, data.data, qos, retain)
            elif cmd == _PUBREL:
                self._qos2_in.discard(data.id)
            elif cmd == _PUBACK or cmd == _PUBCOMP:
                self._inflight.pop(data.id, None)
        elif ev == lib.MG_EV_MQTT_OPEN:
            if data == 0:
                self.connected = True
                self.connects += 1
                self._attempt = 0
                self._on_connected()
            if self.on_connect is not None:
                self.on_connect(self, data)
        elif ev == E_CLOSE:
            was = self.connected
            self.connected = False
            self.conn = None
            if self._ka is not None:
                self._ka.cancel()
                self._ka = None
            if was and self.on_disconnect is not None:
                self.on_disconnect(self)
            self._schedule_retry()

    def _on_connected(self) -> None:
        conn = self.conn
        for topic, qos in self._subs.items():
            conn.mqtt_sub(topic, qos)
        # Unacknowledged publishes: same id, DUP set (Mongoose sets DUP for a retransmit_id).
        v5 = bool(lib.mgpy_flags(conn._c) & lib.MGPY_F_MQTT5)
        for pid, (topic, payload, qos, retain, props) in list(self._inflight.items()):
            opts, keep = mqtt_opts(topic=topic, message=payload, qos=qos, retain=retain,
                                   retransmit_id=pid, props=props if v5 else None)
            lib.mg_mqtt_pub(conn._c, opts)
        while self._offline and self.connected:
            self._publish(*self._offline.popleft())
