#!/bin/bash
# Boot test of the cobox hub image under qemu-system-aarch64 (software emulation) through UEFI
# firmware: the baked config converges and the root grows to fill a bigger disk, and an
# invalid config leaves a hub that only reports why. See README.md.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: image/boot-test.sh [--image FILE] [--timeout SECONDS] [--only valid|invalid|reboot]
                          [--kernel]

  --image FILE    a built image (default: image/out/cobox-hub-arm64.img, built with
                  image/build.sh when missing)
  --timeout S     how long one boot may take to reach its goal (default: 600)
  --only CASE     run one case: valid (the baked config converges on a disk 1 GiB bigger
                  than the image, and the root grows to fill it), invalid (a broken
                  cobox.toml on the boot partition: report, no agent), reboot (the valid
                  image booted twice: the unchanged config is ignored the second time)
  --kernel        boot with qemu -kernel/-initrd/-append (the files build.sh writes next to
                  the image) instead of through the UEFI firmware and the image's boot loader

By default qemu starts the UEFI firmware (edk2's AAVMF, Debian package qemu-efi-aarch64)
with fresh variables, which finds the boot loader on the disk by itself.

Each case boots a copy of the image; the console of each boot is kept in image/out/.
USAGE
}

here=$(cd "$(dirname "$0")" && pwd)
image=$here/out/cobox-hub-arm64.img
timeout=600
cases=(valid invalid)
direct_kernel=0
while [[ $# -gt 0 ]]; do
    case $1 in
    --image) image=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --only) cases=("$2"); shift 2 ;;
    --kernel) direct_kernel=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "boot-test.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
