# t_safety.sh - the store holds no plaintext, tampering reads as EIO, and
# every refusal (wrong key, bad config, not a store, busy mountpoint, bad
# key file) exits with a clear message and changes nothing. Sourced by
# run.sh; helpers are prefixed safety_.

# safety_empty_dir DIR: DIR has no entries (for wait_until).
safety_empty_dir() {
	[ -d "$1" ] && [ -z "$(ls -A "$1")" ]
}

safety_mount() {
	mount_fs "$T/S" "$T/M" -o ttl=1h "$@" || fail "mount failed"
	Z=$T/M/rlc
}

safety_genkey() {
	[ -f "$T/key" ] || "$EKYCFS" --genkey "$T/key" >/dev/null || fail "genkey"
}

safety_keymount() {
	safety_genkey
	safety_mount -o "key_file=$T/key"
}

# safety_umount: unmount $T/M and wait until the daemon has let go of the
# store (its flock), so that the next mount or a look at the store does not
# race the daemon's shutdown.
safety_umount() {
	umount_fs "$T/M"
	mountpoint -q "$T/M" && fail "still mounted after unmount"
	wait_until 10 flock -n "$T/S" true || fail "the store is still locked 10 s after unmount"
}

safety_remount() {
	safety_umount
	safety_keymount
}

safety_marker() {
	echo "MRK$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
}

# safety_snapshot DIR: names, sizes, modes, mtimes, content hashes and
# xattrs of everything in DIR.
safety_snapshot() {
	find "$1" -printf '%p %y %s %m %T@\n' | LC_ALL=C sort
	find "$1" -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
	getfattr -R -d -m - --absolute-names "$1" 2>/dev/null
}

# safety_backing_of_size SIZE: the one backing file of SIZE bytes in the
# rlc zone.
safety_backing_of_size() {
	local f
	f=$(find "$T/S/rlc" -type f -size "${1}c")
	[ -n "$f" ] || fail "no backing file of $1 bytes: $(find "$T/S/rlc" -type f -printf '%s ')"
	[ "$(echo "$f" | wc -l)" = 1 ] || fail "several backing files of $1 bytes"
	echo "$f"
}

# safety_store_a_b SIZE_A SIZE_B: on a fresh key mount, random files a and
# b of those sizes in $T and copied to $Z; then unmounted, for the test to
# edit the store.
safety_store_a_b() {
	safety_keymount
	head -c "$1" /dev/urandom >"$T/a"
	head -c "$2" /dev/urandom >"$T/b"
	expect cp "$T/a" "$Z/a"
	expect cp "$T/b" "$Z/b"
	safety_umount
}

# safety_flip FILE OFFSET [MASK]: flip the bits of MASK (default 1, the low
# bit) in the byte at OFFSET.
safety_flip() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	[ -n "$b" ] || fail "no byte at $2 in $1"
	# shellcheck disable=SC2059
	printf "\\$(printf %03o $((b ^ ${3:-1})))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none ||
		fail "flipping a byte of $1"
}

# Backing size of a plain size, per the documented layout.
safety_backing_size() {
	local full=$(($1 / 4096)) rem=$(($1 % 4096))
	echo $((32 + full * 4136 + (rem ? rem + 40 : 0)))
}

test_safety_no_plaintext_at_rest() {
	local mk
	mk=$(safety_marker)
	safety_mount
	for _ in $(seq 10000); do printf '%s\n' "$mk"; done >"$T/plain"
	expect cp "$T/plain" "$Z/cp"
	# Small writes, an append, and a write through mmap-free dd at an offset.
	expect dd if="$T/plain" of="$Z/dd" bs=100 status=none
	printf '%s\n' "$mk" >>"$Z/dd"
	expect dd if="$T/plain" of="$Z/off" bs=4096 seek=3 conv=fsync status=none
	mkdir "$Z/dir"
	expect sh -c "echo '$mk' > '$Z/dir/small'"
	sync
	expect cmp "$T/plain" "$Z/cp"
	no_plaintext "$T/S" "$mk"
	# The layout is what the docs say: a header and sealed 4 KiB blocks.
	local size
	size=$(stat -c %s "$T/plain")
	expect_eq "$(find "$T/S/rlc" -maxdepth 1 -type f -size "$(safety_backing_size "$size")c" | wc -l)" 1 \
		"backing files of the documented size for the copy"
	safety_umount
	no_plaintext "$T/S" "$mk"
}

test_safety_xattr_no_plaintext() {
	local mk
	mk=$(safety_marker)
	safety_mount
	echo x >"$Z/f"
	expect setfattr -n user.comment -v "passport of $mk" "$Z/f"
	expect setfattr -n "user.$mk" -v 1 "$Z/f"
	expect_eq "$(getfattr --only-values -n user.comment "$Z/f")" "passport of $mk" "xattr value"
	no_plaintext "$T/S" "$mk"
	safety_umount
	no_plaintext "$T/S" "$mk"
}

test_safety_tampered_block() {
	safety_keymount
	head -c 12288 /dev/urandom >"$T/three"
	head -c 5000 /dev/urandom >"$T/other"
	expect cp "$T/three" "$Z/three"
	expect cp "$T/other" "$Z/other"
	safety_umount
	local b
	b=$(safety_backing_of_size "$(safety_backing_size 12288)")
	safety_flip "$b" $((32 + 100))
	safety_keymount
	expect_errno "Input/output error" cat "$Z/three"
	expect_errno "Input/output error" dd if="$Z/three" of=/dev/null bs=4096 count=1 status=none
	# The other blocks of the same file and the other file still read.
	cmp <(dd if="$Z/three" bs=4096 skip=1 count=2 status=none) \
		<(dd if="$T/three" bs=4096 skip=1 count=2 status=none) || fail "untouched blocks of the file"
	expect cmp "$T/other" "$Z/other"
}

