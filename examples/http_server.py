#!/usr/bin/env python3
"""HTTP server: static files, a JSON API, multipart uploads, optional TLS.

Follows Mongoose's tutorial "tutorials/http/http-server" (static files from a
directory with ``serve_dir``, everything else answered by the handler).

Run it::

    python examples/http_server.py                      # http://127.0.0.1:8000/
    python examples/http_server.py --root ./public --port 8080
    python examples/http_server.py --cert server.pem --key server.key   # HTTPS

Try it::

    curl http://127.0.0.1:8000/api/info
    curl -d 'hello' http://127.0.0.1:8000/api/echo
    curl -F "file=@README.md" http://127.0.0.1:8000/upload

This example uses the handler-function style, ``handler(conn, ev, data)``,
narrowed with ``events=`` to the one event it needs; the other server
examples subclass ``Connection`` instead.
"""
from __future__ import annotations

import argparse
import os
import time

from mongoose_py import MG_EV_HTTP_MSG, MONGOOSE_VERSION, Manager, TlsOpts, http_parse_multipart

HERE = os.path.dirname(os.path.abspath(__file__))


def make_handler(root: str, upload_dir: str):
    started = time.time()

    def save_uploads(body: bytes) -> list:
        """Walk the multipart body part by part; save the parts that are files."""
        saved = []
        offset = 0
        while True:
            offset, part = http_parse_multipart(body, offset)
            if part is None:
                return saved
            if part["filename"]:
                name = os.path.basename(part["filename"])  # never trust a client path
                os.makedirs(upload_dir, exist_ok=True)
                with open(os.path.join(upload_dir, name), "wb") as f:
                    f.write(part["body"])
                saved.append({"field": part["name"], "file": name, "size": len(part["body"])})

    def handler(conn, ev, msg):
        if ev != MG_EV_HTTP_MSG:
            return
        if msg.uri == "/api/info":
            conn.reply_json({"server": "mongoose_py", "mongoose": MONGOOSE_VERSION,
                             "uptime_s": round(time.time() - started, 3), "tls": conn.is_tls})
        elif msg.uri == "/api/echo" and msg.method == "POST":
            ctype = msg.header("Content-Type", "application/octet-stream")
            conn.reply(200, msg.body_bytes, {"Content-Type": ctype})
        elif msg.uri == "/upload" and msg.method == "POST":
            conn.reply_json({"saved": save_uploads(msg.body_bytes)})
        else:
            conn.serve_dir(msg, root_dir=root)  # Range, ETag, 304, 404; "../" refused

    return handler


def main() -> None:
    ap = argparse.ArgumentParser(description="HTTP server: static files, JSON API, uploads, TLS")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: all)")
    ap.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    ap.add_argument("--root", default=os.path.join(HERE, "web_root"), help="directory to serve")
    ap.add_argument("--upload-dir", default="uploads", help="where POST /upload saves files")
    ap.add_argument("--cert", help="PEM certificate: serve HTTPS")
    ap.add_argument("--key", help="PEM private key of --cert")
    args = ap.parse_args()

    tls = TlsOpts(cert=args.cert, key=args.key) if args.cert else None
    scheme = "https" if tls else "http"
    with Manager() as mgr:
        listener = mgr.listen("%s://%s:%d" % (scheme, args.host, args.port),
                              make_handler(args.root, args.upload_dir), events={MG_EV_HTTP_MSG}, tls=tls)
        print("listening on %s://%s:%d" % (scheme, args.host, listener.local_addr[1]), flush=True)
        mgr.run(shutdown_timeout=3)  # until Ctrl+C / SIGTERM; requests in flight get 3 s


if __name__ == "__main__":
    main()
