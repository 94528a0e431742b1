#!/usr/bin/env python3
"""DNS client: resolve host names asynchronously with Mongoose's resolver.

Mongoose has no stand-alone DNS tutorial; every client tutorial (e.g.
"tutorials/http/http-client") resolves through the same asynchronous
resolver before it connects. This example uses exactly that: a ``udp://``
connection per name (UDP sends nothing until you do), MG_EV_RESOLVE when the
answer is in (``remote_addr`` holds the address), MG_EV_ERROR on NXDOMAIN or
timeout. All names are resolved in parallel on one loop.

Run it::

    python examples/dns_client.py example.com mongoose.ws
    python examples/dns_client.py --dns udp://127.0.0.1:5353 printer.lan

The default DNS server is the first ``nameserver`` of /etc/resolv.conf.
Prints ``NAME ADDRESS`` per name; exit status 1 if any name failed.
"""
from __future__ import annotations

import argparse
import sys

from mongoose_py import MG_EV_ERROR, MG_EV_RESOLVE, Manager


def main() -> int:
    ap = argparse.ArgumentParser(description="Asynchronous DNS lookups")
    ap.add_argument("names", nargs="+", help="host names to resolve")
    ap.add_argument("--dns", help="DNS server as udp://IP:PORT (default: from /etc/resolv.conf)")
    ap.add_argument("--timeout", type=int, default=3000, help="milliseconds per query")
    args = ap.parse_args()
    state = {"pending": len(args.names), "failed": 0}

    def lookup(name):
        """A handler for one name: the closure remembers which name it is."""
        def handler(conn, ev, data):
            if ev == MG_EV_RESOLVE:
                print("%s %s" % (name, conn.remote_addr[0]), flush=True)
            else:  # MG_EV_ERROR: NXDOMAIN, timeout, no DNS server...
                print("%s error: %s" % (name, data), file=sys.stderr, flush=True)
                state["failed"] += 1
            conn.close()
            state["pending"] -= 1
            if state["pending"] == 0:
                mgr.stop()
        return handler

    with Manager(dns=args.dns, dns_timeout_ms=args.timeout) as mgr:
        for name in args.names:
            mgr.connect("udp://%s:53" % name, lookup(name), events={MG_EV_RESOLVE, MG_EV_ERROR})
        mgr.run(poll_ms=50)
    return 1 if state["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