test_safety_tampered_tag_and_header() {
	safety_store_a_b 8192 3000
	local ba bb
	ba=$(safety_backing_of_size "$(safety_backing_size 8192)")
	bb=$(safety_backing_of_size "$(safety_backing_size 3000)")
	# Last byte of a's second block (its tag) and a byte of b's header.
	safety_flip "$ba" $((32 + 2 * 4136 - 1))
	safety_flip "$bb" 12
	safety_keymount
	cmp <(head -c 4096 "$Z/a") <(head -c 4096 "$T/a") || fail "a's first block"
	expect_errno "Input/output error" dd if="$Z/a" of=/dev/null bs=4096 skip=1 count=1 status=none
	expect_errno "Input/output error" cat "$Z/b"
}

# A read-only or read-write open takes the file's key from its stamp and
# leaves the header to the first read or write (so that a cold header read
# overlaps the reply to OPEN); every way in must still refuse a header that
# is not the one the stamp names: the cipher byte and the file id here.
test_safety_header_checked_by_first_io() {
	safety_store_a_b 10000 3000
	# Cipher 1 <-> 2: the other cipher a store can have, so only the
	# comparison with the stamp and the store can refuse it.
	safety_flip "$(safety_backing_of_size "$(safety_backing_size 10000)")" 6 3
	safety_flip "$(safety_backing_of_size "$(safety_backing_size 3000)")" 20
	safety_keymount
	local f
	for f in "$Z/a" "$Z/b"; do
		python3 - "$f" <<'PY' || fail "header of $f"
import errno, os, sys
f = sys.argv[1]
def eio(what, fn):
    try:
        fn()
    except OSError as e:
        if e.errno != errno.EIO:
            sys.exit("%s: %s, want EIO" % (what, e))
        return
    sys.exit("%s succeeded" % what)
fd = os.open(f, os.O_RDONLY)
eio("read", lambda: os.pread(fd, 100, 0))
eio("read again", lambda: os.pread(fd, 100, 1000))
os.close(fd)
fd = os.open(f, os.O_RDWR)
eio("write", lambda: os.pwrite(fd, b"x", 5))
eio("truncate", lambda: os.ftruncate(fd, 7))
os.close(fd)
eio("open for writing only", lambda: os.open(f, os.O_WRONLY))
eio("open with O_TRUNC", lambda: os.open(f, os.O_RDWR | os.O_TRUNC))
PY
	done
	[ "$(stat -c %s "$Z/a")" = 10000 ] || fail "a's size changed"
	safety_umount
	safety_backing_of_size "$(safety_backing_size 10000)" >/dev/null
}

test_safety_block_swap_and_replay() {
	safety_store_a_b 8192 12288
	local ba bb
	ba=$(safety_backing_of_size "$(safety_backing_size 8192)")
	bb=$(safety_backing_of_size "$(safety_backing_size 12288)")
	# Swap a's two blocks; replay b's block 0 as its block 2.
	dd if="$ba" of="$T/blk0" bs=1 skip=32 count=4136 status=none
	dd if="$ba" of="$T/blk1" bs=1 skip=$((32 + 4136)) count=4136 status=none
	dd if="$T/blk1" of="$ba" bs=1 seek=32 conv=notrunc status=none
	dd if="$T/blk0" of="$ba" bs=1 seek=$((32 + 4136)) conv=notrunc status=none
	dd if="$bb" of="$T/bblk0" bs=1 skip=32 count=4136 status=none
	dd if="$T/bblk0" of="$bb" bs=1 seek=$((32 + 2 * 4136)) conv=notrunc status=none
	safety_keymount
	expect_errno "Input/output error" dd if="$Z/a" of=/dev/null bs=4096 count=1 status=none
	expect_errno "Input/output error" dd if="$Z/a" of=/dev/null bs=4096 skip=1 count=1 status=none
	cmp <(head -c 8192 "$Z/b") <(head -c 8192 "$T/b") || fail "b's untouched blocks"
	expect_errno "Input/output error" dd if="$Z/b" of=/dev/null bs=4096 skip=2 count=1 status=none
}

test_safety_block_from_other_file() {
	safety_keymount
	head -c 4096 /dev/urandom >"$T/a"
	head -c 4096 /dev/urandom >"$T/b"
	expect cp "$T/a" "$Z/a"
	mkdir "$Z/d"
	expect cp "$T/b" "$Z/d/b"
	safety_umount
	local ba bb
	ba=$(find "$T/S/rlc" -maxdepth 1 -type f -size "$(safety_backing_size 4096)c")
	bb=$(find "$T/S/rlc" -mindepth 2 -type f -size "$(safety_backing_size 4096)c")
	[ -n "$ba" ] && [ -n "$bb" ] || fail "cannot find the backing files"
	# b's sealed block (not its header) pasted into a.
	dd if="$bb" of="$ba" bs=1 skip=32 seek=32 count=4136 conv=notrunc status=none
	safety_keymount
	expect_errno "Input/output error" cat "$Z/a"
	expect cmp "$T/b" "$Z/d/b"
}

test_safety_torn_backing_file() {
	safety_keymount
	head -c 5000 /dev/urandom >"$T/a"
	expect cp "$T/a" "$Z/a"
	safety_umount
	local ba
	ba=$(safety_backing_of_size "$(safety_backing_size 5000)")
	truncate -s -10 "$ba"
	safety_keymount
	# Whatever size it shows, it never returns bytes that were not written.
	if cat "$Z/a" >"$T/got" 2>"$T/err"; then
		fail "a torn backing file read without error ($(stat -c %s "$T/got") bytes)"
	fi
	grep -q "Input/output error" "$T/err" || fail "torn file: $(cat "$T/err")"
	cmp <(head -c 4096 "$Z/a") <(head -c 4096 "$T/a") || fail "the intact first block"
}

