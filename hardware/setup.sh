#!/usr/bin/env bash
# Turn a Raspberry Pi (Raspberry Pi OS / Debian 12 bookworm) into the commune hall kiosk.
# Run from a clone of this repository, as root. Safe to run again: every step first checks and
# changes only what differs, and the last line counts the changes ("0 changes" on a re-run).
#
#   sudo hardware/setup.sh                          install or update this Pi
#   sudo hardware/setup.sh --read-only-root --data-partition LABEL=MOTCUA-DATA
#                                                   plus a read-only root (overlayroot) with the
#                                                   data directory on its own writable partition
#   sudo hardware/setup.sh --root /mnt/sdcard       do it inside another root filesystem (a mounted
#                                                   SD card, an image, a test tree) through chroot
#   --wheels DIR      install Python packages from DIR only (no PyPI; `pip download` them elsewhere)
#   --postgresql      install the PostgreSQL driver (motcua-kiosk[postgresql]) even if [database] url
#                     in /etc/motcua/config.toml does not (yet) name PostgreSQL
#   --station-id ID   this box's id in a hall of several boxes on one database ([station] id, e.g. kiosk-a),
#   --station-role R  and what it is for: kiosk, counter, display or gateway (docs/stations.md); written
#                     into /etc/motcua/config.toml. Without them a single Pi stays the station "main"
#
# Steps: Debian packages, users and groups, the source in /opt/motcua/src and a virtual environment
# /opt/motcua/venv, /etc/motcua/config.toml from config.sample.toml (only if absent), the kiosk
# browser launcher, udev rules, systemd units (enabled), the hardware watchdog, console blanking
# off, optionally the read-only root. Steps that only make sense on a running Pi (reloading udev
# and systemd, the boot partition's files) are skipped with a note when their target is absent.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=/
IN_ROOT=0
READ_ONLY=0
DATA_PART=""
WHEELS=""
PG=0
STATION_ID=""
STATION_ROLE=""
PREFIX=/opt/motcua
VENV=$PREFIX/venv
ETC=/etc/motcua
DATA=/var/lib/motcua
SCREEN_HOME=/var/lib/motcua-screen
USER_APP=motcua
USER_SCREEN=motcua-screen
PY=/usr/bin/python3
CHANGED=${MOTCUA_SETUP_CHANGED:-0}

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { echo "setup: error: $*" >&2; exit 1; }
step() { echo "== $*"; }
ok() { echo "   ok: $*"; }
changed() { CHANGED=$((CHANGED + 1)); echo "   changed: $*"; }
skipped() { echo "   skipped: $*"; }

args=("$@")
while (($#)); do
  case "$1" in
    --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
    --in-root) IN_ROOT=1; shift ;;
    --read-only-root) READ_ONLY=1; shift ;;
    --data-partition) DATA_PART=${2:?--data-partition needs LABEL=..., UUID=... or a device}; shift 2 ;;
    --wheels) WHEELS=${2:?--wheels needs a directory}; shift 2 ;;
    --postgresql) PG=1; shift ;;
    --station-id) STATION_ID=${2:?--station-id needs an id, e.g. kiosk-a}; shift 2 ;;
    --station-role) STATION_ROLE=${2:?--station-role needs kiosk, counter, display or gateway}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done
[[ $(id -u) -eq 0 ]] || die "run as root (sudo)"
if ((READ_ONLY)) && [[ -z $DATA_PART ]]; then
  die "--read-only-root needs --data-partition: on a read-only root everything else is lost at reboot"
fi

# --- the source: the files of this checkout (tracked and new, not ignored) ---------------------
source_files() {
  if command -v git >/dev/null && git -C "$1" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$1" ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' f; do [[ -f $1/$f ]] && printf '%s\0' "$f"; done
  else
    (cd "$1" && find . -type f ! -path './.git/*' ! -path './.venv/*' ! -path '*/__pycache__/*' \
       ! -path '*.egg-info/*' ! -path './build/*' -printf '%P\0')
  fi
}

source_hash() {
  (cd "$1" && source_files "$1" | sort -z | xargs -0 -r sha256sum | sha256sum | cut -c1-64)
}

