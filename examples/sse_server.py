#!/usr/bin/env python3
"""Server-Sent Events: push a stream of events to browsers over plain HTTP.

Mongoose has no SSE tutorial; this follows the push pattern of
"tutorials/http/device-dashboard" and "tutorials/core/timers": a response
that never ends (chunked, ``Content-Type: text/event-stream``) per
subscriber, and a repeating timer that writes one event to each with
``http_sse(event_type, data)``.

Run it::

    python examples/sse_server.py --interval 1        # then open http://127.0.0.1:8000/

Try it::

    curl -N http://127.0.0.1:8000/events
"""
from __future__ import annotations

import argparse
import json
import time

from mongoose_py import Connection, Manager

PAGE = """<!DOCTYPE html>
<html><body><h1>Server-Sent Events</h1><pre id="log"></pre>
<script>
  const es = new EventSource("/events");
  es.addEventListener("tick", (ev) => { log.textContent = ev.data + "\\n" + log.textContent; });
</script></body></html>
"""

subscribers = set()


class Sse(Connection):
    def on_http_msg(self, msg):
        if msg.uri == "/events":
            self.reply(200, b"", {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                  "Transfer-Encoding": "chunked"})
            self.http_sse("hello", json.dumps({"subscribers": len(subscribers) + 1}))
            subscribers.add(self)
        elif msg.uri == "/":
            self.reply(200, PAGE, {"Content-Type": "text/html; charset=utf-8"})
        else:
            self.reply(404, "Not found\n")

    def on_close(self):
        subscribers.discard(self)


def main() -> None:
    ap = argparse.ArgumentParser(description="Server-Sent Events push server")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between events")
    args = ap.parse_args()
    counter = [0]

    def tick():
        counter[0] += 1
        data = json.dumps({"n": counter[0], "time": time.time()})
        for conn in list(subscribers):
            conn.http_sse("tick", data)

    with Manager() as mgr:
        listener = mgr.listen("http://%s:%d" % (args.host, args.port), connection_class=Sse)
        mgr.timer_add(int(args.interval * 1000), tick, repeat=True)
        print("listening on http://%s:%d" % (args.host, listener.local_addr[1]), flush=True)
        # Event streams never finish: on Ctrl+C/SIGTERM give them 1 s, then close.
        mgr.run(shutdown_timeout=1)


if __name__ == "__main__":
    main()
