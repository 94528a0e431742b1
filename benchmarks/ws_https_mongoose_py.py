"""HTTPS hello-world server, idiomatic mongoose_py: listen("https://...",
tls=TlsOpts(cert, key)) (Mongoose's built-in TLS 1.3) and a Connection
subclass with only on_http_msg. Usage: --port N --cert FILE --key FILE"""
from mongoose_py import Connection, Manager, TlsOpts

from server_cli import parse_args, serve


class Hello(Connection):
    def on_http_msg(self, msg):
        self.reply(200, "Hello, World!")


def main():
    args = parse_args(8443, tls=True)
    serve(Manager(connection_class=Hello), args.port, "https", tls=TlsOpts(cert=args.cert, key=args.key))


if __name__ == "__main__":
    main()
