"""Hello-world server on cymongoose 0.2.5 (the binding mongoose_py replaces):
the same code as mg_compat.py but for the import. CPython only."""
import argparse

from cymongoose import Manager, MG_EV_HTTP_MSG


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
