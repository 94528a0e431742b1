#!/usr/bin/env python3
"""HTTP(S) client: GET or POST, custom headers, TLS, a timeout.

Follows Mongoose's tutorial "tutorials/http/http-client": connect, write the
request on MG_EV_CONNECT, print the response on MG_EV_HTTP_MSG, give up on a
timer.

Run it (start examples/http_server.py first)::

    python examples/http_client.py http://127.0.0.1:8000/api/info
    python examples/http_client.py -X POST -d 'hello' -H 'Content-Type: text/plain' \\
        http://127.0.0.1:8000/api/echo
    python examples/http_client.py --ca ca.pem https://localhost:8443/   # verify the server
    python examples/http_client.py --timeout 2 http://10.255.255.1/      # gives up after 2 s

HTTPS: Mongoose checks the server certificate only against a CA you give
(``--ca``); without one the connection is encrypted but not authenticated.

The body goes to stdout; ``-v`` adds the status line and headers (stderr).
Exit status: 0 for a 2xx/3xx answer, 1 otherwise (error, timeout, 4xx/5xx).

This example uses the handler-function style of the C tutorial: a client's
state lives in the closure, like ``fn_data`` in C.
"""
from __future__ import annotations

import argparse
import sys

from mongoose_py import (
    MG_EV_CONNECT, MG_EV_ERROR, MG_EV_HTTP_MSG, Manager, TlsOpts, url_host, url_is_ssl, url_port, url_uri,
)


def make_handler(mgr: Manager, args, result: dict):
    host = url_host(args.url)
    port = url_port(args.url)
    host_header = host if port in (80, 443) else "%s:%d" % (host, port)
    body = args.data.encode("utf-8") if args.data is not None else b""

    def handler(conn, ev, data):
        if ev == MG_EV_CONNECT:
            # Mongoose holds the bytes until the TLS handshake (if any) is done.
            lines = ["%s %s HTTP/1.1" % (args.method, url_uri(args.url)), "Host: %s" % host_header,
                     "Connection: close", "Content-Length: %d" % len(body)] + args.header
            conn.send("\r\n".join(lines).encode("utf-8") + b"\r\n\r\n" + body)
        elif ev == MG_EV_HTTP_MSG:
            result["status"] = data.status()
            result["head"] = "%s %s\n" % (data.method, data.uri) + "".join(
                "%s: %s\n" % h for h in data.headers())
            result["body"] = data.body_bytes
            conn.close()
            mgr.stop()
        elif ev == MG_EV_ERROR:
            result["error"] = data
            mgr.stop()

    return handler


def main() -> int:
    ap = argparse.ArgumentParser(description="HTTP(S) client")
    ap.add_argument("url", help="http://... or https://...")
    ap.add_argument("-X", "--method", default=None, help="GET, or POST when -d is given")
    ap.add_argument("-d", "--data", help="request body")
    ap.add_argument("-H", "--header", action="append", default=[], help="'Name: value' (repeatable)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds for the whole exchange")
    ap.add_argument("--ca", help="PEM CA file: verify the server certificate and its name (https)")
    ap.add_argument("--insecure", action="store_true", help="with --ca: accept any certificate anyway")
    ap.add_argument("-v", "--verbose", action="store_true", help="print status line and headers")
    args = ap.parse_args()
    args.method = args.method or ("POST" if args.data is not None else "GET")
    for h in args.header:
        if ":" not in h or "\r" in h or "\n" in h:
            ap.error("bad header %r: use 'Name: value'" % h)

    tls = None
    if url_is_ssl(args.url):  # the name is sent as SNI and checked against the certificate
        tls = TlsOpts(ca=args.ca, name=url_host(args.url), skip_verification=args.insecure)

    result = {}
    with Manager() as mgr:
        mgr.connect(args.url, make_handler(mgr, args, result), http=True, tls=tls,
                    events={MG_EV_CONNECT, MG_EV_HTTP_MSG, MG_EV_ERROR})
        mgr.timer_add(int(args.timeout * 1000), mgr.stop)  # the deadline
        mgr.run(poll_ms=50)

    if "status" not in result:
        print("error: %s" % result.get("error", "timeout after %gs" % args.timeout), file=sys.stderr)
        return 1
    if args.verbose:
        sys.stderr.write(result["head"] + "\n")
    sys.stdout.buffer.write(result["body"])
    sys.stdout.flush()
    return 0 if result["status"] and result["status"] < 400 else 1


if __name__ == "__main__":
    sys.exit(main())
