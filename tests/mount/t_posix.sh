# t_posix.sh - inside a zone ekycfs behaves like an ordinary POSIX tree:
# what cp, tar, rsync, dd, truncate, mv, editors and fsx do gives the same
# result as on a plain directory; what the contract refuses is refused with
# the documented errno. Sourced by run.sh; helpers are prefixed posix_.

# posix_empty_dir DIR: DIR has no entries (for wait_until).
posix_empty_dir() {
	[ -d "$1" ] && [ -z "$(ls -A "$1")" ]
}

# posix_mount [-o OPTS]: mount $T/S on $T/M with a long TTL; Z is the rlc zone.
posix_mount() {
	mount_fs "$T/S" "$T/M" -o ttl=1h "$@" || fail "mount failed"
	Z=$T/M/rlc
}

# posix_keymount: mount with a key file ($T/key, made on first use), so that
# posix_remount can check what really reached the store.
posix_keymount() {
	[ -f "$T/key" ] || "$EKYCFS" --genkey "$T/key" >/dev/null || fail "genkey"
	posix_mount -o "key_file=$T/key"
}

# posix_umount: unmount $T/M and wait until the daemon has let go of the
# store (its flock), so that the next mount or a look at the store does not
# race the daemon's shutdown.
posix_umount() {
	umount_fs "$T/M"
	mountpoint -q "$T/M" && fail "still mounted after unmount"
	wait_until 10 flock -n "$T/S" true || fail "the store is still locked 10 s after unmount"
}

posix_remount() {
	posix_umount
	posix_keymount
}

# posix_sig DIR: one line per entry below DIR: path, type, mode, size (not
# for directories), link count, mtime, and content hash or link target.
# Symlink modes are left to test_posix_symlink_mode.
posix_sig() {
	(
		cd "$1" || exit 1
		find . -mindepth 1 -print | LC_ALL=C sort | while IFS= read -r p; do
			case $(stat -c %F -- "$p") in
			directory) stat -c '%n %F %a %h %Y' -- "$p" ;;
			"symbolic link") echo "$(stat -c '%n %F %s %h' -- "$p") -> $(readlink -- "$p")" ;;
			regular*) echo "$(stat -c '%n %F %a %s %h %Y' -- "$p")" \
				"$(sha256sum <"$p" | cut -c1-64)" ;;
			*) stat -c '%n %F %a %s %h %Y' -- "$p" ;;
			esac
		done
	)
}

# posix_same_tree A B: diff -r (fifos aside, which diff cannot compare)
# and equal signatures.
posix_same_tree() {
	local out
	out=$(diff -r --no-dereference "$1" "$2" 2>&1 |
		grep -v '^File .* is a fifo while file .* is a fifo$')
	[ -z "$out" ] || fail "diff -r $1 $2: $out"
	posix_sig "$1" >"$T/sig.a" || fail "signature of $1"
	posix_sig "$2" >"$T/sig.b" || fail "signature of $2"
	[ -s "$T/sig.a" ] || fail "empty signature of $1"
	diff "$T/sig.a" "$T/sig.b" >"$T/sig.diff" || fail "stat lists differ ($1 vs $2): $(cat "$T/sig.diff")"
}

# posix_mktree DIR: nested dirs, files of sizes around the 4 KiB block,
# symlinks, a fifo, a hard link, modes 0600/0755, set mtimes.
posix_mktree() {
	local d=$1
	mkdir -p "$d/a/b/c" "$d/empty" "$d/x y" || return 1
	: >"$d/size0"
	head -c 1 /dev/urandom >"$d/size1"
	head -c 4095 /dev/urandom >"$d/a/size4095"
	head -c 4096 /dev/urandom >"$d/a/size4096"
	head -c 4097 /dev/urandom >"$d/a/b/size4097"
	head -c $((1024 * 1024 + 3)) /dev/urandom >"$d/a/b/c/big"
	echo "text with spaces" >"$d/x y/file name"
	ln -s size1 "$d/link_rel"
	ln -s ../../size0 "$d/a/b/link_up"
	ln -s a/b "$d/link_dir"
	ln -s does/not/exist "$d/link_dangling"
	mkfifo "$d/a/fifo"
	ln "$d/a/size4096" "$d/hard4096"
	chmod 0600 "$d/size1" "$d/a/size4095"
	chmod 0755 "$d/a/b/size4097" "$d/a/b"
	chmod 0700 "$d/empty"
	touch -d '2020-01-02 03:04:05' "$d/size0" "$d/a/b/c/big"
	touch -h -d '2019-05-06 07:08:09' "$d/link_rel"
	touch -d '2018-01-01 00:00:00' "$d/a/b/c"
}

