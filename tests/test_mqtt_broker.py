"""mongoose_py.mqtt.Broker against real clients: paho-mqtt and raw sockets."""
import socket
import ssl
import threading
import time

import paho.mqtt.client as paho
import pytest
from hypothesis import assume, given, settings, strategies as st

from conftest import wait_for
from mqtt_peers import RawMqtt, RunningBroker, make_ca, publish_pkt, subscribe_pkt
from mongoose_py import TlsOpts
from mongoose_py.mqtt import Broker, _Trie, topic_matches, valid_topic_filter


@pytest.fixture
def broker():
    rb = RunningBroker()
    yield rb
    rb.stop()


class Paho:
    """A paho client on its own network thread that records what it gets."""

    def __init__(self, port, client_id="", clean=True, will=None, auth=None, keepalive=60, tls_ca=None,
                 connect=True):
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
        self.msgs = []
        self.rc = None
        self.flags = None
        self.disconnected = threading.Event()
        self.subacked = []
        self.c.on_message = lambda c, u, m: self.msgs.append((m.topic, m.payload, m.qos, m.retain))
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = lambda c, u, f, rc, p=None: self.disconnected.set()
        self.c.on_subscribe = lambda c, u, mid, rcs, p=None: self.subacked.append((mid, [int(x.value) for x in rcs]))
        if will:
            self.c.will_set(*will)
        if auth:
            self.c.username_pw_set(*auth)
        if tls_ca:
            self.c.tls_set(ca_certs=tls_ca)
        self.port, self.keepalive = port, keepalive
        if connect:
            self.connect()

    def _on_connect(self, c, u, flags, rc, props=None):
        self.rc = int(rc.value) if hasattr(rc, "value") else int(rc)
        self.flags = flags

    def connect(self, wait=True):
        self.c.connect("127.0.0.1", self.port, keepalive=self.keepalive)
        self.c.loop_start()
        if wait:
            assert wait_for(lambda: self.rc is not None, 5)

    def sub(self, *topics):
        n = len(self.subacked)
        r, mid = self.c.subscribe(list(topics))
        assert wait_for(lambda: len(self.subacked) > n, 5)
        return self.subacked[-1][1]

    def pub(self, topic, payload, qos=0, retain=False):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(5)
        assert info.is_published()

    def close(self):
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()


