#!/usr/bin/env python3
"""Profile a hello-world server's hot path with cProfile under wrk load.

    ../.venv-python3/bin/python profile_server.py [idiomatic|compat] [seconds]

Runs the server in this process (pinned to CPU 0 by the caller if wanted),
drives it with ``wrk -t1 -c50`` on CPU 1, and prints the top functions by
total time and the number of Python calls per request.
"""
import cProfile
import os
import pstats
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mongoose_py import Manager  # noqa: E402

from mg_compat import handler  # noqa: E402
from mg_idiomatic import Hello  # noqa: E402


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "idiomatic"
    secs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    mgr = Manager(connection_class=Hello) if kind == "idiomatic" else Manager(handler)
    lst = mgr.listen("http://127.0.0.1:0")
    port = lst.local_addr[1]
    out = {}

    def load():
        p = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c50", "-d%ds" % secs,
                            "http://127.0.0.1:%d/" % port], stdout=subprocess.PIPE, text=True)
        out["wrk"] = p.stdout

    th = threading.Thread(target=load)
    prof = cProfile.Profile()
    th.start()
    prof.enable()
    while th.is_alive():
        mgr.poll(50)
    prof.disable()
    th.join()
    mgr.close()
    import re
    n = int(re.search(r"(\d+) requests in", out["wrk"]).group(1))
    st = pstats.Stats(prof)
    total_calls = st.total_calls
    print("%s: %d requests under the profiler, %.1f Python function calls per request"
          % (kind, n, total_calls / max(n, 1)))
    st.sort_stats("tottime").print_stats(18)


if __name__ == "__main__":
    main()
