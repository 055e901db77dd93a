#!/usr/bin/env bash
# bench.sh - side-by-side throughput of ekycfs against the plain backing
# disk, libfuse's passthrough_ll, gocryptfs and securefs, plus the memory
# footprint of the ekycfs daemon on a large tree.
#
# Run as root from anywhere:   scripts/bench.sh
#
# Every target is mounted once; the workloads run interleaved: round 1 runs
# workload 1 on target A, B, C, ..., then workload 2 on A, B, C, ..., and so
# on; round 2 the same starting with B (B, C, ..., A), and so on. The table reports the median of the rounds. Raw
# per-round lines go to stderr and to WORKDIR/results-*/bench.log; the
# Markdown table goes to stdout and WORKDIR/results-*/table.md.
#
# Environment (defaults in brackets):
#   ROUNDS       rounds per workload and target [3]
#   SIZE_MB      sequential file size in MiB; the parallel test writes
#                PAR files of SIZE_MB/PAR MiB [1024]
#   ONLY         comma list of workloads [all]: seqwrite seqread smallwrite
#                smallread ls rm randrw parallel mem
#   TARGETS      comma list of targets [ekycfs,plain,passthrough_ll,
#                gocryptfs,securefs]; also known: passthrough_xattr
#                (passthrough_ll -o xattr) and ekycfs_nocipher (ekycfs
#                with its block cipher replaced by a copy, bench/nocipher.c:
#                what the cipher costs; its store holds plaintext)
#   WORKDIR      where the stores and results live; must be on the disk
#                under test [/var/tmp/ekycfs-bench]
#   MEM          0 skips the memory phase [1]
#   MEM_FILES, MEM_DIRS   size of the memory-phase tree [100000, 100]
#   MEM_TARGETS  daemons measured in the memory phase [ekycfs]
#   MEM_NOFILE   open-file limit asked for the memory-phase daemons;
#                passthrough_ll holds one descriptor per inode the kernel
#                remembers, so the whole tree needs more than MEM_FILES
#                (ekycfs too, before it pruned the kernel's cache at a
#                quarter of its limit). Without CAP_SYS_RESOURCE only the soft limit is
#                raised, to the hard one; if that is still too low, the
#                phase makes the kernel forget inodes as it goes (see
#                memphase() in bench/helper.py) [1048576; empty: inherited]
#   SMALL_FILES, SMALL_DIRS, SMALL_KB   small-file tree [2000, 20, 100]
#   FIO_RUNTIME, FIO_SIZE_MB            fio random I/O [10, 256]
#   PAR          parallel writers [8]
#   EKYCFS       ekycfs binary [build/ekycfs, rebuilt with make first]
#   EKYCFS_DESC  free text about that binary for the report (e.g. its commit)
#   KEEP         1 keeps the stores under WORKDIR/data after the run [0]
#   SHRED_WAIT   seconds to wait for ekycfs's background shredding after a
#                removal, before the next measurement [900]
#
# Installs gocryptfs, securefs, fio, attr, bc and hyperfine when missing;
# the timings themselves are taken in-script (bash $EPOCHREALTIME, or inside
# bench/helper.py) so that the rounds stay interleaved.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
HELPER="$HERE/bench/helper.py"
CMDLINE="$0 $*"
ENV_VARS="ROUNDS SIZE_MB ONLY TARGETS WORKDIR MEM MEM_FILES MEM_DIRS MEM_TARGETS MEM_NOFILE SMALL_FILES
SMALL_DIRS SMALL_KB FIO_RUNTIME FIO_SIZE_MB PAR EKYCFS EKYCFS_DESC KEEP SHRED_WAIT"
USER_ENV=""
for v in $ENV_VARS; do
	[ -n "${!v+x}" ] || continue
	if [[ ${!v} =~ ^[A-Za-z0-9_,./:=+-]*$ ]]; then
		USER_ENV="$USER_ENV$v=${!v} "
	else
		USER_ENV="$USER_ENV$v='${!v//\'/\'\\\'\'}' "
	fi
done

