"""Fetch and verify the pinned Mongoose sources (never committed to this repo).

Order of preference:
1. ``MONGOOSE_SRC=/dir``: use ``/dir/mongoose.{c,h}`` (hashes must match the pin,
   unless ``MONGOOSE_SRC_UNPINNED=1`` says you know what you are doing).
2. ``vendor/mongoose/mongoose.{c,h}`` already present with the pinned hashes
   (e.g. inside an sdist, or from an earlier build).
3. download ``cymongoose-0.2.5.tar.gz`` from the package index pip is configured
   with (the simple API, by file name; ``pip download`` as a fallback), check
   its sha256, then extract ``thirdparty/mongoose/{mongoose.c,mongoose.h,LICENSE}``.

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


def _index_urls():
    """The package indexes pip is configured with (env, then pip config), PyPI last."""
    urls = []
    for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        urls += os.environ.get(var, "").split()
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=60).stdout.decode(errors="replace")
        for line in out.splitlines():
            key, _, value = line.partition("=")
            if key.endswith(("index-url", "extra-index-url")):
                urls += value.strip().strip("'\"").split()
    except (OSError, subprocess.SubprocessError):
        pass
    urls.append("https://pypi.org/simple/")
    seen = []
    for u in urls:
        if u and u not in seen:
            seen.append(u)
    return seen


def _archive_from_index(dest_file):
    """Find the pinned archive on a PEP 503 simple index and download it.

    Only the file is needed, never its metadata: ``pip download`` would build
    the sdist's metadata first (installing scikit-build-core and, with
    ``--no-binary :all:``, compiling Cython: minutes) and refuses on Python 3.9
    (the sdist says ``Requires-Python >= 3.10``)."""
    import re
    import urllib.parse
    import urllib.request
    name = PIN["origin"]["package"].split("==")[0]
    archive = PIN["origin"]["archive"]
    errors = []
    for index in _index_urls():
        page = index.rstrip("/") + "/" + name + "/"
        try:
            with urllib.request.urlopen(page, timeout=60) as resp:
                html = resp.read().decode("utf-8", "replace")
            for href in re.findall(r'href="([^"]+)"', html):
                url = urllib.parse.urljoin(page, href.replace("&amp;", "&"))
                if urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1] != archive:
                    continue
                with urllib.request.urlopen(url.split("#", 1)[0], timeout=120) as resp, \
                        open(dest_file, "wb") as out:
                    shutil.copyfileobj(resp, out)
                if _sha256(dest_file) == PIN["origin"]["archive_sha256"]:
                    return True
                errors.append("%s: sha256 mismatch" % url)
            errors.append("%s: no %s" % (page, archive))
        except (OSError, ValueError) as exc:
            errors.append("%s: %s" % (page, exc))
    raise FetchError("\n".join(errors))


def _download_into(dest):
    spec = PIN["origin"]["package"]
    with tempfile.TemporaryDirectory() as tmp:
        archive = os.path.join(tmp, PIN["origin"]["archive"])
        try:
            _archive_from_index(archive)
        except FetchError as index_error:
            # Fallback: pip itself (slower: it prepares the sdist's metadata).
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", spec.split("==")[0],
                   "--ignore-requires-python", "-d", tmp, spec]
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if proc.returncode != 0 or not os.path.exists(archive):
                raise FetchError(
                    "Could not download %s (simple index: %s; pip exit %d:\n%s)\n"
                    "Fix the network/index access, or set MONGOOSE_SRC=/dir to a folder holding "
                    "Mongoose %s's mongoose.c and mongoose.h."
                    % (spec, index_error, proc.returncode, proc.stdout.decode(errors="replace")[-2000:],
                       PIN["version"]))
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