test_safety_wrong_key() {
	safety_keymount
	echo secret >"$Z/f"
	mkdir "$Z/d"
	echo more >"$Z/d/g"
	safety_umount
	"$EKYCFS" --genkey "$T/key2" >/dev/null || fail "genkey 2"
	safety_snapshot "$T/S" >"$T/before"
	local out rc
	out=$("$EKYCFS" -o "ttl=1h,key_file=$T/key2" "$T/S" "$T/M" 2>&1)
	rc=$?
	expect_eq "$rc" 1 "exit status with a wrong key"
	case "$out" in *"wrong key"*) ;; *) fail "message: $out" ;; esac
	expect_fail mountpoint -q "$T/M"
	# --sweep with the wrong key: refused too.
	out=$("$EKYCFS" --sweep -o "key_file=$T/key2" "$T/S" 2>&1)
	rc=$?
	expect_eq "$rc" 1 "exit status of --sweep with a wrong key"
	case "$out" in *"wrong key"*) ;; *) fail "sweep message: $out" ;; esac
	safety_snapshot "$T/S" >"$T/after"
	diff "$T/before" "$T/after" >"$T/snapdiff" || fail "store changed: $(cat "$T/snapdiff")"
	# The right key still opens it.
	safety_keymount
	expect_eq "$(cat "$Z/f")$(cat "$Z/d/g")" secretmore "content with the right key"
}

test_safety_bad_config() {
	local out rc
	printf '[ekycfs]\nttl = 2h\nbogus = 1\n' >"$T/unknown.conf"
	printf '[ekycfs]\n\nttl = 5x\n' >"$T/badttl.conf"
	printf '# zones\n[zone rlc]\nttl = 0\n' >"$T/zonettl.conf"
	printf '[ekycfs]\n[nosuch]\n' >"$T/section.conf"
	for c in unknown.conf:3 badttl.conf:3 zonettl.conf:3 section.conf:2; do
		out=$("$EKYCFS" -o "config=$T/${c%%:*}" "$T/S" "$T/M" 2>&1)
		rc=$?
		expect_eq "$rc" 2 "exit status for ${c%%:*}"
		case "$out" in *"$T/$c:"*) ;; *) fail "${c%%:*}: message has no FILE:LINE ($T/$c:): $out" ;; esac
		expect_fail mountpoint -q "$T/M"
		[ ! -e "$T/S" ] || fail "store created despite ${c%%:*}"
	done
	# The same for --sweep.
	out=$("$EKYCFS" --sweep -o "config=$T/unknown.conf" "$T/S" 2>&1)
	expect_eq "$?" 2 "exit status of --sweep with a bad config"
	# Bad options on the command line.
	mkdir -p "$T/M"
	for o in ttl=abc ttl=0 ttl=5d shred_passes=-1 shred_passes=x config=$T/missing.conf; do
		out=$("$EKYCFS" -o "$o" "$T/S" "$T/M" 2>&1)
		expect_eq "$?" 2 "exit status for -o $o ($out)"
		case "$out" in ekycfs:*) ;; *) fail "message for -o $o: $out" ;; esac
		expect_fail mountpoint -q "$T/M"
		[ ! -e "$T/S" ] || fail "store created despite -o $o"
	done
	"$EKYCFS" --bogus "$T/S" "$T/M" >/dev/null 2>&1
	expect_eq "$?" 2 "exit status for an unknown flag"
	"$EKYCFS" "$T/S" >/dev/null 2>&1
	expect_eq "$?" 2 "exit status without a mountpoint"
	[ ! -e "$T/S" ] || fail "store created by a bad command line"
	# Options libfuse refuses, and an audit log that cannot be written:
	# refused before the store is made.
	for o in ttl=1h,nosuchfuseopt ttl=1h,audit_log=$T/nodir/audit.log; do
		out=$("$EKYCFS" -o "$o" "$T/S" "$T/M" 2>&1)
		[ $? -ne 0 ] || fail "mounted with -o $o"
		case "$out" in *"ekycfs: "*) ;; *) fail "message for -o $o: $out" ;; esac
		expect_fail mountpoint -q "$T/M"
		[ ! -e "$T/S" ] || fail "store created despite -o $o"
	done
}

# Names in the store that lead out of it (hard links or symlinks planted
# in the trash, at the marker's temporary name, at a long name's sidecar,
# at the audit log) and fifos where a key or a log is expected never make
# ekycfs overwrite, truncate or append to what they lead to, or hang.
test_safety_links_out_of_the_store() {
	local v=$T/victims long side out n
	mkdir -p "$v"
	for n in a b c d e; do echo "victim $n" >"$v/$n"; done
	(cd "$v" && sha256sum a b c d e) >"$T/victims.sum"
	safety_keymount
	long=$(printf 'L%.0s' $(seq 200))
	echo x >"$Z/$long" || fail "a long name"
	side=$(find "$T/S/rlc" -maxdepth 1 -name '*.name' -printf '%f\n')
	[ -n "$side" ] || fail "no sidecar for the long name"
	expect rm "$Z/$long"
	ln "$v/a" "$T/S/rlc/$side" || fail "planting a link at the sidecar"
	echo y >"$Z/$long" || fail "the long name again"
	expect_eq "$(cat "$Z/$long")" y "the long name's content"
	safety_umount
	ln "$v/b" "$T/S/.trash/planted" && ln -s "$v/c" "$T/S/.trash/symlink" &&
		mkfifo "$T/S/.trash/fifo" || fail "planting in the trash"
	expect timeout 20 "$EKYCFS" --sweep -o "key_file=$T/key" "$T/S" >/dev/null
	[ -z "$(ls -A "$T/S/.trash")" ] || fail "the trash keeps: $(ls -A "$T/S/.trash")"
	# The audit log is only ever a file of its own.
	rm "$T/S/audit.log" && ln "$v/d" "$T/S/audit.log" || fail "planting the audit log"
	out=$(timeout 20 "$EKYCFS" -o "ttl=1h,key_file=$T/key" "$T/S" "$T/M" 2>&1) &&
		fail "mounted with a hard-linked audit log"
	case "$out" in *"audit log"*"hard links"*) ;; *) fail "message: $out" ;; esac
	rm "$T/S/audit.log"
	mkfifo "$T/fifo" "$T/keyfifo" && chmod 600 "$T/keyfifo" || fail mkfifo
	out=$(timeout 20 "$EKYCFS" -o "ttl=1h,key_file=$T/key,audit_log=$T/fifo" "$T/S" "$T/M" 2>&1)
	case "$?:$out" in 1:*"neither a regular file nor a character device"*) ;; *) fail "a fifo as the audit log: $out" ;; esac
	out=$(timeout 20 "$EKYCFS" -o "ttl=1h,key_file=$T/keyfifo" "$T/S" "$T/M" 2>&1)
	case "$?:$out" in 1:*"not a regular file"*) ;; *) fail "a fifo as the key file: $out" ;; esac
	# An ephemeral store writes its marker anew at every mount.
	mkdir "$T/E"
	expect mount_fs "$T/E" "$T/M" -o ttl=1h
	umount_fs "$T/M"
	wait_until 10 flock -n "$T/E" true || fail "the store is still locked"
	ln -s "$v/e" "$T/E/ekycfs.store.new" || fail "planting at the marker's temporary name"
	expect mount_fs "$T/E" "$T/M" -o ttl=1h
	umount_fs "$T/M"
	(cd "$v" && sha256sum -c --quiet "$T/victims.sum") || fail "a file outside the store changed"
}

