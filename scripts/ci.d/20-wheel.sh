#!/usr/bin/env bash
# Packaging: `python -m build` of a fresh clone yields an sdist and a wheel,
# with the network cut off (a new network namespace: `unshare -n`). The wheel
# is built from the sdist, so this also proves the sdist builds offline (it
# carries the fetched, hash-checked Mongoose; MANIFEST.in). The wheel then
# goes into a fresh venv with `pip install --no-index` (cffi and the test
# tools from a local wheel folder downloaded beforehand) and the smoke tests run.
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
source scripts/lib.sh
install_apt_packages scripts/apt-packages.txt

PY=${PYTHON:-python3}
TMP=$(mktemp -d /tmp/mongoose_py-wheel.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
src=$TMP/src
wheels=$TMP/wheelhouse
dist=$TMP/dist
fail() { echo "== wheel: FAILED ($*)"; exit 1; }

echo "== wheel: clone, fetch Mongoose, download build and test dependencies (online)"
git clone -q "$ROOT" "$src"
timeout 300 "$PY" "$src/vendor/mongoose/fetch.py" >/dev/null || fail "fetch.py"
"$PY" -m venv "$TMP/tools"
pipq "$TMP/tools" install -q build || fail "pip install build"
# Everything the isolated build env and the test venv will need, as files.
pipq "$TMP/tools" download -q -d "$wheels" "setuptools>=77" "cffi>=1.15" pip wheel pytest pytest-timeout \
  || fail "pip download"

offline() {  # run "$@" without network and without pip's configured indexes
  unshare -n -- env PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_FIND_LINKS="$wheels" "$@"
}
unshare -n -- true 2>/dev/null || fail "unshare -n is not permitted here (needs root)"

echo "== wheel: python -m build (offline)"
offline timeout 600 "$TMP/tools/bin/python" -m build --outdir "$dist" "$src" >"$TMP/build.log" 2>&1 \
  || { tail -40 "$TMP/build.log"; fail "python -m build"; }
sdist=$(ls "$dist"/*.tar.gz 2>/dev/null | head -1)
wheel=$(ls "$dist"/*.whl 2>/dev/null | head -1)
[ -n "$sdist" ] && [ -n "$wheel" ] || fail "no sdist or no wheel in $dist: $(ls "$dist")"
echo "== wheel: built $(basename "$sdist") and $(basename "$wheel")"

echo "== wheel: sdist contents"
"$PY" - "$sdist" "$wheel" "$src" <<'PYEOF' || fail "sdist or wheel contents"
import hashlib, json, os, subprocess, sys, tarfile, zipfile
sdist, wheel, src = sys.argv[1:]
with tarfile.open(sdist) as tar:
    top = tar.getnames()[0].split("/")[0]
    names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    pin = json.load(open(os.path.join(src, "vendor/mongoose/pin.json")))
    for name, sha in pin["files"].items():
        member = tar.extractfile(top + "/vendor/mongoose/" + name)
        assert hashlib.sha256(member.read()).hexdigest() == sha, "sdist %s differs from the pin" % name
tracked = subprocess.run(["git", "-C", src, "ls-files", "mongoose_py", "build_ffi.py", "setup.py",
                          "pyproject.toml", "MANIFEST.in", "vendor"],
                         check=True, stdout=subprocess.PIPE).stdout.decode().split()
shims = [n for n in tracked if os.path.basename(n).startswith(("_shim", "_cdef"))]
assert shims and any(n.endswith("_shim.c") for n in shims), shims
tracked = [n for n in tracked if not os.path.basename(n).startswith(".")]  # .gitignore
missing = sorted(set(tracked) - names)
assert not missing, "missing from the sdist: %s" % missing
with zipfile.ZipFile(wheel) as whl:
    wnames = whl.namelist()
assert any(n.startswith("mongoose_py/_mongoose_cffi") and n.endswith(".so") for n in wnames), wnames
assert "mongoose_py/py.typed" in wnames
print("sdist: %d files, every tracked package file (%d _shim*/_cdef* files) and the pinned Mongoose; "
      "wheel: %d files with the compiled module" % (len(names), len(shims), len(wnames)))
PYEOF

echo "== wheel: install into a fresh venv with --no-index (offline), smoke tests"
"$PY" -m venv "$TMP/venv"
offline timeout 300 "$TMP/venv/bin/python" -m pip install -q --no-index --find-links "$wheels" \
  "$wheel" pytest pytest-timeout || fail "pip install --no-index of the wheel"
offline sh -c "cd '$src/tests' && timeout 300 '$TMP/venv/bin/python' -m pytest -q -p no:cacheprovider test_smoke.py" \
  || fail "smoke tests against the installed wheel"
# The clone's mongoose_py/ has no compiled module (never built in place), so
# the smoke tests above could only pass with the wheel; and from elsewhere:
(cd "$TMP" && offline "$TMP/venv/bin/python" -c "
import mongoose_py, sys
assert mongoose_py.__file__.startswith(sys.prefix), mongoose_py.__file__
print('wheel import OK from', mongoose_py.__file__)") || fail "the installed wheel does not import"
echo "== wheel: OK"
