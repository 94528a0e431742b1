"""Interoperability: Debian's mosquitto_pub / mosquitto_sub against our
Broker (plain, auth, will, TLS), and our MqttClient against our Broker."""
import os
import signal
import subprocess

import pytest

from conftest import pump, require_tool, wait_for
from mqtt_peers import RunningBroker, make_ca
from mongoose_py import Manager, TlsOpts
from mongoose_py.mqtt import MqttClient


@pytest.fixture
def broker():
    rb = RunningBroker()
    yield rb
    rb.stop()


def sub_proc(procs, port, *args):
    exe = require_tool("mosquitto_sub")
    return procs([exe, "-h", "127.0.0.1", "-p", str(port), "-v"] + list(args))


def pub(port, *args, check=True):
    exe = require_tool("mosquitto_pub")
    return subprocess.run([exe, "-h", "127.0.0.1", "-p", str(port)] + list(args),
                          capture_output=True, timeout=15, check=check)


def wait_subscribed(rb, n=1):
    assert wait_for(lambda: sum(len(s.subs) for s in list(rb.broker.sessions.values())) >= n, 5)


def test_mosquitto_sub_receives_mosquitto_pub_all_qos(broker, procs):
    s = sub_proc(procs, broker.port, "-t", "i/#", "-q", "2", "-C", "3", "-W", "10")
    wait_subscribed(broker)
    for q in (0, 1, 2):
        pub(broker.port, "-t", "i/q%d" % q, "-m", "msg %d" % q, "-q", str(q))
    out, err = s.p.communicate(timeout=10)
    assert s.p.returncode == 0, err
    assert sorted(out.decode().splitlines()) == ["i/q0 msg 0", "i/q1 msg 1", "i/q2 msg 2"]


def test_retained_message_for_a_late_mosquitto_sub(broker, procs):
    pub(broker.port, "-t", "ret/a", "-m", "old", "-r", "-q", "1")
    pub(broker.port, "-t", "ret/a", "-m", "kept", "-r", "-q", "1")
    pub(broker.port, "-t", "ret/b", "-m", "gone", "-r")
    pub(broker.port, "-t", "ret/b", "-n", "-r")   # -n: empty payload clears it
    s = sub_proc(procs, broker.port, "-t", "ret/+", "-C", "1", "-W", "5", "-F", "%t %p %r")
    out, err = s.p.communicate(timeout=10)
    assert out.decode().split() == ["ret/a", "kept", "1"]


def test_mosquitto_pub_file_payload_binary_and_large(broker, procs, tmp_path):
    blob = bytes(range(256)) * 2048  # 512 KiB, every byte value
    path = tmp_path / "blob.bin"
    path.write_bytes(blob)
    s = procs([require_tool("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(broker.port),
               "-t", "big", "-C", "1", "-W", "10", "-N"])
    wait_subscribed(broker)
    pub(broker.port, "-t", "big", "-f", str(path), "-q", "1")
    out, err = s.p.communicate(timeout=10)
    assert out == blob


def test_auth_with_mosquitto_clients(procs):
    rb = RunningBroker({"auth": lambda cid, user, pw: (user, pw) == ("bob", b"pw")})
    try:
        ok = pub(rb.port, "-t", "a", "-m", "x", "-u", "bob", "-P", "pw", check=False)
        assert ok.returncode == 0, ok.stderr
        bad = pub(rb.port, "-t", "a", "-m", "x", "-u", "bob", "-P", "nope", check=False)
        assert bad.returncode != 0
        assert b"not authori" in bad.stderr.lower()
    finally:
        rb.stop()


def test_will_of_a_killed_mosquitto_sub(broker, procs):
    watcher = sub_proc(procs, broker.port, "-t", "lwt/#", "-C", "1", "-W", "10")
    victim = sub_proc(procs, broker.port, "-t", "whatever", "-i", "victim",
                      "--will-topic", "lwt/victim", "--will-payload", "died", "--will-qos", "1")
    wait_subscribed(broker, 2)
    assert wait_for(lambda: "victim" in broker.broker.clients, 5)
    os.kill(victim.p.pid, signal.SIGKILL)  # no DISCONNECT
    out, err = watcher.p.communicate(timeout=10)
    assert out.decode().strip() == "lwt/victim died"


def test_mqtt5_client_is_refused_cleanly(broker):
    r = pub(broker.port, "-V", "mqttv5", "-t", "a", "-m", "x", check=False)
    assert r.returncode != 0
    assert broker.broker.stats["bad_protocol"] == 1


def test_mosquitto_tools_over_tls(procs, tmp_path):
    ca = make_ca(tmp_path)
    rb = RunningBroker(url="mqtts://127.0.0.1:0", tls=TlsOpts(cert=ca["server.pem"], key=ca["server.key"]))
    try:
        s = sub_proc(procs, rb.port, "--cafile", ca["ca.pem"], "-t", "s/#", "-C", "1", "-W", "10")
        wait_subscribed(rb)
        pub(rb.port, "--cafile", ca["ca.pem"], "-t", "s/1", "-m", "over tls", "-q", "1")
        out, err = s.p.communicate(timeout=10)
        assert out.decode().strip() == "s/1 over tls", err
        bad = pub(rb.port, "--cafile", ca["other.pem"], "-t", "s/1", "-m", "x", check=False)
        assert bad.returncode != 0
    finally:
        rb.stop()


def test_our_client_against_our_broker_qos2_and_reconnect():
    rb = RunningBroker()
    port = rb.port
    try:
        with Manager() as mgr:
            got = []
            cl = MqttClient(mgr, "mqtt://127.0.0.1:%d" % port, client_id="ours", clean_session=False,
                            keepalive=5, backoff_min=0.05, backoff_max=0.2,
                            on_message=lambda c, t, p, q, r: got.append((t, p, q)))
            cl.subscribe("o/#", 2)
            cl.start()
            assert pump(mgr, lambda: cl.connected, 5)
            assert pump(mgr, lambda: "o/#" in rb.broker.sessions["ours"].subs, 5)
            cl.publish("o/1", b"exactly once", qos=2)
            assert pump(mgr, lambda: got and cl.inflight == 0, 5)
            # the broker drops the connection: the client comes back by itself
            rb.broker.manager._call(rb.broker._kill, rb.broker.sessions["ours"].client)
            assert pump(mgr, lambda: cl.connects == 2 and cl.connected, 5)
            cl.publish("o/2", b"again", qos=1)
            assert pump(mgr, lambda: len(got) == 2, 5)
            pump(mgr, lambda: False, 0.2)
            assert got == [("o/1", b"exactly once", 2), ("o/2", b"again", 1)]
            cl.stop()
            assert pump(mgr, lambda: cl.conn is None, 5)
    finally:
        rb.stop()
