"""A real browser against the demo page: headless Chromium opens
``python -m mongoose_py``'s page, sends a message over the page's WebSocket
(its own button, clicked through the DevTools protocol) and the echo appears
on the page.

Chromium is Debian's ``chromium`` (scripts/apt-packages.txt); it is driven
over its DevTools WebSocket with websocket-client, and stopped by its id.
"""
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest
import websocket

from conftest import require_tool, wait_for

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-port=0",
]


def read_line(proc, pattern, timeout=30.0):
    """The first stdout line of ``proc`` matching ``pattern`` (bounded in time)."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
        m = re.search(pattern, buf.decode("utf-8", "replace"))
        if m:
            return m
    raise AssertionError("no line matching %r in %gs; got %r" % (pattern, timeout, buf[-2000:]))


@pytest.fixture
def chromium():
    """``start(url)`` -> DevTools WebSocket URL of the page showing ``url``."""
    exe = require_tool("chromium")
    profile = tempfile.mkdtemp(prefix="mongoose_py-chromium-")
    log = open(os.path.join(profile, "stderr.log"), "wb")  # a file: a full pipe would stall Chromium
    started = []

    def start(url):
        p = subprocess.Popen([exe] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile, url],
                             stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        started.append(p)
        port_file = os.path.join(profile, "DevToolsActivePort")
        assert wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), timeout=60), \
            "Chromium wrote no DevToolsActivePort (exit %s): %s" % (p.poll(), tail())
        devtools = int(open(port_file).read().split()[0])

        def page():
            with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % devtools, timeout=10) as r:
                targets = json.load(r)
            return next((t for t in targets if t.get("type") == "page" and t.get("url", "").startswith(url)), None)
        target = wait_for(page, timeout=30, interval=0.1)
        assert target, "Chromium shows no page for %s: %s" % (url, tail())
        return target["webSocketDebuggerUrl"]

    def tail():
        log.flush()
        with open(log.name, "rb") as f:
            return f.read()[-3000:].decode("utf-8", "replace")

    yield start
    for p in started:
        if p.poll() is None:
            p.terminate()  # by its id; Chromium takes its helper processes down with it
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        try:
            os.killpg(p.pid, signal.SIGKILL)  # a helper left behind in its session, by the group's id
        except (ProcessLookupError, PermissionError):
            pass
    log.close()
    shutil.rmtree(profile, ignore_errors=True)


class DevTools:
    """A minimal Chrome DevTools Protocol client over websocket-client."""

    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=20, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:  # skip events
                assert "error" not in reply, reply
                return reply["result"]
        raise AssertionError("no DevTools reply to %s" % method)

    def js(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def close(self):
        self.ws.close()


def test_demo_page_echoes_over_websocket_in_chromium(procs, chromium):
    demo = procs([sys.executable, "-m", "mongoose_py", "--port", "0"], stdin=subprocess.DEVNULL)
    port = int(read_line(demo.p, r"demo on http://127\.0\.0\.1:(\d+)/").group(1))
    url = "http://127.0.0.1:%d/" % port

    page = DevTools(chromium(url))
    try:
        def log():
            return page.js("document.getElementById('log') ? document.getElementById('log').textContent : ''")

        assert wait_for(lambda: "websocket open" in log(), timeout=30, interval=0.1), \
            "the page's WebSocket did not open: %r" % log()
        assert "mongoose_py" in page.js("document.title")
        message = "hello from chromium %d" % os.getpid()
        page.js("document.getElementById('t').value = %s; document.querySelector('button').click()"
                % json.dumps(message))
        assert wait_for(lambda: ("echo: %s\n" % message) in log(), timeout=30, interval=0.1), \
            "no echo on the page: %r" % log()
        # The same page also counted the request that served it.
        assert int(page.js("document.getElementById('n').textContent")) >= 1
    finally:
        page.close()
    assert demo.p.poll() is None, "the demo server died"
