#!/usr/bin/env bash
# Move constraints.txt to the newest releases setup.cfg's ranges admit, but only if the tests pass on them.
#   scripts/refresh-constraints.sh            fresh venv, whole test suite, then write constraints.txt
#   scripts/refresh-constraints.sh -x -k web  extra arguments go to pytest (a subset: say so in the commit)
# Builds a new virtual environment from setup.cfg WITHOUT constraints (so it gets what PyPI has today),
# installs the test and postgresql extras, runs the tests with it, and only when they pass writes its
# `pip freeze` (the project itself left out) to constraints.txt. Review `git diff constraints.txt`, check
# the new binary pins have CPython 3.11 aarch64 wheels (docs/dependencies.md), and commit.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test >/dev/null  # the Debian packages the tests need (and the usual .venv)

PY=${PYTHON:-python3}
VENV=$(mktemp -d /tmp/motcua-refresh.XXXXXX)
trap 'rm -rf "$VENV"' EXIT
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q -e ".[test,postgresql]"
"$VENV/bin/python" -m playwright --version >/dev/null

echo "testing with the fresh environment $VENV" >&2
# PATH first: tests that start `kiosk` or `sms-gateway` get this environment's, not .venv's.
PATH="$VENV/bin:$PATH" "$VENV/bin/python" -m pytest -q "$@"

head=$(sed -n '/^#/p;/^[^#]/q' constraints.txt)
{
  printf '%s\n' "$head"
  "$VENV/bin/python" -m pip freeze --exclude-editable | grep -v '^#' | grep -vi '^motcua-kiosk'
} >constraints.txt.new
mv constraints.txt.new constraints.txt
echo "constraints.txt written; now: git diff constraints.txt" >&2
