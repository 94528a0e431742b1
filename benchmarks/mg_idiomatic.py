"""Hello-world server, idiomatic mongoose_py: a Connection subclass that
overrides only on_http_msg, so the C shim filters every other event (no
Python call per MG_EV_POLL/READ/WRITE/ACCEPT...)."""
from mongoose_py import Connection, Manager

from server_cli import parse_args, serve


class Hello(Connection):
    def on_http_msg(self, msg):
        self.reply(200, "Hello, World!")


def main():
    args = parse_args()
    serve(Manager(connection_class=Hello), args.port)


if __name__ == "__main__":
    main()
