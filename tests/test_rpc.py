"""JSON-RPC: Rpc (add/process/methods) and RpcReq (frame/ok/err) with the
semantics of Mongoose's mg_rpc_* (BEHAVIOUR.md §1.8), plus an end-to-end
call over HTTP on 127.0.0.1."""
import json
import urllib.request

import pytest
from hypothesis import given, settings, strategies as st

from mongoose_py import MG_EV_HTTP_MSG, json_get, json_get_num, json_get_str

try:
    from mongoose_py import Rpc, RpcReq
except ImportError:  # until the package re-exports them
    from mongoose_py._rpc import Rpc, RpcReq


def call(rpc, frame):
    out = rpc.process(frame)
    return json.loads(out) if out else out


# ---------------------------------------------------------------- results


def test_raw_json_result_and_params():
    rpc = Rpc()
    rpc.add("echo", lambda req: req.ok(json_get(req.frame, "$.params")))
    rpc.add("add", lambda req: req.ok(str(json_get_num(req.frame, "$.params[0]")
                                          + json_get_num(req.frame, "$.params[1]"))))
    rpc.add("greet", lambda req: req.ok(json.dumps("hello " + json_get_str(req.frame, "$.params[0]"))))
    rpc.add("sum", lambda req: req.ok(json.dumps(sum(req.params))))
    assert call(rpc, '{"id":1,"method":"echo","params":[1,2,{"a":"b"}]}') == \
        {"id": 1, "result": [1, 2, {"a": "b"}]}
    assert call(rpc, '{"id":2,"method":"add","params":[3,4]}') == {"id": 2, "result": 7}
    assert call(rpc, '{"id":3,"method":"greet","params":["w\\u00f6rld"]}')["result"] == "hello w\u00f6rld"
    assert rpc.process('{"id": 4, "method": "sum", "params": [1, 2, 3]}') == '{"id":4,"result":6}'


def test_ids_are_echoed():
    rpc = Rpc()
    rpc.add("m", lambda req: req.ok("true"))
    assert call(rpc, '{"id":"abc","method":"m"}') == {"id": "abc", "result": True}
    assert call(rpc, '{"id":null,"method":"m"}') == {"id": None, "result": True}
    assert call(rpc, '{"id":[1],"method":"m"}') == {"id": [1], "result": True}


def test_ok_accepts_bytes_and_rejects_non_text():
    rpc = Rpc()
    errors = []

    def handler(req):
        with pytest.raises(TypeError):
            req.ok(42)
        req.ok(b'{"x":1}')

    rpc.add("m", handler)
    assert call(rpc, '{"id":1,"method":"m"}') == {"id": 1, "result": {"x": 1}}
    assert not errors


# ---------------------------------------------------------------- errors


def test_err_encodes_message():
    rpc = Rpc()
    rpc.add("fail", lambda req: req.err(-32000, 'said "no" \\ \u00e9\n'))
    assert call(rpc, '{"id":1,"method":"fail"}') == \
        {"id": 1, "error": {"code": -32000, "message": 'said "no" \\ \u00e9\n'}}


def test_exception_becomes_internal_error():
    rpc = Rpc()

    def boom(req):
        raise ValueError('bad "value"')

    rpc.add("boom", boom)
    assert call(rpc, '{"id":1,"method":"boom"}') == \
        {"id": 1, "error": {"code": -32603, "message": 'bad "value"'}}


def test_exception_after_responding_keeps_the_response():
    rpc = Rpc()

    def h(req):
        req.ok("1")
        raise RuntimeError("late")

    rpc.add("h", h)
    assert call(rpc, '{"id":1,"method":"h"}') == {"id": 1, "result": 1}


def test_no_response_from_handler():
    rpc = Rpc()
    rpc.add("noop", lambda req: None)
    assert call(rpc, '{"id":9,"method":"noop"}') == \
        {"id": 9, "error": {"code": -32603, "message": "handler produced no response"}}


def test_unknown_method():
    rpc = Rpc()
    rpc.add("known", lambda req: req.ok("1"))
    assert call(rpc, '{"id":1,"method":"nonexistent"}') == \
        {"id": 1, "error": {"code": -32601, "message": "nonexistent not found"}}


@pytest.mark.parametrize("frame", ["not json", "", "{", "[1,2]", "42", '"str"', '{"id":1,"method":7}',
                                   '{"id":1}', b"\xff\xfe"])
def test_parse_errors(frame):
    rpc = Rpc()
    rpc.add("*", lambda req: req.ok("1"))
    out = call(rpc, frame)
    assert out["error"]["code"] == -32700, out
    text = frame.decode("utf-8", "surrogateescape") if isinstance(frame, bytes) else frame
    if isinstance(frame, str):
        assert out["error"]["message"] == text  # Mongoose puts the frame there
    assert rpc.process("not json") == '{"error":{"code":-32700,"message":"not json"}}'


def test_bytes_frame():
    rpc = Rpc()
    rpc.add("m", lambda req: req.ok(json.dumps(req.frame)))
    frame = '{"id":1,"method":"m","params":["\u00e9"]}'
    assert call(rpc, frame.encode()) == {"id": 1, "result": frame}


# ---------------------------------------------------------------- notifications


def test_notifications_get_no_response():
    rpc = Rpc()
    called = []
    rpc.add("ok", lambda req: (called.append(req.is_notification), req.ok("1")))
    rpc.add("silent", lambda req: called.append("silent"))

    def boom(req):
        called.append("boom")
        raise ValueError("x")

    rpc.add("boom", boom)
    assert rpc.process('{"method":"ok"}') == ""
    assert rpc.process('{"method":"silent"}') == ""
    assert rpc.process('{"method":"boom"}') == ""
    assert rpc.process('{"method":"unknown"}') == ""
    assert called == [True, "silent", "boom"]


