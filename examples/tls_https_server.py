#!/usr/bin/env python3
"""HTTPS server: certificates, SNI, optional client certificates (mutual TLS).

Follows Mongoose's TLS tutorial ("tutorials/tls", and the TLS part of
"tutorials/http/http-server"): Mongoose's own TLS 1.3 stack, no OpenSSL
inside. ``listen("https://...", tls=TlsOpts(cert=..., key=...))`` starts TLS
on every accepted connection by itself.

SNI: a client names the server it wants in the handshake (Server Name
Indication) and checks the certificate against that name; curl, browsers
and ``TlsOpts(name=...)`` (see examples/http_client.py --ca) do it. The
built-in TLS serves one certificate per listener, so give the certificate
every name the server answers to (subjectAltName), or run one listener per
certificate.

Run it::

    python examples/tls_https_server.py --cert server.pem --key server.key
    python examples/tls_https_server.py --cert server.pem --key server.key --ca ca.pem   # mutual TLS
    python examples/tls_https_server.py        # throwaway self-signed certificate (needs openssl)

Try it::

    curl --cacert ca.pem https://localhost:8443/api/status
    curl -k https://127.0.0.1:8443/                      # self-signed: skip verification

Make a certificate (P-256 and RSA keys work; the name must match the URL)::

    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \\
        -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \\
        -keyout server.key -out server.pem
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from mongoose_py import Connection, Manager, TlsOpts


class Https(Connection):
    def on_http_msg(self, msg):
        if msg.uri == "/api/status":
            host, port, _ = self.remote_addr
            self.reply_json({"tls": self.is_tls, "client": "%s:%d" % (host, port),
                             "host": msg.header("Host")})
        elif msg.uri == "/":
            self.reply(200, "Hello over TLS\n")
        else:
            self.reply(404, "Not found\n")


def self_signed(directory: str):
    """A throwaway P-256 certificate for localhost and 127.0.0.1."""
    if not shutil.which("openssl"):
        sys.exit("no --cert/--key given and no openssl to make a self-signed certificate")
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "7", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def main() -> None:
    ap = argparse.ArgumentParser(description="HTTPS server (Mongoose built-in TLS 1.3)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8443, help="0 picks a free port")
    ap.add_argument("--cert", help="server certificate (PEM)")
    ap.add_argument("--key", help="private key of --cert (PEM: EC or RSA)")
    ap.add_argument("--ca", help="CA (PEM): require client certificates signed by it")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cert, key = (args.cert, args.key) if args.cert else self_signed(tmp)
        opts = TlsOpts(cert=cert, key=key, ca=args.ca)  # file paths or PEM text
        with Manager() as mgr:
            listener = mgr.listen("https://%s:%d" % (args.host, args.port), connection_class=Https, tls=opts)
            print("listening on https://%s:%d" % (args.host, listener.local_addr[1]), flush=True)
            mgr.run(shutdown_timeout=2)


if __name__ == "__main__":
    main()