test_posix_cp_a_tree() {
	posix_mount
	posix_mktree "$T/ref" || fail "making the reference tree"
	expect cp -a "$T/ref" "$Z/tree"
	posix_same_tree "$T/ref" "$Z/tree"
	expect_eq "$(stat -c %h "$Z/tree/hard4096")" 2 "link count of the hard link"
	expect_eq "$(stat -c %i "$Z/tree/hard4096")" "$(stat -c %i "$Z/tree/a/size4096")" \
		"hard links share an inode"
	# And back out to the plain disk.
	expect cp -a "$Z/tree" "$T/back"
	posix_same_tree "$T/ref" "$T/back"
}

test_posix_symlink_mode() {
	posix_mount
	ln -s target "$T/plain_link"
	expect ln -s target "$Z/link"
	expect_eq "$(stat -c '%a %F' "$Z/link")" "$(stat -c '%a %F' "$T/plain_link")" "symlink mode"
	expect_eq "$(readlink "$Z/link")" target "symlink target"
}

test_posix_tar_round_trip() {
	local tar_err=""
	posix_mount
	posix_mktree "$T/ref" || fail "making the reference tree"
	expect cp -a "$T/ref" "$Z/tree"
	# tar c from the mount, x on the plain disk. A failing tar c is
	# reported at the end, after the archive it wrote has been checked.
	tar -C "$Z" -cf "$T/from_mount.tar" tree 2>"$T/tar.err" ||
		tar_err="tar c from the mount failed: $(cat "$T/tar.err")"
	mkdir "$T/x"
	expect tar -C "$T/x" -xpf "$T/from_mount.tar"
	posix_same_tree "$T/ref" "$T/x/tree"
	# tar c on the plain disk, x into the mount, c again from the mount.
	expect tar -C "$T" -cf "$T/from_plain.tar" ref
	mkdir "$Z/untar"
	expect tar -C "$Z/untar" -xpf "$T/from_plain.tar"
	posix_same_tree "$T/ref" "$Z/untar/ref"
	[ -z "$tar_err" ] || fail "$tar_err"
}

# tar c refuses files whose ctime changes while it reads them; nothing may
# change st_ctime of a file that nobody modified (here: after cp -a).
test_posix_ctime_stable() {
	posix_mount
	head -c 5000 /dev/urandom >"$T/src"
	expect cp -a "$T/src" "$Z/f"
	local c1 c2
	c1=$(stat -c %z "$Z/f")
	sleep 1.5 # past the kernel's attribute cache
	c2=$(stat -c %z "$Z/f")
	expect_eq "$c2" "$c1" "ctime of an untouched file after cp -a"
	expect tar -C "$Z" -cf "$T/a.tar" f
	# The same for a folder just written into, archived at once (its
	# stamp was still pending when a listing reported its attributes).
	local i
	for i in 1 2 3 4 5; do
		mkdir -p "$Z/t$i/d" && echo x >"$Z/t$i/f" && echo y >"$Z/t$i/d/g" || fail "tree t$i"
		expect tar -C "$Z/t$i" -cf "$T/t$i.tar" .
	done
}

test_posix_dd_offsets() {
	local off len
	posix_keymount
	head -c 10000 /dev/urandom >"$T/ref"
	expect cp "$T/ref" "$Z/f"
	for off in 4095 4096 8191 0 4094 12287 $((1024 * 1024 - 1)) 20000; do
		for len in 1 2 4097; do
			head -c $len /dev/urandom >"$T/patch"
			dd if="$T/patch" of="$T/ref" bs=64k oflag=seek_bytes seek=$off conv=notrunc \
				status=none || fail "dd on the reference"
			expect dd if="$T/patch" of="$Z/f" bs=64k oflag=seek_bytes seek=$off conv=notrunc \
				status=none
			cmp "$T/ref" "$Z/f" || fail "content differs after dd at $off len $len"
		done
	done
	expect_eq "$(stat -c %s "$Z/f")" "$(stat -c %s "$T/ref")" "size"
	# Reads at offsets across block boundaries.
	for off in 4090 4095 4096 8191 $((1024 * 1024 - 5)); do
		expect_eq "$(dd if="$Z/f" bs=10 iflag=skip_bytes skip=$off count=1 status=none | od -An -tx1)" \
			"$(dd if="$T/ref" bs=10 iflag=skip_bytes skip=$off count=1 status=none | od -An -tx1)" \
			"10 bytes read at $off"
	done
	# What reached the store, not only the page cache.
	posix_remount
	cmp "$T/ref" "$Z/f" || fail "content differs after remount"
}