sync_source() {  # $1 = destination directory (absolute, may be inside another root)
  local dest=$1 want have=""
  want=$(source_hash "$SRC")
  [[ -f $dest/.motcua-source ]] && have=$(cat "$dest/.motcua-source")
  if [[ $want == "$have" ]]; then
    ok "source $dest is this checkout"
    return
  fi
  rm -rf "$dest"
  mkdir -p "$dest"
  (cd "$SRC" && source_files "$SRC" | tar --null -T - -cf -) | tar -C "$dest" -xf -
  echo "$want" >"$dest/.motcua-source"
  changed "copied the source to $dest"
}

# --- --root: copy the source in, then run this script inside the root through chroot ----------
if [[ $ROOT != / && $IN_ROOT -eq 0 ]]; then
  ROOT=$(cd "$ROOT" && pwd)
  [[ -x $ROOT/bin/sh && -d $ROOT/etc ]] || die "$ROOT does not look like a root filesystem"
  step "Source into $ROOT"
  sync_source "$ROOT$PREFIX/src"
  mounted=()
  cleanup() { local m; for m in "${mounted[@]}"; do umount -R "$m" 2>/dev/null || umount -l "$m"; done; }
  trap cleanup EXIT
  mountpoint -q "$ROOT/proc" || { mount -t proc proc "$ROOT/proc"; mounted=("$ROOT/proc" "${mounted[@]}"); }
  for d in sys dev; do
    if ! mountpoint -q "$ROOT/$d"; then
      mount --rbind "/$d" "$ROOT/$d" && mount --make-rslave "$ROOT/$d"
      mounted=("$ROOT/$d" "${mounted[@]}")
    fi
  done
  inner=()
  for a in "${args[@]}"; do inner+=("$a"); done
  # drop "--root DIR" from the arguments passed inside
  pass=(); skip_next=0
  for a in "${inner[@]}"; do
    if ((skip_next)); then skip_next=0; continue; fi
    [[ $a == --root ]] && { skip_next=1; continue; }
    pass+=("$a")
  done
  set +e
  chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM=dumb MOTCUA_SETUP_CHANGED="$CHANGED" \
    bash "$PREFIX/src/hardware/setup.sh" --in-root "${pass[@]}"
  rc=$?
  exit $rc
fi

on_pi() { grep -qs "Raspberry Pi" /proc/device-tree/model; }

# Write a file only when its content (or mode/owner) differs. $1 path, $2 mode, $3 owner:group;
# content on stdin.
put_file() {
  local path=$1 mode=$2 owner=$3 tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [[ -f $path ]] && cmp -s "$tmp" "$path" &&
     [[ $(stat -c '%a %U:%G' "$path") == "${mode#0} $owner" ]]; then
    rm -f "$tmp"
    ok "$path"
    return 1
  fi
  mkdir -p "$(dirname "$path")"
  install -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$tmp" "$path"
  rm -f "$tmp"
  changed "$path"
  return 0
}

# Make sure a line is present in a file that belongs to someone else (the Pi's boot config).
ensure_line() {
  local file=$1 line=$2
  if grep -qxF "$line" "$file"; then ok "$file has '$line'"; return 1; fi
  printf '%s\n' "$line" >>"$file"
  changed "$file: added '$line'"
}

# --- 1. Debian packages ------------------------------------------------------------------------
step "Debian packages"
# The runtime libraries are the same list the development setup uses (one list, two users).
eval "$(sed -n '/^APT_RUNTIME=(/,/)/p' "$SRC/scripts/setup.sh")"
browser_pkg=chromium
if ! apt-cache show chromium >/dev/null 2>&1 && apt-cache show chromium-browser >/dev/null 2>&1; then
  browser_pkg=chromium-browser  # older Raspberry Pi OS images
fi
want=("${APT_RUNTIME[@]}" "$browser_pkg" cage util-linux usbutils v4l-utils)
((READ_ONLY)) && want+=(overlayroot)
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; }
  # Package lists are refreshed only when the install fails with the ones already there.
  if ! apt_install "${missing[@]}"; then
    apt-get update -q
    apt_install "${missing[@]}"
  fi
  changed "installed ${missing[*]}"
else
  ok "all ${#want[@]} packages installed"
fi

