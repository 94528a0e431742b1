#!/usr/bin/env bash
# A new user's first build: `git clone` the checkout (its committed state) into a temp dir and
# `pip install .` it, with PyPy FIRST and alone (its own clone: nothing a
# CPython build left behind), then with CPython 3.9 (pyenv, in another clone).
# Each clone: the smoke tests, and `import mongoose_py` from inside the clone
# (the checkout must import: setup.py leaves the compiled module there).
# Prints the wall time of each `pip install .` (README "Building": <= 60 s).
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
source scripts/lib.sh
install_apt_packages scripts/apt-packages.txt

TMP=$(mktemp -d /tmp/mongoose_py-fresh.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
PY39=$(pyenv_python 3.9)
if [ -z "$PY39" ]; then
  echo "== fresh clone: FAILED (no CPython 3.9 in ~/.pyenv/versions)"
  exit 1
fi

status=0
summary=()
for py in pypy3 "$PY39"; do
  name=$(basename "$py")
  src=$TMP/$name/src
  venv=$TMP/$name/venv
  echo "== fresh clone ($name): git clone, venv"
  git clone -q "$ROOT" "$src"
  "$py" -m venv "$venv"
  timeout 300 "$venv/bin/python" -m pip install -q pytest pytest-timeout 2>&1 | { grep -v "is ignored: it is neither" || true; }
  echo "== fresh clone ($name): pip install ."
  start=$(date +%s%N)
  set +e
  (cd "$src" && timeout 600 "$venv/bin/python" -m pip install -q . 2>&1 | { grep -v "is ignored: it is neither" || true; }; exit "${PIPESTATUS[0]}")
  rc=$?
  set -e
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  secs=$(printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)))
  if [ $rc -ne 0 ]; then
    echo "== fresh clone ($name): FAILED (pip install . exit $rc after ${secs} s)"
    status=1
    summary+=("$name: pip install . FAILED")
    continue
  fi
  echo "== fresh clone ($name): pip install . took ${secs} s"
  summary+=("$name: pip install . ${secs} s")

  echo "== fresh clone ($name): smoke tests"
  if ! (cd "$src/tests" && timeout 300 "$venv/bin/python" -m pytest -q -p no:cacheprovider test_smoke.py test_build.py); then
    echo "== fresh clone ($name): FAILED (smoke tests)"
    status=1
  fi

  # From the clone's root ./mongoose_py shadows the installed package: it must
  # hold the compiled module too.
  echo "== fresh clone ($name): import mongoose_py from inside the clone"
  if ! (cd "$src" && timeout 60 "$venv/bin/python" -c "
import os, mongoose_py
from mongoose_py import _ffi
where = os.path.dirname(os.path.abspath(mongoose_py.__file__))
assert where == os.path.abspath('mongoose_py'), where
print('imported', mongoose_py.__version__, 'Mongoose', mongoose_py.MONGOOSE_VERSION, 'from', where)
"); then
    echo "== fresh clone ($name): FAILED (import mongoose_py from the clone)"
    status=1
  fi
  if ! (cd "$src" && timeout 60 "$venv/bin/python" -m mongoose_py --help >/dev/null); then
    echo "== fresh clone ($name): FAILED (python -m mongoose_py --help from the clone)"
    status=1
  fi
done

echo "== fresh clone summary: ${summary[*]}"
[ $status -eq 0 ] && echo "== fresh clone: OK" || echo "== fresh clone: FAILED"
exit $status