test_posix_truncate() {
	local size
	posix_keymount
	head -c 10000 /dev/urandom >"$T/ref"
	expect cp "$T/ref" "$Z/f"
	for size in 5000 20000 4096 4095 0 1 $((1024 * 1024 + 3)) 8193 12288 100; do
		truncate -s $size "$T/ref"
		expect truncate -s $size "$Z/f"
		expect_eq "$(stat -c %s "$Z/f")" $size "size after truncate -s $size"
		cmp "$T/ref" "$Z/f" || fail "content differs after truncate -s $size"
		# Write in the middle of what may be a hole, then compare again.
		printf 'xyz' | dd of="$T/ref" bs=1 seek=$((size / 2)) conv=notrunc status=none
		printf 'xyz' | dd of="$Z/f" bs=1 seek=$((size / 2)) conv=notrunc status=none ||
			fail "write after truncate -s $size"
		cmp "$T/ref" "$Z/f" || fail "content differs after a write past truncate -s $size"
	done
	# A fresh hole reads as zeros.
	expect truncate -s 0 "$Z/g"
	printf 'end' >>"$Z/g"
	expect truncate -s 300000 "$Z/g"
	cmp <(dd if="$Z/g" bs=4096 iflag=skip_bytes,count_bytes skip=3 count=299997 status=none) \
		<(head -c 299997 /dev/zero) || fail "hole does not read as zeros"
	posix_remount
	cmp "$T/ref" "$Z/f" || fail "content differs after remount"
	expect_eq "$(head -c 3 "$Z/g")" end "start of g after remount"
	expect_eq "$(tr -d '\0' <"$Z/g")" end "g is 'end' and zeros"
	# O_RDONLY|O_TRUNC truncates, as it does on the backing ext4.
	echo content >"$Z/h"
	echo content >"$T/h"
	local p
	for p in "$Z/h" "$T/h"; do
		python3 -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_RDONLY | os.O_TRUNC))' "$p" ||
			fail "open O_RDONLY|O_TRUNC of $p"
	done
	expect_eq "$(stat -c %s "$T/h")" 0 "size after O_RDONLY|O_TRUNC on the local disk"
	expect_eq "$(stat -c %s "$Z/h")" 0 "size after O_RDONLY|O_TRUNC"
	# Emptying a file keeps its mode, set-ID bits included for root (a
	# file over one block gets a fresh backing file; its old content is
	# shredded), and counts as a change even when the size stays.
	head -c 9000 /dev/urandom >"$Z/s" && chmod 6755 "$Z/s" || fail "set-ID file"
	: >"$Z/s" || fail ": > s"
	expect_eq "$(stat -c '%a %s' "$Z/s")" "6755 0" "mode and size after : > of a set-ID file"
	touch -d 2020-01-01 "$Z/s" "$Z/h" || fail "touch -d"
	: >"$Z/s" || fail ": > s again"
	printf 12345 >"$Z/h" && touch -d 2020-01-01 "$Z/h" && truncate -s 5 "$Z/h" || fail "truncate -s 5"
	case "$(stat -c %y "$Z/s") $(stat -c %y "$Z/h")" in
	*2020-01-01*) fail "mtime not moved by a truncation that kept the size: $(stat -c '%n %y' "$Z/s" "$Z/h")" ;;
	esac
	# ... but only once the kernel's own checks have passed: a program
	# that is running cannot be emptied (ETXTBSY), and its bytes stay.
	cp /bin/sleep "$Z/slp" || fail "copy of sleep"
	"$Z/slp" 30 &
	local pid=$!
	sleep 0.3
	local out
	out=$(python3 -c 'import os, sys
try:
    os.open(sys.argv[1], os.O_RDONLY | os.O_TRUNC)
    print("opened")
except OSError as e:
    print(os.strerror(e.errno))' "$Z/slp")
	kill "$pid"
	wait "$pid" 2>/dev/null
	expect_eq "$out" "Text file busy" "O_RDONLY|O_TRUNC of a running program"
	cmp /bin/sleep "$Z/slp" || fail "a running program lost its content to O_TRUNC"
}

# posix_records TAG N: N 100-byte records "TAGnnnn000...\n".
posix_records() {
	local i
	for i in $(seq "$2"); do printf '%s%04d%094d\n' "$1" "$i" 0; done
}

test_posix_append() {
	posix_mount
	echo one >"$Z/log"
	echo two >>"$Z/log"
	printf 'three' >>"$Z/log"
	expect_eq "$(cat "$Z/log")" "one
two
three" "appended content"
	# Two processes, each with its own O_APPEND descriptor, interleaving.
	(posix_records A 400 | while IFS= read -r l; do printf '%s\n' "$l"; done) >>"$Z/par" &
	local p1=$!
	(posix_records B 400 | while IFS= read -r l; do printf '%s\n' "$l"; done) >>"$Z/par" &
	local p2=$!
	# And two that open with >> for every record.
	(for i in $(seq 150); do printf 'C%04d%094d\n' "$i" 0 >>"$Z/par"; done) &
	local p3=$!
	(for i in $(seq 150); do printf 'D%04d%094d\n' "$i" 0 >>"$Z/par"; done) &
	local p4=$!
	wait $p1 $p2 $p3 $p4
	expect_eq "$(stat -c %s "$Z/par")" $((1100 * 100)) "size after concurrent appends"
	expect_eq "$(grep -c '^A[0-9]\{98\}$' "$Z/par")" 400 "whole A records"
	expect_eq "$(grep -c '^B[0-9]\{98\}$' "$Z/par")" 400 "whole B records"
	expect_eq "$(grep -c '^C[0-9]\{98\}$' "$Z/par")" 150 "whole C records"
	expect_eq "$(grep -c '^D[0-9]\{98\}$' "$Z/par")" 150 "whole D records"
	# Each writer's records are in its own order.
	expect_eq "$(grep '^A' "$Z/par")" "$(posix_records A 400)" "A records in order"
	expect_eq "$(grep '^C' "$Z/par")" "$(posix_records C 150)" "C records in order"
}

