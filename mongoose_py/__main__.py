"""``python -m mongoose_py``: serve an ASGI/WSGI app, a folder, or the demo.

    python -m mongoose_py main:app --port 8000          # ASGI or WSGI, detected
    python -m mongoose_py main:app --interface wsgi --workers 4
    python -m mongoose_py --static ./public --port 8080
    python -m mongoose_py                               # the demo page (also --demo)

``python -m mongoose_py.asgi APP`` and ``python -m mongoose_py.wsgi APP`` are
the same with the interface fixed.
"""
import argparse
import importlib
import inspect
import logging
import os
import signal
import sys

from . import Connection, MONGOOSE_VERSION, __version__, serve

PAGE = """<!doctype html><meta charset="utf-8"><title>mongoose_py demo</title>
<style>body{font:16px system-ui;margin:3em auto;max-width:40em}input{width:20em}</style>
<h1>mongoose_py %s</h1><p>Mongoose %s over CFFI. This page was served by a Python
<code>Connection</code> subclass; requests so far: <b id=n>%d</b>.</p>
<p><input id=t value="hello"> <button onclick="ws.send(t.value)">send over WebSocket</button></p>
<pre id=log></pre>
<script>
const ws = new WebSocket(location.href.replace(/^http/, "ws") + "ws");
ws.onmessage = e => log.textContent += "echo: " + e.data + "\\n";
ws.onopen = () => log.textContent += "websocket open\\n";
</script>"""

PARENT_CHECK_S = 0.25  # how soon a forked worker notices that its parent is gone


class Demo(Connection):
    requests = 0

    def on_http_msg(self, msg):
        Demo.requests += 1
        if msg.uri == "/ws":
            self.ws_upgrade(msg)
        elif msg.uri == "/api/stats":
            self.reply_json({"requests": Demo.requests, "connections": len(self._mgr.connections)})
        elif msg.uri == "/":
            self.reply(200, PAGE % (__version__, MONGOOSE_VERSION, Demo.requests),
                       {"Content-Type": "text/html; charset=utf-8"})
        else:
            self.reply(404, "not found\n")

    def on_ws_msg(self, msg):
        self.ws_send(msg.text)


def load_app(spec: str):
    """``"module:attr"`` (attr may be dotted; default ``app``) -> the object.
    The current directory is importable, as with uvicorn and gunicorn."""
    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise SystemExit("APP must look like module:attribute (e.g. main:app), got %r" % spec)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit("could not import %r: %s" % (module_name, exc))
    for part in (attr or "app").split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SystemExit("module %r has no attribute %r" % (module_name, attr or "app"))
    return obj


def detect_interface(app) -> str:
    """ASGI apps are coroutine functions (or objects with an async ``__call__``)."""
    call = app if inspect.isfunction(app) or inspect.ismethod(app) else getattr(app, "__call__", None)
    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(call):
        return "asgi"
    return "wsgi"


