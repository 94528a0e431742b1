#!/usr/bin/env python3
"""JSON-RPC 2.0 over WebSocket: every text frame is a request, the answer goes back.

Follows Mongoose's tutorial "tutorials/websocket/json-rpc-over-websocket":
an ``Rpc`` method table (``rpc.add(pattern, handler)``), a WebSocket server
that hands each message to ``rpc.process(frame)`` and sends the response
frame back. A handler answers with ``req.ok(result_json)`` or
``req.err(code, message)``; unknown methods and bad frames get the standard
JSON-RPC errors; notifications (no ``id``) get no answer.

Run it::

    python examples/json_rpc_websocket.py

Try it::

    python -c "import websocket; ws = websocket.create_connection('ws://127.0.0.1:8000/websocket'); \\
               ws.send('{\\"id\\": 1, \\"method\\": \\"sum\\", \\"params\\": [1, 2, 3]}'); print(ws.recv())"
"""
from __future__ import annotations

import argparse
import json
import time

from mongoose_py import Connection, Manager, Rpc

rpc = Rpc()


def rpc_sum(req):
    if not isinstance(req.params, list) or not all(isinstance(x, (int, float)) for x in req.params):
        return req.err(-32602, "params must be a list of numbers")
    req.ok(json.dumps(sum(req.params)))


def rpc_mul(req):
    a, b = req.params  # a ValueError here becomes a -32603 error response
    req.ok(json.dumps(a * b))


rpc.add("sum", rpc_sum)
rpc.add("mul", rpc_mul)
rpc.add("time.now", lambda req: req.ok(json.dumps(time.time())))
rpc.add("rpc.list", lambda req: req.ok(json.dumps(rpc.methods)))


class RpcServer(Connection):
    def on_http_msg(self, msg):
        if msg.uri == "/websocket":
            self.ws_upgrade(msg)
        else:
            self.reply(404, "Connect a WebSocket to /websocket\n")

    def on_ws_msg(self, msg):
        response = rpc.process(msg.data)
        if response:  # "" for a notification
            self.ws_send(response)


def main() -> None:
    ap = argparse.ArgumentParser(description="JSON-RPC 2.0 over WebSocket")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = ap.parse_args()

    with Manager() as mgr:
        listener = mgr.listen("http://%s:%d" % (args.host, args.port), connection_class=RpcServer)
        print("listening on http://%s:%d" % (args.host, listener.local_addr[1]), flush=True)
        mgr.run(shutdown_timeout=2)


if __name__ == "__main__":
    main()
