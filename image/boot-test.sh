#!/bin/bash
# Boot test of the cobox hub image under qemu-system-aarch64 (software emulation) through UEFI
# firmware: the baked config converges and the root grows to fill a bigger disk, an invalid
# config leaves a hub that only reports why, and a hub provisioned by an admin joins the
# fleet and converges on the config the admins published for it. See README.md.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: image/boot-test.sh [--image FILE] [--timeout SECONDS]
                          [--only valid|invalid|reboot|fleet] [--kernel]

  --image FILE    a built image (default: image/out/cobox-hub-arm64.img, built with
                  image/build.sh when missing)
  --timeout S     how long one boot may take to reach its goal (default: 600)
  --only CASE     run one case: valid (the baked config converges on a disk 1 GiB bigger
                  than the image, and the root grows to fill it), invalid (a broken
                  cobox.toml on the boot partition: report, no agent), reboot (the valid
                  image booted twice: the unchanged config is ignored the second time),
                  fleet (an admin agent on this machine provisions the hub: its identity as
                  a paper key, an invite to the fleet, a config naming the admins, and a
                  published config for it; the hub must report converged on it)
  --kernel        boot with qemu -kernel/-initrd/-append (the files build.sh writes next to
                  the image) instead of through the UEFI firmware and the image's boot loader

By default qemu starts the UEFI firmware (edk2's AAVMF, Debian package qemu-efi-aarch64)
with fresh variables, which finds the boot loader on the disk by itself.

By default it runs valid, invalid and fleet. Each case boots a copy of the image; the
console of each boot is kept in image/out/.

The fleet case runs coboxd and coboxctl on this machine from $COBOX_BIN_DIR (default:
target/debug of the repository, built with cargo when missing).
USAGE
}

