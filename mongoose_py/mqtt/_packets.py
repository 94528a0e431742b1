"""MQTT 3.1.1 packet encoding/decoding and topic matching, shared by Broker and MqttClient."""
from __future__ import annotations

import logging
import struct
from typing import Any, Dict

from .._ffi import ffi, lib
from .._mqtt import split_packet_header


log = logging.getLogger("mongoose_py.mqtt")

CONNACK_ACCEPTED = 0
CONNACK_BAD_PROTOCOL = 1
CONNACK_ID_REJECTED = 2
CONNACK_UNAVAILABLE = 3
CONNACK_BAD_CREDENTIALS = 4
CONNACK_NOT_AUTHORIZED = 5

_CONNECT, _CONNACK, _PUBLISH, _PUBACK = 1, 2, 3, 4
_PUBREC, _PUBREL, _PUBCOMP, _SUBSCRIBE = 5, 6, 7, 8
_SUBACK, _UNSUBSCRIBE, _UNSUBACK, _PINGREQ = 9, 10, 11, 12
_PINGRESP, _DISCONNECT = 13, 14
_E_ACCEPT = lib.MG_EV_ACCEPT
_F_CLOSING, _F_DRAINING = lib.MGPY_F_CLOSING, lib.MGPY_F_DRAINING
_PINGRESP_PKT = b"\xd0\x00"
_pack_u16 = struct.Struct(">H").pack
_unpack_u16 = struct.Struct(">H").unpack_from
_mg_send = lib.mg_send
_unpack = ffi.unpack


class _Malformed(ValueError):
    pass


def _varint(n: int) -> bytes:
    if n < 128:
        return _SMALL[n]
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


_SMALL = [bytes((i,)) for i in range(128)]


def _publish_packet(topic_b: bytes, payload: bytes, qos: int, retain: bool, pid: int = 0,
                    dup: bool = False) -> bytes:
    b0 = 0x30 | (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    if qos:
        return b"".join((bytes((b0,)), _varint(4 + len(topic_b) + len(payload)), _pack_u16(len(topic_b)),
                         topic_b, _pack_u16(pid), payload))
    return b"".join((bytes((b0,)), _varint(2 + len(topic_b) + len(payload)), _pack_u16(len(topic_b)),
                     topic_b, payload))


def _text(b: bytes) -> str:
    """Strict MQTT UTF-8 (no surrogates: Python's decoder refuses them; no U+0000)."""
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError:
        raise _Malformed("invalid UTF-8")
    if "\0" in s:
        raise _Malformed("U+0000 in a string")
    return s


class _Reader:
    __slots__ = ("b", "i")

    def __init__(self, b: bytes, i: int = 0) -> None:
        self.b, self.i = b, i

    def u8(self) -> int:
        if self.i >= len(self.b):
            raise _Malformed("truncated packet")
        v = self.b[self.i]
        self.i += 1
        return v

    def u16(self) -> int:
        if self.i + 2 > len(self.b):
            raise _Malformed("truncated packet")
        v = _unpack_u16(self.b, self.i)[0]
        self.i += 2
        return v

    def blob(self) -> bytes:
        n = self.u16()
        if self.i + n > len(self.b):
            raise _Malformed("truncated packet")
        v = self.b[self.i:self.i + n]
        self.i += n
        return v

    def text(self) -> str:
        return _text(self.blob())

    def left(self) -> int:
        return len(self.b) - self.i


def _body(dgram: bytes) -> _Reader:
    try:
        hlen, _ = split_packet_header(dgram)
    except ValueError as exc:
        raise _Malformed(str(exc))
    if hlen == 0:
        raise _Malformed("truncated header")
    return _Reader(dgram, hlen)


def valid_topic_filter(f: str) -> bool:
    """``+`` only as a whole level, ``#`` only as the whole last level."""
    if not f:
        return False
    levels = f.split("/")
    last = len(levels) - 1
    for i, lv in enumerate(levels):
        if "#" in lv and (lv != "#" or i != last):
            return False
        if "+" in lv and lv != "+":
            return False
    return True


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic matching; wildcards at the first level skip ``$``-topics."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    f = topic_filter.split("/")
    t = topic.split("/")
    for i, lv in enumerate(f):
        if lv == "#":
            return True
        if i >= len(t):
            return False
        if lv != "+" and lv != t[i]:
            return False
    return len(f) == len(t)


class _Node:
    __slots__ = ("children", "subs")

    def __init__(self) -> None:
        self.children: Dict[str, "_Node"] = {}
        self.subs: Dict["Any", int] = {}


class _Trie:
    """Subscriptions by topic-filter level; ``match`` walks only the branches
    a topic can reach."""

    def __init__(self) -> None:
        self.root = _Node()

    def add(self, f: str, session, qos: int) -> None:
        node = self.root
        for lv in f.split("/"):
            nxt = node.children.get(lv)
            if nxt is None:
                nxt = node.children[lv] = _Node()
            node = nxt
        node.subs[session] = qos

    def remove(self, f: str, session) -> None:
        path = [self.root]
        levels = f.split("/")
        for lv in levels:
            nxt = path[-1].children.get(lv)
            if nxt is None:
                return
            path.append(nxt)
        path[-1].subs.pop(session, None)
        for i in range(len(levels), 0, -1):  # prune empty branches
            node = path[i]
            if node.subs or node.children:
                break
            del path[i - 1].children[levels[i - 1]]

    def match(self, topic: str) -> Dict["Any", int]:
        out: Dict[Any, int] = {}
        levels = topic.split("/")
        n = len(levels)
        dollar = topic.startswith("$")

        def collect(subs):
            for s, q in subs.items():
                if out.get(s, -1) < q:
                    out[s] = q

        def walk(node, i):
            ch = node.children
            if i == n:
                if node.subs:
                    collect(node.subs)
                h = ch.get("#")
                if h is not None and h.subs:
                    collect(h.subs)
                return
            if i or not dollar:
                h = ch.get("#")
                if h is not None and h.subs:
                    collect(h.subs)
                p = ch.get("+")
                if p is not None:
                    walk(p, i + 1)
            c = ch.get(levels[i])
            if c is not None:
                walk(c, i + 1)

        walk(self.root, 0)
        return out