def test_response_frames_go_to_the_empty_method():
    rpc = Rpc()
    got = []
    rpc.add("", lambda req: got.append(json.loads(req.frame)))
    assert rpc.process('{"id":5,"result":[1]}') == ""  # handled, nothing to answer
    assert got == [{"id": 5, "result": [1]}]
    assert rpc.methods == []  # the empty pattern is not listed (as Mongoose)


# ---------------------------------------------------------------- method table


def test_methods_newest_first_and_matching_order():
    rpc = Rpc()
    assert rpc.methods == []
    rpc.add("add", lambda req: req.ok('"exact"'))
    rpc.add("a*", lambda req: req.ok('"glob"'))
    assert rpc.methods == ["a*", "add"]
    assert call(rpc, '{"id":1,"method":"add"}')["result"] == "glob"  # newest wins (measured on cymongoose)
    rpc.add("add", lambda req: req.ok('"newer"'))
    assert call(rpc, '{"id":1,"method":"add"}')["result"] == "newer"
    assert call(rpc, '{"id":1,"method":"abc"}')["result"] == "glob"
    assert call(rpc, '{"id":1,"method":"a/b"}')["error"]["code"] == -32601  # * stops at /


def test_glob_patterns():
    rpc = Rpc()
    rpc.add("math.#", lambda req: req.ok(json.dumps("math:" + req.method)))
    rpc.add("get?", lambda req: req.ok(json.dumps(req.method)))
    assert call(rpc, '{"id":1,"method":"math.add/int"}')["result"] == "math:math.add/int"
    assert call(rpc, '{"id":1,"method":"getX"}')["result"] == "getX"
    assert call(rpc, '{"id":1,"method":"getXY"}')["error"]["code"] == -32601


def test_add_needs_a_callable():
    with pytest.raises(TypeError):
        Rpc().add("m", None)


# ---------------------------------------------------------------- RpcReq lifetime


def test_second_response_raises():
    rpc = Rpc()
    errors = []

    def bad(req):
        req.ok("1")
        for fn in (lambda: req.ok("2"), lambda: req.err(-1, "x")):
            try:
                fn()
            except RuntimeError as e:
                errors.append(str(e))

    rpc.add("bad", bad)
    assert call(rpc, '{"id":1,"method":"bad"}') == {"id": 1, "result": 1}
    assert errors == ["Response already sent"] * 2


def test_request_is_invalid_after_the_handler():
    rpc = Rpc()
    kept = []

    def h(req):
        assert bool(req)
        kept.append(req)
        kept.append(req.copy())
        req.ok("1")

    rpc.add("h", h)
    call(rpc, '{"id":1,"method":"h","params":{"k":2}}')
    stale, snap = kept
    assert not stale
    for use in (lambda: stale.ok("1"), lambda: stale.err(1, "x"), lambda: stale.frame,
                lambda: stale.params, lambda: stale.copy()):
        with pytest.raises(RuntimeError, match="no longer valid"):
            use()
    # The copy keeps the request data, but cannot answer.
    assert snap and snap.params == {"k": 2} and snap.id == 1 and snap.method == "h"
    assert json.loads(snap.frame)["params"] == {"k": 2}
    with pytest.raises(RuntimeError):
        snap.ok("1")
    assert isinstance(stale, RpcReq)
    blank = RpcReq()  # constructible, but like a stale view
    assert not blank
    with pytest.raises(RuntimeError, match="no longer valid"):
        blank.ok("1")


def test_base_exceptions_propagate():
    rpc = Rpc()

    def h(req):
        raise KeyboardInterrupt

    rpc.add("h", h)
    with pytest.raises(KeyboardInterrupt):
        rpc.process('{"id":1,"method":"h"}')


# ---------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_any_frame_gives_str_and_valid_json(frame):
    rpc = Rpc()
    rpc.add("*", lambda req: req.ok("null"))
    out = rpc.process(frame)
    assert isinstance(out, str)
    if out:
        assert isinstance(json.loads(out), dict)


json_ids = st.one_of(st.integers(-2 ** 53, 2 ** 53), st.text(max_size=20), st.none())


@settings(max_examples=100, deadline=None)
@given(json_ids, st.text(min_size=1, max_size=20).filter(lambda m: not any(c in m for c in "*?#")),
       st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=4),
                    max_leaves=10))
def test_round_trip_against_json(req_id, method, params):
    rpc = Rpc()
    rpc.add(method, lambda req: req.ok(json.dumps({"p": req.params, "m": req.method})))
    frame = json.dumps({"jsonrpc": "2.0", "id": req_id, "method": method, "params": params})
    assert json.loads(rpc.process(frame)) == {"id": req_id, "result": {"p": params, "m": method}}


# ---------------------------------------------------------------- over HTTP


def test_json_rpc_over_http(serve):
    rpc = Rpc()
    rpc.add("sum", lambda req: req.ok(json.dumps(sum(req.params))))

    def handler(conn, ev, msg):
        if ev == MG_EV_HTTP_MSG:
            out = rpc.process(msg.body_bytes)
            conn.reply(200 if out else 204, out, {"Content-Type": "application/json"})

    mgr, listener, port = serve(handler)
    url = "http://127.0.0.1:%d/rpc" % port
    req = urllib.request.Request(url, data=b'{"id":1,"method":"sum","params":[1,2,39]}',
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200 and json.loads(r.read()) == {"id": 1, "result": 42}
    req = urllib.request.Request(url, data=b'{"method":"sum","params":[1]}')
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 204 and r.read() == b""
