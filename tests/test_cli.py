"""``python -m mongoose_py`` as a uvicorn/gunicorn user runs it (real processes, curl/requests)."""
import os
import signal
import socket
import sys
import textwrap

import pytest
import requests

from certs import make_pki
from conftest import require_tool
from mqtt_peers import free_port
from web_helpers import curl, read_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

APPS = '''
import asyncio, os, time

async def asgi_app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = ("asgi %s %s %d" % (scope["path"], scope["root_path"], os.getpid())).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})

def wsgi_app(environ, start_response):
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(60)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("wsgi %s %s" % (environ["PATH_INFO"], environ["SCRIPT_NAME"])).encode()]
'''


@pytest.fixture
def appdir(tmp_path):
    (tmp_path / "apps.py").write_text(textwrap.dedent(APPS))
    return tmp_path


def run(procs, args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    return procs([sys.executable, "-m"] + args, cwd=str(cwd), env=env)


def stop(proc, sig=signal.SIGTERM):
    os.kill(proc.p.pid, sig)
    return proc.p.wait(30)


def test_help_lists_every_option():
    import subprocess
    out = subprocess.run([sys.executable, "-m", "mongoose_py", "--help"], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT), timeout=60)
    assert out.returncode == 0
    for opt in ("--interface", "--host", "--port", "--workers", "--tls-cert", "--tls-key", "--root-path",
                "--access-log", "--no-access-log", "--static", "--demo", "--limit", "APP"):
        assert opt in out.stdout, opt


def test_bad_limit_is_a_usage_error():
    import subprocess
    out = subprocess.run([sys.executable, "-m", "mongoose_py", "x:app", "--limit", "nope=1"], capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=60)
    assert out.returncode == 2 and "nope" in out.stderr


def test_adapter_modules_need_an_app():
    import subprocess
    for mod in ("mongoose_py.asgi", "mongoose_py.wsgi"):
        out = subprocess.run([sys.executable, "-m", mod], capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=ROOT), timeout=60)
        assert out.returncode == 2 and "needs an APP" in out.stderr, (mod, out)


def test_asgi_app_detected_with_root_path_and_access_log(procs, appdir):
    p = run(procs, ["mongoose_py", "apps:asgi_app", "--port", "0", "--root-path", "/api",
                    "--limit", "max_body=1000", "--limit", "idle_timeout=30"], appdir)
    port = read_port(p)
    r = requests.get("http://127.0.0.1:%d/x" % port, timeout=10)
    assert r.text.startswith("asgi /api/x /api ")
    assert stop(p) == 0
    assert b'"GET /x HTTP/1.1" 200' in p.p.stderr.read()


def test_wsgi_app_detected_and_stops_on_sigint_while_a_request_sleeps(procs, appdir):
    p = run(procs, ["mongoose_py.wsgi", "apps:wsgi_app", "--port", "0", "--no-access-log",
                    "--shutdown-timeout", "1"], appdir)
    port = read_port(p)
    assert requests.get("http://127.0.0.1:%d/y" % port, timeout=10).text == "wsgi /y "
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /sleep HTTP/1.1\r\nHost: x\r\n\r\n")  # a worker now sleeps for 60 s
    assert requests.get("http://127.0.0.1:%d/z" % port, timeout=10).text == "wsgi /z "
    assert stop(p, signal.SIGINT) == 0  # within the shutdown timeout, not after the app's sleep
    s.close()
    assert p.p.stderr.read() == b""   # no access log, no traceback


def test_static_dir_and_demo(procs, tmp_path):
    (tmp_path / "hello.txt").write_text("static hello")
    p = run(procs, ["mongoose_py", "--static", str(tmp_path), "--port", "0"], tmp_path)
    port = read_port(p)
    assert requests.get("http://127.0.0.1:%d/hello.txt" % port, timeout=10).text == "static hello"
    assert stop(p) == 0
    for args in (["--port", "0"], ["--demo", "--port", "0"]):
        p = run(procs, ["mongoose_py"] + args, tmp_path)
        port = read_port(p)
        assert "mongoose_py" in requests.get("http://127.0.0.1:%d/" % port, timeout=10).text
        assert stop(p) == 0


def test_workers_and_tls(procs, appdir):
    require_tool("curl")
    pki = make_pki()
    port = free_port()
    p = run(procs, ["mongoose_py", "apps:asgi_app", "--port", str(port), "--workers", "2",
                    "--tls-cert", os.path.join(pki.dir, "server.pem"),
                    "--tls-key", os.path.join(pki.dir, "server_key.pem")], appdir)
    read_port(p, 2)  # both workers listen
    pids = set()
    for _ in range(40):
        code, out, err = curl("--cacert", os.path.join(pki.dir, "ca.pem"), "https://127.0.0.1:%d/t" % port)
        assert code == 0, err
        pids.add(out.split()[-1])
        if len(pids) == 2:
            break
    assert len(pids) == 2, "one worker answered everything: %r" % pids
    assert stop(p) == 0


def test_wsgi_access_log(procs, appdir):
    p = run(procs, ["mongoose_py", "apps:wsgi_app", "--port", "0"], appdir)
    port = read_port(p)
    assert requests.get("http://127.0.0.1:%d/logged?x=1" % port, timeout=10).text == "wsgi /logged "
    assert stop(p) == 0
    assert b'"GET /logged HTTP/1.1" 200' in p.p.stderr.read()
