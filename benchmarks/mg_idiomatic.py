"""Hello-world server, idiomatic mongoose_py: a Connection subclass that
overrides only on_http_msg, so the C shim filters every other event (no
Python call per MG_EV_POLL/READ/WRITE/ACCEPT...)."""
import argparse

from mongoose_py import Connection, Manager


class Hello(Connection):
    def on_http_msg(self, msg):
        self.reply(200, "Hello, World!")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args()
    mgr = Manager(connection_class=Hello)
    mgr.listen("http://127.0.0.1:%d" % args.port)
    mgr.run()


if __name__ == "__main__":
    main()
