"""WebSocket echo server on cymongoose 0.2.5 (CPython only): a function
handler (every event crosses into Python, as cymongoose always does).
Usage: --port N"""
from cymongoose import MG_EV_HTTP_MSG, MG_EV_WS_MSG, Manager

from server_cli import parse_args, serve


def handler(conn, ev, data):
    if ev == MG_EV_WS_MSG:
        conn.ws_send(data.data, data.flags & 15)
    elif ev == MG_EV_HTTP_MSG:
        conn.ws_upgrade(data)


def main():
    args = parse_args()
    serve(Manager(handler), args.port)


if __name__ == "__main__":
    main()
