#!/usr/bin/env python3
"""HTTP client through a proxy: CONNECT tunnelling.

Follows Mongoose's tutorial "tutorials/http/http-proxy-client": connect to
the proxy, send ``CONNECT host:port``, wait for the proxy's ``200``, then
send the real request through the tunnel. The connection to the proxy is raw
TCP (``http=False``): this client parses the proxy's answer itself and
collects the target's response until the target closes (``Connection:
close``).

Run it (with examples/http_proxy.py and examples/http_server.py running)::

    python examples/http_proxy_client.py --proxy http://127.0.0.1:3128 http://127.0.0.1:8000/api/info

The body goes to stdout (``-v``: status line and headers to stderr). Exit
status 0 for a 2xx/3xx answer, 1 otherwise.
"""
from __future__ import annotations

import argparse
import sys

from mongoose_py import (
    MG_EV_CLOSE, MG_EV_CONNECT, MG_EV_ERROR, MG_EV_READ, Manager, url_host, url_port, url_uri,
)


def main() -> int:
    ap = argparse.ArgumentParser(description="HTTP client through a CONNECT proxy")
    ap.add_argument("url", help="target: http://host:port/path")
    ap.add_argument("--proxy", default="http://127.0.0.1:3128", help="proxy URL")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds for the whole exchange")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    host, port = url_host(args.url), url_port(args.url)
    target = "%s:%d" % (host, port)
    state = {"tunnel": False, "response": b"", "error": None}

    def handler(conn, ev, data):
        if ev == MG_EV_CONNECT:  # TCP to the proxy is up: ask for a tunnel
            conn.send(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
        elif ev == MG_EV_READ and not state["tunnel"]:
            head = conn.recv_data()
            end = head.find(b"\r\n\r\n")
            if end < 0:
                return  # the proxy's answer is not complete yet
            conn.consume(end + 4)
            status = head.split(b"\r\n", 1)[0]
            if status.split(b" ")[1:2] != [b"200"]:
                state["error"] = "proxy refused: %s" % status.decode("latin-1")
                return conn.close()
            state["tunnel"] = True  # from here on we talk to the target
            conn.send(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                       % (url_uri(args.url), target)).encode())
        elif ev == MG_EV_READ:
            state["response"] += conn.read()
        elif ev == MG_EV_ERROR:
            state["error"] = data
        elif ev == MG_EV_CLOSE:
            mgr.stop()

    with Manager() as mgr:
        mgr.connect(args.proxy, handler, http=False, events={MG_EV_CONNECT, MG_EV_READ, MG_EV_ERROR, MG_EV_CLOSE})
        mgr.timer_add(int(args.timeout * 1000), mgr.stop)
        mgr.run(poll_ms=50)

    head, sep, body = state["response"].partition(b"\r\n\r\n")
    if state["error"] or not sep:
        print("error: %s" % (state["error"] or "no response"), file=sys.stderr)
        return 1
    if args.verbose:
        sys.stderr.write(head.decode("latin-1") + "\n\n")
    sys.stdout.buffer.write(body)
    sys.stdout.flush()
    status = head.split(b" ", 2)[1]
    return 0 if status.isdigit() and int(status) < 400 else 1


if __name__ == "__main__":
    sys.exit(main())