# A file system or bind mount over a part of a store is not the store's:
# over the trash or a zone the store is refused; over a folder inside a
# zone it is neither swept nor reachable through the mount, and what it
# holds (a folder, links, a fifo, a file) stays as it was.
test_safety_mounts_in_the_store_untouched() {
	local v=$T/vd d out
	mkdir -p "$v/emptydir" "$T/vt"
	echo b >"$v/hl" && ln "$v/hl" "$v/hl2" && ln -s hl "$v/sym" && mkfifo "$v/fifo" || fail setup
	echo keep >"$T/vt/t"
	safety_snapshot "$v" >"$T/before"
	safety_snapshot "$T/vt" >"$T/before-t"
	safety_keymount
	expect mkdir "$Z/d"
	safety_umount
	d=$(find "$T/S/rlc" -mindepth 1 -maxdepth 1 -type d)
	[ -n "$d" ] || fail "no backing folder"
	mount --bind "$v" "$d" || fail "bind mount"
	MOUNTS+=("$d")
	expect timeout 20 "$EKYCFS" --sweep -o "key_file=$T/key" "$T/S" >/dev/null
	safety_keymount
	ls -la "$Z" "$Z/d" >/dev/null 2>&1
	rm -rf "$Z/d" 2>/dev/null
	safety_umount
	umount "$d" || fail "unmounting the bind mount"
	safety_snapshot "$v" >"$T/after"
	diff "$T/before" "$T/after" >"$T/diff" || fail "the bound folder changed: $(cat "$T/diff")"
	# Over the trash or a zone: the store is refused, for a sweep too.
	for d in .trash idocr; do
		mount --bind "$T/vt" "$T/S/$d" || fail "bind mount over $d"
		MOUNTS+=("$T/S/$d")
		out=$(timeout 20 "$EKYCFS" --sweep -o "key_file=$T/key" "$T/S" 2>&1) &&
			fail "swept with a bind mount over $d"
		case "$out" in *"$d: another file system or bind mount"*) ;; *) fail "message: $out" ;; esac
		out=$(timeout 20 "$EKYCFS" -o "ttl=1h,key_file=$T/key" "$T/S" "$T/M" 2>&1) &&
			fail "mounted with a bind mount over $d"
		umount "$T/S/$d" || fail "unmounting the bind mount over $d"
	done
	safety_snapshot "$T/vt" >"$T/after-t"
	diff "$T/before-t" "$T/after-t" >"$T/diff" || fail "the folder bound over the store changed: $(cat "$T/diff")"
	# And a trash that is a symlink is refused too, not served without one.
	mv "$T/S/.trash" "$T/S/.trash-real" && ln -s "$T/vt" "$T/S/.trash" || fail "symlinked trash"
	out=$(timeout 20 "$EKYCFS" -o "ttl=1h,key_file=$T/key" "$T/S" "$T/M" 2>&1) &&
		fail "mounted with a symlinked trash"
	case "$out" in *".trash: not a folder of the store"*) ;; *) fail "message: $out" ;; esac
}

test_safety_not_a_store() {
	mkdir -p "$T/S/sub" "$T/M"
	echo "precious data" >"$T/S/important.txt"
	head -c 10000 /dev/urandom >"$T/S/sub/photo.jpg"
	ln -s important.txt "$T/S/link"
	safety_snapshot "$T/S" >"$T/before"
	local out rc
	out=$("$EKYCFS" -o ttl=1h "$T/S" "$T/M" 2>&1)
	rc=$?
	[ "$rc" -ne 0 ] || fail "mounted a directory that is not a store"
	case "$out" in *"not an ekycfs store"*) ;; *) fail "message: $out" ;; esac
	expect_fail mountpoint -q "$T/M"
	out=$("$EKYCFS" --sweep "$T/S" 2>&1)
	[ $? -ne 0 ] || fail "swept a directory that is not a store"
	case "$out" in *"not an ekycfs store"*) ;; *) fail "sweep message: $out" ;; esac
	"$EKYCFS" --genkey "$T/key" >/dev/null || fail genkey
	out=$("$EKYCFS" -o "ttl=1h,key_file=$T/key" "$T/S" "$T/M" 2>&1)
	[ $? -ne 0 ] || fail "mounted a directory that is not a store (key file)"
	safety_snapshot "$T/S" >"$T/after"
	diff "$T/before" "$T/after" >"$T/snapdiff" || fail "directory changed: $(cat "$T/snapdiff")"
	# A garbage marker is not a store either.
	mkdir "$T/S2"
	echo "not really" >"$T/S2/ekycfs.store"
	echo keep >"$T/S2/keep"
	safety_snapshot "$T/S2" >"$T/before2"
	"$EKYCFS" -o ttl=1h "$T/S2" "$T/M" >/dev/null 2>&1 && fail "mounted a store with a garbage marker"
	expect_fail mountpoint -q "$T/M"
	safety_snapshot "$T/S2" >"$T/after2"
	diff "$T/before2" "$T/after2" >/dev/null || fail "garbage-marker directory changed"
	# An empty directory becomes a store.
	mkdir "$T/S3"
	expect mount_fs "$T/S3" "$T/M" -o ttl=1h
	expect test -f "$T/S3/ekycfs.store"
}