def _static_class(root: str):
    if not os.path.isdir(root):
        raise SystemExit("--static: %r is not a directory" % root)
    root = os.path.abspath(root)

    class Static(Connection):
        def on_http_msg(self, msg):
            self.serve_dir(msg, root)

    return Static


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m mongoose_py",
        description="Serve an ASGI or WSGI app (APP = module:attribute), a folder (--static), "
                    "or the demo page (no APP, or --demo) with Mongoose.")
    ap.add_argument("app", nargs="?", metavar="APP", help="the application, e.g. main:app")
    ap.add_argument("--interface", choices=("auto", "asgi", "wsgi"), default="auto",
                    help="how to call APP (default: auto-detected; coroutine -> asgi)")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any free one)")
    ap.add_argument("--workers", type=int, default=1,
                    help="processes sharing the port with SO_REUSEPORT (default 1)")
    ap.add_argument("--threads", type=int, default=8, help="WSGI: worker threads per process (default 8)")
    ap.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate file")
    ap.add_argument("--tls-key", metavar="PEM", help="the certificate's private key file")
    ap.add_argument("--root-path", default="", help="the prefix a proxy strips (ASGI root_path, WSGI SCRIPT_NAME)")
    ap.add_argument("--access-log", dest="access_log", action="store_true", default=True,
                    help="log one line per request on stderr (default)")
    ap.add_argument("--no-access-log", dest="access_log", action="store_false", help="no access log")
    ap.add_argument("--shutdown-timeout", type=float, default=5.0,
                    help="seconds requests in flight get on SIGINT/SIGTERM (default 5)")
    ap.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                    help="a resource limit of the listener (mongoose_py.Limits), e.g. max_body=67108864, "
                         "idle_timeout=30; repeatable")
    ap.add_argument("--static", metavar="DIR", help="serve the files under DIR (ranges, ETag, listings)")
    ap.add_argument("--demo", action="store_true", help="serve the demo page (a WebSocket echo)")
    return ap


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    chosen = [name for name, on in (("APP", args.app), ("--static", args.static), ("--demo", args.demo)) if on]
    if len(chosen) > 1:
        parser().error("give only one of %s" % ", ".join(chosen))
    if args.interface != "auto" and not args.app:
        parser().error("--interface %s needs an APP (module:attribute)" % args.interface)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser().error("--tls-cert and --tls-key go together")
    if args.workers > 1 and args.port == 0:
        parser().error("--workers > 1 need a fixed --port")
    scheme = "https" if args.tls_cert else "http"
    host = "[%s]" % args.host if ":" in args.host else args.host
    url = "%s://%s:%d" % (scheme, host, args.port)
    tls = None
    if args.tls_cert:
        from ._tls import TlsOpts
        tls = TlsOpts(cert=args.tls_cert, key=args.tls_key)

    if not args.app:
        if tls is not None:
            parser().error("--tls-cert/--tls-key are for APP (put TLS on a Connection with tls=TlsOpts(...))")
        target, what = (_static_class(args.static), "files of %s" % args.static) if args.static else (Demo, "demo")

        def ready(listener):
            _say("mongoose_py %s on %s://%s:%d/  (Ctrl+C to stop)" % (what, scheme, args.host,
                                                                       listener.local_addr[1]))

        serve(target, url, workers=args.workers, shutdown_timeout=args.shutdown_timeout, ready=ready)
        return

    limits = _limits(args.limit)
    app = load_app(args.app)
    interface = detect_interface(app) if args.interface == "auto" else args.interface
    if args.access_log:
        log = logging.getLogger("mongoose_py.access")
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False

    def ready(listener):
        _say("mongoose_py %s server for %s on %s://%s:%d/  (pid %d, Ctrl+C to stop)" % (
            interface.upper(), args.app, scheme, args.host, listener.local_addr[1], os.getpid()))

    def run_one(parent=None):
        if parent is not None:
            _watch_parent(parent)
        common = dict(root_path=args.root_path, access_log=args.access_log, tls=tls, limits=limits,
                      shutdown_timeout=args.shutdown_timeout, reuse_port=parent is not None, ready=ready)
        if interface == "asgi":
            from .asgi import serve as serve_asgi
            serve_asgi(app, url, **common)
        else:
            from .wsgi import serve as serve_wsgi
            serve_wsgi(app, url, workers=args.threads, **common)

    if args.workers <= 1:
        run_one()
    else:
        from ._serve import run_forked
        run_forked(args.workers, run_one)


def _limits(items):
    if not items:
        return None
    from ._limits import Limits
    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            parser().error("--limit takes NAME=VALUE, got %r" % item)
        try:
            values[name.strip()] = float(value) if "." in value else int(value)
        except ValueError:
            parser().error("--limit %s: %r is not a number" % (name, value))
    try:
        return Limits(**values)
    except (TypeError, ValueError) as exc:
        parser().error("--limit: %s" % exc)


def _say(line: str) -> None:
    """One write per line: forked workers share stdout and must not interleave."""
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), (line + "\n").encode("utf-8", "replace"))


def _watch_parent(parent: int) -> None:
    """A forked worker stops (SIGTERM to itself: the graceful path) once its parent is gone."""
    import threading
    from ._serve import orphaned

    def watch():
        ev = threading.Event()
        while not ev.wait(PARENT_CHECK_S):
            if orphaned(parent):
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    main()
