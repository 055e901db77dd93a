#!/usr/bin/env bash
# bench-ab.sh - A/B of ekycfs binaries: mounts each one (ephemeral key,
# TTL 2 h) side by side and runs one workload on them in interleaved rounds
# (A B C ..., B C A ..., C A B ...), printing one figure per round and
# binary, then the medians. For judging a change on a noisy machine;
# scripts/bench.sh is the full comparison with other file systems.
#
# Usage (as root):  scripts/bench-ab.sh WORKLOAD ROUNDS BINARY...
#   WORKLOAD  seqwrite  512 MiB dd bs=1M conv=fsync, MiB/s
#             seqread   512 MiB dd bs=1M, cold, MiB/s
#             smallwrite 2000 x 100 KiB created + fsynced (bench/helper.py), files/s
#                       (the previous round's files removed first, and their
#                       shredding waited for, outside the timing)
#             smallread  those read back, cold, files/s
#             ls        cold ls -lR of 2000 x 4 KiB in 20 folders, entries/s
#             rm        cold rm -rf of 2000 x 100 KiB in 20 folders, entries/s
#                       (then waits until the store's trash is shredded)
#             randrw    fio 4 KiB randrw psync 8 s on 256 MiB, IOPS
#             parallel  8 x 128 MiB dd conv=fsync at once, MiB/s
# Example:  git stash; make; cp build/ekycfs /tmp/A; git stash pop; make
#           scripts/bench-ab.sh randrw 5 /tmp/A build/ekycfs
# Environment: WORKDIR [/var/tmp/ekycfs-ab] (on the disk under test).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HELPER="$HERE/bench/helper.py"
WORKDIR=${WORKDIR:-/var/tmp/ekycfs-ab}

die() {
	echo "bench-ab.sh: $*" >&2
	exit 2
}

[ $# -ge 3 ] || die "usage: bench-ab.sh WORKLOAD ROUNDS BINARY..."
W=$1 R=$2
shift 2
case $W in seqwrite | seqread | smallwrite | smallread | ls | rm | randrw | parallel) ;;
*) die "unknown workload '$W'" ;; esac
[[ $R =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[ "$(id -u)" = 0 ] || die "run as root (drop_caches)"
for b in "$@"; do [ -x "$b" ] || die "not an executable: $b"; done
command -v fio >/dev/null || [ "$W" != randrw ] || die "fio is not installed (scripts/bench.sh installs it)"

BINS=("$@")
MNTS=()
cleanup() {
	local m
	for m in "${MNTS[@]}"; do fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
	sleep 0.3
	rm -rf "$WORKDIR" /dev/shm/ekycfs-ab.rnd
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$WORKDIR"
mkdir -p "$WORKDIR" || die "cannot create $WORKDIR"
head -c $((512 << 20)) /dev/urandom >/dev/shm/ekycfs-ab.rnd
for i in "${!BINS[@]}"; do
	mkdir -p "$WORKDIR/s$i" "$WORKDIR/m$i"
	"${BINS[i]}" -o ttl=2h "$WORKDIR/s$i" "$WORKDIR/m$i" || die "mount of ${BINS[i]} failed"
	MNTS+=("$WORKDIR/m$i")
done

settle() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}
# drain MNT/rlc: wait (up to 60 s) until that store's trash is empty, so
# that shredding does not run into the next measurement.
drain() {
	local n=${1#"$WORKDIR"/m} trash i
	trash="$WORKDIR/s${n%/rlc}/.trash"
	sleep 0.3
	for ((i = 0; i < 300; i++)); do
		[ -z "$(find "$trash" -mindepth 1 -maxdepth 1 2>/dev/null | head -1)" ] && break
		sleep 0.2
	done
	[ "$i" -lt 300 ] || echo "bench-ab.sh: $trash still not empty after 60 s" >&2
	sync
}
# per MB SECONDS: MB / SECONDS
per() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }

# run DIR: one measurement of W in DIR, prints the figure.
run() {
	local d=$1 s e k
	case $W in
	seqwrite)
		rm -f "$d/big"
		settle
		s=$EPOCHREALTIME
		dd if=/dev/shm/ekycfs-ab.rnd of="$d/big" bs=1M conv=fsync status=none
		e=$EPOCHREALTIME
		per 512 "$(awk -v a="$s" -v b="$e" 'BEGIN { print b - a }')"
		;;
	seqread)
		[ -f "$d/big" ] || dd if=/dev/shm/ekycfs-ab.rnd of="$d/big" bs=1M conv=fsync status=none
		settle
		s=$EPOCHREALTIME
		dd if="$d/big" of=/dev/null bs=1M status=none
		e=$EPOCHREALTIME
		per 512 "$(awk -v a="$s" -v b="$e" 'BEGIN { print b - a }')"
		;;
	smallwrite)
		if [ -d "$d/t" ]; then
			rm -rf "$d/t"
			drain "$d"
		fi
		settle
		per 2000 "$(python3 "$HELPER" mkfiles "$d/t" 20 2000 100)"
		;;
	smallread)
		[ -d "$d/t" ] || python3 "$HELPER" mkfiles "$d/t" 20 2000 100 >/dev/null
		settle
		per 2000 "$(python3 "$HELPER" readfiles "$d/t" 20 2000 100)"
		;;
	ls)
		[ -d "$d/l" ] || python3 "$HELPER" mkfiles "$d/l" 20 2000 4 >/dev/null
		settle
		s=$EPOCHREALTIME
		ls -lR "$d/l" >/dev/null
		e=$EPOCHREALTIME
		per 2020 "$(awk -v a="$s" -v b="$e" 'BEGIN { print b - a }')"
		;;
	rm)
		python3 "$HELPER" mkfiles "$d/r" 20 2000 100 >/dev/null
		settle
		s=$EPOCHREALTIME
		rm -rf "$d/r"
		e=$EPOCHREALTIME
		per 2020 "$(awk -v a="$s" -v b="$e" 'BEGIN { print b - a }')"
		drain "$d"
		;;
	randrw)
		settle
		(cd "$d" && fio --name=rw --rw=randrw --bs=4k --size=256M --runtime=8 --time_based \
			--ioengine=psync --output-format=json --output="$d/fio.json" >/dev/null 2>&1)
		python3 "$HELPER" fioiops "$d/fio.json"
		rm -f "$d"/rw.* "$d/fio.json"
		;;
	parallel)
		rm -f "$d"/p*
		settle
		s=$EPOCHREALTIME
		for k in 1 2 3 4 5 6 7 8; do
			dd if=/dev/shm/ekycfs-ab.rnd of="$d/p$k" bs=1M count=128 conv=fsync status=none &
		done
		wait
		e=$EPOCHREALTIME
		per 1024 "$(awk -v a="$s" -v b="$e" 'BEGIN { print b - a }')"
		rm -f "$d"/p*
		;;
	esac
}

declare -A ALL
nb=${#BINS[@]}
for r in $(seq "$R"); do
	# Round r starts with binary r-1 (mod the count): whoever runs first
	# after the previous round's files meets the disk's leftover work.
	for j in $(seq 0 $((nb - 1))); do
		i=$(((r - 1 + j) % nb))
		v=$(run "$WORKDIR/m$i/rlc")
		echo "round $r  ${BINS[i]}  $v"
		ALL[$i]="${ALL[$i]:-} $v"
	done
done
echo "medians ($W, $R rounds):"
for i in "${!BINS[@]}"; do
	echo "  ${BINS[i]}  $(echo "${ALL[$i]}" | tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }')"
done
