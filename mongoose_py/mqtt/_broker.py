"""The MQTT broker (see the package docstring)."""
from __future__ import annotations

import collections
import logging
import random
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from .._bridge import E_CLOSE, E_MQTT_CMD, E_READ, log_from_callback
from .._ffi import ffi, lib, to_bytes
from .._manager import Manager
from .._mqtt import split_packet_header
from ._packets import (
    CONNACK_ACCEPTED, CONNACK_BAD_PROTOCOL, CONNACK_ID_REJECTED, CONNACK_NOT_AUTHORIZED,
    CONNACK_UNAVAILABLE, _CONNECT, _DISCONNECT, _E_ACCEPT, _F_CLOSING, _F_DRAINING, _Malformed,
    _PINGREQ, _PINGRESP_PKT, _PUBACK, _PUBCOMP, _PUBLISH, _PUBREC, _PUBREL, _SUBSCRIBE, _Trie,
    _UNSUBSCRIBE, _body, _mg_send, _pack_u16, _publish_packet, _text, _unpack, _varint, log,
    topic_matches, valid_topic_filter,
)


class _Session:
    __slots__ = ("client_id", "clean", "subs", "inflight", "queue", "next_id", "inbound_qos2",
                 "client", "dropped")

    def __init__(self, client_id: str, clean: bool) -> None:
        self.client_id = client_id
        self.clean = clean
        self.subs: Dict[str, int] = {}
        self.inflight: "collections.OrderedDict[int, list]" = collections.OrderedDict()
        self.queue: "collections.deque[Tuple[bytes, bytes, int]]" = collections.deque()
        self.next_id = 0
        self.inbound_qos2: set = set()
        self.client: Optional[_Client] = None
        self.dropped = 0

    def new_id(self) -> int:
        for _ in range(65536):
            self.next_id = self.next_id % 65535 + 1
            if self.next_id not in self.inflight:
                return self.next_id
        raise RuntimeError("no free MQTT packet id")  # pragma: no cover (max_inflight < 65535)

    def __repr__(self) -> str:
        return "<_Session %r subs=%d>" % (self.client_id, len(self.subs))


class _Client:
    """One network connection (it may or may not have sent CONNECT yet)."""

    __slots__ = ("conn", "c", "session", "opened", "last_rx", "keepalive_ms", "will", "graceful",
                 "dead", "username", "level")

    def __init__(self, conn, now: int) -> None:
        self.conn = conn
        self.c = conn._c
        self.session: Optional[_Session] = None
        self.opened = now
        self.last_rx = now
        self.keepalive_ms = 0
        self.will: Optional[Tuple[str, bytes, int, bool]] = None
        self.graceful = False
        self.dead = False      # closing: ignore whatever else is in its receive buffer
        self.username: Optional[str] = None
        self.level = 4


AuthCallback = Callable[[str, Optional[str], Optional[bytes]], Union[bool, int, None]]


