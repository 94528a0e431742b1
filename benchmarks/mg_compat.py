"""Hello-world server, cymongoose style (function handler): the same code as
cymongoose_server.py but for the import. Every event crosses into Python,
as with cymongoose (no ``events=`` narrowing)."""
from mongoose_py import Manager, MG_EV_HTTP_MSG

from server_cli import parse_args, serve


def handler(conn, ev, data):
    if ev == MG_EV_HTTP_MSG:
        conn.reply(200, "Hello, World!")


def main():
    args = parse_args()
    serve(Manager(handler), args.port)


if __name__ == "__main__":
    main()
