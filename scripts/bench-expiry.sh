#!/usr/bin/env bash
# bench-expiry.sh - retention figures: how late entries vanish after their
# deadline (p50/p99 over N files with staggered deadlines, seen through the
# mount and from the audit log), shred throughput against plain write
# throughput on the same disk, and the daemon's CPU time while idle.
# Usage: scripts/bench-expiry.sh   (env: N=1000 TTL=15 SPREAD=10 SHRED_MB=512 IDLE=10)
# SPREAD must be below TTL: polling starts once every file is created.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000} TTL=${TTL:-15} SPREAD=${SPREAD:-10} SHRED_MB=${SHRED_MB:-512} IDLE=${IDLE:-10}
BIN=${BUILD:-build}/ekycfs
[ "$SPREAD" -lt "$TTL" ] || { echo "SPREAD ($SPREAD) must be below TTL ($TTL)" >&2; exit 2; }
W=$(mktemp -d /var/tmp/ekycfs-bexp.XXXXXX)
cleanup() { mountpoint -q "$W/mnt" && fusermount3 -u "$W/mnt"; rm -rf --one-file-system "$W"; }
trap cleanup EXIT
[ -x "$BIN" ] || make >/dev/null
mkdir -p "$W/mnt"
"$BIN" -o "ttl=${TTL}s,audit_log=$W/audit.log" "$W/store" "$W/mnt"
pid=$(pgrep -n -f -- "$W/store")

echo "== vanish lateness: $N files, TTL ${TTL}s, created over ${SPREAD}s"
python3 - "$W/mnt/rlc" "$N" "$TTL" "$SPREAD" "$W/audit.log" <<'PY'
import json, os, sys, time
d, n, ttl, spread, audit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
files = []
for i in range(n):
    p = os.path.join(d, "f%05d" % i)
    t0 = time.time()          # the stamp is taken after this: a safe lower bound
    with open(p, "wb") as f:
        f.write(b"x" * 1000)
    files.append((t0 + ttl, p))
    time.sleep(spread / n)
gone = {}
pending = sorted(files)
early = 0
while pending:
    now = time.time()
    keep = []
    for dl, p in pending:
        if now < dl - 0.02:
            keep.append((dl, p)); continue
        try:
            os.stat(p)
            keep.append((dl, p))
        except FileNotFoundError:
            t = time.time()
            if t < dl - 0.05:
                early += 1
            gone[p] = t - dl
    pending = keep
    time.sleep(0.002)
late = sorted(gone.values())
def pct(v, q): return v[min(len(v) - 1, int(q * len(v)))]
print("seen through the mount (stat polled every ~2 ms; deadline taken before create):")
print("  p50 %.1f ms  p99 %.1f ms  max %.1f ms  vanished early: %d" % (
    pct(late, .5) * 1e3, pct(late, .99) * 1e3, late[-1] * 1e3, early))
time.sleep(1)
def ts(s):
    import datetime
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() if "." in s else \
        datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
ev = [json.loads(l) for l in open(audit)]
van = sorted(ts(e["time"]) - ts(e["deadline"]) for e in ev if e["event"] == "vanished")
print("reaper, from the audit log (event time minus deadline, ms precision):")
print("  vanished events %d, p50 %.0f ms  p99 %.0f ms" % (len(van), pct(van, .5) * 1e3, pct(van, .99) * 1e3))
PY

echo "== shred throughput vs plain write (${SHRED_MB} MiB)"
sync; s=$(date +%s.%N)
dd if=/dev/urandom of="$W/plain" bs=1M count="$SHRED_MB" conv=fsync status=none
e=$(date +%s.%N); rm -f "$W/plain"
plain=$(echo "$SHRED_MB / ($e - $s)" | bc -l)
dd if=/dev/urandom of="$W/mnt/idocr/big" bs=1M count="$SHRED_MB" conv=fsync status=none
before=$(grep -c '"shredded"' "$W/audit.log" || true)
s=$(date +%s.%N)
rm "$W/mnt/idocr/big"
while [ "$(grep -c '"shredded"' "$W/audit.log" || true)" -le "$before" ]; do sleep 0.01; done
e=$(date +%s.%N)
shred=$(echo "$SHRED_MB / ($e - $s)" | bc -l)
printf '  plain write with fsync: %.0f MB/s   shred (rm to audit line): %.0f MB/s   ratio %.2f\n' \
	"$plain" "$shred" "$(echo "$shred / $plain" | bc -l)"

echo "== idle CPU of the daemon with pending entries, ${IDLE}s"
for i in $(seq 1000); do : > "$W/mnt/rlc/idle$i"; done
# TTL is short: re-mount with a long one so 1000 entries stay pending.
fusermount3 -u "$W/mnt"; sleep 0.5
"$BIN" -o "ttl=2h,audit_log=$W/audit.log" "$W/store2" "$W/mnt"
for i in $(seq 1000); do : > "$W/mnt/rlc/idle$i"; done
pid=$(pgrep -n -f -- "$W/store2")
t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
sleep "$IDLE"
t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
echo "  1000 pending entries: $((t1 - t0)) clock ticks of CPU in ${IDLE}s (tick = 1/$(getconf CLK_TCK) s)"
