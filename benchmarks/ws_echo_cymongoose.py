"""WebSocket echo server on cymongoose 0.2.5 (CPython only): a function
handler (every event crosses into Python, as cymongoose always does).
Usage: --port N"""
import argparse

from cymongoose import MG_EV_HTTP_MSG, MG_EV_WS_MSG, Manager


def handler(conn, ev, data):
    if ev == MG_EV_WS_MSG:
        conn.ws_send(data.data, data.flags & 15)
    elif ev == MG_EV_HTTP_MSG:
        conn.ws_upgrade(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args()
    mgr = Manager(handler)
    mgr.listen("http://127.0.0.1:%d" % args.port)
    mgr.run()


if __name__ == "__main__":
    main()
