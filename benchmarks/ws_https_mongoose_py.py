"""HTTPS hello-world server, idiomatic mongoose_py: listen("https://...",
tls=TlsOpts(cert, key)) (Mongoose's built-in TLS 1.3) and a Connection
subclass with only on_http_msg. Usage: --port N --cert FILE --key FILE"""
import argparse

from mongoose_py import Connection, Manager, TlsOpts


class Hello(Connection):
    def on_http_msg(self, msg):
        self.reply(200, "Hello, World!")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8443)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    args = ap.parse_args()
    mgr = Manager(connection_class=Hello)
    mgr.listen("https://127.0.0.1:%d" % args.port, tls=TlsOpts(cert=args.cert, key=args.key))
    mgr.run()


if __name__ == "__main__":
    main()