class Broker:
    """An MQTT 3.1.1 broker (see the module docstring for what it implements).

    ``Broker(mgr)`` serves on an existing :class:`Manager` (call
    :meth:`listen`); ``Broker("mqtt://host:port")`` creates its own Manager and
    listens at once (then :meth:`run`, or drive ``broker.manager``).

    ``auth(client_id, username, password)``: return True (or 0) to accept,
    False/None to refuse with CONNACK 5 "not authorized", or a CONNACK code
    (1..5). ``username`` is a str or None, ``password`` bytes or None.

    Subclass hooks (called on the loop thread): :meth:`on_client_connect`,
    :meth:`on_client_disconnect`, :meth:`on_message` (return False to drop a
    message instead of routing it).
    """

    def __init__(self, manager: Union[Manager, str, None] = None, *, auth: Optional[AuthCallback] = None,
                 tls=None, max_packet_size: int = 1 << 20, max_inflight: int = 100,
                 max_queued: int = 1000, max_send_buffer: int = 8 << 20, max_qos: int = 2,
                 connect_timeout: float = 10.0, check_interval_ms: int = 250) -> None:
        url = None
        if manager is None or isinstance(manager, str):
            url, manager = manager, Manager()
            self._own_manager = True
        else:
            self._own_manager = False
        self.manager: Manager = manager
        self.auth = auth
        self.max_packet_size = int(max_packet_size)
        self.max_inflight = max(1, int(max_inflight))
        self.max_queued = int(max_queued)
        self.max_send_buffer = int(max_send_buffer)
        self.max_qos = int(max_qos)
        self.connect_timeout_ms = int(connect_timeout * 1000)
        self.listeners: List[Any] = []
        self.sessions: Dict[str, _Session] = {}
        self.retained: Dict[str, Tuple[bytes, int]] = {}
        self._clients: Dict[int, _Client] = {}
        self._trie = _Trie()
        self._timer = None
        self._check_ms = int(check_interval_ms)
        self.stats = collections.Counter()
        if url is not None:
            self.listen(url, tls=tls)

    # ---- lifecycle ----

    def listen(self, url: str, *, tls=None):
        """Accept MQTT clients on ``url`` (``mqtt://`` or, with ``tls``, ``mqtts://``).
        Returns the listening connection (``.local_addr[1]`` is the port)."""
        return self.manager._call(self._listen, url, tls)

    def _listen(self, url, tls):
        events = (_E_ACCEPT, E_READ, E_MQTT_CMD, E_CLOSE)
        lst = self.manager.mqtt_listen(url, self._on_event, events=events, tls=tls)
        self.listeners.append(lst)
        if self._timer is None:
            self._timer = self.manager.timer_add(self._check_ms, self._check_timeouts, repeat=True)
        return lst

    @property
    def port(self) -> int:
        """The port of the first listener."""
        return self.listeners[0].local_addr[1]

    def run(self, poll_ms: int = 100) -> None:
        """Run the Manager's loop until SIGINT/SIGTERM or ``manager.stop()``."""
        self.manager.run(poll_ms)

    def close(self) -> None:
        """Stop listening and close every client (no wills are published)."""
        self.manager._call(self._close)
        if self._own_manager:
            self.manager.close()

    def _close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for lst in self.listeners:
            lst.close()
        for cl in list(self._clients.values()):
            cl.will = None
            self._kill(cl)

    @property
    def clients(self) -> List[str]:
        """Client ids of the connected clients."""
        return [cl.session.client_id for cl in list(self._clients.values())
                if cl.session is not None and not cl.dead]

    # ---- hooks ----

    def on_client_connect(self, client_id: str, username: Optional[str]) -> None:
        pass

    def on_client_disconnect(self, client_id: str, graceful: bool) -> None:
        pass

    def on_message(self, client_id: Optional[str], topic: str, payload: bytes, qos: int,
                   retain: bool) -> Optional[bool]:
        """Called for every message before routing; return False to drop it."""
        return True

    # ---- injecting messages ----

    def publish(self, topic: str, payload: Union[str, bytes] = b"", qos: int = 0, retain: bool = False) -> None:
        """Publish from the broker itself (any thread)."""
        if not topic or "+" in topic or "#" in topic:
            raise ValueError("invalid topic name %r" % (topic,))
        if qos not in (0, 1, 2):
            raise ValueError("QoS must be 0, 1 or 2")
        self.manager._call(self._publish, None, topic, to_bytes(payload), int(qos), bool(retain))

    # ---- events ----

    def _on_event(self, conn, ev, data) -> None:
        if ev == E_MQTT_CMD:
            cl = self._clients.get(conn._id)
            if cl is None:
                cl = self._clients[conn._id] = _Client(conn, lib.mg_millis())
            if cl.dead:
                return
            try:
                self._on_packet(cl, data._p)
            except _Malformed as exc:
                self.stats["malformed"] += 1
                log.info("MQTT client %s: %s: closing", conn._id, exc)
                self._kill(cl)
            except Exception:
                self._kill(cl)  # never leave a client in a half-handled state
                raise           # ... and report the bug (Manager error_handler / log)
        elif ev == E_READ:
            c = conn._c
            n = c.recv.len
            if n >= 2:
                try:
                    _, rl = split_packet_header(_unpack(ffi.cast("char *", c.recv.buf), min(n, 5)))
                except ValueError:
                    rl = -1
                if rl < 0 or rl > self.max_packet_size:
                    self.stats["oversize"] += 1
                    cl = self._clients.get(conn._id)
                    if cl is not None:
                        self._kill(cl)
                    else:
                        lib.mgpy_set_flag(c, _F_CLOSING, 1)
        elif ev == _E_ACCEPT:
            self._clients[conn._id] = _Client(conn, lib.mg_millis())
        elif ev == E_CLOSE:
            cl = self._clients.pop(conn._id, None)
            if cl is not None:
                self._gone(cl)

    def _kill(self, cl: _Client) -> None:
        cl.dead = True
        c = cl.conn._c
        if c is not None:
            lib.mgpy_set_flag(c, _F_CLOSING, 1)

    def _gone(self, cl: _Client) -> None:
        """The connection closed (MG_EV_CLOSE)."""
        cl.dead = True
        s = cl.session
        if s is None:
            return
        if s.client is cl:
            s.client = None
            if s.clean:
                self._drop_session(s)
        if cl.will is not None and not cl.graceful:
            topic, payload, qos, retain = cl.will
            cl.will = None
            self.stats["wills"] += 1
            self._publish(s.client_id, topic, payload, qos, retain)
        try:
            self.on_client_disconnect(s.client_id, cl.graceful)
        except Exception:
            log_from_callback(log, logging.ERROR, "on_client_disconnect raised", exc_info=sys.exc_info())

    def _drop_session(self, s: _Session) -> None:
        for f in s.subs:
            self._trie.remove(f, s)
        s.subs.clear()
        if self.sessions.get(s.client_id) is s:
            del self.sessions[s.client_id]

    def _check_timeouts(self) -> None:
        now = lib.mg_millis()
        for cl in list(self._clients.values()):
            if cl.dead:
                continue
            if cl.session is None:
                if now - cl.opened > self.connect_timeout_ms:
                    self.stats["connect_timeouts"] += 1
                    self._kill(cl)
            elif cl.keepalive_ms and now - cl.last_rx > cl.keepalive_ms * 3 // 2:
                self.stats["keepalive_timeouts"] += 1
                log.info("MQTT client %r: keepalive timeout", cl.session.client_id)
                self._kill(cl)

    # ---- packets ----

    def _send(self, cl: _Client, data: bytes) -> None:
        c = cl.conn._c
        if c is not None and not _mg_send(c, data, len(data)):
            self._kill(cl)

    def _on_packet(self, cl: _Client, mm) -> None:
        cl.last_rx = lib.mg_millis()
        cmd = mm.cmd
        flags = ord(mm.dgram.buf[0]) & 0x0F if mm.dgram.len else 0
        s = cl.session
        if s is None:
            if cmd != _CONNECT:
                raise _Malformed("first packet is not CONNECT (type %d)" % cmd)
            if flags:
                raise _Malformed("CONNECT with flags")
            return self._on_connect(cl, _unpack(mm.dgram.buf, mm.dgram.len))
        if cmd == _PUBLISH:
            qos = mm.qos
            if qos == 3:
                raise _Malformed("PUBLISH with QoS 3")
            tlen = mm.topic.len
            topic_b = _unpack(mm.topic.buf, tlen) if tlen else b""
            topic = _text(topic_b)
            if not topic or "+" in topic or "#" in topic:
                raise _Malformed("invalid topic name %r" % topic[:60])
            if qos == 2:
                pid = mm.id
                if pid == 0:
                    raise _Malformed("PUBLISH QoS 2 with packet id 0")
                if pid in s.inbound_qos2:
                    self.stats["dup_qos2"] += 1
                    return  # a re-send before PUBREL: routed already (exactly once)
                s.inbound_qos2.add(pid)
            elif qos == 1 and mm.id == 0:
                raise _Malformed("PUBLISH QoS 1 with packet id 0")
            dlen = mm.data.len
            payload = _unpack(mm.data.buf, dlen) if dlen else b""
            self._publish(s.client_id, topic, payload, qos, bool(flags & 1), topic_b)
        elif cmd == _PUBACK:
            e = s.inflight.get(mm.id)
            if e is not None and e[2] == 1:
                del s.inflight[mm.id]
                self._pump(s)
        elif cmd == _PUBREC:  # Mongoose has answered PUBREL already
            e = s.inflight.get(mm.id)
            if e is not None and e[2] == 2:
                e[3] = 1
        elif cmd == _PUBCOMP:
            e = s.inflight.get(mm.id)
            if e is not None and e[2] == 2:
                del s.inflight[mm.id]
                self._pump(s)
        elif cmd == _PUBREL:  # Mongoose has answered PUBCOMP already
            if flags != 2:
                raise _Malformed("PUBREL with flags %d" % flags)
            s.inbound_qos2.discard(mm.id)
        elif cmd == _SUBSCRIBE:
            if flags != 2:
                raise _Malformed("SUBSCRIBE with flags %d" % flags)
            self._on_subscribe(cl, s, _unpack(mm.dgram.buf, mm.dgram.len))
        elif cmd == _UNSUBSCRIBE:
            if flags != 2:
                raise _Malformed("UNSUBSCRIBE with flags %d" % flags)
            self._on_unsubscribe(cl, s, _unpack(mm.dgram.buf, mm.dgram.len))
        elif cmd == _PINGREQ:
            self._send(cl, _PINGRESP_PKT)
        elif cmd == _DISCONNECT:
            cl.graceful = True
            cl.will = None
            cl.dead = True
            lib.mgpy_set_flag(cl.conn._c, _F_DRAINING, 1)
        else:
            raise _Malformed("unexpected packet type %d" % cmd)

    def _on_connect(self, cl: _Client, dgram: bytes) -> None:
        r = _body(dgram)
        proto = r.text()
        level = r.u8()
        if proto not in ("MQTT", "MQIsdp"):
            raise _Malformed("unknown protocol name %r" % proto[:20])
        if level not in (3, 4) or (proto == "MQIsdp") != (level == 3):
            self.stats["bad_protocol"] += 1
            return self._refuse(cl, CONNACK_BAD_PROTOCOL)
        cf = r.u8()
        if cf & 1:
            raise _Malformed("CONNECT reserved flag set")
        keepalive = r.u16()
        client_id = r.text()
        will = None
        if cf & 0x04:
            wqos = (cf >> 3) & 3
            if wqos == 3:
                raise _Malformed("will QoS 3")
            wtopic = r.text()
            if not wtopic or "+" in wtopic or "#" in wtopic:
                raise _Malformed("invalid will topic")
            will = (wtopic, r.blob(), wqos, bool(cf & 0x20))
        elif cf & 0x38:
            raise _Malformed("will QoS/retain without a will")
        username = r.text() if cf & 0x80 else None
        password = r.blob() if cf & 0x40 else None
        if r.left():
            raise _Malformed("extra bytes after CONNECT payload")
        clean = bool(cf & 0x02)
        if not client_id:
            if not clean:
                return self._refuse(cl, CONNACK_ID_REJECTED)
            client_id = "auto-" + "".join(random.choice("0123456789abcdef") for _ in range(16))
        if self.auth is not None:
            try:
                verdict = self.auth(client_id, username, password)
            except Exception:
                log_from_callback(log, logging.ERROR, "MQTT auth callback raised", exc_info=sys.exc_info())
                verdict = CONNACK_UNAVAILABLE
            if isinstance(verdict, bool) or verdict is None:
                code = CONNACK_ACCEPTED if verdict else CONNACK_NOT_AUTHORIZED
            else:
                code = int(verdict)
            if code:
                self.stats["auth_refused"] += 1
                return self._refuse(cl, code if 1 <= code <= 255 else CONNACK_NOT_AUTHORIZED)
        # Session takeover: the older connection goes (its will is published).
        old = self.sessions.get(client_id)
        if old is not None and old.client is not None and old.client is not cl:
            prev = old.client
            old.client = None
            self.stats["takeovers"] += 1
            self._kill(prev)
            if prev.will is not None:
                topic, payload, qos, retain = prev.will
                prev.will = None
                self._publish(client_id, topic, payload, qos, retain)
        if old is not None and clean:
            self._drop_session(old)
            old = None
        present = old is not None
        s = old if present else _Session(client_id, clean)
        s.clean = clean
        self.sessions[client_id] = s
        s.client = cl
        cl.session = s
        cl.will = will
        cl.username = username
        cl.level = level
        cl.keepalive_ms = keepalive * 1000
        self._send(cl, bytes((0x20, 2, 1 if present else 0, 0)))
        if present:  # resume: re-send what was in flight, then the queue
            for pid, e in s.inflight.items():
                if e[3]:
                    self._send(cl, bytes((0x62, 2)) + _pack_u16(pid))
                else:
                    self._send(cl, _publish_packet(e[0], e[1], e[2], False, pid, dup=True))
            self._pump(s)
        try:
            self.on_client_connect(client_id, username)
        except Exception:
            log_from_callback(log, logging.ERROR, "on_client_connect raised", exc_info=sys.exc_info())

    def _refuse(self, cl: _Client, code: int) -> None:
        self._send(cl, bytes((0x20, 2, 0, code)))
        cl.dead = True
        c = cl.conn._c
        if c is not None:
            lib.mgpy_set_flag(c, _F_DRAINING, 1)

    def _on_subscribe(self, cl: _Client, s: _Session, dgram: bytes) -> None:
        r = _body(dgram)
        pid = r.u16()
        req = []
        while r.left():
            f = r.text()
            q = r.u8()
            if q & 0xFC or q == 3:
                raise _Malformed("SUBSCRIBE with bad QoS byte %d" % q)
            req.append((f, q))
        if not req:
            raise _Malformed("SUBSCRIBE without topic filters")
        codes = bytearray()
        granted = []
        for f, q in req:
            if not valid_topic_filter(f):
                codes.append(0x80)
                continue
            q = min(q, self.max_qos)
            s.subs[f] = q
            self._trie.add(f, s, q)
            codes.append(q)
            granted.append((f, q))
        self._send(cl, b"".join((b"\x90", _varint(2 + len(codes)), _pack_u16(pid), bytes(codes))))
        for f, q in granted:  # retained messages, after the SUBACK
            for topic, (payload, rq) in list(self.retained.items()):
                if topic_matches(f, topic):
                    self._deliver(s, topic.encode("utf-8"), payload, min(q, rq), True)

    def _on_unsubscribe(self, cl: _Client, s: _Session, dgram: bytes) -> None:
        r = _body(dgram)
        pid = r.u16()
        filters = []
        while r.left():
            filters.append(r.text())
        if not filters:
            raise _Malformed("UNSUBSCRIBE without topic filters")
        for f in filters:
            if s.subs.pop(f, None) is not None:
                self._trie.remove(f, s)
        self._send(cl, b"\xb0\x02" + _pack_u16(pid))

    # ---- routing ----

    def _publish(self, sender: Optional[str], topic: str, payload: bytes, qos: int, retain: bool,
                 topic_b: Optional[bytes] = None) -> None:
        try:
            if self.on_message(sender, topic, payload, qos, retain) is False:
                self.stats["dropped_by_hook"] += 1
                return
        except Exception:
            log_from_callback(log, logging.ERROR, "on_message raised", exc_info=sys.exc_info())
        if topic_b is None:
            topic_b = topic.encode("utf-8")
        if retain:
            if payload:
                self.retained[topic] = (payload, qos)
            else:
                self.retained.pop(topic, None)
        self.stats["published"] += 1
        targets = self._trie.match(topic)
        if not targets:
            return
        pkt0 = None
        max_buf = self.max_send_buffer
        for s, sq in targets.items():
            q = qos if qos < sq else sq
            if q == 0:
                cl = s.client
                if cl is None or cl.dead:
                    continue
                c = cl.conn._c
                if c is None:
                    continue
                if c.send.len > max_buf:
                    s.dropped += 1
                    self.stats["dropped_slow"] += 1
                    continue
                if pkt0 is None:
                    pkt0 = _publish_packet(topic_b, payload, 0, False)
                if not _mg_send(c, pkt0, len(pkt0)):
                    self._kill(cl)
            else:
                self._deliver(s, topic_b, payload, q, False)

    def _deliver(self, s: _Session, topic_b: bytes, payload: bytes, q: int, retain: bool) -> None:
        cl = s.client
        online = cl is not None and not cl.dead
        if q == 0:
            if online:
                self._send(cl, _publish_packet(topic_b, payload, 0, retain))
            return
        if online and len(s.inflight) < self.max_inflight and not s.queue:
            pid = s.new_id()
            s.inflight[pid] = [topic_b, payload, q, 0]
            self._send(cl, _publish_packet(topic_b, payload, q, retain, pid))
        elif len(s.queue) < self.max_queued:
            s.queue.append((topic_b, payload, q))
            if online:
                self._pump(s)
        else:
            s.dropped += 1
            self.stats["dropped_queue_full"] += 1

    def _pump(self, s: _Session) -> None:
        cl = s.client
        if cl is None or cl.dead:
            return
        while s.queue and len(s.inflight) < self.max_inflight:
            topic_b, payload, q = s.queue.popleft()
            pid = s.new_id()
            s.inflight[pid] = [topic_b, payload, q, 0]
            self._send(cl, _publish_packet(topic_b, payload, q, False, pid))
