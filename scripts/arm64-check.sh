#!/usr/bin/env bash
# Proof that the appliance installs and runs on arm64 (Raspberry Pi OS bookworm / Debian 12 arm64),
# on an x86_64 machine: build an arm64 Debian 12 root with debootstrap, run it through qemu-user-static
# (binfmt_misc), copy this checkout in, run scripts/setup.sh, a unit subset and `kiosk scan --image` on
# frames of the scanner benchmark's corpus, and print a summary. Not part of CI: it takes many minutes.
#
#   sudo scripts/arm64-check.sh                  # root kept in /var/tmp/motcua-arm64 for the next run
#   sudo ARM64_ROOT=/srv/arm64 scripts/arm64-check.sh --fresh    # rebuild the root from scratch
#
# Needs root (debootstrap, chroot, mounts) and the Debian packages debootstrap, qemu-user-static and
# binfmt-support (installed when missing). Exit status: 0 all passed, 1 a step failed, 2 this machine
# cannot run arm64 binaries (the reason is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
ROOT=${ARM64_ROOT:-/var/tmp/motcua-arm64}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
TESTS=(tests/test_config.py tests/test_scanner_payload.py tests/test_scanner_decode.py tests/test_sms_text.py
       tests/test_print_render.py tests/test_store.py)
LOG=${ARM64_LOG:-/tmp/motcua-arm64-check.log}
: >"$LOG"

say() { printf '%s\n' "$*" | tee -a "$LOG"; }
die() { say "arm64-check: $*"; exit "${2:-1}"; }

[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap, chroot and mounts need it)" 1
[[ "${1:-}" == "--fresh" ]] && rm -rf --one-file-system "$ROOT"

missing=()
for pkg in debootstrap qemu-user-static binfmt-support; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >>"$LOG" 2>&1
fi

# --- binfmt_misc: the kernel must hand aarch64 ELF files to qemu-aarch64 --------------------------
BINFMT=/proc/sys/fs/binfmt_misc
if [[ ! -e $BINFMT/register ]]; then
  mount -t binfmt_misc binfmt_misc "$BINFMT" 2>>"$LOG" \
    || die "binfmt_misc is not mounted at $BINFMT and cannot be mounted here (a container without that \
privilege, or a kernel without CONFIG_BINFMT_MISC): arm64 binaries cannot run on this machine" 2
fi
if [[ ! -e $BINFMT/qemu-aarch64 ]]; then
  update-binfmts --enable qemu-aarch64 >>"$LOG" 2>&1 || true
fi
[[ -e $BINFMT/qemu-aarch64 ]] \
  || die "no qemu-aarch64 entry in $BINFMT after update-binfmts --enable qemu-aarch64 (see $LOG)" 2
grep -q '^enabled' "$BINFMT/qemu-aarch64" || die "the qemu-aarch64 binfmt entry is disabled" 2
# The F flag makes the kernel open the interpreter at registration, so it works inside the chroot.
grep -q '^flags:.*F' "$BINFMT/qemu-aarch64" \
  || die "the qemu-aarch64 binfmt entry lacks the F flag: the interpreter would not be found in the chroot" 2

# --- the arm64 root ------------------------------------------------------------------------------
t_root=$SECONDS
if [[ ! -f $ROOT/.motcua-debootstrap-done ]]; then
  say "debootstrap --arch=arm64 bookworm $ROOT (several minutes under emulation)"
  rm -rf --one-file-system "$ROOT"
  mkdir -p "$ROOT"
  debootstrap --arch=arm64 --variant=minbase --include=ca-certificates,git bookworm "$ROOT" "$MIRROR" \
    >>"$LOG" 2>&1 || die "debootstrap failed (see $LOG)"
  touch "$ROOT/.motcua-debootstrap-done"
else
  say "reusing the arm64 root in $ROOT (--fresh rebuilds it)"
fi
root_s=$((SECONDS - t_root))

mounted=()
cleanup() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
for m in proc sys dev dev/pts; do
  mountpoint -q "$ROOT/$m" && continue
  case $m in
    proc) mount -t proc proc "$ROOT/proc" ;;
    sys) mount -t sysfs sys "$ROOT/sys" ;;
    *) mount --bind "/$m" "$ROOT/$m" ;;
  esac
  mounted+=("$ROOT/$m")
done
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
# The host's trusted certificates go in too: behind a TLS-inspecting proxy, pip inside the root
# needs the proxy's CA, which Debian's bundle lacks.
HOST_CA=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
tls_env=()
if [[ -f $HOST_CA ]]; then
  cp -L "$HOST_CA" "$ROOT/etc/ssl/certs/host-ca-bundle.crt"
  tls_env=(SSL_CERT_FILE=/etc/ssl/certs/host-ca-bundle.crt PIP_CERT=/etc/ssl/certs/host-ca-bundle.crt)
