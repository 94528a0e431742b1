#!/usr/bin/env python3
"""HTTP streaming: large chunked responses, produced as the client reads them.

Follows Mongoose's tutorial "tutorials/http/huge-response": never build the
whole response in memory; send it piece by piece, each time the socket has
taken the previous piece. Here that is a chunked response (``http_chunk``)
refilled from MG_EV_WRITE (``on_write``) whenever the send buffer
(``send_len``) falls under a low-water mark, so a slow client holds back the
server instead of filling its memory.

Run it::

    python examples/http_streaming.py
    curl -s http://127.0.0.1:8000/stream?size=100000000 | wc -c     # 100 MB, little RAM
    curl -N http://127.0.0.1:8000/count?n=5                          # lines, one per chunk

``/stream?size=N`` sends N bytes of the repeating pattern 00 01 .. FF;
``/count?n=N`` sends lines "1" .. "N", one chunk each.
"""
from __future__ import annotations

import argparse

from mongoose_py import Connection, Manager

CHUNK = 64 * 1024                        # bytes per http_chunk() call
LOW_WATER = 256 * 1024                   # refill when less than this is queued
PATTERN = bytes(range(256)) * (CHUNK // 256)


class Streamer(Connection):
    remaining = 0       # bytes of the current /stream response still to send

    def on_http_msg(self, msg):
        if msg.uri == "/stream":
            try:
                self.remaining = int(msg.query_var("size") or 10 * 1024 * 1024)
            except ValueError:
                return self.reply(400, "size must be an integer\n")
            self.reply(200, b"", {"Content-Type": "application/octet-stream",
                                  "Transfer-Encoding": "chunked"})  # headers only
            self.refill()
        elif msg.uri == "/count":
            n = int(msg.query_var("n") or 10)
            self.reply(200, b"", {"Content-Type": "text/plain", "Transfer-Encoding": "chunked"})
            for i in range(1, n + 1):
                self.http_chunk("%d\n" % i)
            self.http_chunk(b"")  # the empty chunk ends the response
        else:
            self.reply(200, "Try /stream?size=1000000 or /count?n=5\n")

    def on_write(self, nbytes):
        if self.remaining:
            self.refill()

    def refill(self):
        while self.remaining and self.send_len < LOW_WATER:
            n = min(CHUNK, self.remaining)
            self.http_chunk(PATTERN[:n])
            self.remaining -= n
            if not self.remaining:
                self.http_chunk(b"")


def main() -> None:
    ap = argparse.ArgumentParser(description="Chunked streaming of large responses")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = ap.parse_args()

    with Manager() as mgr:
        listener = mgr.listen("http://%s:%d" % (args.host, args.port), connection_class=Streamer)
        print("listening on http://%s:%d" % (args.host, listener.local_addr[1]), flush=True)
        mgr.run(shutdown_timeout=5)  # streams in flight get 5 s to finish


if __name__ == "__main__":
    main()
