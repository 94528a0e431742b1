#!/usr/bin/env python3
"""SNTP client: ask a time server for the time, once or periodically.

Follows Mongoose's tutorial "tutorials/udp/sntp-time-sync": ``sntp_connect``
sends the request when the UDP "connection" is ready, MG_EV_SNTP_TIME
brings the server's time in milliseconds since the epoch, and Mongoose sets
its own clock from it. Mongoose closes the connection after the answer, so a
timer opens a new one for every periodic sync.

Run it::

    python examples/sntp_client.py --server udp://time.google.com:123
    python examples/sntp_client.py --server udp://192.168.1.1:123 --interval 60

The default server is udp://127.0.0.1:123 (a local NTP daemon such as chrony).
Prints ``time <epoch_ms> <ISO 8601 UTC> offset <ms vs. this machine's clock>``.
"""
from __future__ import annotations

import argparse
import datetime
import sys
import time

from mongoose_py import Connection, Manager


class Sntp(Connection):
    results = []          # epoch_ms of every answer (class-wide: one client per process)
    once = True           # stop the loop after the first answer

    def on_sntp_time(self, epoch_ms):
        offset = epoch_ms - time.time() * 1000
        when = datetime.datetime.fromtimestamp(epoch_ms / 1000.0, datetime.timezone.utc)
        print("time %d %s offset %+.0f ms" % (epoch_ms, when.isoformat(timespec="milliseconds"), offset),
              flush=True)
        self.results.append(epoch_ms)
        if self.once:
            self.manager.stop()

    def on_error(self, message):
        print("error: %s" % message, file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description="SNTP time client")
    ap.add_argument("--server", default="udp://127.0.0.1:123", help="udp://HOST:PORT of an (S)NTP server")
    ap.add_argument("--interval", type=float, default=0, help="seconds between syncs (0: once)")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an answer (once)")
    args = ap.parse_args()
    Sntp.once = args.interval <= 0

    with Manager() as mgr:
        if Sntp.once:
            mgr.sntp_connect(args.server, connection_class=Sntp)
            mgr.timer_add(int(args.timeout * 1000), mgr.stop)  # give up
        else:
            def sync():  # Mongoose closes each SNTP connection after the answer: open a new one
                mgr.sntp_connect(args.server, connection_class=Sntp)

            mgr.timer_add(int(args.interval * 1000), sync, repeat=True, run_now=True)
        mgr.run(shutdown_timeout=1)

    if Sntp.once and not Sntp.results:
        print("error: no answer from %s within %gs" % (args.server, args.timeout), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
