#!/usr/bin/env bash
# Set up (Debian packages, .venv) and run the whole test suite. Extra arguments go to pytest.
# The PostgreSQL server and Chromium the tests use are started by the tests themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
  echo "pytest collected no tests: that is a failure of the test setup" >&2
  exit 1
fi
exit $rc
