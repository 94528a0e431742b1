#!/usr/bin/env bash
# API reference: Sphinx HTML with warnings as errors, and the pages' examples
# (testcode blocks) run by the doctest builder. Its own venv (scripts/docs).
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
if timeout 900 bash "$ROOT/scripts/docs" --check; then
  echo "== docs: OK (HTML without warnings, examples pass)"
else
  echo "== docs: FAILED"
  exit 1
fi
