#!/bin/bash
# Builds the cobox hub image: an arm64 Debian disk image with coboxd, coboxctl, first-boot
# logic and a FAT boot partition holding the baked cobox.toml. Run as root; see README.md.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: image/build.sh [--config FILE] [--output FILE] [--no-cargo]

  --config FILE   the cobox.toml to bake into the boot partition (default: image/hub.toml)
  --output FILE   the disk image to write (default: image/out/cobox-hub-arm64.img)
  --no-cargo      reuse coboxd and coboxctl already built for aarch64 (skip cargo build)
  --suite NAME    the Debian release to build from (default: bookworm)

Writes next to the image: the kernel and initrd (for qemu -kernel/-initrd), build.log.
Environment: CARGO_TARGET_DIR (default: <repo>/target), MIRROR (default: deb.debian.org).
USAGE
}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
config=$here/hub.toml
output=$here/out/cobox-hub-arm64.img
cargo_build=1
suite=bookworm
mirror=${MIRROR:-http://deb.debian.org/debian}
while [[ $# -gt 0 ]]; do
    case $1 in
    --config) config=$2; shift 2 ;;
    --output) output=$2; shift 2 ;;
    --no-cargo) cargo_build=0; shift ;;
    --suite) suite=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
[[ $EUID -eq 0 ]] || { echo "build.sh: run as root (mmdebstrap, apt, binfmt_misc)" >&2; exit 2; }
[[ -f $config ]] || { echo "build.sh: no config file $config" >&2; exit 2; }
config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
out_dir=$(dirname "$output")
mkdir -p "$out_dir"
output=$(cd "$out_dir" && pwd)/$(basename "$output")
out_dir=$(dirname "$output")
base=${output%.img}
started=$(date +%s)
log() { printf '[build %4ds] %s\n' "$(($(date +%s) - started))" "$*"; }

