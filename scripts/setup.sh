#!/usr/bin/env bash
# Install what the appliance needs on Debian 12 / Raspberry Pi OS bookworm, then a virtual
# environment in .venv from setup.cfg. Safe to run again: it only adds what is missing.
#   scripts/setup.sh                runtime packages
#   scripts/setup.sh --test         plus what the tests need (PostgreSQL server and driver, Chromium, ...)
#   scripts/setup.sh --postgresql   plus the PostgreSQL driver, for a config whose [database] url names it
# Python packages are installed at the versions CI passed on (constraints.txt; see
# scripts/refresh-constraints.sh to move them).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_RUNTIME=(python3 python3-venv python3-dev gcc pkg-config libzbar0 gammu libgammu-dev
             fonts-dejavu-core fonts-noto-core sqlite3 espeak-ng libusb-1.0-0)
APT_TEST=(postgresql chromium systemd ffmpeg tesseract-ocr tesseract-ocr-vie openssl)

want=("${APT_RUNTIME[@]}")
extras=()
for arg in "$@"; do
  case "$arg" in
    --test) want+=("${APT_TEST[@]}"); extras+=(test) ;;
    --postgresql) extras+=(postgresql) ;;
    *) echo "usage: scripts/setup.sh [--test] [--postgresql]" >&2; exit 2 ;;
  esac
done
extras=$(IFS=,; echo "${extras[*]}")

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "Installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
# The stamp covers the pins too: a changed constraints.txt re-installs.
stamp=".venv/.installed-$(cat setup.cfg pyproject.toml constraints.txt | sha256sum | cut -c1-16)${extras:+-${extras//,/-}}"
if [[ ! -f "$stamp" ]]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -c constraints.txt -e ".${extras:+[$extras]}"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
