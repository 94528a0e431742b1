"""What the benchmark servers share: their command line (``SERVER --port N``,
with TLS ``--cert FILE --key FILE``) and the call that runs them. Standard
library only: the servers import it on CPython, PyPy and in the peers' venv
(run from this folder, which is on their sys.path)."""
import argparse


def parse_args(default_port=8000, tls=False):
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=default_port)
    if tls:
        ap.add_argument("--cert", required=True)
        ap.add_argument("--key", required=True)
    return ap.parse_args()


def serve(mgr, port, scheme="http", **listen_kwargs):
    """Listen on ``scheme://127.0.0.1:port`` and run the Manager (mongoose_py's
    or cymongoose's: the same calls) until SIGINT/SIGTERM."""
    mgr.listen("%s://127.0.0.1:%d" % (scheme, port), **listen_kwargs)
    mgr.run()


def run_async(coro):
    """``asyncio.run(coro)``; SIGINT ends it quietly."""
    import asyncio  # here: the mongoose_py servers do not load it
    try:
        asyncio.run(coro)
    except KeyboardInterrupt:
        pass
