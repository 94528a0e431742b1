#!/usr/bin/env python3
"""UDP echo server: each datagram goes back to the address it came from.

Mongoose's UDP tutorials (e.g. "tutorials/udp/sntp-time-sync", and the
captive DNS server) use the same shape as this example: a ``udp://``
listener gets one MG_EV_READ per datagram with the sender as
``remote_addr``, and ``send()`` on that connection answers the sender,
immediately, as one datagram. There is no accept and no connection state.

Run it::

    python examples/udp_echo_server.py --port 9001

Try it::

    nc -u 127.0.0.1 9001

This example uses the handler-function style, narrowed to MG_EV_READ.
"""
from __future__ import annotations

import argparse

from mongoose_py import MG_EV_READ, Manager


def handler(conn, ev, data):
    if ev == MG_EV_READ:
        datagram = conn.read()  # exactly one datagram
        conn.send(datagram)     # to its sender


def main() -> None:
    ap = argparse.ArgumentParser(description="UDP echo server")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9001, help="0 picks a free port")
    args = ap.parse_args()

    with Manager() as mgr:
        listener = mgr.listen("udp://%s:%d" % (args.host, args.port), handler, events={MG_EV_READ})
        print("listening on udp://%s:%d" % (args.host, listener.local_addr[1]), flush=True)
        mgr.run()


if __name__ == "__main__":
    main()