firmware_code=/usr/share/AAVMF/AAVMF_CODE.fd
firmware_vars=/usr/share/AAVMF/AAVMF_VARS.fd
if ! command -v qemu-system-aarch64 >/dev/null || [[ ! -f $firmware_code || ! -f $firmware_vars ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-system-arm \
        ipxe-qemu qemu-efi-aarch64
fi
command -v mcopy >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mtools
if [[ ! -f $image ]]; then
    "$here/build.sh" --output "$image"
fi
base=${image%.img}
needed=("$base.boot-offset")
if [[ $direct_kernel -eq 1 ]]; then needed+=("$base.vmlinuz" "$base.initrd" "$base.cmdline"); fi
for f in "${needed[@]}"; do
    [[ -f $f ]] || { echo "boot-test.sh: $f is missing (written by build.sh)" >&2; exit 2; }
done
offset=$(cat "$base.boot-offset")
out=$(dirname "$image")
work=$(mktemp -d "$out/.boot.XXXXXX")
qemu_pid=
cleanup() {
    if [[ -n $qemu_pid ]]; then kill "$qemu_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# boot DISK CONSOLE: power on in the background; sets qemu_pid and booted_at. The firmware's
# variable store (DISK.vars) lives with the disk, as a board's flash does.
boot() {
    local start=()
    if [[ $direct_kernel -eq 1 ]]; then
        start=(-kernel "$base.vmlinuz" -initrd "$base.initrd" -append "$(cat "$base.cmdline")")
    else
        [[ -f $1.vars ]] || cp "$firmware_vars" "$1.vars"
        start=(-drive "if=pflash,format=raw,readonly=on,file=$firmware_code"
            -drive "if=pflash,format=raw,file=$1.vars")
    fi
    : >"$2"
    booted_at=$(date +%s)
    qemu-system-aarch64 -M virt -cpu cortex-a57 -smp 2 -m 1024 -nographic -no-reboot \
        "${start[@]}" \
        -drive "if=none,file=$1,format=raw,id=disk" -device virtio-blk-pci,drive=disk \
        -nic user,model=virtio-net-pci \
        </dev/null >"$2" 2>&1 &
    qemu_pid=$!
}

power_off() {
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=
}

# wait_for CONSOLE PATTERN: until the console shows the (extended) regex; fails on timeout
# or when qemu exits.
wait_for() {
    local deadline=$((booted_at + timeout))
    while ! grep -Eq "$2" "$1"; do
        if (($(date +%s) > deadline)); then
            echo "boot-test.sh: no /$2/ on the console within ${timeout}s" >&2
            return 1
        fi
        if ! kill -0 "$qemu_pid" 2>/dev/null; then
            echo "boot-test.sh: qemu exited before /$2/ showed" >&2
            return 1
        fi
        sleep 2
    done
}

# The boot partition's report.
firstboot_log() { mcopy -n -i "$1@@$offset" ::cobox-firstboot.log - | tr -d '\r'; }

fail() {
    echo "boot-test.sh: FAIL ($case): $*" >&2
    echo "boot-test.sh: console kept in $console" >&2
    exit 1
}

# The agent's JSON log line for a converged generation (the unit's description also says
# "converged", so match the message field).
converged='"message":"converged"'
agent_ran='"target":"coboxd|Started .{0,16}cobox\.service'

# The size of / in MiB from the first-boot report on the console (df -B1M; the lines may
# carry a kernel time stamp and unit prefix).
root_mib() { sed -n 's|.*cobox-firstboot: /dev/[a-z0-9]* *\([0-9]*\) .* /\r\?$|\1|p' "$1" | head -n1; }
# The image's root partition in MiB.
image_root_mib=$(($(partx -g -o SECTORS -n 2 "$image" | tr -d ' ') / 2048))
how="UEFI firmware, boot loader on the disk"
[[ $direct_kernel -eq 0 ]] || how="qemu -kernel/-initrd"

for case in "${cases[@]}"; do
    disk=$work/$case.img
    console=$out/boot-test-$case.console.log
    cp --sparse=always "$image" "$disk"
    case $case in
    valid | reboot)
        # A card bigger than the image: the first boot grows the root to fill it.
        truncate -s +1G "$disk"
        echo "boot-test.sh: $case: booting $(basename "$image") + 1 GiB ($how; timeout ${timeout}s)"
        boot "$disk" "$console"
        wait_for "$console" "$converged" || fail "the agent did not converge"
        echo "boot-test.sh: $case: power-on to converged: $(($(date +%s) - booted_at)) s"
        grep -q 'cobox-firstboot: status: installed' "$console" || fail "no first-boot report on the console"
        grep -q 'cobox-firstboot: root: grown to fill' "$console" || fail "the root was not grown"
        size=$(root_mib "$console")
        [[ -n $size ]] || fail "no size of / in the console report"
        ((size > image_root_mib + 900)) || fail "/ is $size MiB, the image's root partition $image_root_mib MiB: not grown by 1 GiB"
        echo "boot-test.sh: $case: the root grew from a $image_root_mib MiB partition to a $size MiB file system"
        key=$(sed -n 's/.*cobox-firstboot: device public key: \([0-9a-f]\{64\}\).*/\1/p' "$console" | head -n1)
        [[ -n $key ]] || fail "no public key in the console report"
        power_off
        report=$(firstboot_log "$disk") || fail "no cobox-firstboot.log on the boot partition"
        grep -q "status: installed" <<<"$report" || fail "the boot partition's report does not say installed"
        grep -q "device public key: $key" <<<"$report" || fail "the boot partition's report has another key"
        grep -q '█' <<<"$report" || fail "no QR code in the boot partition's report"
        echo "boot-test.sh: $case: converged; identity $key; report on the boot partition"
        if [[ $case == reboot ]]; then
            console2=$out/boot-test-reboot-2.console.log
            echo "boot-test.sh: reboot: second boot, config unchanged"
            boot "$disk" "$console2"
            console=$console2
            wait_for "$console2" "$converged" || fail "the agent did not converge after the reboot"
            grep -q 'cobox-firstboot: result: unchanged' "$console2" || fail "the unchanged config was not recognised"
            grep -q "cobox-firstboot: device public key: $key" "$console2" || fail "the identity changed on reboot"
            if grep -q 'cobox-firstboot: root: .*growing' "$console2"; then fail "the root was grown again"; fi
            [[ $(root_mib "$console2") == "$size" ]] || fail "/ changed size on reboot"
            power_off
            echo "boot-test.sh: reboot: unchanged config ignored, same identity, converged"
        fi
        ;;
    invalid)
        # What a partner might do: edit cobox.toml on the boot partition before the first boot.
        bad=$work/bad.toml
        firstboot_base=$(mcopy -n -i "$disk@@$offset" ::cobox.toml - | tr -d '\r')
        printf '%s\n' "$firstboot_base" |
            sed 's/^address = "\([0-9a-f]*\)[0-9a-f]"/address = "\1"/' >"$bad"
        mcopy -o -i "$disk@@$offset" "$bad" ::cobox.toml
        echo "boot-test.sh: invalid: booting with a broken cobox.toml ($how; timeout ${timeout}s)"
        boot "$disk" "$console"
        wait_for "$console" 'cobox-firstboot: status: ' || fail "no first-boot report on the console"
        # Let the boot finish: the login prompt comes after multi-user.target.
        wait_for "$console" 'login:' || fail "the boot did not finish"
        sleep 10
        power_off
        grep -q 'cobox-firstboot: status: invalid' "$console" || fail "the report does not say invalid"
        grep -q 'cobox-firstboot: result: INVALID' "$console" || fail "the report does not say why"
        grep -q 'cobox-firstboot: agent: NOT started' "$console" || fail "the report does not say the agent stays off"
        if grep -Eq "$agent_ran" "$console"; then fail "the agent started"; fi
        if grep -q 'cobox-firstboot: root: .*growing' "$console"; then fail "a root that fills its disk was grown"; fi
        report=$(firstboot_log "$disk") || fail "no cobox-firstboot.log on the boot partition"
        grep -q "status: invalid" <<<"$report" || fail "the boot partition's report does not say invalid"
        grep -q "cobox.toml:" <<<"$report" || fail "the boot partition's report has no diagnostics"
        grep -Eq "device public key: [0-9a-f]{64}" <<<"$report" || fail "no public key in the report"
        echo "boot-test.sh: invalid: the report says why, the agent never started:"
        grep -A12 -- '--- coboxctl validate ---' <<<"$report" | sed 's/^/    /'
        ;;
    *) echo "boot-test.sh: unknown case $case" >&2; exit 2 ;;
    esac
done
echo "boot-test.sh: PASS (${cases[*]})"
