"""Hostile input to the Broker: it closes the offending client, keeps serving
the others, and no handler ever raises (the Manager's error_handler stays
empty: RunningBroker.stop() asserts it)."""
import socket
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import wait_for
from mqtt_peers import RawMqtt, RunningBroker, connect_pkt, packet, publish_pkt, s16, subscribe_pkt


@pytest.fixture(scope="module")
def rb():
    b = RunningBroker({"connect_timeout": 1.0, "max_packet_size": 64 * 1024})
    yield b
    b.stop()


@pytest.fixture(scope="module")
def healthy(rb):
    """A well-behaved client that must keep working through every attack."""
    c = RawMqtt(rb.port)
    assert c.connect(client_id="healthy") == (0, 0)
    c.send(subscribe_pkt(1, ("canary/#", 1)))
    assert c.read()[0] == 0x90
    yield c
    c.close()


def still_serving(rb, healthy):
    # every attacker's connection has been fully processed and closed...
    assert wait_for(lambda: len(rb.broker._clients) == 1, 5), rb.broker._clients
    # ...and the healthy client is still served
    healthy.send(b"\xc0\x00")
    assert healthy.read() == (0xD0, b"")
    assert "healthy" in rb.broker.clients
    return True


def attacker(rb, with_connect=True, client_id="evil"):
    c = RawMqtt(rb.port, timeout=5)
    if with_connect:
        assert c.connect(client_id=client_id) == (0, 0)
    return c


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(min_size=1, max_size=300), st.booleans())
def test_random_bytes(rb, healthy, data, with_connect):
    c = attacker(rb, with_connect)
    try:
        c.sock.sendall(data)
    except OSError:
        pass  # the broker may already have closed on the first bytes
    c.close()
    assert still_serving(rb, healthy)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 15), st.integers(0, 15), st.binary(max_size=64))
def test_random_packets_with_valid_framing(rb, healthy, ptype, flags, body):
    c = attacker(rb)
    try:
        c.sock.sendall(packet((ptype << 4) | flags, body) + b"\xc0\x00")
    except OSError:
        pass
    c.close()
    assert still_serving(rb, healthy)


def test_truncated_remaining_length(rb, healthy):
    c = attacker(rb)
    c.send(b"\x30\xff\xff\xff\xff\x01")  # a 5th length byte: malformed
    assert c.closed_by_peer(3)
    c2 = attacker(rb)
    c2.send(b"\x30\xff\xff")  # cut in the middle of the length
    c2.close()
    c3 = RawMqtt(rb.port)
    c3.send(b"\x10\x80")  # CONNECT whose length never finishes: connect timeout
    assert c3.closed_by_peer(4)
    assert still_serving(rb, healthy)


@pytest.mark.parametrize("with_connect", [True, False])
def test_256_mib_remaining_length_is_refused_at_the_header(rb, healthy, with_connect):
    c = attacker(rb, with_connect, client_id="big%d" % with_connect)
    before = rb.broker.stats["oversize"]
    c.send(b"\x30\xff\xff\xff\x7f" + b"x" * 1000)  # 268435455 bytes announced
    assert c.closed_by_peer(3)
    assert rb.broker.stats["oversize"] == before + 1
    assert still_serving(rb, healthy)


def test_oversize_packet_is_closed_and_not_routed(rb, healthy):
    c = attacker(rb, client_id="fat")
    payload = b"y" * (64 * 1024)
    try:
        c.send(publish_pkt("canary/fat", payload, qos=0))
    except OSError:
        pass
    assert c.closed_by_peer(3)
    assert still_serving(rb, healthy)  # the PINGRESP is the next packet: nothing was routed


@pytest.mark.parametrize("topic", [b"\xff\xfe", b"canary/\xed\xa0\x80", b"canary/\xc0\xaf", b"canary/\x00x",
                                   b"canary/+", b"canary/#", b""])
def test_bad_publish_topics_close_the_client(rb, healthy, topic):
    c = attacker(rb, client_id="topic")
    c.send(packet(0x32, struct.pack(">H", len(topic)) + topic + b"\x00\x01payload"))
    assert c.closed_by_peer(3)
    assert still_serving(rb, healthy)  # and the canary subscriber got nothing


