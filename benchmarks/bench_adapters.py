"""mongoose_py.asgi vs uvicorn, mongoose_py.wsgi vs gunicorn: server CPU per request.

    python benchmarks/bench_adapters.py --python .venv-dev/bin/python --ref-python /path/venv/bin/python

``--python`` runs mongoose_py (its CLI, from this checkout); ``--ref-python`` is a
venv with uvicorn[standard] (uvloop + httptools), gunicorn, starlette and flask.
Each server is pinned to CPU 0, wrk to CPU 1; after a 1 s warm-up, ``wrk -t1
-c32 -dSECONDS`` (keep-alive) runs; the server's CPU time (its process and
children, from /proc) gives requests per server CPU second, the figure that a
loaded machine disturbs least. Prints a Markdown table of ratios; with
``--write`` replaces the "adapters" section of RESULTS.md.
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_ticks(pid):
    """utime+stime of pid and its children (gunicorn's workers), in clock ticks."""
    total = 0
    pids = [pid]
    try:
        pids += [int(p) for p in open("/proc/%d/task/%d/children" % (pid, pid)).read().split()]
    except OSError:
        pass
    for p in pids:
        try:
            fields = open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total


def wait_listening(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def run_wrk(port, seconds, path, script):
    args = ["taskset", "-c", "1", "wrk", "-t1", "-c32", "-d%ds" % seconds]
    if script:
        args += ["-s", os.path.join(HERE, "five_routes.lua")]
    out = subprocess.run(args + ["http://127.0.0.1:%d%s" % (port, path)], capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    return float(m.group(1)) if m else 0.0, (errors.group(0) if errors else "")


def measure(name, cmd, port, seconds, path="/", script=False):
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen(["taskset", "-c", "0"] + cmd, cwd=HERE, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_listening(port):
            raise RuntimeError("%s did not start" % name)
        run_wrk(port, 1, path, script)
        t0 = cpu_ticks(proc.pid)
        rps, errors = run_wrk(port, seconds, path, script)
        ticks = cpu_ticks(proc.pid) - t0
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    cpu_s = ticks / os.sysconf("SC_CLK_TCK")
    per_cpu = rps * seconds / cpu_s if cpu_s else 0.0
    return {"name": name, "rps": rps, "per_cpu": per_cpu, "errors": errors}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--ref-python", required=True)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="update RESULTS.md")
    args = ap.parse_args()
    ref_bin = os.path.dirname(args.ref_python)
    mg = [args.python, "-m", "mongoose_py"]
    pairs = []
    for label, ours_app, ref, ref_app, path, script in (
            ("ASGI hello", "adapter_apps:asgi_hello", "uvicorn", "adapter_apps:asgi_hello", "/", False),
            ("ASGI Starlette 5 JSON routes", "adapter_apps:starlette_json", "uvicorn", "adapter_apps:starlette_json",
             "/", True),
            ("WSGI hello", "adapter_apps:wsgi_hello", "gunicorn", "adapter_apps:wsgi_hello", "/", False),
            ("WSGI Flask 5 JSON routes", "adapter_apps:flask_json", "gunicorn", "adapter_apps:flask_json", "/", True)):
        port = free_port()
        ours = measure("mongoose_py", mg + [ours_app, "--port", str(port), "--no-access-log", "--threads", "4"],
                       port, args.seconds, path, script)
        port = free_port()
        if ref == "uvicorn":
            cmd = [os.path.join(ref_bin, "uvicorn"), ref_app, "--port", str(port), "--no-access-log",
                   "--log-level", "warning", "--loop", "uvloop", "--http", "httptools"]
        else:
            cmd = [os.path.join(ref_bin, "gunicorn"), ref_app, "-b", "127.0.0.1:%d" % port, "-w", "1",
                   "-k", "gthread", "--threads", "4", "--log-level", "warning"]
        theirs = measure(ref, cmd, port, args.seconds, path, script)
        pairs.append((label, ours, theirs))
        print(label, ours, theirs, flush=True)
    load = open("/proc/loadavg").read().split()[:3]
    lines = ["Measured %s by `benchmarks/bench_adapters.py` (`wrk -t1 -c32 -d%ds` keep-alive after 1 s warm-up, "
             "one round; server on CPU 0, wrk on CPU 1; loadavg %s: **a loaded machine**, other engineers' jobs "
             "running; read the ratios, not the absolute numbers). One process each; WSGI servers with 4 threads "
             "(gunicorn `-k gthread --threads 4`); uvicorn with uvloop + httptools." % (
                 time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), args.seconds, " ".join(load)),
             "",
             "| workload | mongoose_py req/s | reference | reference req/s | ratio req/s | "
             "ratio per server CPU second |",
             "|---|---:|---|---:|---:|---:|"]
    for label, ours, theirs in pairs:
        lines.append("| %s | %.0f | %s | %.0f | %.2f× | **%.2f×** |" % (
            label, ours["rps"], theirs["name"], theirs["rps"], ours["rps"] / max(theirs["rps"], 1),
            ours["per_cpu"] / max(theirs["per_cpu"], 1)))
    table = "\n".join(lines)
    print(table)
    if args.write:
        path = os.path.join(HERE, "RESULTS.md")
        text = open(path).read()
        begin, end = "<!-- BEGIN adapters -->", "<!-- END adapters -->"
        section = "%s\n%s\n%s" % (begin, table, end)
        if begin in text:
            text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
        else:
            text += "\n## ASGI and WSGI adapters (issue 11)\n\n" + section + "\n"
        open(path, "w").write(text)


if __name__ == "__main__":
    main()