test_safety_busy_mountpoint() {
	safety_mount
	echo first >"$Z/f"
	local out rc
	out=$("$EKYCFS" -o ttl=1h "$T/S2" "$T/M" 2>&1)
	rc=$?
	[ "$rc" -ne 0 ] || fail "mounted twice on one mountpoint"
	case "$out" in *busy*) ;; *) fail "message: $out" ;; esac
	[ ! -e "$T/S2" ] || fail "second store created"
	expect_eq "$(grep -c " $T/M " /proc/mounts)" 1 "mounts on M"
	expect_eq "$(cat "$Z/f")" first "first mount still works"
	echo more >>"$Z/f"
	expect_eq "$(cat "$Z/f")" "first
more" "first mount still writable"
}

test_safety_store_in_use() {
	safety_mount
	echo first >"$Z/f"
	mkdir -p "$T/M2"
	local out
	out=$("$EKYCFS" -o ttl=1h "$T/S" "$T/M2" 2>&1)
	[ $? -ne 0 ] || { MOUNTS+=("$T/M2"); fail "one store mounted twice"; }
	expect_fail mountpoint -q "$T/M2"
	case "$out" in *"in use"*) ;; *) fail "message: $out" ;; esac
	expect_eq "$(cat "$Z/f")" first "first mount still works"
	out=$("$EKYCFS" --sweep "$T/S" 2>&1)
	[ $? -ne 0 ] || fail "--sweep ran on a mounted store"
	expect_eq "$(cat "$Z/f")" first "first mount after a refused sweep"
}

test_safety_genkey() {
	expect "$EKYCFS" --genkey "$T/key"
	expect_eq "$(stat -c %a "$T/key")" 600 "key file mode"
	[ "$(stat -c %s "$T/key")" -ge 32 ] || fail "key file too small"
	local sum out
	sum=$(sha256sum <"$T/key")
	out=$("$EKYCFS" --genkey "$T/key" 2>&1) && fail "--genkey overwrote a key file"
	expect_eq "$(sha256sum <"$T/key")" "$sum" "key file after a refused --genkey"
	case "$out" in *"$T/key"*) ;; *) fail "message does not name the file: $out" ;; esac
	# Not through a symlink to an existing file either.
	echo precious >"$T/other"
	ln -s "$T/other" "$T/link"
	"$EKYCFS" --genkey "$T/link" >/dev/null 2>&1 && fail "--genkey wrote through a symlink"
	expect_eq "$(cat "$T/other")" precious "symlink target"
	# Two keys differ.
	expect "$EKYCFS" --genkey "$T/key2"
	[ "$(sha256sum <"$T/key2")" != "$sum" ] || fail "two --genkey gave the same key"
}

test_safety_key_file_mode() {
	"$EKYCFS" --genkey "$T/key" >/dev/null || fail genkey
	local m out
	for m in 644 640 604 666; do
		chmod "$m" "$T/key"
		mkdir -p "$T/M0"
		out=$("$EKYCFS" -o "ttl=1h,key_file=$T/key" "$T/S" "$T/M0" 2>&1)
		[ $? -ne 0 ] || { MOUNTS+=("$T/M0"); fail "key file mode $m accepted"; }
		expect_fail mountpoint -q "$T/M0"
		case "$out" in *"$T/key"*) ;; *) fail "message does not name the key file: $out" ;; esac
		[ ! -e "$T/S" ] || fail "store created with a key file of mode $m"
	done
	chmod 600 "$T/key"
	expect mount_fs "$T/S" "$T/M" -o "ttl=1h,key_file=$T/key"
	chmod 400 "$T/key"
	safety_umount
	expect mount_fs "$T/S" "$T/M" -o "ttl=1h,key_file=$T/key"
}

test_safety_ephemeral() {
	safety_mount
	echo secret >"$Z/f"
	mkdir "$Z/d"
	head -c 9000 /dev/urandom >"$Z/d/g"
	local old
	old=$(find "$T/S/rlc" -mindepth 1 -printf '%f\n')
	[ -n "$old" ] || fail "no backing entries"
	safety_umount
	safety_mount
	expect_eq "$(ls -A "$Z")" "" "rlc after remounting an ephemeral store"
	expect_eq "$(ls -A "$T/M/idocr")" "" "idocr after remounting"
	local n
	for n in $old; do
		[ -z "$(find "$T/S" -name "$n")" ] || fail "old backing entry $n still in the store"
	done
	wait_until 10 safety_empty_dir "$T/S/.trash" || fail "trash not emptied: $(ls -A "$T/S/.trash")"
	expect_eq "$(find "$T/S/rlc" -mindepth 1 | wc -l)" 0 "backing entries left"
	# The new mount works.
	echo new >"$Z/f"
	expect_eq "$(cat "$Z/f")" new "new mount"
	# An ephemeral store does not take a key file.
	safety_umount
	"$EKYCFS" --genkey "$T/key" >/dev/null || fail genkey
	"$EKYCFS" -o "ttl=1h,key_file=$T/key" "$T/S" "$T/M" >/dev/null 2>&1 &&
		{ MOUNTS+=("$T/M"); fail "an ephemeral store was mounted with a key file"; }
	expect_fail mountpoint -q "$T/M"
}

