#!/usr/bin/env bash
# Screenshots of the web dashboard: two devices on loopback, A (spaces `photos`, replicated
# to S, and `notes`, wanting two replicas it does not have; a seed of S's space `archive`
# with a quota) and S; every page of A's dashboard at desktop (1280x800) and phone (390x844)
# width, made with headless Chromium; the invites page as it shows an invite of S to `notes`. Run from the workspace root after `cargo build`:
#
#     bash docs/dashboard/shoot.sh [TARGET_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-${CARGO_TARGET_DIR:-target}}/debug
out=docs/dashboard
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
quiet='lan_discovery = false
internet_discovery = false
relays = []
portmapper = false'
device() {
    printf 'version = 1\n[device]\nname = "%s"\ndata_dir = "%s/%s/data"\nmount_root = "%s/%s/mnt"\n' "$1" "$tmp" "$1" "$tmp" "$1"
}
ctl() { HOME="$tmp/$1" "$bin/coboxctl" --config "$tmp/$1/cobox.toml" "${@:2}"; }
start() { HOME="$tmp/$1" "$bin/coboxd" --config "$tmp/$1/cobox.toml" 2>"$tmp/$1.log" & pids+=($!); }
converge() { for _ in $(seq 600); do ctl "$1" status >/dev/null 2>&1 && return; sleep 0.1; done; echo "$1 did not converge" >&2; exit 1; }

mkdir -p "$tmp/a" "$tmp/s"
pa=$(port); ps=$(port); web=$(port)
device a >"$tmp/a/cobox.toml"; device s >"$tmp/s/cobox.toml"
ka=$(ctl a identity); ks=$(ctl s identity)
{ device s; printf '[network]\nlisten = ["127.0.0.1:%s"]\n%s\n[[space]]\nname = "archive"\nseeders = ["%s"]\n' "$ps" "$quiet" "$ka"; } >"$tmp/s/cobox.toml"
start s; converge s
archive=$(ls "$tmp/s/data/spaces" | head -1)
{ device a; printf '[network]\nlisten = ["127.0.0.1:%s"]\npeers = ["127.0.0.1:%s"]\n%s\n' "$pa" "$ps" "$quiet"
  printf '[[space]]\nname = "photos"\nseeders = ["%s"]\nmin_replicas = 1\n' "$ks"
  printf '[[space]]\nname = "notes"\nmin_replicas = 2\n'
  printf '[[seed]]\nname = "archive"\naddress = "%s"\nquota = "64 MiB"\n' "$archive"
  printf '[api]\nweb = "127.0.0.1:%s"\n' "$web"; } >"$tmp/a/cobox.toml"
start a; converge a
# S seeds A's space `photos`.
photos=$(ctl a status --output json | python3 -c "import json,sys; s=json.load(sys.stdin); print(next(r['details']['address'] for r in s['resources'] if r['kind']=='space' and r['name']=='photos'))")
{ device s; printf '[network]\nlisten = ["127.0.0.1:%s"]\n%s\n[[space]]\nname = "archive"\nseeders = ["%s"]\n[[seed]]\nname = "photos"\naddress = "%s"\n' "$ps" "$quiet" "$ka" "$photos"; } >"$tmp/s/cobox.toml"
head -c 3000000 /dev/urandom >"$tmp/a/mnt/photos/holiday.jpg"
head -c 500000 /dev/urandom >"$tmp/s/mnt/archive/minutes-2026.pdf"
sleep 25

shoot() { # name path width height
    chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size="$3,$4" \
        --screenshot="$out/$1.png" "http://127.0.0.1:$web$2" >/dev/null 2>&1
}
for page in overview:/ space:/space/photos seed:/seed/archive events:/events peers:/peers config:/config identity:/identity; do
    name=${page%%:*}; path=${page#*:}
    shoot "$name-desktop" "$path" 1280 800
    shoot "$name-phone" "$path" 390 844
done
# The invites page answering its form (sent by a local page with the dashboard's CSRF
# token, as the browser sends it): an invite of S to `notes`, its code and QR code.
csrf=$(python3 -c "import re,sys,urllib.request; print(re.search(r'name=\"csrf\" value=\"([0-9a-f]+)\"', urllib.request.urlopen(sys.argv[1]).read().decode()).group(1))" "http://127.0.0.1:$web/invites")
printf '<!DOCTYPE html><form method="post" action="http://127.0.0.1:%s/invites"><input name="csrf" value="%s"><input name="space" value="notes"><input name="invitee" value="%s"><input name="role" value="member"><input name="expires" value="7d"></form><script>document.forms[0].submit()</script>\n' \
    "$web" "$csrf" "$ks" >"$tmp/invite.html"
for size in desktop:1280,800 phone:390,844; do
    chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size="${size#*:}" \
        --virtual-time-budget=5000 --screenshot="$out/invites-${size%%:*}.png" "file://$tmp/invite.html" >/dev/null 2>&1
done
ls -l "$out"/*.png
