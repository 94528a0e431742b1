"""C calls that run Python handlers before they return (poll, connect, listen,
ws_upgrade, error, close), and replies, which must not.

On PyPy 7.3.11 a JIT-compiled caller of such a call crashed the interpreter
now and then (see ``mongoose_py._ffi.reentrant``); scripts/test-all also
re-runs the module order that showed it. These tests check that every such
entry point goes the safe way, and that handlers which walk their callers'
frames inside each of them work on both interpreters.
"""
import json
import os
import platform
import re
import sys

from mongoose_py import _ffi
from mongoose_py._ffi import lib, reentrant

PYPY = platform.python_implementation() == "PyPy"
PACKAGE = os.path.dirname(_ffi.__file__)


def test_every_reentrant_entry_point_is_opaque_to_the_pypy_jit():
    for name in _ffi._REENTRANT:
        fn = getattr(reentrant, name)
        if PYPY:
            import pypyjit
            assert fn.func is pypyjit.residual_call and fn.args == (getattr(lib, name),), name
        else:
            assert fn is getattr(lib, name), name  # CPython: no wrapper, no cost


def test_no_module_calls_a_reentrant_entry_point_directly():
    direct = re.compile(r"\blib\.(%s)\b" % "|".join(_ffi._REENTRANT))
    offenders = []
    for root, _dirs, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py") and f != "_ffi.py":
                path = os.path.join(root, f)
                with open(path, encoding="utf-8") as fh:
                    for n, line in enumerate(fh, 1):
                        if direct.search(line):
                            offenders.append("%s:%d: %s" % (os.path.relpath(path, PACKAGE), n, line.strip()))
    assert not offenders, "use reentrant.X for these:\n" + "\n".join(offenders)


# Mongoose calls that run a handler before they return.
_DISPATCHES = re.compile(r"\b(mgpy_dispatch|mg_call|c->fn|mg_error|mg_mgr_free|mg_mgr_poll|mg_ws_upgrade|"
                         r"mg_listen|mg_connect|mg_http_listen|mg_http_connect|mg_ws_connect|mg_mqtt_connect|"
                         r"mg_mqtt_listen|mg_sntp_connect)\(")


def _read_all(prefix, suffix):
    texts = []
    for name in sorted(os.listdir(PACKAGE)):
        if name.startswith(prefix) and name.endswith(suffix):
            with open(os.path.join(PACKAGE, name), encoding="utf-8") as fh:
                texts.append(fh.read())
    return "\n".join(texts)


def test_the_reentrant_list_covers_the_shim_functions_that_dispatch():
    """Every exported shim function that can run a handler (itself or through
    another shim function) is in the list."""
    src = _read_all("_shim", ".c")  # _shim.c and every _shim_*.c: one unit
    exported = set(re.findall(r"\b(mgpy_\w+)\s*\(", _read_all("_cdef", ".h")))
    defs = [(m.start(), m.group(1)) for m in re.finditer(r"^[a-z][^\n;]*?\b(mgpy_\w+)\([^;{]*\{", src, re.M)]
    bodies = {name: src[a:b].split("\n}", 1)[0] for (a, name), (b, _) in zip(defs, defs[1:] + [(len(src), None)])}
    dispatching = {name for name, body in bodies.items() if _DISPATCHES.search(body)}
    grew = True
    while grew:  # callers of dispatching shim functions dispatch too
        more = {name for name, body in bodies.items() if name not in dispatching
                and any(re.search(r"\b%s\(" % d, body.split("{", 1)[1]) for d in dispatching)}
        dispatching |= more
        grew = bool(more)
    assert {"mgpy_poll", "mgpy_ws_upgrade", "mgpy_error"} <= dispatching, sorted(dispatching)
    # replies are the per-request hot path: they must not need the (costly) safe call
    assert not {"mgpy_http_reply", "mgpy_http_chunk", "mgpy_resp_done", "mgpy_serve"} & dispatching
    missing = sorted((dispatching & exported) - set(_ffi._REENTRANT))
    assert not missing, "shim functions that run Python but are not in _ffi._REENTRANT: %s" % missing


def test_handlers_that_walk_their_callers_inside_c_calls(procs):
    """A loop thread and a busy main thread; handlers log with funcName,
    extract the stack, raise and catch, and warn, inside poll, ws_upgrade,
    error(), connect() from a timer, and close, with pipelined requests."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    script = os.path.join(os.path.dirname(__file__), "frame_forcing_load.py")
    p = procs([sys.executable, script, "150"], env=env).p
    out, err = p.communicate(timeout=150)
    assert p.returncode == 0, (p.returncode, err.decode(errors="replace")[-3000:])
    counts = json.loads(out.decode().strip().splitlines()[-1])
    assert counts["ws_open"] == counts["ws_msg"] == counts["error"] == 150, counts
    assert counts["http_msg"] == 150 * 5, counts       # 3 pipelined + /err + the upgrade request
    assert counts["dial_open"] >= 1 and counts["timer"] >= counts["dial_open"], counts
    assert counts["accept"] >= 300 and counts["close"] >= counts["accept"], counts
