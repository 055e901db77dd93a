# t_names.sh - every name inside a zone is stored encrypted: no plain name
# reaches the store, names up to 255 bytes work with the usual tools, and a
# backing entry moved or altered by hand appears under no name. Sourced by
# run.sh; helpers are prefixed names_.

# names_empty_dir DIR: DIR has no entries (for wait_until).
names_empty_dir() {
	[ -d "$1" ] && [ -z "$(ls -A "$1")" ]
}

names_mount() {
	mount_fs "$T/S" "$T/M" -o ttl=1h "$@" || fail "mount failed"
	Z=$T/M/rlc
}

names_keymount() {
	[ -f "$T/key" ] || "$EKYCFS" --genkey "$T/key" >/dev/null || fail "genkey"
	names_mount -o "key_file=$T/key"
}

# names_umount: unmount $T/M and wait until the daemon has let go of the
# store (its flock), so that the next mount or a look at the store does not
# race the daemon's shutdown.
names_umount() {
	umount_fs "$T/M"
	mountpoint -q "$T/M" && fail "still mounted after unmount"
	wait_until 10 flock -n "$T/S" true || fail "the store is still locked 10 s after unmount"
}

names_remount() {
	names_umount
	names_keymount
}

# names_marker: a unique marker for this test.
names_marker() {
	echo "MRK$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
}

# names_pad PREFIX LEN CHAR: PREFIX padded with CHAR to exactly LEN bytes.
names_pad() {
	local n
	n=$(printf %s "$1" | wc -c)
	printf '%s%s' "$1" "$(head -c $(($2 - n)) /dev/zero | tr '\0' "$3")"
}

# names_ls DIR: the listing, one C-quoted name a line (newlines visible).
names_ls() {
	ls -A --quoting-style=c "$1"
}

# names_backing DIR: backing entries directly in DIR, sorted.
names_backing() {
	ls -A "$1" | LC_ALL=C sort
}

# names_make DIR MARKER: files, dirs and symlinks whose names (and link
# targets) carry MARKER; the same set on any filesystem.
names_make() {
	local d=$1 mk=$2 n
	for n in "short_$mk" "$(names_pad "$mk" 255 x)" "пасспорт_${mk}_😀" \
		"with space $mk" "new
line$mk" "$(names_pad "долгое_имя_$mk" 200 y)"; do
		echo "content" >"$d/$n" || return 1
		mkdir "$d/d$n" 2>/dev/null || mkdir "$d/$(printf %s "d$n" | head -c 255)" || return 1
	done
	mkdir -p "$d/dir_$mk/sub_$mk" || return 1
	echo "nested" >"$d/dir_$mk/sub_$mk/passport_${mk}.jpg" || return 1
	ln -s "../target_$mk/passport_$mk.jpg" "$d/link_$mk" || return 1
	ln -s "/srv/ekyc/$mk" "$d/benign_link" || return 1
	ln -s "sub_$mk/passport_${mk}.jpg" "$d/dir_$mk/good_link" || return 1
}

test_names_no_plaintext() {
	local mk
	mk=$(names_marker)
	names_mount
	mkdir "$T/ref"
	names_make "$T/ref" "$mk" || fail "making the reference names"
	names_make "$Z" "$mk" || fail "making the names in the mount"
	# ls through the mount shows them all.
	expect_eq "$(names_ls "$Z")" "$(names_ls "$T/ref")" "zone listing"
	expect_eq "$(names_ls "$Z/dir_$mk")" "$(names_ls "$T/ref/dir_$mk")" "listing of a subdir"
	expect_eq "$(cd "$Z" && find . | LC_ALL=C sort)" "$(cd "$T/ref" && find . | LC_ALL=C sort)" "find"
	expect_eq "$(readlink "$Z/link_$mk")" "../target_$mk/passport_$mk.jpg" "link target"
	expect_eq "$(cat "$Z/dir_$mk/sub_$mk/passport_${mk}.jpg")" nested "nested file"
	expect_eq "$(cat "$Z/dir_$mk/good_link")" nested "through a symlink"
	expect_eq "$(cat "$Z/пасспорт_${mk}_😀")" content "UTF-8 name"
	expect_eq "$(cat "$Z/new
line$mk")" content "name with a newline"
	expect_eq "$(cat "$Z/$(names_pad "$mk" 255 x)")" content "255-byte name"
	# Renames keep names secret too.
	expect mv "$Z/short_$mk" "$Z/dir_$mk/renamed_$mk"
	expect_eq "$(cat "$Z/dir_$mk/renamed_$mk")" content "renamed"
	# The store shows no name, target or part of one.
	no_plaintext "$T/S" "$mk"
	for part in пасспорт passport долгое "with space" short_ renamed_ target_ /srv/ekyc; do
		no_plaintext "$T/S" "$part"
	done
	names_umount
	no_plaintext "$T/S" "$mk"
	no_plaintext "$T/S" passport
}