@pytest.mark.parametrize("pkt", [
    subscribe_pkt(1, (b"\xff", 0)),                                  # invalid UTF-8 filter
    subscribe_pkt(1, (b"a/\xed\xa0\x80", 0)),                        # UTF-16 surrogate in a filter
    packet(0x82, struct.pack(">H", 1) + s16("a") + b"\x03"),       # QoS 3
    packet(0x82, struct.pack(">H", 1) + s16("a") + b"\x41"),       # reserved bits
    packet(0x82, struct.pack(">H", 1)),                            # no filters
    packet(0x80, struct.pack(">H", 1) + s16("a") + b"\x00"),       # wrong fixed-header flags
    packet(0xA2, struct.pack(">H", 1)),                            # UNSUBSCRIBE without filters
    packet(0x36, s16("canary/q3") + b"\x00\x01x"),                # PUBLISH QoS 3
    packet(0x32, s16("canary/id0") + b"\x00\x00x"),               # QoS 1 with packet id 0
    connect_pkt(client_id="again"),                                # a second CONNECT
    b"\x20\x02\x00\x00",                                           # CONNACK from a client
    b"\xf0\x00",                                                   # reserved type 15
    b"\x00\x00",                                                   # reserved type 0
])
def test_protocol_violations_close_the_client(rb, healthy, pkt):
    c = attacker(rb, client_id="violator")
    c.send(pkt)
    assert c.closed_by_peer(3)
    assert still_serving(rb, healthy)


@pytest.mark.parametrize("pkt", [
    publish_pkt("canary/early", b"x"),                      # PUBLISH before CONNECT: not routed
    b"\xc0\x00",                                           # PINGREQ before CONNECT
    connect_pkt(client_id=b"\xed\xb3\xbf"),                        # surrogate in the client id
    connect_pkt(client_id=b"\xff\xfe"),                            # invalid UTF-8 client id
    packet(0x10, s16("MQTT") + b"\x04\x03\x00\x3c" + s16("x")),   # reserved CONNECT flag
    packet(0x10, s16("MQTT") + b"\x04\x1a\x00\x3c" + s16("x")),   # will QoS 3
    packet(0x10, s16("HTTP") + b"\x04\x02\x00\x3c" + s16("x")),   # unknown protocol
    packet(0x10, s16("MQTT") + b"\x04\x02\x00"),                  # truncated
    packet(0x10, s16("MQTT") + b"\x04\x02\x00\x3c" + s16("x") + b"junk"),  # bytes after the payload
])
def test_bad_connect(rb, healthy, pkt):
    c = RawMqtt(rb.port)
    c.send(pkt)
    assert c.closed_by_peer(3)
    assert still_serving(rb, healthy)


def test_unsupported_protocol_levels_get_connack_1(rb, healthy):
    for level in (5, 6, 2):
        c = RawMqtt(rb.port)
        c.send(connect_pkt(client_id="v%d" % level, level=level))
        assert c.read() == (0x20, b"\x00\x01")
        assert c.closed_by_peer(3)
    assert still_serving(rb, healthy)


def test_silent_connection_closed_after_connect_timeout(rb, healthy):
    s = socket.create_connection(("127.0.0.1", rb.port), timeout=5)
    t0 = time.monotonic()
    assert s.recv(10) == b""  # closed by the broker, never answered
    assert 0.8 < time.monotonic() - t0 < 4
    s.close()
    assert still_serving(rb, healthy)


def test_empty_client_id_with_persistent_session_is_rejected(rb, healthy):
    c = RawMqtt(rb.port)
    c.send(connect_pkt(client_id="", clean=False))
    assert c.read() == (0x20, b"\x00\x02")
    assert c.closed_by_peer(3)


def test_slow_subscriber_does_not_stall_others(healthy):
    b = RunningBroker({"max_send_buffer": 256 * 1024})
    try:
        slow = RawMqtt(b.port)
        slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(client_id="slow")
        slow.send(subscribe_pkt(1, ("flood", 0)))
        assert slow.read()[0] == 0x90
        fast = RawMqtt(b.port)
        fast.connect(client_id="fast")
        fast.send(subscribe_pkt(1, ("flood", 0)))
        assert fast.read()[0] == 0x90
        pub = RawMqtt(b.port)
        pub.connect(client_id="pub")
        chunk = b"z" * 16000
        n = 200  # 3.2 MB for each subscriber; the slow one never reads
        for _ in range(n):
            pub.send(publish_pkt("flood", chunk))
        got = 0
        deadline = time.monotonic() + 10
        while got < n and time.monotonic() < deadline:
            b0, body = fast.read()
            assert b0 == 0x30
            got += 1
        assert got == n
        assert b.broker.stats["dropped_slow"] > 0
        assert b.broker.sessions["slow"].dropped > 0
    finally:
        b.stop()
