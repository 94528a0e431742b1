#!/usr/bin/env python3
"""Multi-threaded server: slow work in worker threads, answers via Manager.wakeup().

Follows Mongoose's tutorial "tutorials/core/multi-threaded": the event loop
never blocks. A request that needs slow work queues it for a pool of worker
threads, together with the connection's *id* (not the connection: it may be
gone by the time the work is done); the worker calls
``mgr.wakeup(conn_id, result)`` from its own thread, and the loop delivers the result as MG_EV_WAKEUP
(``on_wakeup``) to that connection, which answers. Wakeups to a connection
that has closed meanwhile are dropped.

Run it::

    python examples/multithreaded_server.py --workers 4

Try it::

    curl 'http://127.0.0.1:8000/work?ms=2000' &    # answered after ~2 s by a worker
    curl http://127.0.0.1:8000/fast                 # answered at once meanwhile
"""
from __future__ import annotations

import argparse
import json
import queue
import threading
import time

from mongoose_py import Connection, Manager


jobs = queue.Queue()  # (manager, connection id, milliseconds of work)


def worker() -> None:
    """A worker thread: anything blocking is fine here, the loop runs on."""
    while True:
        mgr, conn_id, ms = jobs.get()
        time.sleep(ms / 1000.0)  # stands for a database query, a computation, ...
        result = {"slept_ms": ms, "thread": threading.current_thread().name}
        try:
            mgr.wakeup(conn_id, json.dumps(result).encode())  # thread-safe, never blocks
        except RuntimeError:
            pass  # the server has shut down meanwhile


class Server(Connection):
    def on_http_msg(self, msg):
        if msg.uri == "/work":
            ms = min(int(msg.query_var("ms") or 1000), 60000)
            jobs.put((self.manager, self.id, ms))  # the id, not the connection
            # no reply yet: it comes in on_wakeup
        elif msg.uri == "/fast":
            self.reply_json({"fast": True, "thread": threading.current_thread().name})
        else:
            self.reply(404, "Try /work?ms=1000 or /fast\n")

    def on_wakeup(self, data):
        self.reply(200, data, {"Content-Type": "application/json"})


def main() -> None:
    ap = argparse.ArgumentParser(description="HTTP server offloading slow work to threads")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    ap.add_argument("--workers", type=int, default=4, help="worker threads")
    args = ap.parse_args()

    for i in range(args.workers):  # daemon threads: they never hold up the exit
        threading.Thread(target=worker, name="worker-%d" % i, daemon=True).start()
    with Manager(enable_wakeup=True) as mgr:  # wakeup() needs enable_wakeup
        listener = mgr.listen("http://%s:%d" % (args.host, args.port), connection_class=Server)
        print("listening on http://%s:%d" % (args.host, listener.local_addr[1]), flush=True)
        mgr.run(shutdown_timeout=5)  # requests waiting for a worker get 5 s


if __name__ == "__main__":
    main()