test_names_removed_leave_no_plaintext() {
	local mk
	mk=$(names_marker)
	names_mount
	names_make "$Z" "$mk" || fail "making the names in the mount"
	expect rm -r "$Z"/*
	expect_eq "$(ls -A "$Z")" "" "zone after rm -r"
	# Shredding writes audit lines: they must not name anything either.
	wait_until 10 names_empty_dir "$T/S/.trash" || fail "trash not emptied"
	wait_until 10 test -s "$T/S/audit.log" || fail "no audit line after removals"
	no_plaintext "$T/S" "$mk"
	no_plaintext "$T/S" пасспорт
}

test_names_same_name_two_dirs() {
	names_mount
	mkdir "$Z/a"
	local ba bb
	ba=$(names_backing "$T/S/rlc")
	mkdir "$Z/b"
	bb=$(names_backing "$T/S/rlc" | grep -vxF -e "$ba")
	[ -n "$ba" ] && [ -n "$bb" ] && [ "$ba" != "$bb" ] || fail "cannot find the backing dirs ($ba, $bb)"
	echo 1 >"$Z/a/same.jpg"
	echo 2 >"$Z/b/same.jpg"
	mkdir "$Z/a/samedir" "$Z/b/samedir"
	local sa sb
	sa=$(names_backing "$T/S/rlc/$ba")
	sb=$(names_backing "$T/S/rlc/$bb")
	expect_eq "$(echo "$sa" | wc -l)" 2 "backing entries in a"
	expect_eq "$(echo "$sb" | wc -l)" 2 "backing entries in b"
	[ -z "$(printf '%s\n%s\n' "$sa" "$sb" | sort | uniq -d)" ] ||
		fail "a stored name repeats across directories: $sa / $sb"
	# And across zones.
	echo 3 >"$T/M/idocr/same.jpg"
	echo 4 >"$Z/same.jpg"
	local za zb
	za=$(names_backing "$T/S/idocr")
	zb=$(names_backing "$T/S/rlc" | grep -vxF -e "$ba" | grep -vxF -e "$bb")
	[ -n "$za" ] && [ -n "$zb" ] && [ "$za" != "$zb" ] ||
		fail "the same name in two zones is stored the same: $za / $zb"
	expect_eq "$(cat "$Z/a/same.jpg")$(cat "$Z/b/same.jpg")$(cat "$T/M/idocr/same.jpg")$(cat "$Z/same.jpg")" \
		1234 "contents"
}

# names_check_long_shape DIR: every backing entry in DIR is a short encoded
# name or a long form L.<43> with its L.<43>.name sidecar, and no sidecar
# is an orphan.
names_check_long_shape() {
	local e
	for e in $(names_backing "$1"); do
		case $e in
		L.*.name)
			echo "$e" | grep -Eq '^L\.[A-Za-z0-9_-]{43}\.name$' || fail "bad sidecar name $e"
			[ -e "$1/${e%.name}" ] || fail "orphan sidecar $e"
			;;
		L.*)
			echo "$e" | grep -Eq '^L\.[A-Za-z0-9_-]{43}$' || fail "bad long form $e"
			[ -f "$1/$e.name" ] || fail "long form $e without a sidecar"
			;;
		*)
			echo "$e" | grep -Eq '^[A-Za-z0-9_-]{1,255}$' || fail "bad short name $e"
			;;
		esac
	done
}

test_names_long() {
	names_mount
	local l200 l255 l255b s160
	l200=$(names_pad "long200_" 200 a)
	l255=$(names_pad "long255_" 255 b)
	l255b=$(names_pad "other255_" 255 c)
	s160=$(names_pad "s160_" 160 d)
	expect_eq "$(printf %s "$l255" | wc -c)" 255 "length of the 255-byte name"
	echo 200 >"$Z/$l200"
	echo 255 >"$Z/$l255"
	echo 160 >"$Z/$s160"
	mkdir "$Z/$l255b"
	echo inner >"$Z/$l255b/$l200"
	# 160 bytes is the longest short form; 200 and 255 use the long form.
	expect_eq "$(names_backing "$T/S/rlc" | grep -c '^L\..\{43\}$')" 3 "long forms"
	expect_eq "$(names_backing "$T/S/rlc" | grep -c '^L\..\{43\}\.name$')" 3 "sidecars"
	names_check_long_shape "$T/S/rlc"
	# 256 bytes: too long.
	expect_errno "File name too long" touch "$Z/$(names_pad x 256 e)"
	# ls and find.
	expect_eq "$(ls "$Z" | LC_ALL=C sort)" "$(printf '%s\n' "$l200" "$l255" "$l255b" "$s160" | LC_ALL=C sort)" "ls"
	expect_eq "$(cd "$Z" && find . -type f | LC_ALL=C sort)" \
		"$(printf './%s\n' "$l200" "$l255" "$l255b/$l200" "$s160" | LC_ALL=C sort)" "find"
	expect_eq "$(cat "$Z/$l255b/$l200")" inner "long file in a long dir"
	# mv long -> long, long -> short, short -> long.
	local l200b l255c
	l200b=$(names_pad "renamed200_" 200 f)
	l255c=$(names_pad "renamed255_" 255 g)
	expect mv "$Z/$l200" "$Z/$l255c"
	expect_eq "$(cat "$Z/$l255c")" 200 "long -> long"
	expect_fail test -e "$Z/$l200"
	expect mv "$Z/$l255c" "$Z/short"
	expect_eq "$(cat "$Z/short")" 200 "long -> short"
	expect_fail test -e "$Z/$l255c"
	expect mv "$Z/short" "$Z/$l200b"
	expect_eq "$(cat "$Z/$l200b")" 200 "short -> long"
	expect_fail test -e "$Z/short"
	# Long dir renamed into a long name, contents follow.
	expect mv "$Z/$l255b" "$Z/$l255c"
	expect_eq "$(cat "$Z/$l255c/$l200")" inner "contents of a renamed long dir"
	# A long name over an existing long name.
	expect mv -f "$Z/$l200b" "$Z/$l255"
	expect_eq "$(cat "$Z/$l255")" 200 "long over long"
	# Hard link with a long name.
	expect ln "$Z/$l255" "$Z/$l255c/$l255b"
	expect_eq "$(stat -c %h "$Z/$l255")" 2 "link count"
	expect_eq "$(cat "$Z/$l255c/$l255b")" 200 "through the long hard link"
	expect_eq "$(ls "$Z" | LC_ALL=C sort)" "$(printf '%s\n' "$l255" "$l255c" "$s160" | LC_ALL=C sort)" \
		"ls after renames"
	names_check_long_shape "$T/S/rlc"
	# tar round trip with long names.
	mkdir "$T/x"
	expect tar -C "$Z" -cf "$T/a.tar" .
	expect tar -C "$T/x" -xf "$T/a.tar"
	expect diff -r "$Z" "$T/x"
	mkdir "$Z/untar"
	expect tar -C "$Z/untar" -xf "$T/a.tar"
	expect diff -r "$T/x" "$Z/untar"
	# rm -r leaves no backing entry, long forms and sidecars included.
	expect rm -r "$Z"/*
	expect_eq "$(ls -A "$Z")" "" "zone after rm -r"
	wait_until 10 names_empty_dir "$T/S/rlc" || fail "backing entries left: $(ls -A "$T/S/rlc")"
}

test_names_long_persist() {
	names_keymount
	local l255
	l255=$(names_pad "persist_" 255 p)
	mkdir "$Z/$l255"
	echo kept >"$Z/$l255/$l255"
	names_remount
	expect_eq "$(cat "$Z/$l255/$l255")" kept "long names after remount"
	expect_eq "$(ls "$Z")" "$l255" "listing after remount"
}

# names_new_entry DIR BEFORE: backing entries of DIR not in BEFORE (a list
# of names, one a line), sidecars left out.
names_new_entry() {
	names_backing "$1" | grep -vxF -e "$2" | grep -v '\.name$'
}

test_names_moved_backing_entry() {
	names_keymount
	mkdir "$Z/a"
	local ba bb before f l255
	ba=$(names_backing "$T/S/rlc")
	mkdir "$Z/b"
	bb=$(names_backing "$T/S/rlc" | grep -vxF -e "$ba")
	echo "in b" >"$Z/b/other"
	before=$(names_backing "$T/S/rlc/$ba")
	echo secret >"$Z/a/passport.jpg"
	f=$(names_new_entry "$T/S/rlc/$ba" "${before:-none}")
	[ -n "$f" ] || fail "cannot find the backing file"
	l255=$(names_pad "long_" 255 l)
	before=$(names_backing "$T/S/rlc/$ba")
	echo "long secret" >"$Z/a/$l255"
	local lf
	lf=$(names_new_entry "$T/S/rlc/$ba" "$before")
	[ -n "$lf" ] || fail "cannot find the long backing file"
	names_umount
	# By hand, while unmounted: move both (the long one with its sidecar)
	# from a's backing directory into b's.
	mv "$T/S/rlc/$ba/$f" "$T/S/rlc/$bb/$f" || fail "moving the backing file"
	mv "$T/S/rlc/$ba/$lf" "$T/S/rlc/$bb/$lf" || fail "moving the long backing file"
	mv "$T/S/rlc/$ba/$lf.name" "$T/S/rlc/$bb/$lf.name" || fail "moving the sidecar"
	names_keymount
	expect_eq "$(ls -A "$Z/b")" other "b shows only its own entry"
	expect_eq "$(ls -A "$Z/a")" "" "a no longer shows the moved entries"
	expect_fail test -e "$Z/a/passport.jpg"
	expect_fail test -e "$Z/b/passport.jpg"
	expect_fail test -e "$Z/a/$l255"
	expect_fail test -e "$Z/b/$l255"
	expect_fail grep -rq secret "$Z"
	expect_eq "$(cat "$Z/b/other")" "in b" "b's own file"
	# The directories still work.
	echo new >"$Z/b/new"
	expect_eq "$(ls -A "$Z/b" | LC_ALL=C sort | tr '\n' ' ')" "new other " "b after a new file"
}

test_names_altered_backing_name() {
	names_keymount
	echo one >"$Z/one.jpg"
	local b1 b2 alt c
	b1=$(names_backing "$T/S/rlc")
	echo two >"$Z/two.jpg"
	b2=$(names_backing "$T/S/rlc" | grep -vxF -e "$b1")
	[ -n "$b1" ] && [ -n "$b2" ] || fail "cannot find backing names"
	names_umount
	# Change one character in the middle, staying in the base64url alphabet.
	c=${b2:30:1}
	if [ "$c" = A ]; then alt=B; else alt=A; fi
	alt="${b2:0:30}$alt${b2:31}"
	mv "$T/S/rlc/$b2" "$T/S/rlc/$alt" || fail "renaming the backing file"
	names_keymount
	expect_eq "$(ls -A "$Z")" one.jpg "listing after the alteration"
	expect_fail test -e "$Z/two.jpg"
	expect_eq "$(cat "$Z/one.jpg")" one "untouched file"
	expect_fail grep -rq two "$Z"
}

test_names_swapped_sidecars() {
	names_keymount
	local la lb
	la=$(names_pad "alpha_" 255 a)
	lb=$(names_pad "bravo_" 255 b)
	echo "content of alpha" >"$Z/$la"
	echo "content of bravo" >"$Z/$lb"
	names_umount
	local s1 s2
	s1=$(names_backing "$T/S/rlc" | grep '\.name$' | head -n 1)
	s2=$(names_backing "$T/S/rlc" | grep '\.name$' | tail -n 1)
	[ -n "$s1" ] && [ "$s1" != "$s2" ] || fail "cannot find two sidecars"
	cp -p "$T/S/rlc/$s1" "$T/tmp_sidecar"
	cp "$T/S/rlc/$s2" "$T/S/rlc/$s1"
	cp "$T/tmp_sidecar" "$T/S/rlc/$s2"
	names_keymount
	# No name may show the other's content.
	if [ -e "$Z/$la" ]; then
		expect_eq "$(cat "$Z/$la")" "content of alpha" "content under alpha's name"
	fi
	if [ -e "$Z/$lb" ]; then
		expect_eq "$(cat "$Z/$lb")" "content of bravo" "content under bravo's name"
	fi
	local n
	n=$(ls -A "$Z" | wc -l)
	[ "$n" -le 2 ] || fail "more entries than files after the swap: $n"
	for f in "$Z"/*; do
		[ -e "$f" ] || continue
		case "$f" in
		"$Z/$la" | "$Z/$lb") ;;
		*) fail "an unexpected name appeared: $f" ;;
		esac
	done
}

test_names_special_chars() {
	names_keymount
	local n
	for n in "a b" "tab	x" "new
line" "-dash" "---" "..." ".hidden" "*star?" "back\\slash" "quote'\"" "é" "😀" \
		"$(printf '\001\002ctrl')" "semi;colon" "%s%n" "$(names_pad ü 255 z)"; do
		printf '%s' "$n" >"$Z/$n" || fail "create '$n'"
		expect_eq "$(cat -- "$Z/$n")" "$n" "content of '$n'"
	done
	mkdir "$T/ref"
	for n in "a b" "tab	x" "new
line" "-dash" "---" "..." ".hidden" "*star?" "back\\slash" "quote'\"" "é" "😀" \
		"$(printf '\001\002ctrl')" "semi;colon" "%s%n" "$(names_pad ü 255 z)"; do
		printf '%s' "$n" >"$T/ref/$n"
	done
	expect_eq "$(names_ls "$Z")" "$(names_ls "$T/ref")" "listing"
	names_remount
	expect_eq "$(names_ls "$Z")" "$(names_ls "$T/ref")" "listing after remount"
	expect diff -r "$T/ref" "$Z"
}
