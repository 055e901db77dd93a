# t_kernel.sh - what ekycfs asks of the kernel, counted in the FUSE debug
# log: the round trips that decide small-I/O speed must not come back.

# kernel_debug_mount STORE MNT LOG: mount with -d, its debug output in LOG.
kernel_debug_mount() {
	mount_fg "$1" "$2" "$3" -d -o ttl=1h
}

# kernel_count LOG OPCODE: requests of that opcode in LOG.
kernel_count() {
	grep -a -c "opcode: $2 " "$1"
}

test_kernel_round_trips() {
	local mnt=$T/mnt log=$T/debug.log i getattrs
	kernel_debug_mount "$T/store" "$mnt" "$log"
	# Each write: no security.capability question (FUSE_HANDLE_KILLPRIV_V2),
	# only the first write of an inode asks.
	dd if=/dev/zero of="$mnt/rlc/f" bs=4k count=64 status=none || fail "dd"
	# Reads after writes on one read-write handle: no GETATTR before each
	# read (such a handle is direct I/O, so auto_inval_data does not ask).
	python3 - "$mnt/rlc/f" <<'PY' || fail "pread/pwrite loop"
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for i in range(50):
    os.pwrite(fd, bytes([i]) * 4096, i * 4096)
    assert os.pread(fd, 4096, (i * 7 % 64) * 4096) is not None
    assert os.pread(fd, 1, i * 4096) == bytes([i])
os.close(fd)
PY
	# Closing a read-only handle: no FLUSH (only the writers above: dd closes
	# its output twice, after dup2, and python once).
	getattrs=$(kernel_count "$log" GETATTR)
	for i in $(seq 20); do cat "$mnt/rlc/f" >/dev/null || fail "cat"; done
	umount_fs "$mnt"
	expect_eq "$(kernel_count "$log" WRITE)" 114 "WRITE requests"
	expect_eq "$(kernel_count "$log" FLUSH)" 3 "FLUSH requests"
	[ "$(kernel_count "$log" GETXATTR)" -le 1 ] ||
		fail "GETXATTR per write: $(kernel_count "$log" GETXATTR)"
	[ "$getattrs" -le 10 ] || fail "GETATTR per read: $getattrs"
	return 0
}

# ls -l asks each file for its security label and ACL, unless the file
# system said once that it has none (ls remembers that per device): 2,000
# round trips for a folder of 1,000 files otherwise.
test_kernel_ls_xattr_questions() {
	local mnt=$T/mnt log=$T/debug.log i
	kernel_debug_mount "$T/store" "$mnt" "$log"
	mkdir "$mnt/rlc/d" || fail "mkdir"
	for i in $(seq 100); do : >"$mnt/rlc/d/f$i" || fail "create f$i"; done
	expect_eq "$(ls -l "$mnt/rlc/d" | grep -c ' f[0-9]')" 100 "files listed"
	umount_fs "$mnt"
	[ "$(kernel_count "$log" GETXATTR)" -le 4 ] ||
		fail "GETXATTR for ls -l of 100 files: $(kernel_count "$log" GETXATTR)"
	return 0
}

# Sequential reads: requests of 128 KiB, with 1 MiB of read-ahead so that
# several are in flight; max_read is ekycfs's own (refused as an option: a
# mismatch with init would end the session and leave a dead mount).
test_kernel_read_requests() {
	local mnt=$T/mnt log=$T/debug.log out
	mkdir -p "$mnt"
	if out=$("$EKYCFS" -o max_read=4096 "$T/store" "$mnt" 2>&1); then
		fail "max_read=4096 was accepted"
	fi
	case "$out" in *max_read*) ;; *) fail "no word on max_read: $out" ;; esac
	mountpoint -q "$mnt" && fail "mounted anyway"

	kernel_debug_mount "$T/store" "$mnt" "$log"
	expect_eq "$(cat "/sys/class/bdi/$(mountpoint -d "$mnt")/read_ahead_kb")" 1024 "read-ahead"
	head -c 8M /dev/urandom >"$T/src" || fail "source"
	cp "$T/src" "$mnt/rlc/big" || fail "copy in"
	sync
	echo 3 >/proc/sys/vm/drop_caches
	cmp "$T/src" "$mnt/rlc/big" || fail "content differs"
	umount_fs "$mnt"
	python3 - "$log" <<'PY' || fail "READ sizes"
import re, sys
log = open(sys.argv[1], "rb").read()
reads = set(re.findall(rb"unique: (\d+), opcode: READ \(15\)", log))
outs = [int(o) - 16 for u, o in re.findall(rb"unique: (\d+), success, outsize: (\d+)", log)
        if u in reads]
assert outs, "no READ reply seen"
assert max(outs) == 131072, "largest READ reply %d bytes" % max(outs)
PY
	return 0
}

# The kernel remembers every inode it has seen until memory runs short, and
# ekycfs holds a descriptor for each. With a small open-file limit (as a
# container may give), creating, listing and reading four times more files
# than the limit must still work: ekycfs asks the kernel to drop the
# entries used longest ago. Before, creates failed with EMFILE at the
# limit, and listings silently left out entries whose stamp could not be
# read then.
test_kernel_fd_budget() {
	local mnt=$T/mnt d i pid fds limit want got
	ulimit -n 1024 || fail "cannot lower the open-file limit"
	mount_fs "$T/store" "$mnt" || fail "mount"
	pid=$(pgrep -f -x "$EKYCFS $T/store $mnt") || fail "no daemon"
	for d in $(seq 8); do
		mkdir "$mnt/rlc/d$d" || fail "mkdir d$d"
		for i in $(seq 500); do
			echo "d$d f$i" >"$mnt/rlc/d$d/f$i" || fail "create d$d/f$i"
		done
	done
	# A process working in a folder keeps a working getcwd() meanwhile.
	python3 - "$mnt/rlc/d1" "$T/cwd.out" <<'PY' &
import os, sys, time
os.chdir(sys.argv[1])
bad = 0
end = time.time() + 4
while time.time() < end:
    try:
        os.getcwd()
    except OSError:
        bad += 1
    time.sleep(0.01)
open(sys.argv[2], "w").write("%d\n" % bad)
PY
	for i in 1 2 3; do
		expect_eq "$(ls -lR "$mnt/rlc" | grep -c '^-')" 4000 "files in ls -lR, round $i"
	done
	wait $! || fail "getcwd watcher"
	expect_eq "$(cat "$T/cwd.out")" 0 "getcwd() failures in a folder of the mount"
	want=$(for d in $(seq 8); do for i in $(seq 500); do echo "d$d f$i"; done; done)
	got=$(for d in $(seq 8); do cat "$mnt/rlc/d$d/"f{1..500} || echo "cat failed"; done)
	[ "$want" = "$got" ] || fail "contents differ"
	# The daemon's own limit: 1024 here, higher where root may raise its
	# hard limit (then there is less to prune, and this still holds).
	limit=$(awk '/^Max open files/ {print $4}' "/proc/$pid/limits")
	fds=$(ls "/proc/$pid/fd" | wc -l)
	[ "$fds" -lt "$((limit * 3 / 4))" ] ||
		fail "daemon near its open-file limit $limit: $fds descriptors"
	grep -qx 'invalid_stamps 0' "$mnt/.ekycfs.status" || fail "invalid stamps counted"
	grep -qx 'vanished 0' "$mnt/.ekycfs.status" || fail "entries vanished"
	return 0
}
