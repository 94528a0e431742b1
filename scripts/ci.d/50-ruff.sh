#!/usr/bin/env bash
# ruff check with the rule set of pyproject.toml [tool.ruff] (bugs, not style).
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
source scripts/lib.sh
venv=$ROOT/.venv-lint
make_venv python3 "$venv"
pipq "$venv" install -q "ruff==0.17.*" "mypy==2.4.*"
if timeout 300 "$venv/bin/ruff" check --output-format concise .; then
  echo "== ruff: OK"
else
  echo "== ruff: FAILED (fix the lines above; rules in pyproject.toml [tool.ruff])"
  exit 1
fi