fi

in_root() { chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
  LANG=C.UTF-8 TERM=dumb "${tls_env[@]}" "$@"; }

arch=$(in_root uname -m)
[[ $arch == aarch64 ]] || die "the root does not run as aarch64 (uname -m says $arch)"

# --- this checkout, without its virtualenv and local data ---------------------------------------
say "copying $REPO to $ROOT/opt/motcua"
# The root's .venv is kept between runs: setup.sh then installs only what changed (a first install
# under emulation takes many minutes, python-gammu and the wheels' downloads).
mkdir -p "$ROOT/opt/motcua"
find "$ROOT/opt/motcua" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} +
tar -C "$REPO" --exclude=./.venv --exclude=./.git --exclude=./demo-data --exclude=./test-artifacts \
  --exclude='__pycache__' -cf - . | tar -C "$ROOT/opt/motcua" -xf -

status=0
t=$SECONDS
say "scripts/setup.sh inside the arm64 root"
if in_root bash -c 'cd /opt/motcua && scripts/setup.sh' >>"$LOG" 2>&1; then setup="ok"; else setup="FAILED"; status=1; fi
setup_s=$((SECONDS - t))
gammu_build=$(grep -c -i 'Building wheel for python-gammu' "$LOG" || true)

tests="not run"; tests_s=0; scan="not run"; scan_s=0
if [[ $setup == ok ]]; then
  t=$SECONDS
  say "unit subset: ${TESTS[*]}"
  in_root bash -c 'cd /opt/motcua && .venv/bin/python -m pip install -q --retries 10 "pytest>=8,<10" "time-machine>=2.16,<4"' \
    >>"$LOG" 2>&1 || true
  if out=$(in_root bash -c "cd /opt/motcua && PYTHONPATH=/opt/motcua .venv/bin/python -m pytest -q -p no:cacheprovider \
        -m 'not postgres' ${TESTS[*]} 2>&1"); then :; else status=1; fi
  printf '%s\n' "$out" >>"$LOG"
  tests=$(printf '%s\n' "$out" | grep -E '(passed|failed|error)' | tail -1 || true)
  [[ -n $tests ]] || tests="FAILED before a result (see $LOG)"
  tests_s=$((SECONDS - t))

  t=$SECONDS
  say "kiosk scan --image on the scanner corpus"
  # The corpus writer stores each frame and, in expected.tsv, the dossier code a correct read yields.
  if in_root bash -c 'cd /opt/motcua && rm -rf /tmp/corpus && PYTHONPATH=/opt/motcua \
        .venv/bin/python bench/scanner_corpus.py /tmp/corpus >/dev/null && \
        .venv/bin/kiosk scan --image /tmp/corpus/*.png > /tmp/corpus/scan.jsonl' >>"$LOG" 2>&1; then
    scan=$(in_root /opt/motcua/.venv/bin/python - <<'EOF'
import json
expected = dict(line.rstrip("\n").split("\t") for line in open("/tmp/corpus/expected.tsv"))
got = {}
for line in open("/tmp/corpus/scan.jsonl"):
    r = json.loads(line)
    got[r["file"].rsplit("/", 1)[-1]] = r.get("dossier_code") or ""
codes = [f for f, e in expected.items() if e]
read = sum(got.get(f) == expected[f] for f in codes)
wrong = sum(bool(got.get(f)) and got.get(f) != expected[f] for f in expected)
print(f"{read}/{len(codes)} receipts read, {wrong} misread or false hits, {len(got)}/{len(expected)} files answered")
EOF
)
    [[ $scan == *" 0 misread"* ]] || status=1
  else
    scan="FAILED (see $LOG)"; status=1
  fi
  scan_s=$((SECONDS - t))
fi

py=$(in_root /opt/motcua/.venv/bin/python -c 'import platform; print(platform.python_version())' 2>/dev/null || echo "?")
cat <<EOF | tee -a "$LOG"

== arm64 check summary ==
root:        $ROOT ($(cat "$ROOT/etc/debian_version" 2>/dev/null), $arch, Python $py), built in ${root_s}s
setup.sh:    $setup in ${setup_s}s$( ((gammu_build)) && echo " (python-gammu built from source)")
unit subset: $tests in ${tests_s}s
kiosk scan:  $scan in ${scan_s}s
log:         $LOG
EOF
exit $status
