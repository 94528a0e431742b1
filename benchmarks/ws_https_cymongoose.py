"""HTTPS hello-world server on cymongoose 0.2.5 (CPython only): tls_init
on MG_EV_ACCEPT, as cymongoose's documentation does it.
Usage: --port N --cert FILE --key FILE"""
from cymongoose import MG_EV_ACCEPT, MG_EV_HTTP_MSG, Manager, TlsOpts

from server_cli import parse_args, serve

OPTS = None


def handler(conn, ev, data):
    if ev == MG_EV_HTTP_MSG:
        conn.reply(200, "Hello, World!")
    elif ev == MG_EV_ACCEPT:
        conn.tls_init(OPTS)


def main():
    global OPTS
    args = parse_args(8443, tls=True)
    OPTS = TlsOpts(cert=open(args.cert, "rb").read(), key=open(args.key, "rb").read())
    serve(Manager(handler), args.port, "https")


if __name__ == "__main__":
    main()