# --- 2. users ----------------------------------------------------------------------------------
step "Users and groups"
ensure_user() {  # $1 user, $2 home, $3.. groups (those that exist)
  local user=$1 home=$2 g; shift 2
  if ! id "$user" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$home" --no-create-home --shell /usr/sbin/nologin "$user"
    changed "user $user"
  else
    ok "user $user"
  fi
  for g in "$@"; do
    getent group "$g" >/dev/null || { skipped "group $g does not exist here"; continue; }
    if id -nG "$user" | tr ' ' '\n' | grep -qxF "$g"; then ok "$user in $g"; else usermod -aG "$g" "$user"; changed "$user added to $g"; fi
  done
}
ensure_user "$USER_APP" "$DATA" dialout lp video
ensure_user "$USER_SCREEN" "$SCREEN_HOME" video render input
for d in "$DATA:$USER_APP:0750" "$SCREEN_HOME:$USER_SCREEN:0700"; do
  IFS=: read -r dir owner mode <<<"$d"
  if [[ -d $dir && $(stat -c '%a %U' "$dir") == "${mode#0} $owner" ]]; then ok "$dir"; else
    install -d -m "$mode" -o "$owner" -g "$owner" "$dir"; changed "$dir"; fi
done

# --- 3. the application ------------------------------------------------------------------------
step "Application in $VENV"
[[ $SRC == "$PREFIX/src" ]] || sync_source "$PREFIX/src"
hash=$(cat "$PREFIX/src/.motcua-source")
if [[ ! -x $VENV/bin/python ]]; then
  "$PY" -m venv "$VENV"
  changed "virtual environment $VENV"
fi
# The PostgreSQL driver only for a hall whose config names PostgreSQL (SQLite needs none): a lighter Pi.
extras=""
if ((PG)) || "$PY" - "$ETC/config.toml" <<'EOF'
import sys
import tomllib
try:
    with open(sys.argv[1], "rb") as fh:
        url = str(tomllib.load(fh).get("database", {}).get("url", ""))
except (OSError, tomllib.TOMLDecodeError):
    url = ""  # no config yet (copied from the sample below) or broken (reported below)
sys.exit(0 if url.startswith("postgresql") else 1)
EOF
then
  extras="[postgresql]"
fi
# The source hash covers constraints.txt, so new pins re-install too.
if [[ $(cat "$VENV/.motcua-installed" 2>/dev/null) != "$hash$extras" ]]; then
  pip_args=(--disable-pip-version-check --no-input -q)
  [[ -n $WHEELS ]] && pip_args+=(--no-index --find-links "$WHEELS")
  # Build from a scratch copy: an in-tree build would leave build/ and egg-info in src/.
  build=$(mktemp -d)
  cp -a "$PREFIX/src/." "$build/"
  # The versions CI passed on (constraints.txt), not whatever PyPI has newest on the day.
  "$VENV/bin/pip" install "${pip_args[@]}" -c "$PREFIX/src/constraints.txt" "$build$extras"
  rm -rf "$build"
  echo "$hash$extras" >"$VENV/.motcua-installed"
  changed "installed the application${extras:+ with $extras} into $VENV"
else
  ok "application up to date"
fi
for cmd in kiosk sms-gateway; do
  put_file "/usr/local/bin/$cmd" 0755 root:root <<EOF || true
#!/bin/sh
# $cmd as the appliance's user and config, so files in $DATA keep the right owner.
export MOTCUA_CONFIG=\${MOTCUA_CONFIG:-$ETC/config.toml} MOTCUA_DATA_DIR=\${MOTCUA_DATA_DIR:-$DATA}
if [ "\$(id -u)" = 0 ]; then
  exec /usr/sbin/runuser -u $USER_APP -- $VENV/bin/$cmd "\$@"
fi
exec $VENV/bin/$cmd "\$@"
EOF
done

# --- 4. configuration --------------------------------------------------------------------------
step "Configuration"
if [[ -f $ETC/config.toml ]]; then
  ok "$ETC/config.toml exists (left as it is)"
else
  install -d -m 0755 "$ETC"
  install -m 0640 -o root -g "$USER_APP" "$PREFIX/src/config.sample.toml" "$ETC/config.toml"
  changed "$ETC/config.toml from config.sample.toml: edit the [site] section"
