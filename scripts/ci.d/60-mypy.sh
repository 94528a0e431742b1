#!/usr/bin/env bash
# mypy --strict on the modules that are strict-clean so far (pyproject.toml
# [tool.mypy] lists the others, which follow), and the _mongoose_cffi.pyi stub
# must match the cdef (scripts/gen_cffi_pyi.py).
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
source scripts/lib.sh
venv=$ROOT/.venv-lint
make_venv python3 "$venv"
pipq "$venv" install -q "ruff==0.17.*" "mypy==2.4.*" "cffi>=1.15"
STRICT="_ffi.py _util.py _timer.py _threads.py _rpc.py _messages.py _serve.py _stream.py"
status=0
timeout 120 "$venv/bin/python" scripts/gen_cffi_pyi.py --check || status=1
if ! timeout 600 "$venv/bin/mypy" --strict $(printf 'mongoose_py/%s ' $STRICT); then
  status=1
fi
if [ $status -eq 0 ]; then
  echo "== mypy: OK (--strict: $STRICT)"
else
  echo "== mypy: FAILED"
fi
exit $status
