"""WSGI (PEP 3333) on mongoose_py: the loop parses, worker threads run the app.

>>> from mongoose_py.wsgi import serve
>>> serve(app, "http://127.0.0.1:8000", workers=4)      # doctest: +SKIP

or from a shell: ``python -m mongoose_py.wsgi main:app --workers 4``.

The environ is built on the loop thread while the request view is valid; the
app runs in one of ``workers`` daemon threads; each block the app yields goes
out at once (framing in ``_respond.py``: a declared Content-Length is kept,
HTTP/1.0 is never chunked, HEAD keeps the GET's length). A worker whose
client has more than ``HIGH_WATER`` bytes unread waits for the socket to drain
(``stream_timeout`` at most). A client that leaves is noticed at the app's
next block: the iterator's ``close()`` runs and the worker is free again.
SIGINT/SIGTERM stop the loop gracefully (``shutdown_timeout``); workers are
daemon threads, so an app stuck in a request cannot hold the process.
"""
from __future__ import annotations

import io
import logging
import queue
import sys
import threading
import traceback
from typing import Callable, Optional
from urllib.parse import unquote

from ._connection import Connection
from ._manager import Manager
from ._request import read_head
from ._respond import Request, Response, WriteWaiter

HIGH_WATER = 1 << 20
access_log = logging.getLogger("mongoose_py.access")


class FileWrapper:
    """``wsgi.file_wrapper``: iterate a file in blocks."""

    def __init__(self, filelike, blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self):
        while True:
            block = self.filelike.read(self.blksize)
            if not block:
                return
            yield block

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


class _Cycle:
    """One request: what the worker and the loop thread share."""

    __slots__ = ("conn", "req", "resp", "gone", "ended", "access")

    def __init__(self, conn, req: Request, access: Optional[tuple]) -> None:
        self.conn, self.req, self.access = conn, req, access
        self.resp: Optional[Response] = None
        self.gone = False
        self.ended = False


class _WsgiConnection(Connection):
    server: "WSGIServer" = None  # set on the subclass made per server
    _wsgi_peer = None            # (REMOTE_ADDR, REMOTE_PORT, url scheme): read once per connection

    def on_http_msg(self, msg) -> None:
        self.server._dispatch(self, msg)

    def on_close(self) -> None:
        cycle = self.userdata
        if cycle is not None:
            self.userdata = None
            cycle.gone = True