test_posix_rename() {
	posix_mount
	mkdir -p "$Z/d1/sub" "$Z/d2"
	echo a >"$Z/d1/a"
	echo b >"$Z/d1/b"
	echo c >"$Z/d1/sub/c"
	# Within a directory.
	expect mv "$Z/d1/a" "$Z/d1/a2"
	expect_fail test -e "$Z/d1/a"
	expect_eq "$(cat "$Z/d1/a2")" a "renamed within a dir"
	# Across directories.
	expect mv "$Z/d1/a2" "$Z/d2/a3"
	expect_fail test -e "$Z/d1/a2"
	expect_eq "$(cat "$Z/d2/a3")" a "renamed across dirs"
	# Over an existing file.
	expect mv -f "$Z/d1/b" "$Z/d2/a3"
	expect_fail test -e "$Z/d1/b"
	expect_eq "$(cat "$Z/d2/a3")" b "renamed over an existing file"
	expect_eq "$(ls "$Z/d2")" a3 "one entry left in d2"
	# A directory with contents, into another directory.
	expect mv "$Z/d1/sub" "$Z/d2/sub2"
	expect_eq "$(cat "$Z/d2/sub2/c")" c "file inside a renamed dir"
	expect_fail test -e "$Z/d1/sub"
	echo new >"$Z/d2/sub2/new"
	expect_eq "$(cat "$Z/d2/sub2/new")" new "file created in a renamed dir"
	# A whole directory renamed, then its contents still there.
	expect mv "$Z/d2" "$Z/d3"
	expect_eq "$(cat "$Z/d3/sub2/c")" c "after renaming the parent dir"
	expect_eq "$(ls "$Z/d3" | tr '\n' ' ')" "a3 sub2 " "listing of a renamed dir"
	# Directory over an empty directory; not over a non-empty one.
	mkdir "$Z/emptydir"
	expect mv -T "$Z/d3/sub2" "$Z/emptydir"
	expect_eq "$(cat "$Z/emptydir/c")" c "dir renamed over an empty dir"
	mkdir -p "$Z/full/x"
	expect_errno "not empty" python3 -c 'import os,sys; os.rename(sys.argv[1], sys.argv[2])' \
		"$Z/d3" "$Z/full"
	# A directory into its own subdirectory.
	expect_fail mv "$Z/full" "$Z/full/x/y"
	# Nothing was lost or duplicated.
	expect_eq "$(cd "$Z" && find . | LC_ALL=C sort | tr '\n' ' ')" \
		". ./d1 ./d3 ./d3/a3 ./emptydir ./emptydir/c ./emptydir/new ./full ./full/x " "final tree"
}

test_posix_rename_flags() {
	posix_mount
	echo a >"$Z/a"
	echo b >"$Z/b"
	# renameat2(RENAME_EXCHANGE) is refused with EINVAL, nothing changed.
	# shellcheck disable=SC2016
	local py='
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
r = libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), int(sys.argv[3]))
if r != 0:
    e = ctypes.get_errno()
    print(os.strerror(e), file=sys.stderr)
    sys.exit(1)
'
	expect_errno "Invalid argument" python3 -c "$py" "$Z/a" "$Z/b" 2
	expect_eq "$(cat "$Z/a")$(cat "$Z/b")" ab "after a refused exchange"
	# RENAME_NOREPLACE: EEXIST over an existing name, fine otherwise.
	expect_errno "File exists" python3 -c "$py" "$Z/a" "$Z/b" 1
	expect_eq "$(cat "$Z/a")$(cat "$Z/b")" ab "after a refused noreplace"
	expect python3 -c "$py" "$Z/a" "$Z/c" 1
	expect_fail test -e "$Z/a"
	expect_eq "$(cat "$Z/c")" a "after noreplace rename"
}

