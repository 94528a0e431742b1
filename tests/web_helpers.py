"""Running the ASGI/WSGI adapters in a test: a server in a background thread,
real clients (requests, httpx, websockets, curl, raw sockets) on 127.0.0.1."""
import asyncio
import contextlib
import socket
import subprocess
import threading
import time

from mongoose_py.asgi import ASGIServer


@contextlib.contextmanager
def asgi_server(app, **kwargs):
    """Serve ``app`` with :class:`ASGIServer` on its own asyncio loop thread; yields the port."""
    ready = threading.Event()
    box = {}

    async def main():
        server = ASGIServer(app, **kwargs)
        try:
            listener = await server.start("http://127.0.0.1:0")
        except BaseException as exc:
            box["error"] = exc
            ready.set()
            return
        box["port"] = listener.local_addr[1]
        box["stop"] = stop = asyncio.Event()
        box["loop"] = asyncio.get_running_loop()
        ready.set()
        await stop.wait()
        await server.stop()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(20), "ASGI server did not start"
    if "error" in box:
        raise box["error"]
    try:
        yield box["port"]
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(20)
        assert not thread.is_alive(), "ASGI server did not stop"


def raw_request(port, data, timeout=10.0):
    """Send raw bytes, read until the server closes (bounded); return what came back."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        got += chunk
    s.close()
    return got


def curl(*args, timeout=20):
    """Run curl (a real client); returns (exit code, stdout bytes, stderr text)."""
    from conftest import require_tool
    p = subprocess.run([require_tool("curl"), "-sS", "--max-time", "10"] + list(args), capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")



@contextlib.contextmanager
def wsgi_server(app, **kwargs):
    """Serve ``app`` with :class:`WSGIServer`, its loop on a background thread; yields the port."""
    from conftest import LoopThread
    from mongoose_py.wsgi import WSGIServer
    server = WSGIServer(app, **kwargs)
    port = server.listen("http://127.0.0.1:0").local_addr[1]
    loop = LoopThread(server.manager).start()
    try:
        yield port
    finally:
        loop.stop()
        server.close()


def read_port(proc, nth=1, timeout=30.0):
    """The port the ``nth`` "...:PORT/" line of a ``python -m mongoose_py`` child announces
    (raw reads on the pipe: a buffered reader could hide a second line from select)."""
    import os
    import re
    import select
    fd = proc.p.stdout.fileno()
    seen = getattr(proc, "stdout_seen", b"")
    deadline = time.monotonic() + timeout
    while True:
        ports = re.findall(rb":(\d+)/\s", seen)
        if len(ports) >= nth:
            proc.stdout_seen = seen
            return int(ports[nth - 1])
        if time.monotonic() > deadline:
            break
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            seen += chunk
        elif proc.p.poll() is not None:
            break
    proc.stdout_seen = seen
    raise AssertionError("no port announced; stdout so far: %r" % seen)