here=$(cd "$(dirname "$0")" && pwd)
image=$here/out/cobox-hub-arm64.img
timeout=600
cases=(valid invalid fleet)
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
admin_pid=
cleanup() {
    if [[ -n $qemu_pid ]]; then kill "$qemu_pid" 2>/dev/null || true; fi
    stop_admin
    rm -rf "$work"
}
# The fleet case's admin agent, stopped with SIGTERM (and SIGKILL after 20 s).
stop_admin() {
    [[ -n $admin_pid ]] || return 0
    kill "$admin_pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 20; i++)); do
        kill -0 "$admin_pid" 2>/dev/null || break
        sleep 1
    done
    kill -9 "$admin_pid" 2>/dev/null || true
    wait "$admin_pid" 2>/dev/null || true
    admin_pid=
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

# The fleet case's host side, run on this machine (the admin's): the host's coboxd and
# coboxctl.
host_bins() {
    bin_dir=${COBOX_BIN_DIR:-$here/../target/debug}
    if [[ ! -x $bin_dir/coboxd || ! -x $bin_dir/coboxctl ]]; then
        [[ -z ${COBOX_BIN_DIR:-} ]] || { echo "boot-test.sh: no coboxd and coboxctl in $bin_dir" >&2; exit 2; }
        echo "boot-test.sh: building the host's coboxd and coboxctl (cargo build)"
        (cd "$here/.." && CARGO_INCREMENTAL=0 cargo build -p coboxd -p coboxctl)
    fi
}
# The admin's coboxctl on the admin's config.
admin_ctl() { HOME=$admin_dir "$bin_dir/coboxctl" --color never --config "$admin_conf" "$@"; }

# A port nothing on this machine uses (TCP or UDP), for the admin agent.
free_port() {
    local p i
    for ((i = 0; i < 50; i++)); do
        p=$((40000 + RANDOM % 20000))
        if [[ -z $(ss -Htuln "sport = :$p") ]]; then
            echo "$p"
            return 0
        fi
    done
    echo "boot-test.sh: no free port found for the admin agent" >&2
    return 1
}

# start_admin DIR: an admin agent with a fleet space, listening on loopback (qemu's user
# network lets the guest reach it as 10.0.2.2), no discovery, relays or port mapping: the
# test makes no traffic beyond the two devices. Sets admin_dir, admin_conf, admin_key,
# admin_port and admin_pid.
start_admin() {
    admin_dir=$1
    admin_conf=$admin_dir/cobox.toml
    admin_port=$(free_port)
    mkdir -p "$admin_dir"
    admin_key=$(HOME=$admin_dir "$bin_dir/coboxctl" --color never --data-dir "$admin_dir/data" identity 2>/dev/null) || admin_key=
    [[ $admin_key =~ ^[0-9a-f]{64}$ ]] || fail "the admin's identity could not be created"
    cat >"$admin_conf" <<ADMIN
version = 1

[device]
name = "fleet-admin"
data_dir = "$admin_dir/data"
mount_root = "$admin_dir/mnt"

[network]
listen = ["127.0.0.1:$admin_port"]
lan_discovery = false
internet_discovery = false
relays = []
portmapper = false

[[space]]
name = "fleet"
mount = false

[admins]
keys = ["$admin_key"]
fleet = "fleet"

[api]
socket = "$admin_dir/coboxd.sock"
ADMIN
    HOME=$admin_dir "$bin_dir/coboxd" --config "$admin_conf" >"$admin_log" 2>&1 &
    admin_pid=$!
    local deadline=$(($(date +%s) + 120))
    until admin_ctl status >/dev/null 2>&1; do
        kill -0 "$admin_pid" 2>/dev/null || fail "the admin agent exited: see $admin_log"
        (($(date +%s) < deadline)) || fail "the admin agent did not converge within 120 s: see $admin_log"
        sleep 1
    done
}

# hub_config: the config an admin writes for a hub of the fleet (as the baked hub.toml: data
# in /var/lib/cobox, the socket in /run/cobox), dialling the admin's agent.
hub_config() {
    cat <<HUB
version = 1

[device]
name = "fleet-hub"
data_dir = "/var/lib/cobox"

[network]
peers = ["10.0.2.2:$admin_port"]
lan_discovery = false
internet_discovery = false
relays = []
portmapper = false

[[space]]
name = "fleet"
invite = "$invite"
mount = false

[admins]
keys = ["$admin_key"]
fleet = "fleet"

[api]
socket = "/run/cobox/coboxd.sock"
HUB
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
    fleet)
        host_bins
        admin_log=$out/boot-test-fleet.admin.log
        echo "boot-test.sh: fleet: starting an admin agent on this machine ($bin_dir)"
        start_admin "$work/admin"
        echo "boot-test.sh: fleet: admin $admin_key listening on 127.0.0.1:$admin_port"
        # Provisioning, all on the admin's machine: the hub's identity created offline and
        # exported as a paper key, an invite to the fleet for that key, the hub's config.
        prov=$work/hub-identity
        hub_key=$("$bin_dir/coboxctl" --color never --data-dir "$prov" identity 2>/dev/null) || hub_key=
        [[ $hub_key =~ ^[0-9a-f]{64}$ ]] || fail "the hub's identity could not be created"
        "$bin_dir/coboxctl" --color never --data-dir "$prov" keys export -o "$work/cobox-identity.txt" 2>/dev/null ||
            fail "the hub's paper key could not be exported"
        invite=$(admin_ctl invite create --space fleet --for "$hub_key") || fail "the admin could not invite the hub"
        hub_config >"$work/hub.toml"
        "$bin_dir/coboxctl" --color never validate --portable "$work/hub.toml" >/dev/null ||
            fail "the provisioned hub config is invalid"
        # The admins publish the hub's desired config before it ever boots: the envelope
        # waits in the fleet space. It differs visibly: one more seed.
        { hub_config; printf '\n[[seed]]\nname = "published-by-admins"\naddress = "%s"\n' \
            5e1d0c0ffee5e1d0c0ffee5e1d0c0ffee5e1d0c0ffee5e1d0c0ffee5e1d0c0ff; } >"$work/desired.toml"
        admin_ctl remote apply "$hub_key" "$work/desired.toml" --no-wait >/dev/null ||
            fail "the admin could not publish the hub's config"
        mcopy -o -i "$disk@@$offset" "$work/hub.toml" ::cobox.toml
        mcopy -o -i "$disk@@$offset" "$work/cobox-identity.txt" ::cobox-identity.txt
        rm -rf "$prov" "$work/cobox-identity.txt"
        echo "boot-test.sh: fleet: booting hub $hub_key with cobox.toml and cobox-identity.txt ($how; timeout ${timeout}s)"
        boot "$disk" "$console"
        # Nothing typed on the hub: the admin's side sees it converge on the envelope.
        deadline=$((booted_at + timeout))
        until admin_ctl remote status "$hub_key" >/dev/null 2>&1; do
            (($(date +%s) <= deadline)) || fail "the hub did not report converged within ${timeout}s: $(admin_ctl remote status "$hub_key" 2>&1 | tr '\n' ' ')"
            kill -0 "$qemu_pid" 2>/dev/null || fail "qemu exited before the hub reported converged"
            kill -0 "$admin_pid" 2>/dev/null || fail "the admin agent exited: see $admin_log"
            sleep 2
        done
        echo "boot-test.sh: fleet: power-on to the hub reported converged: $(($(date +%s) - booted_at)) s"
        admin_ctl remote status "$hub_key" | sed 's/^/    /'
        grep -q 'cobox-firstboot: status: installed' "$console" || fail "no first-boot report on the console"
        power_off
        stop_admin
        report=$(firstboot_log "$disk") || fail "no cobox-firstboot.log on the boot partition"
        grep -q "status: installed" <<<"$report" || fail "the boot partition's report does not say installed"
        grep -q "identity: restored from the boot partition's paper key; the file was removed" <<<"$report" ||
            fail "the report does not say the identity was restored"
        grep -q "device public key: $hub_key" <<<"$report" || fail "the hub runs another identity than its paper key's"
        grep -q "^  fleet: fleet$" <<<"$report" || fail "the report does not name the fleet"
        grep -q "^    $admin_key$" <<<"$report" || fail "the report does not name the admin key"
        if mdir -b -i "$disk@@$offset" :: | grep -qi 'cobox-identity\.txt'; then
            fail "cobox-identity.txt is still on the boot partition"
        fi
        echo "boot-test.sh: fleet: the report trusts fleet 'fleet' and admin $admin_key; the paper key was restored and removed:"
        sed -n '/^identity:/p; /^trusts:/,/^agent:/p' <<<"$report" | sed 's/^/    /'
        ;;
    *) echo "boot-test.sh: unknown case $case" >&2; exit 2 ;;
    esac
done
echo "boot-test.sh: PASS (${cases[*]})"
