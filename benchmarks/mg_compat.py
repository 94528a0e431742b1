"""Hello-world server, cymongoose style (function handler): the same code as
cymongoose_server.py but for the import. Every event crosses into Python,
as with cymongoose (no ``events=`` narrowing)."""
import argparse

from mongoose_py import Manager, MG_EV_HTTP_MSG


def handler(conn, ev, data):
    if ev == MG_EV_HTTP_MSG:
        conn.reply(200, "Hello, World!")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args()
    mgr = Manager(handler)
    mgr.listen("http://127.0.0.1:%d" % args.port)
    mgr.run()


if __name__ == "__main__":
    main()
