# lib.sh - helpers for ekycfs mount tests: mounting in temporary
# directories, unmounting everything on any exit, and assertions.
# Sourced by run.sh; each test runs in its own subshell with $T set to a
# fresh temporary directory.

: "${BUILD:=build}"
EKYCFS="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/$BUILD/ekycfs"
FSX="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/$BUILD/tools/fsx"

# Mountpoints this test mounted; unmounted by cleanup.
MOUNTS=()

# mount_fs STORE MNT [ekycfs args...]: mount and wait until it is up.
mount_fs() {
	local store=$1 mnt=$2
	shift 2
	mkdir -p "$mnt"
	"$EKYCFS" "$@" "$store" "$mnt" || return 1
	MOUNTS+=("$mnt")
	for _ in $(seq 50); do
		mountpoint -q "$mnt" && return 0
		sleep 0.1
	done
	echo "mount of $mnt did not appear" >&2
	return 1
}

# mount_fg STORE MNT LOG [ekycfs args...]: ekycfs in the foreground (-f)
# as a background job of this shell, its output in LOG; sets FG_PID, and
# fails the test when the mount has not appeared within 5 s.
mount_fg() {
	local store=$1 mnt=$2 log=$3
	shift 3
	mkdir -p "$mnt"
	"$EKYCFS" -f "$@" "$store" "$mnt" >"$log" 2>&1 &
	FG_PID=$!
	MOUNTS+=("$mnt")
	wait_until 5 mountpoint -q "$mnt" || fail "foreground mount of $mnt did not appear"
}

# umount_fs MNT: unmount and wait for the daemon to go.
umount_fs() {
	local mnt=$1
	fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
	for _ in $(seq 50); do
		mountpoint -q "$mnt" || break
		sleep 0.1
	done
	# Let the daemon finish its shutdown (flock on the store released).
	sleep 0.2
}

cleanup_mounts() {
	local m
	for m in "${MOUNTS[@]}"; do
		mountpoint -q "$m" 2>/dev/null && umount_fs "$m"
	done
	MOUNTS=()
}

# fail MSG: report and stop this test.
fail() {
	echo "    FAIL: $*" >&2
	exit 1
}

# expect CMD...: CMD must succeed.
expect() {
	"$@" || fail "expected success: $*"
}

# expect_fail CMD...: CMD must fail.
expect_fail() {
	if "$@" 2>/dev/null; then fail "expected failure: $*"; fi
}

# expect_eq A B [what]
expect_eq() {
	[ "$1" = "$2" ] || fail "${3:-value}: expected '$2', got '$1'"
}

# expect_errno ERRTEXT CMD...: CMD fails and stderr names ERRTEXT.
expect_errno() {
	local want=$1 out
	shift
	if out=$("$@" 2>&1); then fail "expected '$want' from: $*"; fi
	case "$out" in *"$want"*) ;; *) fail "expected '$want' from: $*; got: $out" ;; esac
}

# no_plaintext STORE MARKER: MARKER appears nowhere in STORE (names,
# content, xattrs).
no_plaintext() {
	local store=$1 marker=$2
	if grep -r -a -q -- "$marker" "$store" 2>/dev/null; then fail "marker in store content"; fi
	if find "$store" | grep -q -- "$marker"; then fail "marker in store names"; fi
	if getfattr -R -d -m - "$store" 2>/dev/null | grep -q -- "$marker"; then
		fail "marker in store xattrs"
	fi
}

# wait_until SECONDS CMD...: poll CMD every 50 ms until it succeeds.
wait_until() {
	local limit=$1 i
	shift
	for i in $(seq $((limit * 20))); do
		"$@" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
