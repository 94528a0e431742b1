"""WebSocket echo server, idiomatic mongoose_py: a Connection subclass with
on_http_msg -> ws_upgrade and on_ws_msg -> ws_send (same opcode back).
The C shim forwards only those events to Python. Usage: --port N"""
from mongoose_py import Connection, Manager

from server_cli import parse_args, serve


class Echo(Connection):
    def on_http_msg(self, msg):
        self.ws_upgrade(msg)

    def on_ws_msg(self, msg):
        self.ws_send(msg.data, msg.flags & 15)


def main():
    args = parse_args()
    serve(Manager(connection_class=Echo), args.port)


if __name__ == "__main__":
    main()