test_posix_rm_r() {
	posix_mount
	posix_mktree "$Z/tree" || fail "making the tree in the mount"
	mkdir -p "$Z/keep"
	echo keep >"$Z/keep/f"
	expect rm -r "$Z/tree"
	expect_fail test -e "$Z/tree"
	expect_eq "$(ls "$Z")" keep "zone after rm -r"
	expect_eq "$(cat "$Z/keep/f")" keep "untouched sibling"
	expect rm -r "$Z/keep"
	expect_eq "$(ls -A "$Z")" "" "zone after the last rm -r"
	# The store keeps nothing of the removed entries (shredding may be
	# asynchronous).
	wait_until 10 posix_empty_dir "$T/S/rlc" || fail "backing zone not empty: $(ls -A "$T/S/rlc")"
	wait_until 10 posix_empty_dir "$T/S/.trash" || fail "trash not emptied: $(ls -A "$T/S/.trash")"
}

test_posix_chmod_chown() {
	posix_keymount
	echo x >"$Z/f"
	mkdir "$Z/d"
	for m in 600 755 640 400 4755 2750 1777 0; do
		expect chmod "$m" "$Z/f"
		expect_eq "$(stat -c %a "$Z/f")" "$m" "mode after chmod $m"
	done
	expect chmod 711 "$Z/d"
	expect_eq "$(stat -c %a "$Z/d")" 711 "dir mode"
	expect chmod 640 "$Z/f"
	expect chown nobody "$Z/f"
	expect_eq "$(stat -c %U "$Z/f")" nobody "owner after chown"
	expect chown nobody:nogroup "$Z/d"
	expect_eq "$(stat -c %U:%G "$Z/d")" nobody:nogroup "owner:group of the dir"
	expect chgrp nogroup "$Z/f"
	expect_eq "$(stat -c '%U:%G %a' "$Z/f")" "nobody:nogroup 640" "after chgrp"
	# Modes and owners are kept across a remount.
	posix_remount
	expect_eq "$(stat -c '%U:%G %a' "$Z/f")" "nobody:nogroup 640" "file after remount"
	expect_eq "$(stat -c '%U:%G %a' "$Z/d")" "nobody:nogroup 711" "dir after remount"
}

test_posix_touch_d() {
	posix_keymount
	echo x >"$Z/f"
	mkdir "$Z/d"
	expect touch -d '2001-02-03 04:05:06 UTC' "$Z/f" "$Z/d"
	local want
	want=$(date -d '2001-02-03 04:05:06 UTC' +%s)
	expect_eq "$(stat -c %Y "$Z/f")" "$want" "mtime of f"
	expect_eq "$(stat -c %Y "$Z/d")" "$want" "mtime of d"
	expect touch -a -d '2002-03-04 05:06:07 UTC' "$Z/f"
	expect_eq "$(stat -c %X "$Z/f")" "$(date -d '2002-03-04 05:06:07 UTC' +%s)" "atime of f"
	expect_eq "$(stat -c %Y "$Z/f")" "$want" "mtime untouched by touch -a"
	expect_eq "$(date -u -r "$Z/f" '+%F %T')" "2001-02-03 04:05:06" "date -r"
	# touch without -d sets now.
	expect touch "$Z/f"
	local now
	now=$(date +%s)
	[ $(($(stat -c %Y "$Z/f") - now)) -le 2 ] && [ $((now - $(stat -c %Y "$Z/f"))) -le 2 ] ||
		fail "touch did not set mtime to now"
	expect touch -d '2001-02-03 04:05:06 UTC' "$Z/f"
	posix_remount
	expect_eq "$(stat -c %Y "$Z/f")" "$want" "mtime after remount"
}

test_posix_rsync() {
	command -v rsync >/dev/null || fail "rsync not installed"
	posix_mount
	posix_mktree "$T/ref" || fail "making the reference tree"
	expect rsync -aH "$T/ref/" "$Z/r/"
	posix_same_tree "$T/ref" "$Z/r"
	# Change a file, rsync again (delta transfer into the mount).
	head -c 100 /dev/urandom | dd of="$T/ref/a/b/c/big" bs=1 seek=5000 conv=notrunc status=none
	touch -d '2021-01-01' "$T/ref/a/b/c/big"
	expect rsync -aH --no-whole-file "$T/ref/" "$Z/r/"
	posix_same_tree "$T/ref" "$Z/r"
	# And back to the plain disk.
	expect rsync -aH "$Z/r/" "$T/back/"
	posix_same_tree "$T/ref" "$T/back"
	# A second run has nothing to transfer.
	local out
	out=$(rsync -aHi "$T/ref/" "$Z/r/") || fail "second rsync"
	expect_eq "$out" "" "second rsync itemized changes"
}