fi
if [[ -n $STATION_ID || -n $STATION_ROLE ]]; then
  # [station] id/role set in place, the rest of the file as written; refused unless the result loads.
  station=$(MOTCUA_DATA_DIR=$DATA "$VENV/bin/python" - "$ETC/config.toml" "$STATION_ID" "$STATION_ROLE" <<'EOF'
import os
import sys
from pathlib import Path

from motcua.config import ConfigError, load_config
from motcua.stations import write_station_section

path, station_id, role = Path(sys.argv[1]), sys.argv[2] or None, sys.argv[3] or None
old = path.read_text(encoding="utf-8")
new = write_station_section(old, station_id=station_id, role=role)
if new != old:
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(new, encoding="utf-8")
    try:
        load_config(tmp)
    except ConfigError as exc:
        tmp.unlink()
        sys.exit(f"{exc} (from --station-id/--station-role)")
    st = path.stat()
    os.chmod(tmp, st.st_mode)
    os.chown(tmp, st.st_uid, st.st_gid)
    os.replace(tmp, path)
cfg = load_config(path)
print(("changed " if new != old else "") + f"{cfg.station.id} ({cfg.station.role})")
EOF
) || die "fix --station-id/--station-role (see above)"
  if [[ $station == changed* ]]; then
    changed "[station] in $ETC/config.toml: ${station#changed }"
  else
    ok "[station] is $station"
  fi
fi
# The config must load; the kiosk URL for the browser follows [kiosk] bind.
url=$(MOTCUA_DATA_DIR=$DATA "$VENV/bin/python" - "$ETC/config.toml" <<'EOF'
import sys
from motcua.config import ConfigError, load_config
try:
    cfg = load_config(sys.argv[1])
except ConfigError as exc:
    sys.exit(str(exc))
host, _, port = cfg.kiosk.bind.rpartition(":")
host = host.strip("[]")
if host in ("", "0.0.0.0", "::"):
    host = "127.0.0.1"
print(f"http://{'[' + host + ']' if ':' in host else host}:{port}/")
EOF
) || die "fix $ETC/config.toml, then run this again"
ok "config loads; the screen shows $url"
put_file "$ETC/browser.env" 0644 root:root <<EOF || true
# Written by hardware/setup.sh from [kiosk] bind; read by motcua-browser.service.
MOTCUA_KIOSK_URL=$url
EOF
# Chromium's managed policy (docs/deploy.md): only the local app's origin opens; no DevTools, remote
# debugging, downloads, printing, file dialogs, incognito, autofill or password saving. Command-line
# flags alone leave all of those to a USB keyboard.
put_file /etc/chromium/policies/managed/motcua-kiosk.json 0644 root:root \
  < <(sed "s#http://127.0.0.1:8080#${url%/}#" "$SRC/hardware/chromium-policy.json") || true

if [[ -f $ETC/screen.env ]]; then
  ok "$ETC/screen.env exists (left as it is)"
else
  put_file "$ETC/screen.env" 0644 root:root <<'EOF' || true
# The kiosk screen (motcua-browser.service); yours to edit, setup never overwrites it.
# Apply with: sudo systemctl restart motcua-browser. See /opt/motcua/src/hardware/display.md.
# Rotate the picture 90 degrees clockwise per -r (up to three): "-r" = 90, "-r -r" = 180, "-r -r -r" = 270.
MOTCUA_CAGE_FLAGS=
# Extra Chromium flags, e.g. --force-device-scale-factor=1.25 for a small high-resolution panel.
MOTCUA_BROWSER_FLAGS=
EOF
fi

