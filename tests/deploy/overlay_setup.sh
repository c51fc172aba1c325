#!/usr/bin/env bash
# Run hardware/setup.sh for real, twice, into a throwaway root, and leave what the test checks in OUT.
#   unshare -m --propagation private tests/deploy/overlay_setup.sh SRC OUT
#
# The throwaway root is this machine's own Debian 12 system seen through an overlay: the host is
# the read-only lower layer, every write of the setup script lands in a RAM upper layer that is
# thrown away when the mount namespace ends. So apt, dpkg, useradd, venv+pip, systemctl enable
# all run for real on a real bookworm root, and the upper layer is exactly the set of changes the
# script made, which makes "the second run changes nothing" checkable file by file.
set -uo pipefail
SRC=$1 OUT=$2
mkdir -p "$OUT"
T=$(mktemp -d /tmp/motcua-overlay.XXXXXX)
mount -t tmpfs -o size=6g tmpfs "$T"
mkdir "$T/upper" "$T/work" "$T/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$T/upper,workdir=$T/work" "$T/root"
R=$T/root

# What a Raspberry Pi OS boot partition holds, so the boot-config steps have their target.
mkdir -p "$R/boot/firmware"
printf '[all]\narm_64bit=1\n' >"$R/boot/firmware/config.txt"
printf 'console=serial0,115200 console=tty1 root=PARTUUID=0a1b2c3d-02 rootfstype=ext4 fsck.repair=yes rootwait\n' \
  >"$R/boot/firmware/cmdline.txt"

snapshot() {  # every path the script created or changed: type, mode, owner, size, mtime, link, hash
  (cd "$T/upper" &&
   find . \( -path ./tmp -o -path ./var/tmp -o -path ./root/.cache \) -prune -o \
     -printf '%p %y %m %u %g %s %T@ %l\n' | sort &&
   find . \( -path ./tmp -o -path ./var/tmp -o -path ./root/.cache \) -prune -o -type f -print0 |
     sort -z | xargs -0 -r sha256sum)
}

for run in 1 2; do
  start=$(date +%s.%N)
  "$SRC/hardware/setup.sh" --root "$R" --read-only-root --data-partition LABEL=MOTCUA-DATA \
    >"$OUT/run$run.log" 2>&1
  echo $? >"$OUT/run$run.rc"
  awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", b - a }' >"$OUT/run$run.seconds"
  snapshot >"$OUT/snap$run"
done

# The installed appliance, looked at from inside.
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev" && mount --make-rslave "$R/dev"
chroot "$R" getent passwd motcua motcua-screen >"$OUT/passwd" 2>&1
chroot "$R" id -nG motcua >"$OUT/groups" 2>&1
chroot "$R" dpkg-query -W -f='${Package} ${Status}\n' cage >"$OUT/cage" 2>&1
chroot "$R" systemctl is-enabled motcua.target motcua-web.service motcua-scanner.service \
  motcua-printer.service motcua-sms.service motcua-sync.service motcua-browser.service motcua-backup.timer \
  >"$OUT/enabled" 2>&1
(cd "$R" && ls -l etc/systemd/system/multi-user.target.wants/motcua.target etc/systemd/system/motcua.target.wants) \
  >"$OUT/wants" 2>&1
# The wrapper runs kiosk as the motcua user with /etc/motcua/config.toml: the first command creates
# and migrates the database, the backup and the doctor then work on it with the service's rights.
chroot "$R" env -i PATH=/usr/local/bin:/usr/bin:/bin /usr/local/bin/kiosk doctor --only database >"$OUT/backup.log" 2>&1
chroot "$R" env -i PATH=/usr/local/bin:/usr/bin:/bin /usr/local/bin/kiosk backup --keep 2 >>"$OUT/backup.log" 2>&1
echo $? >"$OUT/backup.rc"
chroot "$R" env -i PATH=/usr/local/bin:/usr/bin:/bin /usr/local/bin/kiosk doctor --json \
  --skip camera,modem,units,clock >"$OUT/doctor.json" 2>"$OUT/doctor.err"
echo $? >"$OUT/doctor.rc"
chroot "$R" sh -c 'stat -c "%n %U %G" /var/lib/motcua/motcua.db /var/lib/motcua/backups/motcua-*.db' \
  >"$OUT/data-owners" 2>&1
# root calling the venv's kiosk directly (no wrapper): the doctor switches to motcua by itself.
# Without that, the printer lock it creates (removed first) would be root's.
rm -f "$R/var/lib/motcua/print-worker.lock"
chroot "$R" env -i PATH=/usr/bin:/bin MOTCUA_CONFIG=/etc/motcua/config.toml /opt/motcua/venv/bin/kiosk doctor \
  --only database,printer >"$OUT/doctor-root.log" 2>&1
chroot "$R" find /var/lib/motcua -user root >"$OUT/root-owned" 2>&1
systemd-analyze verify --root="$R" --man=no motcua.target motcua-backup.service >"$OUT/verify.log" 2>&1
echo $? >"$OUT/verify.rc"
mkdir -p "$OUT/files"
for f in etc/fstab etc/overlayroot.local.conf etc/motcua/config.toml etc/motcua/browser.env etc/motcua/screen.env \
         boot/firmware/config.txt boot/firmware/cmdline.txt etc/systemd/system.conf.d/motcua-watchdog.conf \
         etc/udev/rules.d/70-motcua.rules etc/pam.d/motcua-kiosk etc/systemd/journald.conf.d/motcua.conf; do
  mkdir -p "$OUT/files/$(dirname "$f")"
  cp "$R/$f" "$OUT/files/$f" 2>/dev/null
done
chroot "$R" /opt/motcua/venv/bin/pip --disable-pip-version-check freeze >"$OUT/freeze" 2>&1
chroot "$R" stat -c '%n %a %U %G' /etc/motcua/config.toml /var/lib/motcua /var/lib/motcua-screen >"$OUT/perms" 2>&1
umount -R "$R/dev" "$R/proc"
umount "$R"
umount "$T"
rmdir "$T"