test_posix_editor_save() {
	posix_mount
	printf 'version 1\n' >"$Z/doc.txt"
	chmod 640 "$Z/doc.txt"
	exec 3<"$Z/doc.txt"
	# The pattern of vim's writebackup/backupcopy=no: temp, fsync, rename.
	expect python3 -c '
import os, sys
d, name = sys.argv[1], sys.argv[2]
tmp = os.path.join(d, "." + name + ".swp~")
fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
os.write(fd, b"version 2\n")
os.fsync(fd)
os.close(fd)
os.rename(tmp, os.path.join(d, name))
dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
os.fsync(dfd)
os.close(dfd)
' "$Z" doc.txt
	expect_eq "$(cat "$Z/doc.txt")" "version 2" "content after save"
	expect_eq "$(ls -A "$Z")" doc.txt "no temp file left"
	expect_eq "$(stat -c %a "$Z/doc.txt")" 640 "mode after save"
	# A reader that had the old file open still reads the old content.
	expect_eq "$(cat <&3)" "version 1" "old content through an open descriptor"
	exec 3<&-
	if command -v vim >/dev/null; then
		expect vim -Nu NONE -n -es -c 'set backupcopy=no writebackup' -c '%s/2/3/' -c 'wq' "$Z/doc.txt"
		expect_eq "$(cat "$Z/doc.txt")" "version 3" "content after vim save"
	fi
	# sed -i uses the same pattern.
	expect sed -i 's/version/v/' "$Z/doc.txt"
	[ "$(cat "$Z/doc.txt")" = "v 2" ] || [ "$(cat "$Z/doc.txt")" = "v 3" ] ||
		fail "content after sed -i: $(cat "$Z/doc.txt")"
}

test_posix_statfs() {
	posix_mount
	expect df "$T/M" >/dev/null
	expect df "$Z" >/dev/null
	expect_eq "$(df --output=source "$Z" | tail -n 1 | tr -d ' ')" ekycfs "df source"
	local blocks bsize namelen
	read -r blocks bsize namelen < <(stat -f -c '%b %S %l' "$Z")
	[ "$blocks" -gt 0 ] || fail "statfs blocks: $blocks"
	[ "$bsize" -gt 0 ] || fail "statfs block size: $bsize"
	expect_eq "$namelen" 255 "statfs name length"
}

test_posix_xattr() {
	posix_mount
	echo x >"$Z/f"
	mkdir "$Z/d"
	expect setfattr -n user.foo -v bar "$Z/f"
	expect_eq "$(getfattr --only-values -n user.foo "$Z/f")" bar "user.foo"
	expect setfattr -n user.foo -v baz "$Z/f"
	expect_eq "$(getfattr --only-values -n user.foo "$Z/f")" baz "user.foo replaced"
	expect setfattr -n user.bin -v 0x00ff00 "$Z/f"
	expect_eq "$(getfattr -e hex --only-values -n user.bin "$Z/f" | od -An -tx1 | tr -d ' \n')" \
		00ff00 "binary value"
	expect setfattr -n user.dirattr -v v "$Z/d"
	expect_eq "$(getfattr --only-values -n user.dirattr "$Z/d")" v "xattr on a dir"
	# listxattr: the user's own attributes, never user.ekycfs.*.
	local list
	list=$(getfattr -d -m - --absolute-names "$Z/f" | grep -v '^#' | grep . | cut -d= -f1 | sort | tr '\n' ' ')
	expect_eq "$list" "user.bin user.foo " "listxattr"
	expect_fail sh -c "getfattr -d -m - --absolute-names '$Z/f' | grep -q '^user\.ekycfs'"
	# user.ekycfs.expires is read-only.
	expect_fail setfattr -n user.ekycfs.expires -v 2099-01-01T00:00:00Z "$Z/f"
	expect_fail setfattr -x user.ekycfs.expires "$Z/f"
	expect_fail setfattr -n user.ekycfs.other -v x "$Z/f"
	# removexattr.
	expect setfattr -x user.foo "$Z/f"
	expect_errno "No such attribute" getfattr -n user.foo "$Z/f"
	# Outside user.*: not supported, for reading as for setting.
	local ns
	for ns in security.selinux system.posix_acl_access system.posix_acl_default trusted.x; do
		expect_errno "Operation not supported" getfattr -n "$ns" "$Z/f"
		expect_errno "Operation not supported" getfattr -n "$ns" "$Z/d"
	done
	# (the kernel itself refuses "1" as an ACL, so only these two here)
	for ns in security.selinux trusted.x; do
		expect_errno "Operation not supported" setfattr -n "$ns" -v 1 "$Z/f"
	done
	expect_eq "$(getfattr -m - -d --absolute-names "$Z/f" | grep -c user.)" 1 "one attribute left"
	# cp -a carries user xattrs through the mount.
	expect cp -a "$Z/f" "$Z/f2"
	expect_eq "$(getfattr -e hex --only-values -n user.bin "$Z/f2" | od -An -tx1 | tr -d ' \n')" \
		00ff00 "xattr copied by cp -a"
}

