"""mg_idiomatic.py plus a second thread that keeps calling into the Manager
(the thread contract, API.md §2): ``mgr.timer_add(...)`` (run on the loop
thread: marshalled while the loop polls, the caller waiting for the result)
followed by ``Timer.cancel()`` (posted, never blocks), back to back for as
long as the server runs. Prints how many calls it made to stderr at exit
(run.py keeps it in out/*.stderr).

Needs a core with "poll() tells reentrancy by its own gate" (b1d648a): before
it, a direct call from this thread between two polls made the loop's next
poll() raise, and run() died.
"""
import sys
import threading
import time

from mongoose_py import Manager

from mg_idiomatic import Hello
from server_cli import parse_args


def noop():
    pass


def main():
    args = parse_args()
    mgr = Manager(connection_class=Hello)
    mgr.listen("http://127.0.0.1:%d" % args.port)
    done = threading.Event()
    count = [0]

    def busy():
        while not done.is_set():
            try:
                mgr.timer_add(3_600_000, noop).cancel()
            except RuntimeError:  # the manager closed under us
                break
            count[0] += 1

    t = threading.Thread(target=busy, daemon=True)
    t0 = time.monotonic()
    t.start()
    try:
        mgr.run()
    finally:
        done.set()
        elapsed = time.monotonic() - t0
        t.join(2)
        sys.stderr.write("bg_calls=%d elapsed=%.1fs rate=%.0f/s\n" % (count[0], elapsed, count[0] / elapsed))


if __name__ == "__main__":
    main()