test_safety_key_file_persist() {
	safety_keymount
	mkdir -p "$T/ref/a/b"
	head -c 70000 /dev/urandom >"$T/ref/a/b/big"
	echo small >"$T/ref/small"
	: >"$T/ref/empty"
	ln -s a/b/big "$T/ref/link"
	chmod 640 "$T/ref/small"
	touch -d '2020-02-02 02:02:02' "$T/ref/a/b/big"
	expect cp -a "$T/ref" "$Z/tree"
	expect setfattr -n user.note -v kept "$Z/tree/small"
	safety_umount
	# An offline sweep with the key: nothing has expired, nothing goes.
	expect "$EKYCFS" --sweep -o "ttl=1h,key_file=$T/key" "$T/S" >/dev/null
	safety_keymount
	expect diff -r "$T/ref" "$Z/tree"
	expect_eq "$(stat -c '%a %s %Y' "$Z/tree/small" "$Z/tree/a/b/big")" \
		"$(stat -c '%a %s %Y' "$T/ref/small" "$T/ref/a/b/big")" "modes, sizes, mtimes"
	expect_eq "$(readlink "$Z/tree/link")" a/b/big "symlink"
	expect_eq "$(getfattr --only-values -n user.note "$Z/tree/small")" kept "xattr"
	# A store with a key file refuses to mount without it.
	safety_umount
	local out
	out=$("$EKYCFS" -o ttl=1h "$T/S" "$T/M" 2>&1) && { MOUNTS+=("$T/M"); fail "mounted without its key file"; }
	case "$out" in *key*) ;; *) fail "message: $out" ;; esac
	safety_keymount
	expect diff -r "$T/ref" "$Z/tree"
}

test_safety_kill9_fsynced() {
	safety_genkey
	mount_fg "$T/S" "$T/M" "$T/daemon.log" -o "ttl=1h,key_file=$T/key"
	local pid=$FG_PID
	Z=$T/M/rlc
	head -c 50000 /dev/urandom >"$T/a"
	head -c 20000 /dev/urandom >"$T/patch"
	expect dd if="$T/a" of="$Z/a" bs=4096 conv=fsync status=none
	mkdir "$Z/d"
	expect python3 -c '
import os, sys
fd = os.open(sys.argv[2], os.O_WRONLY)
with open(sys.argv[1], "rb") as f:
    os.pwrite(fd, f.read(), 10000)
os.fsync(fd)
os.close(fd)
' "$T/patch" "$Z/a"
	dd if="$T/patch" of="$T/a" bs=1 seek=10000 conv=notrunc status=none
	echo durable >"$Z/d/b"
	expect python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$Z/d/b"
	expect python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY|os.O_DIRECTORY); os.fsync(fd)' "$Z/d"
	# A write in flight, never synced.
	head -c 100000 /dev/urandom >"$Z/unsynced"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	fusermount3 -u "$T/M" 2>/dev/null || umount -l "$T/M"
	wait_until 5 sh -c "! mountpoint -q '$T/M'" || fail "dead mount still there"
	safety_keymount
	expect cmp "$T/a" "$Z/a"
	expect_eq "$(cat "$Z/d/b")" durable "fsynced small file"
	if [ -e "$Z/unsynced" ]; then
		expect cat "$Z/unsynced" >/dev/null
	fi
}

test_safety_help_version() {
	local out
	out=$("$EKYCFS" --help) || fail "--help exit status"
	case "$out" in *[Uu]sage*STORE*MOUNTPOINT*) ;; *) fail "--help output: $out" ;; esac
	out=$("$EKYCFS" -h) || fail "-h exit status"
	out=$("$EKYCFS" --version) || fail "--version exit status"
	echo "$out" | grep -Eq '^ekycfs [0-9]+\.[0-9]+' || fail "--version output: $out"
	out=$("$EKYCFS" -V) || fail "-V exit status"
}

# safety_in_memory PID HEX...: whether any of the byte strings HEX...
# occurs in the writable memory of process PID (heap, thread stacks,
# anonymous maps); prints where. Exit 0 found, 1 not found, 2 when the
# memory could not be read (a scan that cannot look must not pass).
safety_in_memory() {
	python3 - "$@" <<'PY'
import sys
pid, needles = sys.argv[1], [bytes.fromhex(h) for h in sys.argv[2:]]
found, read = [], 0
try:
    with open("/proc/%s/maps" % pid) as maps, open("/proc/%s/mem" % pid, "rb", 0) as mem:
        for line in maps:
            f = line.split()
            if f[1][:2] != "rw":
                continue
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            try:
                mem.seek(lo)
                chunk = mem.read(hi - lo)
            except OSError as e:
                print("    cannot read %s: %s" % (f[0], e), file=sys.stderr)
                continue
            read += len(chunk)
            for n in needles:
                i = chunk.find(n)
                if i >= 0:
                    found.append("%s at +%#x: %s" % (line.strip(), i, n.hex()))
except OSError as e:
    print("    cannot read the memory of %s: %s" % (pid, e), file=sys.stderr)
    sys.exit(2)
if read == 0:
    print("    nothing of %s's memory could be read" % pid, file=sys.stderr)
    sys.exit(2)
for l in found:
    print("    found in", l, file=sys.stderr)
sys.exit(0 if found else 1)
PY
}

# safety_hex STRING: its bytes in hex.
safety_hex() {
	printf '%s' "$1" | od -An -tx1 | tr -d ' \n'
}

# safety_scan_ready PID: the daemon runs and the scan sees what it must
# (the mountpoint's path, which the daemon holds), so that a scan that
# finds nothing means something.
safety_scan_ready() {
	kill -0 "$1" 2>/dev/null || fail "the daemon is not running"
	safety_in_memory "$1" "$(safety_hex "$T/M")" 2>/dev/null
	case $? in
	0) ;;
	1) fail "the scan does not find the mountpoint's path in the daemon: it cannot be trusted" ;;
	*) fail "cannot read the daemon's memory (root with CAP_SYS_PTRACE is needed)" ;;
	esac
}

