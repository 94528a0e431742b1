"""Limits: safe defaults everywhere, set per listener, inherited by accepted connections."""
import socket

import pytest

from mongoose_py import Connection, Limits, Manager
from conftest import pump


def test_defaults_are_safe_and_immutable():
    lim = Limits()
    assert lim.max_head == 16 * 1024 and lim.max_headers == 100
    assert lim.max_body > 0 and lim.ws_max_message > 0 and lim.max_connections > 0
    assert lim.head_timeout > 0 and lim.idle_timeout > 0
    with pytest.raises(AttributeError, match="replace"):
        lim.max_body = 1
    assert lim.replace(max_body=5).max_body == 5 and lim.max_body != 5


@pytest.mark.parametrize("bad", [{"max_body": -1}, {"head_timeout": "1"}, {"max_head": True}])
def test_bad_values_are_refused(bad):
    with pytest.raises(ValueError, match="must be a number"):
        Limits(**bad)


def test_unknown_names_are_refused_with_the_known_ones():
    with pytest.raises(TypeError, match="max_bdy.*known: max_connections"):
        Limits(max_bdy=1)


def test_listener_limits_reach_accepted_connections():
    accepted = []

    class Conn(Connection):
        def on_accept(self):
            accepted.append(self.limits)

    mine = Limits(max_body=12345, head_timeout=2.5, ws_max_message=1 << 20)
    with Manager() as mgr:
        lst = mgr.listen("tcp://127.0.0.1:0", connection_class=Conn, limits=mine)
        assert lst.limits == mine
        s = socket.create_connection(("127.0.0.1", lst.local_addr[1]))
        try:
            assert pump(mgr, lambda: accepted)
        finally:
            s.close()
        assert accepted[0] == mine
        lst.set_limits(mine.replace(max_body=1))
        assert lst.limits.max_body == 1
        with pytest.raises(TypeError, match="Limits"):
            mgr.listen("tcp://127.0.0.1:0", limits={"max_body": 1})


def test_default_limits_apply_without_asking():
    with Manager() as mgr:
        assert mgr.listen("http://127.0.0.1:0").limits == Limits()
