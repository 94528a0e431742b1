"""WebSocket echo server, idiomatic mongoose_py: a Connection subclass with
on_http_msg -> ws_upgrade and on_ws_msg -> ws_send (same opcode back).
The C shim forwards only those events to Python. Usage: --port N"""
import argparse

from mongoose_py import Connection, Manager


class Echo(Connection):
    def on_http_msg(self, msg):
        self.ws_upgrade(msg)

    def on_ws_msg(self, msg):
        self.ws_send(msg.data, msg.flags & 15)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args()
    mgr = Manager(connection_class=Echo)
    mgr.listen("http://127.0.0.1:%d" % args.port)
    mgr.run()


if __name__ == "__main__":
    main()