# 1. Tools, from apt when missing.
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have mmdebstrap || need+=(mmdebstrap)
have arch-test || need+=(arch-test)
[[ -e /usr/bin/qemu-aarch64-static || -e /usr/bin/qemu-aarch64 ]] || need+=(qemu-user-static)
have update-binfmts || need+=(binfmt-support)
have aarch64-linux-gnu-gcc || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
have mkfs.vfat || need+=(dosfstools)
have mcopy || need+=(mtools)
have mke2fs || need+=(e2fsprogs)
have sfdisk || need+=(fdisk)
if [[ ${#need[@]} -gt 0 ]]; then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi
# qemu-user-static registers itself disabled when binfmt_misc is not mounted.
if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
[[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || update-binfmts --enable qemu-aarch64

# 2. The root file system (first: it is the slow part that needs no binaries).
work=$(mktemp -d "$out_dir/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
log "mmdebstrap $suite arm64 into $root"
# shellcheck disable=SC2016 # $1 in the hooks is the root directory, for mmdebstrap's shell.
mmdebstrap --arch=arm64 --variant=minbase --mode=root --format=directory \
    --include=systemd,systemd-sysv,udev,dbus,kmod,iproute2,fuse3,initramfs-tools,zstd,ca-certificates,linux-image-arm64,systemd-boot-efi,fdisk,e2fsprogs \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --setup-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/etc/initramfs-tools/hooks"' \
    --setup-hook="cp '$here/rootfs/initramfs-modules' \"\$1/etc/initramfs-tools/hooks/cobox\"" \
    --setup-hook='printf "MODULES=list\nCOMPRESS=zstd\n" >"$1/etc/initramfs-tools/conf.d/cobox"' \
    --customize-hook='chroot "$1" apt-get clean' \
    "$suite" "$root" "$mirror"

# 3. The binaries, cross-compiled.
target=aarch64-unknown-linux-gnu
target_dir=${CARGO_TARGET_DIR:-$repo/target}
bin=$target_dir/$target/release
if [[ $cargo_build -eq 1 ]]; then
    log "cargo build --release --target $target (coboxd, coboxctl)"
    rustup target list --installed | grep -qx "$target" || rustup target add "$target"
    (cd "$repo" &&
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
            CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
            AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
            cargo build --release --locked --target "$target" -p coboxd -p coboxctl)
fi
for b in coboxd coboxctl; do
    [[ -x $bin/$b ]] || { echo "build.sh: $bin/$b is missing (build without --no-cargo)" >&2; exit 1; }
done

# 4. The baked config must validate (with the arm64 coboxctl, through qemu-user).
log "validating $config"
if ! QEMU_LD_PREFIX=/usr/aarch64-linux-gnu "$bin/coboxctl" --color never validate --portable "$config"; then
    echo "build.sh: $config is invalid; bake it anyway only to test the invalid-config path" >&2
    [[ ${COBOX_ALLOW_INVALID:-0} == 1 ]] || exit 1
fi

log "installing cobox into the root file system"
install -m 0755 "$bin/coboxd" "$bin/coboxctl" "$root/usr/bin/"
install -D -m 0755 "$here/firstboot" "$root/usr/lib/cobox/firstboot"
install -m 0644 "$here/cobox.service" "$here/rootfs/cobox-firstboot.service" "$root/etc/systemd/system/"
install -D -m 0644 "$here/rootfs/cobox-image.conf" "$root/etc/systemd/system/cobox.service.d/image.conf"
install -D -m 0644 "$here/rootfs/wait-online.conf" \
    "$root/etc/systemd/system/systemd-networkd-wait-online.service.d/cobox.conf"
install -D -m 0644 "$here/rootfs/wired.network" "$root/etc/systemd/network/50-wired.network"
chroot "$root" useradd --system --user-group --home-dir /var/lib/cobox --no-create-home \
    --shell /usr/sbin/nologin cobox
chroot "$root" systemctl enable cobox.service cobox-firstboot.service systemd-networkd.service
echo cobox-hub >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tcobox-hub\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
mkdir -p "$root/boot/firmware"
cat >"$root/etc/fstab" <<'FSTAB'
# <file system>    <mount point>   <type> <options>                                              <dump> <pass>
LABEL=cobox-root   /               ext4   defaults,noatime,x-systemd.device-timeout=180s         0      1
LABEL=COBOX        /boot/firmware  vfat   defaults,umask=0077,x-systemd.device-timeout=180s      0      2
FSTAB
: >"$root/etc/machine-id"

kernel=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' | sort | tail -n1)
initrd=$(find "$root/boot" -maxdepth 1 -name 'initrd.img-*' | sort | tail -n1)
[[ -n $kernel && -n $initrd ]] || { echo "build.sh: no kernel or initrd in the root file system" >&2; exit 1; }
cp "$kernel" "$base.vmlinuz"
cp "$initrd" "$base.initrd"
# The last console= is /dev/console, where the first-boot report and the agent log go. No
# rootdelay=: initramfs-tools sleeps that long before looking for the root, which it waits
# for up to 180 s by default anyway.
cmdline="root=LABEL=cobox-root ro console=tty1 console=ttyAMA0"

# 5. The boot partition, also the EFI system partition: the config, a README for whoever
# opens it, the kernel and initrd, and systemd-boot at the removable-media path
# (EFI/BOOT/BOOTAA64.EFI) with one loader entry, which UEFI firmware starts with no boot
# variables set.
boot_mib=192
boot=$work/boot.vfat
sdboot=$root/usr/lib/systemd/boot/efi/systemd-bootaa64.efi
[[ -f $sdboot ]] || { echo "build.sh: no $sdboot in the root file system (systemd-boot-efi)" >&2; exit 1; }
log "boot partition (FAT32, label COBOX, $boot_mib MiB, systemd-boot)"
mkfs.vfat -F 32 -n COBOX -C "$boot" $((boot_mib * 1024)) >/dev/null
cat >"$work/README.txt" <<'README'
cobox hub boot partition

cobox.toml             this hub's config. Edit it before the first boot (or later: it is
                       validated and installed at every boot when it changed).
cobox-firstboot.log    written at every boot: the validation result, the device's public
                       key and a QR code of it, the fleet and admins it trusts, and the
                       size of the root file system.
cobox-identity.txt     optional, put here by an admin: the device's 24-word paper key
                       (coboxctl keys export). Restored as the device identity at the
                       first boot, then wiped from this partition.
vmlinuz, initrd.img    the Linux kernel and its initial ramdisk.
EFI/BOOT/BOOTAA64.EFI  the boot loader (systemd-boot) that UEFI firmware starts.
loader/entries/cobox.conf   its entry: the kernel, initrd and kernel command line.
startup.nsh            starts the kernel from a UEFI shell (fallback, not normally used).
README
printf '%s\n' "$cmdline" >"$base.cmdline"
cat >"$work/loader.conf" <<'LOADER'
default cobox.conf
timeout 0
editor no
LOADER
cat >"$work/cobox.conf" <<ENTRY
title   cobox hub
linux   /vmlinuz
initrd  /initrd.img
options $cmdline
ENTRY
# UEFI shell fallback: starts the kernel (an EFI application) with its initrd and command line.
printf 'fs0:\r\n\\vmlinuz initrd=\\initrd.img %s\r\n' "$cmdline" >"$work/startup.nsh"
sed -i 's/$/\r/' "$work/README.txt"
mmd -i "$boot" ::EFI ::EFI/BOOT ::loader ::loader/entries
mcopy -i "$boot" "$sdboot" ::EFI/BOOT/BOOTAA64.EFI
mcopy -i "$boot" "$work/loader.conf" ::loader/loader.conf
mcopy -i "$boot" "$work/cobox.conf" ::loader/entries/cobox.conf
mcopy -i "$boot" "$config" ::cobox.toml
mcopy -i "$boot" "$work/README.txt" ::README.txt
mcopy -i "$boot" "$kernel" ::vmlinuz
mcopy -i "$boot" "$initrd" ::initrd.img
mcopy -i "$boot" "$work/startup.nsh" ::startup.nsh

# 6. The root partition, from the directory (no loop mount): its content plus some room; the
# first boot grows it to fill the card (firstboot).
used_mib=$(du -sm --apparent-size "$root" | cut -f1)
root_mib=$((used_mib * 13 / 10 + 512))
rootimg=$work/root.ext4
log "root partition (ext4, label cobox-root, $root_mib MiB; $used_mib MiB used)"
mke2fs -q -t ext4 -L cobox-root -d "$root" "$rootimg" "${root_mib}M"

# 7. The disk: GPT, partition 1 the FAT boot partition (an EFI system partition type),
# partition 2 the root.
log "disk image $output"
start_mib=1
total_mib=$((start_mib + boot_mib + root_mib + 1))
rm -f "$output"
truncate -s "${total_mib}M" "$output"
sfdisk --quiet "$output" <<SFDISK
label: gpt
start=${start_mib}MiB, size=${boot_mib}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="COBOX"
start=$((start_mib + boot_mib))MiB, size=${root_mib}MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="cobox-root"
SFDISK
dd if="$boot" of="$output" bs=1M seek=$start_mib conv=notrunc,sparse status=none
dd if="$rootimg" of="$output" bs=1M seek=$((start_mib + boot_mib)) conv=notrunc,sparse status=none
printf '%s\n' $((start_mib * 1024 * 1024)) >"$base.boot-offset"

log "done: $output ($(du -h --apparent-size "$output" | cut -f1), $(du -h "$output" | cut -f1) allocated)"
log "boot partition at byte offset $((start_mib * 1024 * 1024)): mcopy -i '$output@@$((start_mib * 1024 * 1024))' ::cobox.toml -"