ALL_WORKLOADS=seqwrite,seqread,smallwrite,smallread,ls,rm,randrw,parallel,mem
ALL_TARGETS=ekycfs,plain,passthrough_ll,gocryptfs,securefs
# Also known, not in the default run: passthrough_ll with -o xattr (what
# FUSE costs a file system that, like ekycfs and gocryptfs, has xattrs),
# and ekycfs without its block cipher (what the cipher costs).
KNOWN_TARGETS=$ALL_TARGETS,passthrough_xattr,ekycfs_nocipher
: "${ROUNDS:=3}" "${SIZE_MB:=1024}" "${ONLY:=$ALL_WORKLOADS}" "${TARGETS:=$ALL_TARGETS}"
: "${WORKDIR:=/var/tmp/ekycfs-bench}" "${MEM:=1}" "${MEM_FILES:=100000}" "${MEM_DIRS:=100}"
: "${MEM_TARGETS:=ekycfs}" "${SMALL_FILES:=2000}" "${SMALL_DIRS:=20}" "${SMALL_KB:=100}"
: "${FIO_RUNTIME:=10}" "${FIO_SIZE_MB:=256}" "${PAR:=8}" "${KEEP:=0}" "${SHRED_WAIT:=900}"
: "${MEM_NOFILE:=1048576}"
export SIZE_MB SMALL_FILES SMALL_DIRS SMALL_KB FIO_RUNTIME PAR

die() {
	echo "bench.sh: $*" >&2
	exit 1
}

if [ "$(id -u)" -ne 0 ]; then
	die "must run as root (it mounts FUSE filesystems, drops the page cache and installs packages): sudo $0"
fi

# ---- options ----

isnum() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ]; }
for v in ROUNDS SIZE_MB MEM_FILES MEM_DIRS SMALL_FILES SMALL_DIRS SMALL_KB FIO_RUNTIME FIO_SIZE_MB PAR; do
	isnum "${!v}" || die "$v must be a positive integer (got '${!v}')"