test_posix_expires_xattr() {
	posix_mount
	echo x >"$Z/f"
	mkdir "$Z/d"
	local v t now
	for p in "$Z/f" "$Z/d"; do
		v=$(getfattr --only-values -n user.ekycfs.expires "$p") || fail "getfattr expires of $p"
		echo "$v" | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' ||
			fail "expires of $p is not RFC 3339 UTC: '$v'"
		t=$(date -u -d "$v" +%s) || fail "unparsable expires '$v'"
		now=$(date +%s)
		# ttl=1h
		[ $((t - now)) -ge 3500 ] && [ $((t - now)) -le 3610 ] ||
			fail "expires of $p is $v, now is $(date -u +%FT%TZ); expected now + 1h"
	done
	# getfattr -n prints it in the usual form.
	getfattr -n user.ekycfs.expires "$Z/f" | grep -Eq '^user\.ekycfs\.expires="[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"$' ||
		fail "getfattr -n output: $(getfattr -n user.ekycfs.expires "$Z/f")"
	# touch -d changes the shown mtime but not the expiry.
	v=$(getfattr --only-values -n user.ekycfs.expires "$Z/f")
	expect touch -d '2099-01-01' "$Z/f"
	expect_eq "$(getfattr --only-values -n user.ekycfs.expires "$Z/f")" "$v" "expiry after touch -d"
}

test_posix_root_refuses() {
	posix_mount
	expect_eq "$(ls "$T/M" | tr '\n' ' ')" "idocr rlc " "root listing"
	expect_errno "Permission denied" touch "$T/M/x"
	expect_errno "Permission denied" mkdir "$T/M/y"
	expect_errno "Permission denied" ln -s rlc "$T/M/z"
	expect_errno "Permission denied" mkfifo "$T/M/p"
	expect_errno "Permission denied" sh -c "echo x > '$T/M/w'"
	expect_errno "Permission denied" rmdir "$T/M/rlc"
	expect_errno "Permission denied" rm -rf "$T/M/rlc"
	expect_errno "Permission denied" mv "$T/M/rlc" "$T/M/rlc2"
	expect_errno "Permission denied" mv -T "$T/M/rlc" "$T/M/idocr"
	# A file in a zone cannot be moved up into the root either.
	echo x >"$T/M/rlc/f"
	expect_errno "Permission denied" python3 -c 'import os,sys; os.rename(sys.argv[1], sys.argv[2])' \
		"$T/M/rlc/f" "$T/M/f"
	expect_errno "Permission denied" ln "$T/M/rlc/f" "$T/M/f"
	expect_eq "$(ls "$T/M" | tr '\n' ' ')" "idocr rlc " "root listing afterwards"
	expect_eq "$(cat "$T/M/rlc/f")" x "zone content afterwards"
}

test_posix_cross_zone() {
	posix_mount
	echo data >"$Z/f"
	mkdir "$Z/dir"
	local py='import os,sys
try:
    os.rename(sys.argv[1], sys.argv[2])
except OSError as e:
    print(e.errno, e.strerror, file=sys.stderr); sys.exit(1)'
	expect_errno "18 Invalid cross-device link" python3 -c "$py" "$Z/f" "$T/M/idocr/f"
	expect_errno "18 Invalid cross-device link" python3 -c "$py" "$Z/dir" "$T/M/idocr/dir"
	expect_errno "Invalid cross-device link" ln "$Z/f" "$T/M/idocr/f"
	expect_eq "$(cat "$Z/f")" data "source after refused rename"
	expect_fail test -e "$T/M/idocr/f"
	# mv falls back to copy and delete.
	expect mv "$Z/f" "$T/M/idocr/f"
	expect_eq "$(cat "$T/M/idocr/f")" data "after mv across zones"
	expect_fail test -e "$Z/f"
}

test_posix_refused_nodes() {
	posix_mount
	expect_errno "Operation not permitted" mknod "$Z/c" c 1 3
	expect_errno "Operation not permitted" mknod "$Z/b" b 7 0
	expect_errno "Operation not permitted" python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])' "$Z/sock"
	expect_eq "$(ls -A "$Z")" "" "nothing left by refused mknods"
	# Fifos work, also through mknod p.
	expect mknod "$Z/p" p
	expect_eq "$(stat -c %F "$Z/p")" fifo "mknod p"
	expect mkfifo -m 600 "$Z/p2"
	expect_eq "$(stat -c '%F %a' "$Z/p2")" "fifo 600" "mkfifo"
	(echo through-the-fifo >"$Z/p2") &
	expect_eq "$(timeout 10 cat "$Z/p2")" through-the-fifo "data through the fifo"
	wait
	# Hard link of a directory: EPERM.
	mkdir "$Z/d"
	expect_errno "Operation not permitted" python3 -c 'import os,sys; os.link(sys.argv[1], sys.argv[2])' \
		"$Z/d" "$Z/d2"
}