class WSGIServer:
    """Serve a WSGI app: ``listen(url)`` then ``run()`` (or drive ``manager`` yourself)."""

    def __init__(self, app: Callable, workers: int = 4, error_handler: Optional[Callable] = None,
                 stream_timeout: float = 30.0, *, root_path: str = "", access_log: bool = False,
                 tls=None, limits=None) -> None:
        self.app = app
        self._limits = limits
        self.stream_timeout = stream_timeout
        self.root_path = root_path.rstrip("/")
        self.access_log = bool(access_log)
        self._tls = tls
        self._error_handler = error_handler
        self._jobs: "queue.SimpleQueue" = queue.SimpleQueue()
        self._mgr = Manager(error_handler=error_handler)
        self._conn_class = type("WsgiConnection", (_WsgiConnection,), {"server": self})
        self._server_name, self._server_port = "127.0.0.1", "80"
        self._workers = [threading.Thread(target=self._work, name="wsgi-%d" % i, daemon=True)
                         for i in range(max(1, int(workers)))]
        for t in self._workers:
            t.start()

    @property
    def manager(self) -> Manager:
        return self._mgr

    def listen(self, url: str = "http://127.0.0.1:8000", *, reuse_port: bool = False) -> Connection:
        listener = self._mgr.listen(url, connection_class=self._conn_class, tls=self._tls, reuse_port=reuse_port,
                                    limits=self._limits)
        host, port, _ = listener.local_addr
        self._server_name = "127.0.0.1" if host in ("0.0.0.0", "0000:0000:0000:0000:0000:0000:0000:0000") else host
        self._server_port = str(port)
        return listener

    def run(self, poll_ms: int = 100, shutdown_timeout: float = 5.0) -> None:
        """Serve until SIGINT/SIGTERM or ``manager.stop()``; then stop gracefully."""
        try:
            self._mgr.run(poll_ms, shutdown_timeout=shutdown_timeout)
        finally:
            self._stop_workers()

    def close(self) -> None:
        self._stop_workers()
        self._mgr.close()

    def _stop_workers(self) -> None:
        for _ in self._workers:
            self._jobs.put(None)  # busy workers are daemon threads: they never hold the process

    # ---- loop thread ----

    def _environ(self, conn: Connection, head, body: bytes) -> dict:
        method, path, query, proto, headers = head
        peer = conn._wsgi_peer
        if peer is None:  # per connection, not per request
            addr = conn.remote_addr or ("", 0, False)
            peer = conn._wsgi_peer = (addr[0], str(addr[1]), "https" if conn.is_tls else "http")
        path = path.decode("latin-1")
        env = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": self.root_path,
            "PATH_INFO": unquote(path, "latin-1") if "%" in path else path,
            "QUERY_STRING": query.decode("latin-1"),
            "SERVER_NAME": self._server_name,
            "SERVER_PORT": self._server_port,
            "SERVER_PROTOCOL": proto,
            "REMOTE_ADDR": peer[0],
            "REMOTE_PORT": peer[1],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": peer[2],
            "wsgi.input": io.BytesIO(body),  # (streamed bodies: _wsgi_input.BodyInput fed by on_http_body)
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
        }
        for name, value in headers:
            if b"_" in name:
                continue  # X_Foo would pass for X-Foo (HTTP_X_FOO): header spoofing
            key = name.decode("latin-1").upper().replace("-", "_")
            value = value.decode("latin-1")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                env[key] = value
            else:
                key = "HTTP_" + key
                env[key] = env[key] + ("; " if key == "HTTP_COOKIE" else ", ") + value if key in env else value
        if body or "HTTP_TRANSFER_ENCODING" in env:
            env["CONTENT_LENGTH"] = str(len(body))  # the received (de-chunked) body
        return env

    def _dispatch(self, conn: Connection, msg) -> None:
        method_b, path, query, proto_b, headers = read_head(msg)
        method, proto = method_b.decode("latin-1"), proto_b.decode("latin-1")
        connection = b", ".join(v for n, v in headers if n == b"connection").decode("latin-1")
        req = Request(method, proto, connection)
        env = self._environ(conn, (method, path, query, proto, headers), msg.body_bytes)
        access = None
        if self.access_log:
            access = ("%s:%s" % (env["REMOTE_ADDR"], env["REMOTE_PORT"]), method, path.decode("latin-1"), proto)
        cycle = _Cycle(conn, req, access)
        conn.userdata = cycle
        self._jobs.put((cycle, env))

    # ---- worker threads ----

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                self._respond(*job)
            except Exception:  # noqa: B902 - a worker must survive anything
                traceback.print_exc()

    def _respond(self, cycle: _Cycle, env: dict) -> None:
        state: dict = {"status": None, "headers": None}

        def start_response(status, headers, exc_info=None):
            if exc_info:
                try:
                    if cycle.resp is not None:
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif state["status"] is not None:
                raise AssertionError("start_response called twice without exc_info")
            state["status"], state["headers"] = status, list(headers)
            return write

        def write(data: bytes) -> None:
            if cycle.gone:
                raise OSError("the client has disconnected")
            self._emit(cycle, state, data, False, None)

        result = None
        try:
            result = self.app(env, start_response)
            if isinstance(result, (list, tuple)) and cycle.resp is None:
                body = b"".join(result)
                self._emit(cycle, state, body, True, len(body))
            else:
                for block in result:
                    if cycle.gone:
                        break
                    if block:
                        self._emit(cycle, state, block, False, None)
                if not cycle.gone:
                    self._emit(cycle, state, b"", True, 0 if cycle.resp is None else None)
        except OSError:
            if not cycle.gone:
                self._failed(cycle)
        except Exception:
            if not self._mgr.closed:  # else the server stopped under a late worker: nothing to answer
                self._failed(cycle)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    self._report()
            if cycle.conn.userdata is cycle:
                cycle.conn.userdata = None

    def _emit(self, cycle: _Cycle, state: dict, data: bytes, end: bool, known: Optional[int]) -> None:
        if state["status"] is None:
            raise RuntimeError("WSGI app returned a body without calling start_response")
        if not isinstance(data, bytes):
            raise TypeError("WSGI body blocks must be bytes, not %s" % type(data).__name__)
        self._mgr._call(self._emit_on_loop, cycle, state, data, end, known)
        if not end and not cycle.gone and cycle.conn.send_len > HIGH_WATER:
            self._wait_drained(cycle)

    def _emit_on_loop(self, cycle: _Cycle, state: dict, data: bytes, end: bool, known: Optional[int]) -> None:
        if cycle.ended:
            if data:
                raise RuntimeError("WSGI app sent more than its Content-Length")
            return
        if cycle.conn._c is None:
            cycle.gone = True
            raise OSError("the client has disconnected")
        resp = cycle.resp
        if resp is None:
            status = str(state["status"])
            code, _, phrase = status.partition(" ")
            resp = Response(cycle.conn)
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in state["headers"]]
            resp.start(cycle.req, int(code), headers, known, phrase.strip().encode("latin-1") or None)
            cycle.resp = resp
            if cycle.access is not None:
                access_log.info('%s - "%s %s %s" %s', *cycle.access, code)
        resp.write(data)
        if end or (resp.mode == "length" and resp.left == 0):
            cycle.ended = True
            resp.end()

    def _wait_drained(self, cycle: _Cycle) -> None:
        done = threading.Event()

        def finished(ok: bool) -> None:
            if not ok:
                cycle.gone = True
            done.set()

        waiter = WriteWaiter(cycle.conn, HIGH_WATER // 2, finished)
        if self._mgr._call(waiter.install) and not done.wait(self.stream_timeout):
            cycle.gone = True
            cycle.conn.close()
            raise OSError("the client read nothing for %.1f s" % self.stream_timeout)

    def _failed(self, cycle: _Cycle) -> None:
        self._report()

        def on_loop():
            conn = cycle.conn
            if conn._c is None or cycle.ended:
                return
            cycle.ended = True
            if cycle.resp is None:
                body = b"Internal Server Error\n"
                resp = Response(conn)
                resp.start(Request("GET", "HTTP/1.1", "close"), 500,
                           [(b"Content-Type", b"text/plain; charset=utf-8")], len(body))
                resp.write(body)
                resp.end()
            else:
                cycle.resp.abort()  # cut a half-sent body rather than let it look complete

        try:
            self._mgr._call(on_loop)
        except RuntimeError:
            pass  # the Manager is closed: nothing to answer on

    def _report(self) -> None:
        exc = sys.exc_info()[1]
        if self._error_handler is not None and exc is not None:
            self._error_handler(exc)
        else:
            traceback.print_exc()


def serve(app: Callable, url: str = "http://127.0.0.1:8000", workers: int = 4, stream_timeout: float = 30.0, *,
          root_path: str = "", access_log: bool = False, tls=None, shutdown_timeout: float = 5.0,
          reuse_port: bool = False, limits=None, ready: Optional[Callable[[Connection], None]] = None) -> None:
    """Run ``app`` until SIGINT/SIGTERM. ``limits``: a :class:`mongoose_py.Limits` for the listener."""
    server = WSGIServer(app, workers=workers, stream_timeout=stream_timeout, root_path=root_path,
                        access_log=access_log, tls=tls, limits=limits)
    listener = server.listen(url, reuse_port=reuse_port)
    if ready is not None:
        ready(listener)
    else:
        print("mongoose_py WSGI server on %s (port %d)" % (url, listener.local_addr[1]), flush=True)
    server.run(shutdown_timeout=shutdown_timeout)


if __name__ == "__main__":
    from .__main__ import main as _main
    _main(["--interface", "wsgi"] + sys.argv[1:])