done
PER_MB=$((SIZE_MB / PAR))
[ "$PER_MB" -ge 1 ] || die "SIZE_MB ($SIZE_MB) must be at least PAR ($PAR)"
inlist() { [[ ",$2," == *",$1,"* ]]; }
for w in ${ONLY//,/ }; do inlist "$w" "$ALL_WORKLOADS" || die "unknown workload '$w' in ONLY (known: $ALL_WORKLOADS)"; done
for t in ${TARGETS//,/ }; do inlist "$t" "$KNOWN_TARGETS" || die "unknown target '$t' in TARGETS (known: $KNOWN_TARGETS)"; done
for t in ${MEM_TARGETS//,/ }; do
	if ! inlist "$t" "$KNOWN_TARGETS" || [ "$t" = plain ]; then die "MEM_TARGETS: '$t' is not a FUSE target"; fi
done
# Keep the requested order of ALL_* lists, not the user's.
sel() { local out="" x; for x in ${2//,/ }; do inlist "$x" "$1" && out="$out${out:+,}$x"; done; echo "$out"; }
TARGETS=$(sel "$TARGETS" "$KNOWN_TARGETS")
ONLY=$(sel "$ONLY" "$ALL_WORKLOADS")
[ "$MEM" = 0 ] && ONLY=$(sel "${ONLY//mem/}" "$ALL_WORKLOADS")
want() { inlist "$1" "$ONLY"; }
IFS=, read -r -a TLIST <<<"$TARGETS"
case "$WORKDIR" in /*) ;; *) die "WORKDIR must be an absolute path" ;; esac

# ---- dependencies ----

need=()
for p in gocryptfs:gocryptfs securefs:securefs fio:fio getfattr:attr bc:bc hyperfine:hyperfine \
	python3:python3 gcc:gcc pkg-config:pkg-config fusermount3:fuse3; do
	command -v "${p%%:*}" >/dev/null 2>&1 || need+=("${p#*:}")
done
dpkg-query -W -f='${Status}' libfuse3-dev 2>/dev/null | grep -q 'ok installed' || need+=(libfuse3-dev)
if [ "${#need[@]}" -gt 0 ]; then
	echo "bench.sh: installing ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get update -qq >/dev/null ||
		! apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
		die "could not install ${need[*]}"
	fi
fi

if [ -z "${EKYCFS:-}" ]; then
	"$ROOT/scripts/install-deps.sh" || die "cannot install the ekycfs build dependencies"
	make -C "$ROOT" -s build/ekycfs || die "make build/ekycfs failed"
	EKYCFS="$ROOT/build/ekycfs"
fi
[ -x "$EKYCFS" ] || die "no ekycfs binary at $EKYCFS"

# passthrough_ll from libfuse's examples, built as the libfuse docs suggest.
PT_DIR="$ROOT/build/bench"
PT="$PT_DIR/passthrough_ll"
EX=/usr/share/doc/libfuse3-dev/examples
if inlist passthrough_ll "$TARGETS" || inlist passthrough_xattr "$TARGETS"; then
	mkdir -p "$PT_DIR/src" || die "cannot create $PT_DIR"
	for f in passthrough_ll.c passthrough_helpers.h; do
		if [ -f "$EX/$f" ]; then
			cp "$EX/$f" "$PT_DIR/src/$f"
		elif [ -f "$EX/$f.gz" ]; then
			zcat "$EX/$f.gz" >"$PT_DIR/src/$f"
		else
			die "$EX/$f(.gz) not found (is libfuse3-dev installed?)"
		fi
	done
	# shellcheck disable=SC2046
	gcc -O2 -Wall -DHAVE_UTIMENSAT -DHAVE_POSIX_FALLOCATE -DHAVE_SETXATTR -DHAVE_COPY_FILE_RANGE \
		-o "$PT" "$PT_DIR/src/passthrough_ll.c" $(pkg-config --cflags --libs fuse3) ||
		die "building passthrough_ll failed"
fi

# The speed of the block AEAD alone, for reading the figures: a cold read
# cannot be faster than this machine's libsodium opens 4 KiB blocks.
CS="$PT_DIR/cryptospeed"
mkdir -p "$PT_DIR" && gcc -O2 -Wall -pthread -o "$CS" "$HERE/bench/cryptospeed.c" -lsodium ||
	die "building cryptospeed failed"

# ekycfs_nocipher: the same ekycfs binary with bench/nocipher.c preloaded.
NOCIPHER="$PT_DIR/nocipher.so"
if inlist ekycfs_nocipher "$TARGETS" || inlist ekycfs_nocipher "$MEM_TARGETS"; then
	gcc -O2 -Wall -shared -fPIC -o "$NOCIPHER" "$HERE/bench/nocipher.c" ||
		die "building nocipher.so failed"
fi

# ---- workspace, logging, cleanup ----

mkdir -p "$WORKDIR" || die "cannot create $WORKDIR"
WORKDIR=$(cd "$WORKDIR" && pwd -P)
DATA="$WORKDIR/data"
mounts_under() { findmnt -rn -o TARGET | grep -F -- "$1/" || true; }
if [ -n "$(mounts_under "$WORKDIR")" ]; then
	die "something is still mounted under $WORKDIR (a previous run?); unmount it first:
$(mounts_under "$WORKDIR")"
fi
rm -rf "$DATA"
mkdir -p "$DATA"
RES="$WORKDIR/results-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RES"
LOG="$RES/bench.log"
RAW="$RES/raw.tsv"
MEMTSV="$RES/mem.tsv"
printf '# round\tworkload\ttarget\tvalue\tunit\tseconds\n' >"$RAW"
RAND="/dev/shm/ekycfs-bench-rand.$$"

log() { printf '%s\n' "$*" | tee -a "$LOG" >&2; }

MNTS=()                 # every mountpoint we mounted, in order
PIDS=()                 # every daemon we started
declare -A DPID=()      # target -> daemon pid (main run)

alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

unmount_one() {
	local m=$1
	mountpoint -q "$m" 2>/dev/null || return 0
	fusermount3 -u "$m" 2>/dev/null && return 0
	sleep 1
	fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
}

wait_gone() { # wait_gone PID SECONDS: then TERM, then KILL
	local p=$1 i
	for ((i = 0; i < $2 * 10; i++)); do alive "$p" || { wait "$p" 2>/dev/null; return 0; }; sleep 0.1; done
	kill -TERM "$p" 2>/dev/null
	sleep 1
	alive "$p" && kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	return 0
}

CLEANED=0
cleanup() {
	local rc=$? i
	[ "$CLEANED" = 1 ] && return
	CLEANED=1
	trap - EXIT INT TERM HUP
	set +e
	# Children of ours that may still run (dd, fio, python): stop them first.
	for i in $(jobs -pr); do
		inlist "$i" "$(IFS=,; echo "${PIDS[*]}")" || kill -TERM "$i" 2>/dev/null
	done
	for ((i = ${#MNTS[@]} - 1; i >= 0; i--)); do unmount_one "${MNTS[i]}"; done
	for i in "${PIDS[@]}"; do wait_gone "$i" 120; done
	rm -f "$RAND"
	if [ -n "$(mounts_under "$DATA")" ]; then
		echo "bench.sh: still mounted, data left in $DATA:" >&2
		mounts_under "$DATA" >&2
	elif [ "$KEEP" != 1 ]; then
		rm -rf "$DATA"
	fi
	[ "$rc" -ne 0 ] && echo "bench.sh: stopped (status $rc); log in $LOG" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench.sh: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# start_daemon NAME MNT CMD...: run a FUSE daemon in the foreground of its
# own session (so a ^C reaches only us, and the trap unmounts it), wait
# for the mount to appear; the daemon's pid is in LASTPID.
start_daemon() {
	local name=$1 mnt=$2 i
	shift 2
	mkdir -p "$mnt"
	# NOFILE, when set, raises the daemon's open-file limit (soft and hard),
	# or the soft one to the hard one when raising the hard one is not
	# allowed (no CAP_SYS_RESOURCE).
	(
		[ -n "${NOFILE:-}" ] && { ulimit -n "$NOFILE" 2>/dev/null || ulimit -n "$(ulimit -Hn)"; }
		exec setsid "$@" >>"$RES/$name.daemon.log" 2>&1 </dev/null
	) &
	LASTPID=$!
	PIDS+=("$LASTPID")
	MNTS+=("$mnt")
	for ((i = 0; i < 600; i++)); do
		mountpoint -q "$mnt" && return 0
		alive "$LASTPID" || break
		sleep 0.1
	done
	log "mount of $name at $mnt failed; its output:"
	sed 's/^/    /' "$RES/$name.daemon.log" >&2
	return 1
}

stop_daemon() { # stop_daemon MNT PID
	unmount_one "$1"
	wait_gone "$2" 300
}

# Where each target's files go, and its store (for ekycfs).
tdir() {
	case $1 in
	ekycfs | ekycfs_nocipher) echo "$DATA/$1.mnt/rlc/bench" ;;
	plain) echo "$DATA/plain/bench" ;;
	passthrough_ll) echo "$DATA/passthrough_ll.mnt/bench" ;;
	passthrough_xattr) echo "$DATA/passthrough_xattr.mnt/bench" ;;
	gocryptfs) echo "$DATA/gocryptfs.mnt/bench" ;;
	securefs) echo "$DATA/securefs.mnt/bench" ;;
	esac
}

PASS=ekycfs-bench-pass
echo "$PASS" >"$DATA/passfile"
chmod 600 "$DATA/passfile"

# mount_target TARGET PREFIX: mount a fresh instance with stores under
# DATA/PREFIX.*; prints nothing, sets LASTPID (empty for plain).
mount_target() {
	local t=$1 p="$DATA/$2"
	LASTPID=""
	case $t in
	ekycfs)
		mkdir -p "$p.store"
		start_daemon "$2" "$p.mnt" "$EKYCFS" -f -o ttl=2h "$p.store" "$p.mnt"
		;;
	ekycfs_nocipher)
		mkdir -p "$p.store"
		start_daemon "$2" "$p.mnt" env LD_PRELOAD="$NOCIPHER" "$EKYCFS" -f -o ttl=2h "$p.store" "$p.mnt" ||
			return 1
		# The copy stands in for AES-256-GCM only.
		"$EKYCFS" status "$p.mnt" 2>&1 | grep -q 'cipher aes256gcm' ||
			{ log "ekycfs_nocipher: the store does not use AES-256-GCM, so nothing would be replaced"; return 1; }
		;;
	plain)
		mkdir -p "$p"
		;;
	passthrough_ll)
		# Its defaults: multi-threaded, cache=auto (1 s timeouts), no
		# writeback cache, no xattr.
		mkdir -p "$p.src"
		start_daemon "$2" "$p.mnt" "$PT" -f -o "source=$p.src,cache=auto" "$p.mnt"
		;;
	passthrough_xattr)
		mkdir -p "$p.src"
		start_daemon "$2" "$p.mnt" "$PT" -f -o "source=$p.src,cache=auto,xattr" "$p.mnt"
		;;
	gocryptfs)
		mkdir -p "$p.cipher"
		gocryptfs -init -q -passfile "$DATA/passfile" "$p.cipher" >>"$RES/$2.daemon.log" 2>&1 ||
			{ log "gocryptfs -init failed"; return 1; }
		start_daemon "$2" "$p.mnt" gocryptfs -f -q -passfile "$DATA/passfile" "$p.cipher" "$p.mnt"
		;;
	securefs)
		mkdir -p "$p.data"
		securefs create --pass "$PASS" "$p.data" >>"$RES/$2.daemon.log" 2>&1 ||
			{ log "securefs create failed"; return 1; }
		start_daemon "$2" "$p.mnt" securefs mount --pass "$PASS" "$p.data" "$p.mnt"
		;;
	esac
}

settle() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# quiesce TARGET: after a removal, let background work end before the next
# measurement: ekycfs shreds removed files in a background thread (1 random
# pass + fsync); wait until its trash directory is empty.
quiesce() {
	local t=$1 t0 i n
	sync
	case $t in ekycfs | ekycfs_nocipher) ;; *) return 0 ;; esac
	t0=$EPOCHREALTIME
	sleep 0.3 # RELEASE reaches the daemon asynchronously after close()
	for ((i = 0; i < SHRED_WAIT * 5; i++)); do
		n=$(find "$DATA/$t.store/.trash" -mindepth 1 -maxdepth 1 2>/dev/null | head -1)
		[ -z "$n" ] && break
		sleep 0.2
	done
	[ -n "$n" ] && log "    $t: trash still not empty after ${SHRED_WAIT}s"
	sync
	log "    ($t background shredding drained $(elapsed "$t0" "$EPOCHREALTIME") s after the removal, incl. sync)"
}

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.2f", n / s; else print "NA" }'; }

record() { # record ROUND WORKLOAD TARGET VALUE UNIT SECONDS
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RAW"
	log "$(printf '[round %s] %-10s %-15s %12s %-9s (%s s)' "$@")"
}

fail() { # fail ROUND WORKLOAD TARGET WHAT
	record "$1" "$2" "$3" NA - -
	log "    FAILED: $4"
}

up() { # up TARGET: is its mount still there?
	[ "$1" = plain ] || mountpoint -q "$DATA/$1.mnt"
}

# ---- workloads: each NAME ROUND TARGET ----

SEQ_BYTES=$((SIZE_MB * 1048576))
TREE_ENTRIES=$((SMALL_FILES + SMALL_DIRS))

make_seq() { dd if="$RAND" of="$1" bs=1M count="$SIZE_MB" conv=fsync status=none 2>>"$LOG"; }

w_seqwrite() {
	local r=$1 t=$2 f t0 t1
	f="$(tdir "$t")/seq.bin"
	settle
	t0=$EPOCHREALTIME
	if make_seq "$f" && [ "$(stat -c %s "$f")" = "$SEQ_BYTES" ]; then
		t1=$EPOCHREALTIME
		record "$r" seqwrite "$t" "$(rate "$SIZE_MB" "$(elapsed "$t0" "$t1")")" MiB/s "$(elapsed "$t0" "$t1")"
	else
		fail "$r" seqwrite "$t" "dd to $f"
	fi
}

w_seqread() {
	local r=$1 t=$2 f t0 t1 n
	f="$(tdir "$t")/seq.bin"
	[ -f "$f" ] || make_seq "$f" || { fail "$r" seqread "$t" "cannot create $f"; return; }
	settle
	t0=$EPOCHREALTIME
	n=$(dd if="$f" of=/dev/null bs=1M 2>&1 | awk '/bytes/ { print $1 }')
	t1=$EPOCHREALTIME
	if [ "$n" = "$SEQ_BYTES" ]; then
		record "$r" seqread "$t" "$(rate "$SIZE_MB" "$(elapsed "$t0" "$t1")")" MiB/s "$(elapsed "$t0" "$t1")"
	else
		fail "$r" seqread "$t" "read ${n:-0} bytes of $f, expected $SEQ_BYTES"
	fi
}

make_tree() { python3 "$HELPER" mkfiles "$1" "$SMALL_DIRS" "$SMALL_FILES" "$SMALL_KB" 2>>"$LOG"; }

w_smallwrite() {
	local r=$1 t=$2 d s
	d="$(tdir "$t")/tree"
	settle
	if s=$(make_tree "$d"); then
		record "$r" smallwrite "$t" "$(rate "$SMALL_FILES" "$s")" files/s "$s"
	else
		fail "$r" smallwrite "$t" "creating the tree in $d"
	fi
}

ensure_tree() { [ -d "$1" ] || make_tree "$1" >/dev/null; }

w_smallread() {
	local r=$1 t=$2 d s
	d="$(tdir "$t")/tree"
	ensure_tree "$d" || { fail "$r" smallread "$t" "cannot create $d"; return; }
	settle
	if s=$(python3 "$HELPER" readfiles "$d" "$SMALL_DIRS" "$SMALL_FILES" "$SMALL_KB" 2>>"$LOG"); then
		record "$r" smallread "$t" "$(rate "$SMALL_FILES" "$s")" files/s "$s"
	else
		fail "$r" smallread "$t" "reading the tree in $d"
	fi
}

w_ls() {
	local r=$1 t=$2 d t0 t1 n
	d="$(tdir "$t")/tree"
	ensure_tree "$d" || { fail "$r" ls "$t" "cannot create $d"; return; }
	settle
	t0=$EPOCHREALTIME
	# shellcheck disable=SC2010 # counting regular files in the listing
	n=$(ls -lR "$d" 2>>"$LOG" | grep -c '^-')
	t1=$EPOCHREALTIME
	if [ "$n" = "$SMALL_FILES" ]; then
		record "$r" ls "$t" "$(rate "$TREE_ENTRIES" "$(elapsed "$t0" "$t1")")" entries/s "$(elapsed "$t0" "$t1")"
	else
		fail "$r" ls "$t" "ls -lR listed $n files, expected $SMALL_FILES"
	fi
}

w_rm() {
	local r=$1 t=$2 d t0 t1
	d="$(tdir "$t")/tree"
	ensure_tree "$d" || { fail "$r" rm "$t" "cannot create $d"; return; }
	settle
	t0=$EPOCHREALTIME
	if rm -rf "$d" 2>>"$LOG" && [ ! -e "$d" ]; then
		t1=$EPOCHREALTIME
		record "$r" rm "$t" "$(rate "$TREE_ENTRIES" "$(elapsed "$t0" "$t1")")" entries/s "$(elapsed "$t0" "$t1")"
	else
		fail "$r" rm "$t" "rm -rf $d"
	fi
	quiesce "$t"
}

w_randrw() {
	local r=$1 t=$2 f j iops t0 t1
	f="$(tdir "$t")/fio.dat"
	j="$RES/fio-$t-r$r.json"
	settle
	t0=$EPOCHREALTIME
	if fio --name=rw --rw=randrw --bs=4k --size="${FIO_SIZE_MB}M" --runtime="$FIO_RUNTIME" --time_based \
		--ioengine=psync --direct=0 --filename="$f" --output-format=json --output="$j" >>"$LOG" 2>&1 &&
		iops=$(python3 "$HELPER" fioiops "$j" 2>>"$LOG"); then
		t1=$EPOCHREALTIME
		record "$r" randrw "$t" "$iops" IOPS "$(elapsed "$t0" "$t1")"
	else
		fail "$r" randrw "$t" "fio on $f (see $j)"
	fi
	rm -f "$f"
	quiesce "$t"
}

w_parallel() {
	local r=$1 t=$2 d t0 t1 i ok=1 pids=()
	d="$(tdir "$t")"
	settle
	t0=$EPOCHREALTIME
	for ((i = 0; i < PAR; i++)); do
		dd if="$RAND" of="$d/par.$i" bs=1M count="$PER_MB" skip=$((i * PER_MB)) conv=fsync status=none 2>>"$LOG" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || ok=0; done
	t1=$EPOCHREALTIME
	for ((i = 0; i < PAR; i++)); do
		[ "$(stat -c %s "$d/par.$i" 2>/dev/null)" = $((PER_MB * 1048576)) ] || ok=0
	done
	if [ "$ok" = 1 ]; then
		record "$r" parallel "$t" "$(rate $((PAR * PER_MB)) "$(elapsed "$t0" "$t1")")" MiB/s "$(elapsed "$t0" "$t1")"
	else
		fail "$r" parallel "$t" "$PAR parallel dd into $d"
	fi
	rm -f "$d"/par.*
	quiesce "$t"
}

# each_target ROUND WORKLOAD: run one workload on every target in order.
# Round r starts with target number r (mod the count), so that no target
# always runs first after a removal or in the same place of the round.
each_target() {
	local r=$1 w=$2 t i n=${#TLIST[@]}
	for ((i = 0; i < n; i++)); do
		t=${TLIST[(i + r - 1) % n]}
		if up "$t"; then
			"w_$w" "$r" "$t"
		else
			fail "$r" "$w" "$t" "$t is no longer mounted"
		fi
	done
}

# ---- machine and versions ----

first_line() { "$@" 2>&1 | head -1; }
DISK_SRC=$(findmnt -no SOURCE -T "$WORKDIR")
DISK_FS=$(findmnt -no FSTYPE -T "$WORKDIR")
DISK_DEV=$(lsblk -no PKNAME "$DISK_SRC" 2>/dev/null | head -1)
[ -n "$DISK_DEV" ] || DISK_DEV=$(basename "$DISK_SRC")
DISK_DRV=$(basename "$(readlink -f "/sys/block/$DISK_DEV/device/driver" 2>/dev/null)" 2>/dev/null)
[ -n "$DISK_DRV" ] && [ "$DISK_DRV" != . ] || DISK_DRV=$(basename "$(readlink -f "/sys/block/$DISK_DEV/device/../driver" 2>/dev/null)" 2>/dev/null)
DISK_ROTA=$(cat "/sys/block/$DISK_DEV/queue/rotational" 2>/dev/null)
DISK_MODEL=$(lsblk -dno MODEL "/dev/$DISK_DEV" 2>/dev/null | sed 's/ *$//')

{
	echo "# ekycfs benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "command:        $USER_ENV$CMDLINE"
	echo "settings:       ROUNDS=$ROUNDS SIZE_MB=$SIZE_MB ONLY=$ONLY TARGETS=$TARGETS WORKDIR=$WORKDIR"
	echo "cpu:            $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), nproc $(nproc), flags:$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -x -E 'aes|vaes|pclmulqdq|avx2|avx512f' | tr '\n' ' ' | sed 's/^/ /;s/ $//')$(lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor: *\(.*\)/, hypervisor \1/p')"
	echo "memory:         $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "kernel:         $(uname -r)"
	echo "os:             $(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release)"
	echo "disk:           $WORKDIR on $DISK_SRC ($DISK_FS), device $DISK_DEV, driver ${DISK_DRV:-?}, rotational=${DISK_ROTA:-?}, model '${DISK_MODEL}'"
	if [ "$EKYCFS" = "$ROOT/build/ekycfs" ]; then
		echo "ekycfs:         $("$EKYCFS" --version 2>&1 | head -1) (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD -- fs include Makefile 2>/dev/null || echo '+uncommitted changes'))"
	else
		echo "ekycfs:         $("$EKYCFS" --version 2>&1 | head -1) (EKYCFS=$EKYCFS${EKYCFS_DESC:+; $EKYCFS_DESC})"
	fi
	echo "libfuse:        $(pkg-config --modversion fuse3), kernel FUSE via /dev/fuse"
	echo "gocryptfs:      $(first_line gocryptfs -version)"
	echo "securefs:       $(securefs version 2>&1 | tr '\n' ' ' | sed 's/Hardware.*//;s/  */ /g') (package $(dpkg-query -W -f='${Version}' securefs 2>/dev/null))"
	echo "fio:            $(first_line fio --version)"
	echo "python3:        $(first_line python3 --version)"
	echo "block AEAD:     (scripts/bench/cryptospeed.c, one thread, then AES on two at once, before the workloads)"
	"$CS" | sed 's/^/                /'
	echo "rounds:         $ROUNDS; SIZE_MB=$SIZE_MB; parallel $PAR x $PER_MB MiB; small $SMALL_FILES x $SMALL_KB KiB in $SMALL_DIRS dirs; fio ${FIO_SIZE_MB}M ${FIO_RUNTIME}s"
} | tee "$RES/machine.txt" | tee -a "$LOG" >&2

# ---- main run ----

MAIN_WL=$(sel "$ONLY" seqwrite,seqread,smallwrite,smallread,ls,rm,randrw,parallel)
if [ -n "$MAIN_WL" ]; then
	if want seqwrite || want seqread || want parallel; then
		log "generating $SIZE_MB MiB of random data in $RAND"
		dd if=/dev/urandom of="$RAND" bs=1M count="$SIZE_MB" iflag=fullblock status=none || die "cannot fill $RAND"
	fi

	for t in "${TLIST[@]}"; do
		mount_target "$t" "$t" || die "cannot mount $t"
		DPID[$t]=$LASTPID
		mkdir -p "$(tdir "$t")" || die "cannot create $(tdir "$t")"
		log "mounted $t${LASTPID:+ (pid $LASTPID)} -> $(tdir "$t")"
		[ "$t" = ekycfs ] && log "    ekycfs status: $("$EKYCFS" status "$DATA/ekycfs.mnt" 2>&1 | grep -i -E 'cipher|key' | tr -s ' \n' ' ')"
	done

	T_START=$EPOCHREALTIME
	for ((r = 1; r <= ROUNDS; r++)); do
		log "== round $r/$ROUNDS"
		if want seqwrite || want seqread; then
			want seqwrite && each_target "$r" seqwrite
			want seqread && each_target "$r" seqread
			for t in "${TLIST[@]}"; do rm -f "$(tdir "$t")/seq.bin"; quiesce "$t"; done
		fi
		if want smallwrite || want smallread || want ls || want rm; then
			want smallwrite && each_target "$r" smallwrite
			want smallread && each_target "$r" smallread
			want ls && each_target "$r" ls
			if want rm; then
				each_target "$r" rm
			else
				for t in "${TLIST[@]}"; do rm -rf "$(tdir "$t")/tree"; quiesce "$t"; done
			fi
		fi
		want randrw && each_target "$r" randrw
		want parallel && each_target "$r" parallel
	done
	log "main run took $(elapsed "$T_START" "$EPOCHREALTIME") s"
	rm -f "$RAND"

	log "daemon memory at the end of the main run:"
	for t in "${TLIST[@]}"; do
		[ -n "${DPID[$t]}" ] || continue
		log "    $t: $(grep -E 'VmHWM|VmRSS' "/proc/${DPID[$t]}/status" 2>/dev/null | tr -s ' \t\n' ' ')"
	done
fi

# ---- memory phase: a fresh daemon, MEM_FILES empty files, cold ls -lR ----

if want mem; then
	printf '# target\tfiles\tfd_limit\tmode\tcreate_files_per_s\tls_seconds\tls_errors\thwm_mount_kb\thwm_create_kb\thwm_ls_kb\trss_end_kb\tmax_fds\trss_bytes_per_file\n' >"$MEMTSV"
	for t in ${MEM_TARGETS//,/ }; do
		log "== memory phase: $t, $MEM_FILES empty files in $MEM_DIRS dirs"
		NOFILE=$MEM_NOFILE mount_target "$t" "mem-$t" || die "cannot mount $t for the memory phase"
		pid=$LASTPID mnt="$DATA/mem-$t.mnt"
		d="$mnt/bench"
		case $t in ekycfs | ekycfs_nocipher) d="$mnt/rlc/bench" ;; esac
		python3 "$HELPER" memphase "$d" "$MEM_DIRS" "$MEM_FILES" "$pid" "$t" "$MEMTSV" 2>&1 | tee -a "$LOG" >&2 ||
			log "    memory phase on $t incomplete (see above)"
		stop_daemon "$mnt" "$pid"
		rm -rf "$DATA/mem-$t".*
	done
fi

# ---- report ----

{
	echo
	echo "## Results ($(date -u +%Y-%m-%d); ROUNDS=$ROUNDS SIZE_MB=$SIZE_MB ONLY=$ONLY TARGETS=$TARGETS)"
	echo
	python3 "$HELPER" report "$RAW" "$TARGETS" "$ONLY" "$MEMTSV"
} | tee "$RES/table.md"
log "results in $RES (raw.tsv, bench.log, table.md, machine.txt)"
