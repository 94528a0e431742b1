#!/usr/bin/env python3
"""TCP echo server: raw TCP, no HTTP; whatever a client sends comes back.

Follows Mongoose's tutorial "tutorials/tcp/tcp" (its server half): a
``tcp://`` listener, MG_EV_ACCEPT for each client, MG_EV_READ when bytes
arrive. ``read()`` takes the bytes out of the receive buffer, ``send()``
queues them for sending.

Run it::

    python examples/tcp_echo_server.py --port 9000

Try it::

    nc 127.0.0.1 9000
"""
from __future__ import annotations

import argparse

from mongoose_py import Connection, Manager


class Echo(Connection):
    def on_accept(self):
        host, port, _ = self.remote_addr
        print("accepted %s:%d" % (host, port), flush=True)

    def on_read(self):
        self.send(self.read())  # take everything received, queue it back

    def on_close(self):
        if self.is_accepted:
            print("closed", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description="Raw TCP echo server")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9000, help="0 picks a free port")
    args = ap.parse_args()

    with Manager() as mgr:
        listener = mgr.listen("tcp://%s:%d" % (args.host, args.port), connection_class=Echo)
        print("listening on tcp://%s:%d" % (args.host, listener.local_addr[1]), flush=True)
        mgr.run(shutdown_timeout=2)  # echoes still being sent get 2 s


if __name__ == "__main__":
    main()
