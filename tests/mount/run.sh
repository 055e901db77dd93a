#!/usr/bin/env bash
# run.sh - ekycfs mount tests: mounts real FUSE filesystems in temporary
# directories, runs every test_* function of tests/mount/t_*.sh in its own
# subshell, unmounts whatever it mounted, and prints "N passed, N failed".
# Usage: tests/mount/run.sh [BUILD_DIR] [FILTER]
set -u
BUILD=${1:-build}
FILTER=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
export BUILD
. "$HERE/lib.sh"

if [ "${EKYCFS_SKIP_MOUNT_TESTS:-0}" = 1 ]; then
	echo "mount tests skipped (EKYCFS_SKIP_MOUNT_TESTS=1)"
	echo "0 passed, 0 failed"
	exit 0
fi
if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
	echo "FUSE is not usable here (/dev/fuse or fusermount3 missing);" \
		"set EKYCFS_SKIP_MOUNT_TESTS=1 to skip explicitly" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
[ -x "$EKYCFS" ] || { echo "no $EKYCFS; run make first" >&2; exit 1; }

pass=0 failed=0 failures=()
for f in "$HERE"/t_*.sh; do
	. "$f"
done
for t in $(declare -F | awk '{print $3}' | grep '^test_' | sort); do
	case "$t" in *"$FILTER"*) ;; *) continue ;; esac
	T=$(mktemp -d /tmp/ekycfs-test.XXXXXX)
	start=$(date +%s.%N)
	(
		T=$T
		trap cleanup_mounts EXIT
		cd "$T" && "$t"
	) >"$T.log" 2>&1
	rc=$?
	# Belt and braces: nothing this test mounted may stay mounted.
	grep " $T" /proc/mounts | awk '{print $2}' | while read -r m; do
		fusermount3 -u "$m" 2>/dev/null || umount -l "$m"
	done
	took=$(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)")
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1))
		echo "  ok   $t (${took}s)"
	else
		failed=$((failed + 1))
		failures+=("$t")
		echo "  FAIL $t (${took}s)"
		sed 's/^/       | /' "$T.log" | tail -n 30
	fi
	rm -rf --one-file-system "$T" "$T.log"
done
echo
[ $failed -gt 0 ] && echo "failed: ${failures[*]}"
echo "$pass passed, $failed failed"
[ $failed -eq 0 ]
