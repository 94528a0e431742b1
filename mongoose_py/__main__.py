"""Demo server: ``python -m mongoose_py [--host H] [--port P]``.

Serves a page with a live WebSocket echo and a request counter, to open in a
browser at the printed address.
"""
import argparse

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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)")
    args = ap.parse_args(argv)
    url = "http://%s:%d" % (args.host, args.port)

    def ready(listener):
        host, port, _ = listener.local_addr
        print("mongoose_py demo on http://%s:%d/  (Ctrl+C to stop)" % (args.host, port), flush=True)

    serve(Demo, url, workers=args.workers, shutdown_timeout=2, ready=ready)


if __name__ == "__main__":
    main()
