#!/usr/bin/env python3
"""WebSocket broadcasting: a timer pushes the same message to every client.

Follows Mongoose's tutorial "tutorials/core/timers" (a repeating timer that
walks the connections and sends to each WebSocket one).

Run it::

    python examples/websocket_broadcast.py --interval 0.5   # open http://127.0.0.1:8000/ in a few tabs
"""
from __future__ import annotations

import argparse
import json
import time

from mongoose_py import Connection, Manager

PAGE = """<!DOCTYPE html>
<html><body><h1>Broadcasts</h1><pre id="log"></pre>
<script>
  const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws");
  ws.onmessage = (ev) => { log.textContent = ev.data + "\\n" + log.textContent; };
</script></body></html>
"""


class Client(Connection):
    def on_http_msg(self, msg):
        if msg.uri == "/ws":
            self.ws_upgrade(msg)
        elif msg.uri == "/":
            self.reply(200, PAGE, {"Content-Type": "text/html; charset=utf-8"})
        else:
            self.reply(404, "Not found\n")


def main() -> None:
    ap = argparse.ArgumentParser(description="Timer-driven WebSocket broadcast")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between broadcasts")
    args = ap.parse_args()

    with Manager() as mgr:
        listener = mgr.listen("http://%s:%d" % (args.host, args.port), connection_class=Client)
        ticks = [0]

        def broadcast():
            # Like the C tutorial: walk the manager's connections, pick the WebSockets.
            targets = [c for c in mgr.connections if c.is_websocket]
            ticks[0] += 1
            text = json.dumps({"tick": ticks[0], "time": time.time(), "clients": len(targets)})
            for conn in targets:
                conn.ws_send(text)

        mgr.timer_add(int(args.interval * 1000), broadcast, repeat=True)
        print("listening on http://%s:%d" % (args.host, listener.local_addr[1]), flush=True)
        mgr.run(shutdown_timeout=2)


if __name__ == "__main__":
    main()