test_posix_hardlinks() {
	posix_keymount
	echo one >"$Z/a"
	mkdir "$Z/sub"
	expect ln "$Z/a" "$Z/sub/b"
	expect_eq "$(stat -c %h "$Z/a")" 2 "nlink after ln"
	echo two >>"$Z/sub/b"
	expect_eq "$(cat "$Z/a")" "one
two" "write through one link, read through the other"
	expect ln "$Z/a" "$Z/c"
	expect_eq "$(stat -c %h "$Z/sub/b")" 3 "nlink after second ln"
	posix_remount
	expect_eq "$(stat -c %h "$Z/a")" 3 "nlink after remount"
	expect_eq "$(cat "$Z/c")" "one
two" "content through a link after remount"
	expect rm "$Z/a"
	expect_eq "$(stat -c %h "$Z/c")" 2 "nlink after rm"
	expect_eq "$(cat "$Z/sub/b")" "one
two" "content after removing one link"
	# Unlinked while open: still readable and writable through the fd.
	exec 3<>"$Z/c"
	expect rm "$Z/c" "$Z/sub/b"
	expect_eq "$(cat <&3)" "one
two" "read of an unlinked open file"
	exec 3<&-
	expect_eq "$(ls -A "$Z/sub")" "" "sub empty"
}

# posix_as_nobody CMD: run CMD (a sh -c string) as uid/gid 65534.
posix_as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "$1"
}

test_posix_allow_other() {
	chmod 755 "$T"
	posix_mount -o allow_other
	mkdir "$Z/u"
	expect chown nobody:nogroup "$Z/u"
	echo secret >"$Z/root0600"
	chmod 600 "$Z/root0600"
	echo public >"$Z/root0644"
	chmod 644 "$Z/root0644"
	expect posix_as_nobody "echo hello > '$Z/u/f' && mkdir '$Z/u/d' && echo more >> '$Z/u/f' && mv '$Z/u/f' '$Z/u/d/g'"
	expect_eq "$(posix_as_nobody "cat '$Z/u/d/g'")" "hello
more" "nobody reads its own file"
	expect_eq "$(stat -c '%u:%g' "$Z/u/d/g")" 65534:65534 "owner of a file nobody created"
	expect_eq "$(stat -c '%u:%g' "$Z/u/d")" 65534:65534 "owner of a dir nobody created"
	expect_eq "$(posix_as_nobody "cat '$Z/root0644'")" public "nobody reads root's 0644 file"
	expect_errno "Permission denied" posix_as_nobody "cat '$Z/root0600'"
	expect_errno "Permission denied" posix_as_nobody "echo x >> '$Z/root0644'"
	expect_errno "Permission denied" posix_as_nobody "touch '$Z/nobodys'"
	expect_errno "Permission denied" posix_as_nobody "rm -f '$Z/root0644'"
	expect_errno "Permission denied" posix_as_nobody "touch '$T/M/x'"
	expect_eq "$(cat "$Z/root0644")" public "root's file untouched"
	expect posix_as_nobody "rm -r '$Z/u/d'"
	expect_eq "$(ls -A "$Z/u")" "" "nobody removed its tree"
}

test_posix_no_allow_other() {
	chmod 755 "$T"
	posix_mount
	echo public >"$Z/f"
	chmod 644 "$Z/f"
	expect_errno "Permission denied" posix_as_nobody "cat '$Z/f'"
	expect_errno "Permission denied" posix_as_nobody "ls '$Z'"
}

posix_fsx() {
	posix_mount
	mkdir "$Z/fsx"
	local out
	out=$("$FSX" -q "$@" "$Z/fsx" 2>&1) || fail "fsx $*: $out"
	echo "$out"
	case "$out" in *" ok"*) ;; *) fail "fsx $* did not print ok: $out" ;; esac
}

test_posix_fsx() { posix_fsx -n 20000; }
test_posix_fsx_mmap() { posix_fsx -m -n 20000; }
test_posix_fsx_threads() { posix_fsx -t 4 -m -n 20000; }

test_posix_concurrent_writers() {
	posix_mount
	head -c $((256 * 4096)) /dev/urandom >"$T/src"
	expect truncate -s $((256 * 4096)) "$Z/f"
	local p pids=()
	# Four processes, each writing every fourth 4 KiB block.
	for p in 0 1 2 3; do
		(
			for k in $(seq $p 4 255); do
				dd if="$T/src" of="$Z/f" bs=4096 skip=$k seek=$k count=1 conv=notrunc status=none ||
					exit 1
			done
		) &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || fail "a writer failed"; done
	cmp "$T/src" "$Z/f" || fail "aligned concurrent writes: content differs"
	# Unaligned 1000-byte regions: neighbours share a block and are written
	# by different processes at the same time (read-modify-write races).
	head -c 400000 /dev/urandom >"$T/src2"
	expect truncate -s 400000 "$Z/g"
	pids=()
	for p in 0 1 2 3; do
		(
			for k in $(seq $p 4 399); do
				dd if="$T/src2" of="$Z/g" bs=1000 skip=$k seek=$k count=1 conv=notrunc status=none ||
					exit 1
			done
		) &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || fail "a writer failed"; done
	cmp "$T/src2" "$Z/g" || fail "unaligned concurrent writes: content differs"
}
