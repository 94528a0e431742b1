"""HTTPS hello-world server on cymongoose 0.2.5 (CPython only): tls_init
on MG_EV_ACCEPT, as cymongoose's documentation does it.
Usage: --port N --cert FILE --key FILE"""
import argparse

from cymongoose import MG_EV_ACCEPT, MG_EV_HTTP_MSG, Manager, TlsOpts

OPTS = None


def handler(conn, ev, data):
    if ev == MG_EV_HTTP_MSG:
        conn.reply(200, "Hello, World!")
    elif ev == MG_EV_ACCEPT:
        conn.tls_init(OPTS)


def main():
    global OPTS
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8443)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    args = ap.parse_args()
    OPTS = TlsOpts(cert=open(args.cert, "rb").read(), key=open(args.key, "rb").read())
    mgr = Manager(handler)
    mgr.listen("https://127.0.0.1:%d" % args.port)
    mgr.run()


if __name__ == "__main__":
    main()