# safety_scan_mount OPTS [ARG...]: a foreground mount with -o OPTS (and
# ARG...) whose memory the test scans: sets PID (the daemon) and Z (its
# rlc zone).
safety_scan_mount() {
	mount_fg "$T/S" "$T/M" "$T/daemon.log" -o "$1" "${@:2}"
	PID=$FG_PID
	Z=$T/M/rlc
	safety_scan_ready "$PID"
}

# safety_clean PID WHAT HEX...: none of HEX... is in the daemon's memory,
# or is gone within 5 s (requests the kernel sends on its own, such as a
# RELEASE, may still be in flight); fails the test with WHAT otherwise.
safety_clean() {
	local pid=$1 what=$2 rc i
	shift 2
	for i in $(seq 20); do
		kill -0 "$pid" 2>/dev/null || fail "the daemon died"
		safety_in_memory "$pid" "$@" 2>/dev/null
		rc=$?
		[ $rc = 1 ] && return 0
		[ $rc = 2 ] && fail "cannot read the daemon's memory"
		sleep 0.25
	done
	safety_in_memory "$pid" "$@"
	fail "$what"
}

# safety_pattern: 64 random bytes as hex; safety_pattern_needles HEX: its
# four 16-byte quarters. A file of the pattern repeated holds each quarter
# at every 16-byte-aligned offset, so any 16 aligned bytes of its plaintext
# left anywhere (a vector register spilled, a cipher's block) are found.
safety_pattern() {
	head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n'
}
safety_pattern_needles() {
	echo "${1:0:32} ${1:32:32} ${1:64:32} ${1:96:32}"
}

# safety_name: 40 random letters and digits; safety_name_needles NAME: the
# hex of its five 8-byte words (hashing a name leaves such words behind).
safety_name() {
	python3 -c 'import secrets, string; a = string.ascii_letters + string.digits; print("".join(secrets.choice(a) for _ in range(40)))'
}
safety_name_needles() {
	local i
	for i in 0 8 16 24 32; do printf '%s ' "$(safety_hex "${1:$i:8}")"; done
}

