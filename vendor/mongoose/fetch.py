"""Fetch and verify the pinned Mongoose sources (never committed to this repo).

Order of preference:
1. ``MONGOOSE_SRC=/dir``: use ``/dir/mongoose.{c,h}`` (hashes must match the pin,
   unless ``MONGOOSE_SRC_UNPINNED=1`` says you know what you are doing).
2. ``vendor/mongoose/mongoose.{c,h}`` already present with the pinned hashes
   (e.g. inside an sdist, or from an earlier build).
3. ``python -m pip download --no-deps --no-binary :all: cymongoose==0.2.5``,
   then extract ``thirdparty/mongoose/{mongoose.c,mongoose.h,LICENSE}``.

Run as a script to fetch into this folder: ``python vendor/mongoose/fetch.py``.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PIN = json.load(open(os.path.join(HERE, "pin.json")))
FILES = PIN["files"]


class FetchError(RuntimeError):
    pass


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def _mismatches(folder, names):
    bad = []
    for name in names:
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            bad.append("%s: missing" % name)
        elif _sha256(path) != FILES[name]:
            bad.append("%s: sha256 %s, pinned %s" % (name, _sha256(path), FILES[name]))
    return bad


def _download_into(dest):
    spec = PIN["origin"]["package"]
    with tempfile.TemporaryDirectory() as tmp:
        # pip prepares the sdist's metadata in an isolated environment of its
        # own (cymongoose builds with scikit-build-core); we only keep the archive.
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", tmp, spec]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        archive = os.path.join(tmp, PIN["origin"]["archive"])
        if proc.returncode != 0 or not os.path.exists(archive):
            raise FetchError(
                "Could not download %s with pip (exit %d):\n%s\n"
                "Fix the network/index access, or set MONGOOSE_SRC=/dir to a folder holding "
                "Mongoose %s's mongoose.c and mongoose.h."
                % (spec, proc.returncode, proc.stdout.decode(errors="replace")[-2000:], PIN["version"]))
        if _sha256(archive) != PIN["origin"]["archive_sha256"]:
            raise FetchError("%s has sha256 %s, pinned %s: refusing to build from it."
                             % (archive, _sha256(archive), PIN["origin"]["archive_sha256"]))
        folder = PIN["origin"]["folder"]
        with tarfile.open(archive) as tar:
            for name in FILES:
                member = tar.getmember(folder + name)
                src = tar.extractfile(member)
                with open(os.path.join(dest, name + ".part"), "wb") as out:
                    shutil.copyfileobj(src, out)
        for name in FILES:
            os.replace(os.path.join(dest, name + ".part"), os.path.join(dest, name))


def ensure_sources():
    """Return the folder holding verified mongoose.c/mongoose.h, fetching if needed."""
    local = os.environ.get("MONGOOSE_SRC")
    if local:
        bad = _mismatches(local, ["mongoose.c", "mongoose.h"])
        if bad and os.environ.get("MONGOOSE_SRC_UNPINNED") != "1":
            raise FetchError(
                "MONGOOSE_SRC=%s does not hold the pinned Mongoose %s:\n  %s\n"
                "Point it at the pinned copy, or set MONGOOSE_SRC_UNPINNED=1 to build anyway."
                % (local, PIN["version"], "\n  ".join(bad)))
        return os.path.abspath(local)
    if not _mismatches(HERE, list(FILES)):
        return HERE
    _download_into(HERE)
    bad = _mismatches(HERE, list(FILES))
    if bad:
        raise FetchError("Fetched Mongoose does not match the pin:\n  %s" % "\n  ".join(bad))
    return HERE


if __name__ == "__main__":
    try:
        print(ensure_sources())
    except FetchError as exc:
        sys.exit("mongoose fetch failed: %s" % exc)
