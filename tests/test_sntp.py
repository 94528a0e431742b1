"""SNTP client against an RFC 4330 responder running in this test (UDP on 127.0.0.1).

The responder answers with a distinctive, fixed time so that the test can
tell the server's answer from the local clock. Mongoose sets its global clock
(``mg_boot_timestamp_ms``) from every good reply; the fixture puts it back so
that later TLS tests still see the real time.
"""
import time

import pytest

from conftest import pump
from mongoose_py import (
    MG_EV_CLOSE, MG_EV_CONNECT, MG_EV_ERROR, MG_EV_SNTP_TIME, Connection, Manager, _ffi,
)
from netutil import UdpResponder, silent_udp_port, sntp_reply

LIB = _ffi.lib
FAKE_EPOCH_MS = 1000000000250   # 2001-09-09T01:46:40.250Z: nowhere near the local clock


def good_reply(request, epoch_ms=FAKE_EPOCH_MS):
    return sntp_reply(request, epoch_ms)


@pytest.fixture
def responder():
    made = []
    saved = LIB.mg_boot_timestamp_ms

    def start(reply=good_reply):
        r = UdpResponder(reply)
        made.append(r)
        return r

    yield start
    for r in made:
        r.close()
    LIB.mg_boot_timestamp_ms = saved


def run_sntp(responder_port, timeout=5.0, **kw):
    events = []

    def handler(conn, ev, data):
        if ev in (MG_EV_SNTP_TIME, MG_EV_ERROR, MG_EV_CLOSE, MG_EV_CONNECT):
            events.append((ev, data))

    with Manager() as mgr:
        mgr.sntp_connect("udp://127.0.0.1:%d" % responder_port, handler, **kw)
        pump(mgr, lambda: any(ev == MG_EV_CLOSE for ev, _ in events), timeout=timeout)
    return events


def test_time_is_what_the_server_sent(responder):
    r = responder()
    events = run_sntp(r.port)
    times = [d for ev, d in events if ev == MG_EV_SNTP_TIME]
    assert len(times) == 1, events
    # Mongoose adds half the round trip (RFC 4330 §5): within a second of ours.
    assert isinstance(times[0], int)
    assert FAKE_EPOCH_MS - 2 <= times[0] < FAKE_EPOCH_MS + 1000  # -2: NTP fractions truncate
    # The request was a well-formed client request (mode 3, version 4, 48 bytes).
    assert len(r.requests) == 1
    req = r.requests[0]
    assert len(req) == 48 and req[0] & 7 == 3 and (req[0] >> 3) & 7 == 4
    # The connection closes after its one reply.
    assert events[-1][0] == MG_EV_CLOSE


def test_mongoose_clock_follows_the_reply(responder):
    r = responder()
    run_sntp(r.port)
    now = LIB.mg_boot_timestamp_ms + LIB.mg_millis()
    assert abs(now - FAKE_EPOCH_MS) < 5000


def test_on_sntp_time_hook(responder):
    r = responder(lambda req: good_reply(req, 1700000000123))
    got = []

    class Clock(Connection):
        def on_sntp_time(self, epoch_ms):
            got.append(epoch_ms)

        def on_close(self):
            got.append("closed")

    with Manager() as mgr:
        conn = mgr.sntp_connect("udp://127.0.0.1:%d" % r.port, connection_class=Clock)
        assert isinstance(conn, Clock)
        pump(mgr, lambda: "closed" in got, timeout=5)
    assert len(got) == 2 and got[1] == "closed", got
    assert 1700000000123 - 2 <= got[0] < 1700000000123 + 1000


def test_sntp_request_sends_another_query(responder):
    """``conn.sntp_request()`` sends a request of its own (Mongoose sends the
    first one on connect)."""
    r = responder(lambda req: None)  # never answers: count requests only
    sent = []

    class Asker(Connection):
        def on_connect(self):
            self.sntp_request()
            sent.append(True)

    with Manager() as mgr:
        mgr.sntp_connect("udp://127.0.0.1:%d" % r.port, connection_class=Asker)
        pump(mgr, lambda: len(r.requests) >= 2, timeout=5)
    assert sent == [True]
    assert len(r.requests) == 2
    assert all(len(q) == 48 and q[0] & 7 == 3 for q in r.requests)


@pytest.mark.parametrize("name, reply", [
    ("short", lambda req: good_reply(req)[:20]),
    ("empty", lambda req: b""),
    ("client mode", lambda req: bytes([(4 << 3) | 3]) + good_reply(req)[1:]),
    ("control mode", lambda req: bytes([(4 << 3) | 6]) + good_reply(req)[1:]),
    ("kiss of death", lambda req: good_reply(req)[:1] + b"\0" + good_reply(req)[2:]),
    ("version 1", lambda req: bytes([(1 << 3) | 4]) + good_reply(req)[1:]),
    ("garbage", lambda req: bytes(range(256)) * 2),
])
def test_malformed_replies_give_no_time_and_no_crash(responder, name, reply, caplog):
    r = responder(reply)
    events = run_sntp(r.port)
    assert r.requests, "the client never asked"
    assert [d for ev, d in events if ev == MG_EV_SNTP_TIME] == [], (name, events)
    assert events[-1][0] == MG_EV_CLOSE  # the connection ends, the process lives


def test_no_answer_times_out_and_closes(responder):
    """Mongoose gives an SNTP query 3 s, then closes the connection."""
    r = responder(lambda req: None)
    start = time.monotonic()
    events = run_sntp(r.port, timeout=8)
    assert [ev for ev, _ in events if ev == MG_EV_SNTP_TIME] == []
    assert events and events[-1][0] == MG_EV_CLOSE
    assert time.monotonic() - start < 8


def test_sntp_through_dns_name_needs_resolver():
    """A host name goes through the Manager's resolver: with a resolver that
    never answers, the result is an MG_EV_ERROR, not a hang or a crash."""
    events = []
    with silent_udp_port() as dead, Manager(dns="udp://127.0.0.1:%d" % dead, dns_timeout_ms=300) as mgr:
        mgr.sntp_connect("udp://time.invalid:123",
                         lambda c, ev, d: events.append((ev, d)) if ev in (MG_EV_ERROR, MG_EV_CLOSE) else None)
        pump(mgr, lambda: any(ev == MG_EV_CLOSE for ev, _ in events), timeout=5)
    errors = [d for ev, d in events if ev == MG_EV_ERROR]
    assert errors and "DNS" in errors[0], events