# Plaintext lives in the daemon only while a request is served: after the
# replies, nothing written or read (content, xattr values) is left in its
# memory (libfuse's request buffers, reply buffers, decryption scratch,
# stacks), though the file itself lives on.
test_safety_no_plaintext_left_in_daemon() {
	local pat
	safety_scan_mount ttl=1h
	pat=$(safety_pattern)
	python3 - "$pat" "$T/plain" <<'PY' || fail "making the test file"
import sys
open(sys.argv[2], "wb").write(bytes.fromhex(sys.argv[1]) * (300 * 1024 // 64 + 7))
PY
	# shellcheck disable=SC2046
	safety_clean "$PID" "the pattern is in the daemon before any write" $(safety_pattern_needles "$pat")
	# Whole-block writes, partial writes (read-modify-write), and reads:
	# cold through the page cache (large, and a lone 100 KiB one, which is
	# halved), and unaligned through a read-write (direct I/O) handle.
	expect cp "$T/plain" "$Z/big"
	expect dd if="$T/plain" of="$Z/small" bs=1000 count=100 status=none
	expect dd if="$T/plain" of="$Z/small" bs=777 seek=3 count=5 conv=notrunc status=none
	python3 - "$Z" <<'PY' || fail "reading back"
import os, sys
z = sys.argv[1]
want = open(os.path.join(z, "..", "..", "plain"), "rb").read()
for name, size in (("big", len(want)), ("small", 100000)):
    fd = os.open(os.path.join(z, name), os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    assert len(os.read(fd, 1 << 20)) == size
    os.close(fd)
fd = os.open(os.path.join(z, "big"), os.O_RDWR)
for off in (5, 4090, 70001, len(want) - 9):
    assert os.pread(fd, 5000, off) == want[off:off + 5000]
os.close(fd)
PY
	expect cmp "$T/plain" "$Z/big"
	# An xattr value, set and read back.
	expect setfattr -n user.note -v "0x$pat$pat" "$Z/small"
	expect_eq "$(python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "user.note").hex())' \
		"$Z/small")" "$pat$pat" "xattr value read back"
	# Truncations: to the middle of a block (its head is sealed again),
	# and to zero (a fresh backing file takes the xattrs over).
	expect truncate -s 150000 "$Z/big"
	expect truncate -s 0 "$Z/small"
	expect_eq "$(python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "user.note").hex())' \
		"$Z/small")" "$pat$pat" "xattr value after the truncation to zero"
	# shellcheck disable=SC2046
	safety_clean "$PID" "plaintext left in the daemon's memory after the requests" \
		$(safety_pattern_needles "$pat")
	expect_eq "$(stat -c %s "$Z/big")" 150000 "size after the truncation"
}

# Names too (of files, folders, symlink targets, xattrs) are plaintext in
# the daemon only while a request is served: after lookups, listings,
# renames, xattr calls and removal, no 8-byte word of one is left in its
# memory; the nodes know entries by their encrypted backing names.
test_safety_no_names_left_in_daemon() {
	local mk
	safety_scan_mount ttl=1h
	mk=$(safety_name)
	# shellcheck disable=SC2046
	safety_clean "$PID" "the name is in the daemon before any request" $(safety_name_needles "$mk")
	expect sh -c "echo x > '$Z/$mk.jpg'"
	expect mkdir "$Z/d-$mk"
	expect ln -s "../$mk.jpg" "$Z/d-$mk/l"
	expect setfattr -n "user.$mk" -v 1 "$Z/$mk.jpg"
	expect ls "$Z" >/dev/null
	expect ls -l "$Z" "$Z/d-$mk" >/dev/null
	expect_eq "$(readlink "$Z/d-$mk/l")" "../$mk.jpg" "link target"
	getfattr -d "$Z/$mk.jpg" | grep -q "user.$mk" || fail "xattr name listed"
	expect_eq "$(getfattr --only-values -n "user.$mk" "$Z/$mk.jpg")" 1 "xattr value"
	expect mv "$Z/$mk.jpg" "$Z/$mk.png"
	expect cat "$Z/$mk.png" >/dev/null
	stat "$Z/nothing-$mk" 2>/dev/null && fail "a name that is not there"
	# A hard link, a name long enough for a sidecar, and a rename over an
	# existing entry.
	expect ln "$Z/$mk.png" "$Z/d-$mk/hard-$mk"
	expect sh -c "echo y > '$Z/$mk$mk$mk$mk$mk.jpg'"
	[ -n "$(find "$T/S/rlc" -maxdepth 1 -name '*.name')" ] || fail "no sidecar for the long name"
	expect ls -l "$Z" >/dev/null
	expect mv -f "$Z/$mk$mk$mk$mk$mk.jpg" "$Z/$mk.png"
	expect_eq "$(cat "$Z/$mk.png")" y "the entry renamed over"
	# shellcheck disable=SC2046
	safety_clean "$PID" "a name left in the daemon's memory while its entry lives" \
		$(safety_name_needles "$mk")
	expect rm -rf "$Z/d-$mk" "$Z/$mk.png"
	# shellcheck disable=SC2046
	safety_clean "$PID" "a name left in the daemon's memory after removal" \
		$(safety_name_needles "$mk")
}

# The single-threaded loop (-s) serves every request on one thread, which
# wipes the last one before it waits for the next as the workers of the
# default loop do: no content, xattr value or name is left behind.
test_safety_single_thread_left_nothing() {
	local mk pat
	safety_scan_mount ttl=1h -s
	mk=$(safety_name)
	pat=$(safety_pattern)
	# shellcheck disable=SC2046
	safety_clean "$PID" "the name or the pattern is in the daemon before any request" \
		$(safety_name_needles "$mk") $(safety_pattern_needles "$pat")
	python3 - "$pat" "$Z/$mk.jpg" <<'PY' || fail "writing and reading back"
import os, sys
want = bytes.fromhex(sys.argv[1]) * 2000
open(sys.argv[2], "wb").write(want)
fd = os.open(sys.argv[2], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
assert os.read(fd, 1 << 20) == want
os.close(fd)
PY
	expect setfattr -n "user.$mk" -v "0x$pat" "$Z/$mk.jpg"
	getfattr -d -e hex "$Z/$mk.jpg" | grep -q "user.$mk=0x$pat" || fail "xattr listed and read back"
	expect ls -l "$Z" >/dev/null
	# shellcheck disable=SC2046
	safety_clean "$PID" "something of the entry left in the daemon's memory while it lives" \
		$(safety_name_needles "$mk") $(safety_pattern_needles "$pat")
	expect rm "$Z/$mk.jpg"
	# shellcheck disable=SC2046
	safety_clean "$PID" "something of the entry left in the daemon's memory after removal" \
		$(safety_name_needles "$mk") $(safety_pattern_needles "$pat")
}

# And when an entry vanishes at its deadline (the kernel is told its name):
# neither its name nor its content is left in the daemon's memory.
test_safety_nothing_left_after_vanishing() {
	local mk pat
	safety_scan_mount ttl=2s
	mk=$(safety_name)
	pat=$(safety_pattern)
	python3 -c 'import sys; open(sys.argv[2], "wb").write(bytes.fromhex(sys.argv[1]) * 1000)' \
		"$pat" "$Z/$mk.jpg" || fail "writing"
	expect cmp -s "$Z/$mk.jpg" "$Z/$mk.jpg"
	# Vanished, and through the reaper (its audit line), not only hidden
	# from lookups by the deadline.
	wait_until 10 grep -q '"event":"vanished"' "$T/S/audit.log" || fail "no vanished audit line"
	[ -e "$Z/$mk.jpg" ] && fail "still there"
	# shellcheck disable=SC2046
	safety_clean "$PID" "something of it left in the daemon's memory" \
		$(safety_name_needles "$mk") $(safety_pattern_needles "$pat")
}

# A request libfuse refuses itself (allow_root: another user's lookup gets
# EACCES without reaching ekycfs) leaves its name behind no more than one
# that is served.
test_safety_refused_request_left_nothing() {
	local mk
	safety_scan_mount ttl=1h,allow_root
	mk=$(safety_name)
	chmod 755 "$T"
	# The zone is looked up by root first, or the other user's lookup of
	# the zone would be the refused one and the name would never be sent.
	expect stat "$Z" >/dev/null
	setpriv --reuid=65534 --regid=65534 --clear-groups stat "$Z/$mk.jpg" >/dev/null 2>"$T/err" &&
		fail "another user's lookup was served under allow_root"
	grep -q "Permission denied" "$T/err" || fail "expected EACCES: $(cat "$T/err")"
	# shellcheck disable=SC2046
	safety_clean "$PID" "a refused request's name left in the daemon's memory" \
		$(safety_name_needles "$mk")
}

# A fifo planted at a long name's sidecar is never opened: it blocks no
# lookup, no listing and not the reaper, which still shreds on time.
test_safety_fifo_at_sidecar_blocks_nothing() {
	local long side
	safety_mount -o ttl=3s
	long=$(printf 'L%.0s' $(seq 220))
	echo x >"$Z/$long" || fail "a long name"
	side=$(find "$T/S/rlc" -maxdepth 1 -name '*.name')
	[ -n "$side" ] || fail "no sidecar"
	rm "$side" && mkfifo "$side" || fail "planting a fifo at the sidecar"
	echo y >"$T/M/idocr/short" || fail "write"
	timeout 10 ls -la "$Z" >/dev/null || fail "listing the zone hung or failed"
	wait_until 10 safety_empty_dir "$T/S/idocr" || fail "idocr's entry not shredded at its deadline"
	wait_until 10 safety_empty_dir "$T/S/.trash" || fail "the trash not emptied"
	timeout 10 ls -la "$Z" >/dev/null || fail "listing the zone hung after the deadline"
}
