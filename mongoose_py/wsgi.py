"""WSGI (PEP 3333) on mongoose_py: the loop parses, a thread pool runs the app.

>>> from mongoose_py.wsgi import serve
>>> serve(app, "http://127.0.0.1:8000", workers=4)      # doctest: +SKIP

The environ is built on the loop thread while the request view is valid; the
app runs in a worker; the response goes back through the thread-safe
Connection methods (marshalled to the loop thread). Bodies up to
``STREAM_THRESHOLD`` are sent as one response with an exact Content-Length;
larger or open-ended ones are streamed chunked, the worker waiting while the
connection's send buffer is above ``HIGH_WATER`` (a slow client cannot make
us buffer the whole body).
"""
from __future__ import annotations

import io
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, List, Optional, Tuple
from urllib.parse import unquote

from ._connection import Connection
from ._ffi import lib
from ._manager import Manager

STREAM_THRESHOLD = 1 << 20
HIGH_WATER = 1 << 20


class FileWrapper:
    """``wsgi.file_wrapper``: iterate a file in blocks."""

    def __init__(self, filelike, blksize: int = 8192) -> None:
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


def _status_line(status: str) -> bytes:
    return ("HTTP/1.1 %s\r\n" % status).encode("latin-1")


def _head(status: str, headers: List[Tuple[str, str]], extra: List[Tuple[str, str]]) -> bytes:
    lines = [_status_line(status)]
    for k, v in list(headers) + extra:
        if any(ch in str(k) + str(v) for ch in "\r\n\0"):
            raise ValueError("header contains CR/LF/NUL: %r: %r" % (k, v))
        lines.append(("%s: %s\r\n" % (k, v)).encode("latin-1"))
    lines.append(b"\r\n")
    return b"".join(lines)


class _WsgiConnection(Connection):
    server: "WSGIServer" = None  # set on the subclass made per server

    def on_http_msg(self, msg) -> None:
        self.server._dispatch(self, msg)


class WSGIServer:
    def __init__(self, app: Callable, workers: int = 4, error_handler: Optional[Callable] = None,
                 stream_timeout: float = 5.0) -> None:
        self.app = app
        self.stream_timeout = stream_timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wsgi")
        self._mgr = Manager(error_handler=error_handler)
        self._conn_class = type("WsgiConnection", (_WsgiConnection,), {"server": self})
        self._server_name, self._server_port = "127.0.0.1", "80"

    @property
    def manager(self) -> Manager:
        return self._mgr

    def listen(self, url: str = "http://127.0.0.1:8000") -> Connection:
        listener = self._mgr.listen(url, connection_class=self._conn_class)
        host, port, _ = listener.local_addr
        self._server_name = "127.0.0.1" if host in ("0.0.0.0", "0000:0000:0000:0000:0000:0000:0000:0000") else host
        self._server_port = str(port)
        return listener

    def run(self, poll_ms: int = 100) -> None:
        try:
            self._mgr.run(poll_ms)
        finally:
            self._pool.shutdown(wait=False)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._mgr.close()

    # ---- loop thread ----

    def _environ(self, conn: Connection, msg) -> dict:
        env = {
            "REQUEST_METHOD": msg.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(msg.uri, "latin-1"),
            "QUERY_STRING": msg.query,
            "SERVER_NAME": self._server_name,
            "SERVER_PORT": self._server_port,
            "SERVER_PROTOCOL": msg.proto,
            "REMOTE_ADDR": (conn.remote_addr or ("", 0, False))[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if conn.is_tls else "http",
            "wsgi.input": io.BytesIO(msg.body_bytes),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
        }
        env["REMOTE_HOST"] = env["REMOTE_ADDR"]
        for name, value in msg.headers():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                env[key] = value
            else:
                key = "HTTP_" + key
                env[key] = env[key] + ", " + value if key in env else value
        return env

    def _dispatch(self, conn: Connection, msg) -> None:
        env = self._environ(conn, msg)
        self._pool.submit(self._respond, conn, env)

    # ---- worker threads ----

    def _respond(self, conn: Connection, env: dict) -> None:
        state: dict = {}
        written: List[bytes] = []

        def start_response(status, headers, exc_info=None):
            if exc_info and state.get("sent"):
                raise exc_info[1].with_traceback(exc_info[2])
            state["status"], state["headers"] = status, list(headers)
            return written.append

        result: Optional[Iterable[bytes]] = None
        try:
            result = self.app(env, start_response)
            self._send(conn, state, written, result)
        except Exception:
            traceback.print_exc()
            if not state.get("sent"):
                self._send_raw(conn, _head("500 Internal Server Error",
                                           [("Content-Type", "text/plain"), ("Content-Length", "22")], [])
                               + b"Internal Server Error\n", done=True)
            else:
                conn.close()  # cut a half-sent stream rather than let it look complete
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def _send(self, conn, state, written, result) -> None:
        body = list(written)
        size = sum(len(b) for b in body)
        it = iter(result)
        for block in it:
            body.append(block)
            size += len(block)
            if size > STREAM_THRESHOLD:
                return self._stream(conn, state, body, it)
        if "status" not in state:
            raise RuntimeError("WSGI app returned without calling start_response")
        headers = [(k, v) for k, v in state["headers"] if k.lower() != "content-length"]
        extra = [("Content-Length", str(size))]
        if not any(k.lower() == "content-type" for k, _ in headers):
            extra.insert(0, ("Content-Type", "text/plain"))
        state["sent"] = True
        self._send_raw(conn, _head(state["status"], headers, extra) + b"".join(body), done=True)

    def _stream(self, conn, state, first: List[bytes], rest) -> None:
        headers = [(k, v) for k, v in state["headers"]
                   if k.lower() not in ("content-length", "transfer-encoding")]
        state["sent"] = True
        self._send_raw(conn, _head(state["status"], headers, [("Transfer-Encoding", "chunked")]), done=False)
        for block in first:
            self._chunk(conn, block)
        for block in rest:
            self._chunk(conn, block)
        conn.http_chunk(b"")

    def _chunk(self, conn, block: bytes) -> None:
        if not block:
            return
        deadline = time.monotonic() + self.stream_timeout
        while conn.send_len > HIGH_WATER:  # the client reads slowly: wait, don't buffer
            if time.monotonic() > deadline:
                raise TimeoutError("client did not read for %.1f s" % self.stream_timeout)
            time.sleep(0.005)
        conn.http_chunk(block)

    def _send_raw(self, conn, data: bytes, done: bool) -> None:
        def send_on_loop():
            c = conn._require()
            if not lib.mg_send(c, data, len(data)):
                raise RuntimeError("mg_send failed")
            if done:
                lib.mgpy_resp_done(c)

        conn._mgr._call(send_on_loop)


def serve(app: Callable, url: str = "http://127.0.0.1:8000", workers: int = 4, stream_timeout: float = 5.0) -> None:
    server = WSGIServer(app, workers=workers, stream_timeout=stream_timeout)
    listener = server.listen(url)
    print("mongoose_py WSGI server on %s (port %d)" % (url, listener.local_addr[1]), flush=True)
    server.run()
