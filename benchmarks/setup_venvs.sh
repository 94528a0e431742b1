#!/bin/sh
# Build private benchmark venvs from a git revision (default HEAD), without
# touching the repo's test venvs or the working tree:
#   benchmarks/.venv-bench-cpython, benchmarks/.venv-bench-pypy (gitignored)
# then:  MGPY_BENCH_CPYTHON=benchmarks/.venv-bench-cpython/bin/python \
#        MGPY_BENCH_PYPY=benchmarks/.venv-bench-pypy/bin/python python3 benchmarks/run.py
set -eu
REV=${1:-HEAD}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
CPYTHON=${CPYTHON:-python3}
PYPY=${PYPY:-pypy3}
SRC=$(mktemp -d)
trap 'rm -rf "$SRC"' EXIT
git -C "$ROOT" archive "$REV" | tar -x -C "$SRC"
# Mongoose is never committed: reuse the pinned copy (fetch.py checks its hashes)
cp "$ROOT"/vendor/mongoose/mongoose.c "$ROOT"/vendor/mongoose/mongoose.h "$ROOT"/vendor/mongoose/LICENSE "$SRC"/vendor/mongoose/
for pair in "cpython:$CPYTHON" "pypy:$PYPY"; do
  name=${pair%%:*}; interp=${pair#*:}
  venv="$HERE/.venv-bench-$name"
  rm -rf "$venv"
  "$interp" -m venv "$venv"
  if [ "$name" = cpython ]; then "$venv/bin/python" -m pip install -q cffi; fi
  "$venv/bin/python" -m pip install -q --no-deps "$SRC"
  (cd /tmp && "$venv/bin/python" -c "import mongoose_py; print('$name:', mongoose_py.__file__)")
done
echo "built from $(git -C "$ROOT" rev-parse --short "$REV")"