@pytest.fixture
def clients():
    made = []

    def make(*a, **kw):
        p = Paho(*a, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def test_three_lines(clients):
    b = Broker("mqtt://127.0.0.1:0")
    t = threading.Thread(target=b.run, kwargs={"poll_ms": 10}, daemon=True)
    t.start()
    try:
        s = clients(b.port)
        assert s.rc == 0
        s.sub(("x", 0))
        clients(b.port).pub("x", b"hello")
        assert wait_for(lambda: s.msgs, 5)
        assert s.msgs[0][:2] == ("x", b"hello")
    finally:
        b.manager.stop()
        t.join(5)
    assert not t.is_alive() and b.manager.closed


def test_pub_sub_qos_0_1_2(broker, clients):
    s = clients(broker.port, client_id="s")
    assert s.sub(("q/#", 2)) == [2]
    p = clients(broker.port, client_id="p")
    for q in (0, 1, 2):
        p.pub("q/%d" % q, b"m%d" % q, qos=q)
    assert wait_for(lambda: len(s.msgs) == 3, 5)
    time.sleep(0.2)
    assert sorted(s.msgs) == [("q/0", b"m0", 0, False), ("q/1", b"m1", 1, False), ("q/2", b"m2", 2, False)]
    assert set(broker.broker.clients) == {"s", "p"}


def test_granted_qos_caps_delivery(broker, clients):
    s = clients(broker.port)
    assert s.sub(("a", 0), ("b", 1)) == [0, 1]
    p = clients(broker.port)
    p.pub("a", b"x", qos=2)
    p.pub("b", b"y", qos=2)
    assert wait_for(lambda: len(s.msgs) == 2, 5)
    assert sorted(m[:3] for m in s.msgs) == [("a", b"x", 0), ("b", b"y", 1)]


def test_wildcards_and_dollar_topics(broker, clients):
    plus, hash_, sys_, exact = clients(broker.port), clients(broker.port), clients(broker.port), clients(broker.port)
    plus.sub(("a/+/c", 0), ("+/x", 0))
    hash_.sub(("#", 0))
    sys_.sub(("$SYS/#", 0))
    exact.sub(("a/b", 0))
    p = clients(broker.port)
    for t in ("a/b/c", "a/b", "a/b/c/d", "$SYS/x", "q/x", "a//c"):
        p.pub(t, t.encode(), qos=1)
    assert wait_for(lambda: len(hash_.msgs) == 5 and len(sys_.msgs) == 1, 5)
    time.sleep(0.2)
    topics = lambda c: sorted(m[0] for m in c.msgs)  # noqa: E731
    assert topics(plus) == ["a//c", "a/b/c", "q/x"]
    assert topics(hash_) == ["a//c", "a/b", "a/b/c", "a/b/c/d", "q/x"]  # no $SYS
    assert topics(sys_) == ["$SYS/x"]
    assert topics(exact) == ["a/b"]


def test_invalid_filter_gets_failure_code(broker):
    raw = RawMqtt(broker.port)  # paho refuses to send these
    raw.connect()
    raw.send(subscribe_pkt(9, ("ok/#", 1), ("bad/#/x", 1), ("a+", 0), ("#", 2)))
    assert raw.read() == (0x90, b"\x00\x09\x01\x80\x80\x02")
    raw.close()


def test_retained_set_replace_clear(broker, clients):
    p = clients(broker.port)
    p.pub("r/1", b"first", qos=1, retain=True)
    p.pub("r/1", b"second", qos=1, retain=True)
    p.pub("r/2", b"other", qos=0, retain=True)
    s = clients(broker.port)
    s.sub(("r/+", 1))
    assert wait_for(lambda: len(s.msgs) == 2, 5)
    assert sorted(s.msgs) == [("r/1", b"second", 1, True), ("r/2", b"other", 0, True)]
    p.pub("r/1", b"", qos=1, retain=True)   # clear
    assert wait_for(lambda: len(s.msgs) == 3, 5)  # live subscribers still get it, retain flag 0
    assert s.msgs[2] == ("r/1", b"", 1, False)
    s2 = clients(broker.port)
    s2.sub(("r/#", 1))
    assert wait_for(lambda: s2.msgs, 5)
    time.sleep(0.2)
    assert s2.msgs == [("r/2", b"other", 0, True)]
    assert set(broker.broker.retained) == {"r/2"}


def test_qos2_exactly_once_with_resend_before_pubrel(broker, clients):
    s = clients(broker.port)
    s.sub(("e/1", 2))
    raw = RawMqtt(broker.port)
    assert raw.connect(client_id="rawpub") == (0, 0)
    raw.send(publish_pkt("e/1", b"once", qos=2, pid=7))
    assert raw.read() == (0x50, b"\x00\x07")          # PUBREC
    raw.send(publish_pkt("e/1", b"once", qos=2, pid=7, dup=True))  # re-sent before PUBREL
    assert raw.read() == (0x50, b"\x00\x07")
    raw.send(b"\x62\x02\x00\x07")                      # PUBREL
    assert raw.read() == (0x70, b"\x00\x07")          # PUBCOMP
    raw.send(publish_pkt("e/1", b"twice", qos=2, pid=7))  # the id is free again: a new message
    assert raw.read() == (0x50, b"\x00\x07")
    raw.send(b"\x62\x02\x00\x07")
    assert raw.read() == (0x70, b"\x00\x07")
    assert wait_for(lambda: len(s.msgs) == 2, 5)
    time.sleep(0.3)
    assert [m[:3] for m in s.msgs] == [("e/1", b"once", 2), ("e/1", b"twice", 2)]
    raw.close()


def test_qos2_to_raw_subscriber_full_handshake(broker, clients):
    raw = RawMqtt(broker.port)
    raw.connect(client_id="rawsub")
    raw.send(subscribe_pkt(1, ("h/1", 2)))
    assert raw.read() == (0x90, b"\x00\x01\x02")
    clients(broker.port).pub("h/1", b"data", qos=2)
    b0, body = raw.read()
    assert b0 & 0xF6 == 0x34  # PUBLISH QoS 2
    pid = body[5:7]
    assert body[:5] == b"\x00\x03h/1" and body[7:] == b"data"
    raw.send(b"\x50\x02" + pid)                  # PUBREC
    assert raw.read() == (0x62, pid)             # PUBREL
    raw.send(b"\x70\x02" + pid)                  # PUBCOMP
    assert wait_for(lambda: not broker.broker.sessions["rawsub"].inflight, 5)
    raw.close()


def test_will_on_unclean_disconnect_only(broker, clients):
    w = clients(broker.port)
    w.sub(("will/#", 1))
    raw = RawMqtt(broker.port)
    raw.connect(client_id="dies", will=("will/dies", b"bye", 1, False))
    raw.close()  # network drop, no DISCONNECT
    assert wait_for(lambda: w.msgs, 5)
    assert w.msgs[0][:3] == ("will/dies", b"bye", 1)
    polite = clients(broker.port, will=("will/polite", b"never", 1, False))
    polite.close()  # DISCONNECT: the will is dropped
    time.sleep(0.4)
    assert [m[0] for m in w.msgs] == ["will/dies"]


def test_retained_will(broker, clients):
    raw = RawMqtt(broker.port)
    raw.connect(client_id="rw", will=("status/rw", b"offline", 0, True))
    raw.close()
    assert wait_for(lambda: "status/rw" in broker.broker.retained, 5)
    s = clients(broker.port)
    s.sub(("status/+", 0))
    assert wait_for(lambda: s.msgs, 5)
    assert s.msgs[0] == ("status/rw", b"offline", 0, True)


def test_keepalive_timeout_closes_and_publishes_will(broker, clients):
    w = clients(broker.port)
    w.sub(("ka/#", 0))
    raw = RawMqtt(broker.port)
    raw.connect(client_id="sleepy", keepalive=1, will=("ka/sleepy", b"timeout", 0, False))
    t0 = time.monotonic()
    assert raw.closed_by_peer(5)
    assert 1.2 < time.monotonic() - t0 < 4.0
    assert wait_for(lambda: w.msgs, 5)
    assert w.msgs[0][:2] == ("ka/sleepy", b"timeout")


def test_pingreq_keeps_client_alive(broker):
    raw = RawMqtt(broker.port)
    raw.connect(client_id="pinger", keepalive=1)
    for _ in range(4):
        time.sleep(0.5)
        raw.send(b"\xc0\x00")
        assert raw.read() == (0xD0, b"")
    assert "pinger" in broker.broker.clients
    raw.close()


def test_paho_keepalive_pings_are_answered(broker, clients):
    c = clients(broker.port, keepalive=1)
    time.sleep(2.5)
    assert not c.disconnected.is_set()
    c.sub(("k", 0))
    c.pub("k", b"alive")
    assert wait_for(lambda: c.msgs, 5)


def test_auth_callback(clients):
    seen = []

    def auth(client_id, username, password):
        seen.append((client_id, username, password))
        return username == "alice" and password == b"s3cret"

    rb = RunningBroker({"auth": auth})
    try:
        ok = clients(rb.port, client_id="good", auth=("alice", "s3cret"))
        assert ok.rc == 0
        bad = clients(rb.port, client_id="bad", auth=("alice", "wrong"))
        assert bad.rc == 0x87  # paho reports CONNACK 5 as reason code 0x87 "Not authorized"
        anon = clients(rb.port, client_id="anon")
        assert anon.rc == 0x87
        assert ("good", "alice", b"s3cret") in seen and ("anon", None, None) in seen
        assert wait_for(lambda: set(rb.broker.clients) == {"good"}, 5)
    finally:
        rb.stop()


def test_auth_returning_a_connack_code(clients):
    rb = RunningBroker({"auth": lambda cid, u, p: 4})
    try:
        raw = RawMqtt(rb.port)
        assert raw.connect(username="x", password=b"y") == (0, 4)
        assert raw.closed_by_peer(5)
    finally:
        rb.stop()


def test_session_takeover(broker, clients):
    first = clients(broker.port, client_id="same")
    second = clients(broker.port, client_id="same")
    assert second.rc == 0
    assert first.disconnected.wait(5)
    first.c.reconnect_delay_set(60, 60)  # keep paho from fighting back
    assert wait_for(lambda: broker.broker.clients == ["same"], 5)
    second.sub(("tk", 0))
    second.pub("tk", b"still here")
    assert wait_for(lambda: second.msgs, 5)


def test_persistent_session_queues_qos1_while_offline(broker, clients):
    s = clients(broker.port, client_id="durable", clean=False)
    assert s.flags.session_present is False
    s.sub(("d/#", 1))
    s.close()
    assert wait_for(lambda: "durable" not in broker.broker.clients, 5)
    p = clients(broker.port)
    p.pub("d/1", b"while away 1", qos=1)
    p.pub("d/2", b"while away 0", qos=0)   # QoS 0 is not queued for offline sessions
    p.pub("d/3", b"while away 2", qos=1)
    s2 = clients(broker.port, client_id="durable", clean=False)
    assert s2.flags.session_present is True
    assert wait_for(lambda: len(s2.msgs) == 2, 5)
    assert [m[:2] for m in s2.msgs] == [("d/1", b"while away 1"), ("d/3", b"while away 2")]
    # clean_session=1 discards it
    s2.close()
    s3 = clients(broker.port, client_id="durable", clean=True)
    assert s3.flags.session_present is False
    assert "durable" in broker.broker.sessions and not broker.broker.sessions["durable"].subs


def test_unacked_qos1_is_resent_with_dup_on_resume(broker, clients):
    raw = RawMqtt(broker.port)
    raw.connect(client_id="resume", clean=False)
    raw.send(subscribe_pkt(1, ("u/1", 1)))
    assert raw.read()[0] == 0x90
    clients(broker.port).pub("u/1", b"ack me", qos=1)
    b0, body = raw.read()
    assert b0 == 0x32
    raw.close()  # no PUBACK
    assert wait_for(lambda: "resume" not in broker.broker.clients, 5)
    raw2 = RawMqtt(broker.port)
    assert raw2.connect(client_id="resume", clean=False) == (1, 0)
    b0, body2 = raw2.read()
    assert b0 == 0x3A and body2 == body  # DUP + same id + same payload
    raw2.send(b"\x40\x02" + body2[5:7])
    assert wait_for(lambda: not broker.broker.sessions["resume"].inflight, 5)
    raw2.close()


def test_unsubscribe(broker, clients):
    s = clients(broker.port)
    s.sub(("u/#", 0))
    r, mid = s.c.unsubscribe("u/#")
    time.sleep(0.3)
    clients(broker.port).pub("u/x", b"nope", qos=1)
    time.sleep(0.3)
    assert s.msgs == []


def test_broker_publish_from_another_thread(broker, clients):
    s = clients(broker.port)
    s.sub(("inj/#", 1))
    broker.broker.publish("inj/x", "from the broker", qos=1)
    assert wait_for(lambda: s.msgs, 5)
    assert s.msgs[0][:3] == ("inj/x", b"from the broker", 1)
    with pytest.raises(ValueError):
        broker.broker.publish("bad/#", b"")


def test_on_message_hook_can_drop(clients):
    class Filtering(Broker):
        def on_message(self, client_id, topic, payload, qos, retain):
            return not topic.startswith("secret/")

    rb = RunningBroker(broker_class=Filtering)
    try:
        s = clients(rb.port)
        s.sub(("#", 0))
        p = clients(rb.port)
        p.pub("secret/x", b"no", qos=1)
        p.pub("public/x", b"yes", qos=1)
        assert wait_for(lambda: s.msgs, 5)
        time.sleep(0.2)
        assert [m[0] for m in s.msgs] == ["public/x"]
    finally:
        rb.stop()


def test_mqtts_with_paho(tmp_path, clients):
    ca = make_ca(tmp_path)
    rb = RunningBroker(url="mqtts://127.0.0.1:0", tls=TlsOpts(cert=ca["server.pem"], key=ca["server.key"]))
    try:
        s = clients(rb.port, tls_ca=ca["ca.pem"])
        assert s.rc == 0
        s.sub(("tls/#", 1))
        s.pub("tls/x", b"encrypted", qos=1)
        assert wait_for(lambda: s.msgs, 5)
        assert s.msgs[0][:2] == ("tls/x", b"encrypted")
        # a plaintext client gets nothing out of the TLS port
        raw = socket.create_connection(("127.0.0.1", rb.port), timeout=1)
        raw.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
        try:
            data = raw.recv(100)
        except (ConnectionResetError, socket.timeout):
            data = b""
        assert not data.startswith(b"\x20\x02")
        raw.close()
        ctx = ssl.create_default_context(cafile=ca["ca.pem"])
        with socket.create_connection(("127.0.0.1", rb.port), timeout=5) as sock:
            with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
                assert tls.version() == "TLSv1.3"
    finally:
        rb.stop()


# ---- topic matching, checked against a reference on generated input ----

LEVEL = st.sampled_from(["a", "b", "", "$SYS", "c d", "é"])


def ref_match(f, t):
    fl, tl = f.split("/"), t.split("/")
    if t.startswith("$") and fl[0] in ("+", "#"):
        return False
    i = 0
    for i, lv in enumerate(fl):
        if lv == "#":
            return True
        if i >= len(tl) or (lv != "+" and lv != tl[i]):
            return False
    return len(fl) == len(tl)


@settings(max_examples=150, deadline=None)
@given(st.lists(LEVEL, min_size=1, max_size=4),
       st.lists(st.one_of(LEVEL, st.just("+")), min_size=1, max_size=4), st.booleans())
def test_trie_agrees_with_topic_matches(topic_levels, filter_levels, hashed):
    topic = "/".join(topic_levels)
    f = "/".join(filter_levels + (["#"] if hashed else []))
    assume(topic and f)  # empty topics/filters are invalid (refused elsewhere)
    assert valid_topic_filter(f)
    trie = _Trie()
    trie.add(f, "s", 1)
    expected = ref_match(f, topic)
    assert topic_matches(f, topic) == expected
    assert (trie.match(topic) == {"s": 1}) == expected
    trie.remove(f, "s")
    assert trie.match(topic) == {} and not trie.root.children
