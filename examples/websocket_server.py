#!/usr/bin/env python3
"""WebSocket server: echo, mixed HTTP + WebSocket on one port, client tracking.

Follows Mongoose's tutorial "tutorials/websocket/websocket-server": an HTTP
listener upgrades requests for ``/ws`` to WebSocket and answers the others.

Run it::

    python examples/websocket_server.py            # then open http://127.0.0.1:8000/

Try it::

    python -c "import websocket; ws = websocket.create_connection('ws://127.0.0.1:8000/ws'); \\
               ws.send('hi'); print(ws.recv())"
    curl http://127.0.0.1:8000/api/stats
    curl -d 'hello, everyone' http://127.0.0.1:8000/api/broadcast
"""
from __future__ import annotations

import argparse

from mongoose_py import WEBSOCKET_OP_BINARY, Connection, Manager

PAGE = """<!DOCTYPE html>
<html><body>
<h1>WebSocket echo</h1>
<input id="msg" value="hello"> <button onclick="ws.send(msg.value)">Send</button>
<pre id="log"></pre>
<script>
  const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws");
  ws.onmessage = (ev) => { log.textContent += ev.data + "\\n"; };
</script>
</body></html>
"""

clients = set()        # the open WebSocket connections
stats = {"messages": 0}


class WsServer(Connection):
    """One per connection: plain HTTP until the upgrade, WebSocket after it."""

    def on_http_msg(self, msg):
        if msg.uri == "/ws":
            self.ws_upgrade(msg)  # MG_EV_WS_OPEN follows
        elif msg.uri == "/api/stats":
            self.reply_json({"clients": len(clients), "messages": stats["messages"]})
        elif msg.uri == "/api/broadcast" and msg.method == "POST":
            text = msg.body_text
            for ws in list(clients):
                ws.ws_send(text)
            self.reply_json({"sent_to": len(clients)})
        elif msg.uri == "/":
            self.reply(200, PAGE, {"Content-Type": "text/html; charset=utf-8"})
        else:
            self.reply(404, "Not found\n")

    def on_ws_open(self, msg):
        clients.add(self)

    def on_ws_msg(self, msg):
        stats["messages"] += 1
        if msg.opcode == WEBSOCKET_OP_BINARY:
            self.ws_send(msg.data, WEBSOCKET_OP_BINARY)  # binary stays binary
        else:
            self.ws_send(msg.text)

    def on_close(self):
        clients.discard(self)


def main() -> None:
    ap = argparse.ArgumentParser(description="WebSocket echo server with an HTTP API")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = ap.parse_args()

    with Manager() as mgr:
        listener = mgr.listen("http://%s:%d" % (args.host, args.port), connection_class=WsServer)
        print("listening on http://%s:%d" % (args.host, listener.local_addr[1]), flush=True)
        mgr.run(shutdown_timeout=2)


if __name__ == "__main__":
    main()