# --- 5. kiosk browser, udev rules, units -------------------------------------------------------
step "Kiosk browser, udev rules, systemd units"
put_file "$PREFIX/bin/kiosk-browser" 0755 root:root <"$PREFIX/src/hardware/kiosk-browser" || true
put_file /etc/pam.d/motcua-kiosk 0644 root:root <<'EOF' || true
# The kiosk screen's login session on tty1 (motcua-browser.service): pam_systemd gives cage the seat.
auth     required pam_unix.so nullok
account  required pam_unix.so
session  required pam_unix.so
session  required pam_systemd.so
EOF
udev_changed=0
put_file /etc/udev/rules.d/70-motcua.rules 0644 root:root <"$PREFIX/src/hardware/70-motcua.rules" && udev_changed=1
units_changed=0
units=()
for f in "$PREFIX"/src/systemd/*.service "$PREFIX"/src/systemd/*.timer "$PREFIX"/src/systemd/*.target; do
  [[ -f $f ]] || continue
  units+=("$(basename "$f")")
  put_file "/etc/systemd/system/$(basename "$f")" 0644 root:root <"$f" && units_changed=1
done
put_file /etc/systemd/system.conf.d/motcua-watchdog.conf 0644 root:root <<'EOF' && units_changed=1
# Hardware watchdog: if systemd itself stops answering for 15 s the board resets (15 s is the most
# the Raspberry Pi's watchdog can wait). Written by hardware/setup.sh.
[Manager]
RuntimeWatchdogSec=15s
RebootWatchdogSec=2min
EOF
# The journal: bounded on the SD card; with a read-only root only in RAM (the overlay is RAM too).
if ((READ_ONLY)); then journal_storage=volatile; else journal_storage=auto; fi
put_file /etc/systemd/journald.conf.d/motcua.conf 0644 root:root <<EOF || true
# Written by hardware/setup.sh.
[Journal]
Storage=$journal_storage
SystemMaxUse=200M
RuntimeMaxUse=32M
EOF
if [[ -d /run/systemd/system ]]; then
  if ((units_changed)); then systemctl daemon-reload; changed "systemd reloaded"; fi
else
  skipped "systemd is not running here: units take effect at boot"
fi
if [[ -S /run/udev/control ]]; then
  if ((udev_changed)); then udevadm control --reload && udevadm trigger --action=add; changed "udev rules reloaded"; fi
else
  skipped "udev is not running here: rules take effect at boot"
fi
to_enable=()
for u in "${units[@]}"; do
  [[ $u == motcua-backup.service ]] && continue  # started by its timer
  [[ $(systemctl is-enabled "$u" 2>/dev/null) == enabled ]] || to_enable+=("$u")
done
if ((${#to_enable[@]})); then
  systemctl enable --quiet "${to_enable[@]}"
  changed "enabled ${to_enable[*]}"
else
  ok "units enabled: ${units[*]}"
fi

# --- 6. the Pi's boot configuration: watchdog, no console blanking -----------------------------
step "Boot configuration (Raspberry Pi)"
boot=""
for d in /boot/firmware /boot; do [[ -f $d/config.txt ]] && { boot=$d; break; }; done
if [[ -n $boot ]]; then
  ensure_line "$boot/config.txt" "dtparam=watchdog=on" || true
  if [[ -f $boot/cmdline.txt ]]; then
    if grep -qw "consoleblank=0" "$boot/cmdline.txt"; then ok "$boot/cmdline.txt has consoleblank=0"; else
      sed -i '1s/$/ consoleblank=0/' "$boot/cmdline.txt"; changed "$boot/cmdline.txt: consoleblank=0"; fi
  fi
else
  skipped "no /boot/firmware/config.txt: not a Raspberry Pi boot partition"
fi

# --- 7. optional read-only root with a writable data partition ---------------------------------
if ((READ_ONLY)); then
  step "Read-only root (overlayroot) with $DATA on $DATA_PART"
  line="$DATA_PART $DATA ext4 defaults,noatime,nofail,x-systemd.device-timeout=20s 0 2"
  if grep -qE "^[^#]*[[:space:]]$DATA[[:space:]]" /etc/fstab; then
    if grep -qxF "$line" /etc/fstab; then ok "/etc/fstab mounts $DATA"; else
      die "/etc/fstab already mounts $DATA differently; fix it by hand"; fi
  else
    printf '%s\n' "$line" >>/etc/fstab
    changed "/etc/fstab: $DATA on $DATA_PART"
  fi
  # recurse=0: only / becomes a RAM overlay; the data partition stays writable. Not
  # `raspi-config nonint do_overlayfs`, whose overlayroot=tmpfs would overlay the data too.
  put_file /etc/overlayroot.local.conf 0644 root:root <<'EOF' || true
# Written by hardware/setup.sh: root filesystem read-only, changes kept in RAM until reboot.
# To change the system: boot once with overlayroot=disabled added to cmdline.txt.
overlayroot="tmpfs:recurse=0"
EOF
  # A swap file on a RAM overlay is RAM: Raspberry Pi OS's dphys-swapfile goes.
  if [[ -f /lib/systemd/system/dphys-swapfile.service || -f /etc/init.d/dphys-swapfile ]]; then
    if systemctl is-enabled dphys-swapfile >/dev/null 2>&1; then
      systemctl disable --quiet dphys-swapfile
      changed "dphys-swapfile disabled"
    else
      ok "dphys-swapfile disabled"
    fi
  fi
  if on_pi && command -v update-initramfs >/dev/null; then
    grep -qs '^auto_initramfs=1' "$boot/config.txt" || ensure_line "$boot/config.txt" "auto_initramfs=1" || true
  else
    skipped "initramfs on the Pi: not a Raspberry Pi here"
  fi
fi

echo "setup: done, $CHANGED change(s)"
