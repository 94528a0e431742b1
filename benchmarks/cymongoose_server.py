"""Hello-world server on cymongoose 0.2.5 (the binding mongoose_py replaces):
the same code as mg_compat.py but for the import. CPython only."""
from cymongoose import Manager, MG_EV_HTTP_MSG

from server_cli import parse_args, serve


def handler(conn, ev, data):
    if ev == MG_EV_HTTP_MSG:
        conn.reply(200, "Hello, World!")


def main():
    args = parse_args()
    serve(Manager(handler), args.port)


if __name__ == "__main__":
    main()
