# t_ops.sh - mount tests for the operator's view and the lifecycle of
# backing files: `ekycfs status` (JSON and table, the hidden control file),
# truncation to zero swapping in a fresh backing file, files removed or
# renamed over while open.

# ---- helpers (ops_*) ----

# ops_now: wall-clock time in seconds, with fractions.
ops_now() { date +%s.%N; }

# ops_mount STORE MNT [args]: mount_fs or fail the test.
ops_mount() {
	mount_fs "$@" || fail "mount failed: $*"
}

# ops_json MNT OUT: `ekycfs status --json MNT` into OUT; fails the test when
# the command fails.
ops_json() {
	"$EKYCFS" status --json "$1" >"$2" 2>"$2.err" ||
		fail "status --json $1 failed: $(cat "$2.err")"
}

# ops_check JSONFILE PYEXPR [ARGS...]: PYEXPR (a Python expression over j,
# the parsed JSON, z, a dict zone name -> zone object, and a, the extra
# ARGS) is true. Prints why not.
ops_check() {
	python3 - "$@" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
z = {x["name"]: x for x in j["zones"]}
a = sys.argv[3:]
if not eval(sys.argv[2]):
    sys.exit("not true: %s\n  status: %s" % (sys.argv[2], json.dumps(j)))
EOF
}

# ops_status_is MNT PYEXPR [ARGS...]: the current status satisfies PYEXPR
# (for polling; quiet).
ops_status_is() {
	local mnt=$1 f
	shift
	f=$(mktemp "$T/poll.XXXXXX")
	"$EKYCFS" status --json "$mnt" >"$f" 2>/dev/null && ops_check "$f" "$@" >/dev/null 2>&1
	local rc=$?
	rm -f "$f"
	return $rc
}

# ops_audit_count LOG EVENT: number of audit lines with that event.
ops_audit_count() {
	[ -f "$1" ] || { echo 0; return; }
	python3 - "$1" "$2" <<'EOF'
import json, sys
n = 0
for line in open(sys.argv[1], encoding="utf-8"):
    try:
        if json.loads(line).get("event") == sys.argv[2]:
            n += 1
    except Exception:
        pass
print(n)
EOF
}

# ops_audit_ge LOG EVENT N: at least N lines with EVENT.
ops_audit_ge() { [ "$(ops_audit_count "$1" "$2")" -ge "$3" ]; }

# ops_nentries DIR: entries (any type) in DIR, not recursive.
ops_nentries() { find "$1" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# ops_is_n N CMD...: CMD prints N.
ops_is_n() {
	local want=$1
	shift
	[ "$("$@")" = "$want" ]
}

# ops_only_backing DIR: inode and name of the only regular file in DIR
# (fails the test when there is not exactly one).
ops_only_backing() {
	local out
	out=$(find "$1" -mindepth 1 -maxdepth 1 -type f -printf '%i %f\n')
	[ "$(printf '%s\n' "$out" | grep -c .)" = 1 ] || fail "want one backing file in $1, got: $out"
	printf '%s\n' "$out"
}

# ---- tests ----

# `ekycfs status`: entries and bytes per zone, next deadlines, shred and
# vanish counters, as JSON and as a table; the control file is hidden and
# read-only; a plain directory is "not an ekycfs mount".
test_ops_status_counts() {
	local S=$T/s M=$T/m ta tb trm err
	ops_mount "$S" "$M" -o ttl=4s
	ta=$(ops_now)
	head -c 1000 /dev/urandom >"$M/rlc/a" || fail "write a"
	head -c 2000 /dev/urandom >"$M/rlc/b" || fail "write b"
	head -c 5000 /dev/urandom >"$M/rlc/c" || fail "write c"
	mkdir "$M/idocr/d" || fail "mkdir"
	printf 0123456789 >"$M/idocr/d/f" || fail "write d/f"
	tb=$(ops_now)

	ops_json "$M" "$T/s1.json"
	python3 - "$T/s1.json" "$ta" "$tb" <<'EOF' || fail "status after the writes: $(cat "$T/s1.json")"
import calendar, collections, json, sys, time
j = json.load(open(sys.argv[1]))
ta, tb = float(sys.argv[2]), float(sys.argv[3])
keys = {"format_version", "key_mode", "cipher", "zones", "next_deadlines", "shreds",
        "shred_bytes", "invalid_stamps", "vanished", "scheduled"}
if set(j) != keys:
    sys.exit("keys: %s" % sorted(j))
if j["format_version"] != 1: sys.exit("format_version")
if j["key_mode"] != "ephemeral": sys.exit("key_mode")
if j["cipher"] not in ("aes256gcm", "xchacha20poly1305"): sys.exit("cipher")
if [x["name"] for x in j["zones"]] != ["rlc", "idocr"]: sys.exit("zone names")
z = {x["name"]: x for x in j["zones"]}
if (z["rlc"]["ttl"], z["idocr"]["ttl"]) != (4, 4): sys.exit("ttl")
if (z["rlc"]["entries"], z["rlc"]["bytes"]) != (3, 8000): sys.exit("rlc entries/bytes")
if (z["idocr"]["entries"], z["idocr"]["bytes"]) != (2, 10): sys.exit("idocr entries/bytes")
for k in ("shreds", "shred_bytes", "invalid_stamps", "vanished"):
    if j[k] != 0: sys.exit("%s not 0" % k)
if not j["scheduled"] >= 1: sys.exit("scheduled")
nd = j["next_deadlines"]
if len(nd) != 5: sys.exit("want 5 next deadlines (5 live entries, at most 5 shown)")
ts = [calendar.timegm(time.strptime(d["time"], "%Y-%m-%dT%H:%M:%SZ")) for d in nd]
if ts != sorted(ts): sys.exit("next deadlines not ascending")
for t in ts:
    # Shown to the second (rounded down); the deadline is in [ta, tb] + 4.
    if not ta + 4 - 1.001 <= t <= tb + 4 + 0.001:
        sys.exit("deadline %s not within [%f, %f] + 4" % (t, ta, tb))
if collections.Counter(d["zone"] for d in nd) != {"rlc": 3, "idocr": 2}:
    sys.exit("zones of the next deadlines")
EOF
	# The same in the table.
	"$EKYCFS" status "$M" >"$T/h1.txt" || fail "status (table) failed"
	grep -Eq '^rlc +4 +3 +8000$' "$T/h1.txt" || fail "no rlc row: $(cat "$T/h1.txt")"
	grep -Eq '^idocr +4 +2 +10$' "$T/h1.txt" || fail "no idocr row: $(cat "$T/h1.txt")"
	grep -q 'ephemeral' "$T/h1.txt" || fail "no key mode in the table"
	grep -q 'shredded: 0 entries, 0 bytes' "$T/h1.txt" || fail "no shredded line: $(cat "$T/h1.txt")"
	expect_eq "$(grep -c '^  [0-9T:-]*Z  \(rlc\|idocr\)$' "$T/h1.txt")" 5 "deadline rows in the table"

	# rm: gone from the counts at once, shredded in the background.
	trm=$(ops_now)
	expect rm "$M/rlc/a"
	ops_json "$M" "$T/s2.json"
	ops_check "$T/s2.json" 'z["rlc"]["entries"] == 2 and z["rlc"]["bytes"] == 7000 and z["idocr"]["entries"] == 2' ||
		fail "counts after rm"
	wait_until 3 ops_status_is "$M" 'j["shreds"] >= 1' || fail "shreds did not grow within 3 s of rm"
	ops_json "$M" "$T/s3.json"
	if awk -v a="$(ops_now)" -v b="$ta" 'BEGIN { exit !(a < b + 3.9) }'; then
		# Nothing has expired yet: the one shred is the rm.
		ops_check "$T/s3.json" 'j["shreds"] == 1 and j["shred_bytes"] >= 1000 and j["vanished"] == 0' ||
			fail "counters after the rm's shred"
	else
		echo "    note: rm's shred seen only at $(ops_now) (rm at $trm); exact check skipped" >&2
		ops_check "$T/s3.json" 'j["shreds"] >= 1 and j["shred_bytes"] >= 1000' || fail "counters after rm"
	fi
	ops_audit_ge "$S/audit.log" deleted 1 || fail "no deleted audit line after rm"

	# The control file: hidden, read-only, readable.
	ls -a "$M" | grep -qxF .ekycfs.status && fail ".ekycfs.status is listed: $(ls -a "$M")"
	expect_eq "$(ls -A "$M" | sort | tr '\n' ' ')" "idocr rlc " "mount root listing"
	expect_eq "$(head -n 1 "$M/.ekycfs.status")" "format_version 1" "first line of the control file"
	expect_fail sh -c "echo x >'$M/.ekycfs.status'"
	expect_fail sh -c "echo x >>'$M/.ekycfs.status'"
	expect_fail sh -c "exec 5<>'$M/.ekycfs.status'"
	expect_fail truncate -s 0 "$M/.ekycfs.status"
	expect_fail rm -f "$M/.ekycfs.status"
	expect_fail mv "$M/.ekycfs.status" "$M/rlc/stolen"
	[ -e "$M/rlc/stolen" ] && fail "control file moved into a zone"
	expect_eq "$(head -n 1 "$M/.ekycfs.status")" "format_version 1" "control file after write attempts"

	# After the TTL everything has vanished and been shredded.
	wait_until 5 ops_status_is "$M" 'all(x["entries"] == 0 and x["bytes"] == 0 for x in j["zones"])' ||
		fail "entries left after the TTL: $("$EKYCFS" status --json "$M")"
	wait_until 4 ops_status_is "$M" 'j["shreds"] >= 4 and j["scheduled"] == 0' ||
		fail "shreds/scheduled after the TTL: $("$EKYCFS" status --json "$M")"
	ops_json "$M" "$T/s4.json"
	ops_check "$T/s4.json" 'j["vanished"] >= 4 and j["next_deadlines"] == [] and j["invalid_stamps"] == 0 and j["shred_bytes"] >= 8000' ||
		fail "counters after the TTL"
	grep -q '"next_deadlines":\[\]' "$T/s4.json" || fail "no empty next_deadlines list: $(cat "$T/s4.json")"
	"$EKYCFS" status "$M" >"$T/h2.txt" || fail "status (table) after the TTL failed"
	grep -Eq '^rlc +4 +0 +0$' "$T/h2.txt" || fail "rlc row after the TTL: $(cat "$T/h2.txt")"
	grep -Eq '^idocr +4 +0 +0$' "$T/h2.txt" || fail "idocr row after the TTL: $(cat "$T/h2.txt")"
	grep -q '^next deadlines: none$' "$T/h2.txt" || fail "no 'none' deadline line: $(cat "$T/h2.txt")"
	grep -Eq '^shredded: [0-9]+ entries, [0-9]+ bytes$' "$T/h2.txt" || fail "no shredded line"

	# Not an ekycfs mount.
	mkdir "$T/plain"
	for args in "" "--json"; do
		err=$("$EKYCFS" status $args "$T/plain" 2>&1 >/dev/null)
		rc=$?
		expect_eq "$rc" 1 "exit status of status $args on a plain directory"
		case "$err" in *"not an ekycfs mount"*) ;; *) fail "status $args on a plain dir said: $err" ;; esac
	done
	err=$("$EKYCFS" status "$S" 2>&1 >/dev/null)
	expect_eq "$?" 1 "exit status of status on the store"
	case "$err" in *"not an ekycfs mount"*) ;; *) fail "status on the store said: $err" ;; esac
}

# A directory whose own deadline has passed but that still holds a live
# entry is live (README: it vanishes once its deadline has passed and it
# holds no live entry): it is listed, so status counts it.
test_ops_status_live_dir() {
	local S=$T/s M=$T/m ta
	ops_mount "$S" "$M" -o ttl=3s
	ta=$(ops_now)
	mkdir "$M/idocr/d" || fail "mkdir"
	echo first >"$M/idocr/d/f" || fail "write"
	sleep 2
	echo second >>"$M/idocr/d/f" || fail "append" # f now lives until ~ta+5
	# Past the directory's own deadline (ta + 3 + slack), before f's.
	sleep 1.8
	awk -v a="$(ops_now)" -v b="$ta" 'BEGIN { exit !(a < b + 4.6) }' ||
		fail "too slow to check (test timing)"
	[ -d "$M/idocr/d" ] || fail "directory with a live entry vanished"
	expect_eq "$(cat "$M/idocr/d/f")" "first
second" "content of the live file"
	expect_eq "$(find "$M/idocr" -mindepth 1 | wc -l)" 2 "entries under idocr (find)"
	ops_json "$M" "$T/s.json"
	ops_check "$T/s.json" 'z["idocr"]["entries"] == 2 and z["idocr"]["bytes"] == 13' ||
		fail "status does not count the live directory (find sees 2 entries)"
}

# Truncating a big (> 4 KiB) file to zero swaps in a fresh backing file and
# shreds the old one; xattrs survive, handles opened before go on working;
# a hard-linked file is truncated in place; shrinking keeps the inode.
test_ops_truncate_zero_shreds() {
	local S=$T/s M=$T/m Z=$T/m/rlc before after n0 i
	ops_mount "$S" "$M" -o ttl=1m
	head -c $((1024 * 1024)) /dev/urandom >"$T/ref"
	expect cp "$T/ref" "$Z/f"
	expect setfattr -n user.tag -v hello "$Z/f"
	before=$(ops_only_backing "$S/rlc")
	n0=$(ops_audit_count "$S/audit.log" shredded)
	# A reader and an appender opened before the truncation.
	exec 3<"$Z/f" 4>>"$Z/f"
	: >"$Z/f" || fail ": > f"
	expect_eq "$(stat -c %s "$Z/f")" 0 "size after : > f"
	expect_eq "$(wc -c <"$Z/f")" 0 "bytes read after : > f"
	expect_eq "$(getfattr --absolute-names --only-values -n user.tag "$Z/f" 2>&1)" hello "user.tag after : > f"
	after=$(ops_only_backing "$S/rlc")
	[ "${before%% *}" != "${after%% *}" ] || fail "backing inode unchanged by : > f ($before)"
	expect_eq "${after#* }" "${before#* }" "backing name after : > f"
	wait_until 5 ops_audit_ge "$S/audit.log" shredded $((n0 + 1)) ||
		fail "no shredded audit line after : > f: $(cat "$S/audit.log")"
	wait_until 5 ops_is_n 0 ops_nentries "$S/.trash" || fail "trash not empty: $(ls -A "$S/.trash")"
	[ -z "$(find "$S" -type f -size +1000k)" ] || fail "a 1 MiB backing file is left in the store"
	# Later writes work, also through the handles opened before.
	echo "new content" >>"$Z/f" || fail "write after : > f"
	echo "via fd 4" >&4 || fail "write through the handle opened before : > f"
	expect_eq "$(cat "$Z/f")" "new content
via fd 4" "content after writes"
	expect_eq "$(cat <&3)" "new content
via fd 4" "read through the handle opened before : > f"
	exec 3<&- 4>&-
	expect_eq "$(getfattr --absolute-names --only-values -n user.tag "$Z/f" 2>&1)" hello "user.tag after writes"

	# truncate -s 0 and O_TRUNC do the same.
	for i in truncate otrunc; do
		head -c 100000 /dev/urandom >"$T/ref2"
		expect cp "$T/ref2" "$Z/f"
		cmp -s "$T/ref2" "$Z/f" || fail "content before $i"
		before=$(ops_only_backing "$S/rlc")
		n0=$(ops_audit_count "$S/audit.log" shredded)
		if [ $i = truncate ]; then
			expect truncate -s 0 "$Z/f"
			expect_eq "$(stat -c %s "$Z/f")" 0 "size after truncate -s 0"
		else
			echo short >"$Z/f" || fail "O_TRUNC write"
			expect_eq "$(cat "$Z/f")" short "content after O_TRUNC write"
		fi
		after=$(ops_only_backing "$S/rlc")
		[ "${before%% *}" != "${after%% *}" ] || fail "backing inode unchanged by $i"
		wait_until 5 ops_audit_ge "$S/audit.log" shredded $((n0 + 1)) || fail "no shredded line after $i"
		wait_until 5 ops_is_n 0 ops_nentries "$S/.trash" || fail "trash not empty after $i"
		expect_eq "$(getfattr --absolute-names --only-values -n user.tag "$Z/f" 2>&1)" hello "user.tag after $i"
	done

	# Shrinking (not to zero) keeps the backing file.
	expect cp "$T/ref" "$Z/f"
	before=$(ops_only_backing "$S/rlc")
	expect truncate -s 5000 "$Z/f"
	after=$(ops_only_backing "$S/rlc")
	expect_eq "${after%% *}" "${before%% *}" "backing inode after shrinking"
	cmp -s <(head -c 5000 "$T/ref") "$Z/f" || fail "content after shrinking to 5000"
	expect rm "$Z/f"

	# Hard-linked: truncated in place, both names see it.
	head -c 10000 /dev/urandom >"$Z/h" || fail "write h"
	expect ln "$Z/h" "$Z/h2"
	: >"$Z/h" || fail ": > h (hard-linked)"
	expect_eq "$(stat -c %s "$Z/h")" 0 "size of h after : > h"
	expect_eq "$(stat -c %s "$Z/h2")" 0 "size of h2 after : > h"
	expect_eq "$(stat -c %h "$Z/h2")" 2 "link count after : > h"
	echo again >"$Z/h2" || fail "write h2"
	expect_eq "$(cat "$Z/h")" again "h after writing h2"
	expect_eq "$(find "$S/rlc" -type f -links 2 -printf '%i\n' | sort -u | wc -l)" 1 \
		"one hard-linked backing inode"
}

# A file removed while open stays readable through the open handle; its
# backing file waits in the trash until the last close, then is shredded.
test_ops_open_unlinked() {
	local S=$T/s M=$T/m Z=$T/m/rlc
	ops_mount "$S" "$M" -o ttl=1m
	head -c 300000 /dev/urandom >"$T/ref"
	expect cp "$T/ref" "$Z/f"
	exec 3<"$Z/f"
	expect rm "$Z/f"
	[ -e "$Z/f" ] && fail "f still there after rm"
	expect_eq "$(ls -A "$Z")" "" "zone listing after rm"
	cmp -s "$T/ref" - <&3 || fail "read through the fd after rm differs"
	# Still held: one file in the trash, no shred yet (give the shredder
	# time to do something wrong).
	sleep 2.5
	expect_eq "$(ops_nentries "$S/.trash")" 1 "trash entries while the fd is open"
	expect_eq "$(ops_audit_count "$S/audit.log" shredded)" 0 "shredded lines while the fd is open"
	expect_eq "$(ops_audit_count "$S/audit.log" deleted)" 1 "deleted lines after rm"
	exec 3<&-
	wait_until 5 ops_is_n 0 ops_nentries "$S/.trash" || fail "trash not empty 5 s after close"
	wait_until 5 ops_audit_ge "$S/audit.log" shredded 1 || fail "no shredded line after close"
	expect_eq "$(ops_nentries "$S/rlc")" 0 "backing entries in rlc"
	python3 - "$S/audit.log" <<'EOF' || fail "audit: $(cat "$S/audit.log")"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
d = [r for r in recs if r["event"] == "deleted"]
s = [r for r in recs if r["event"] == "shredded"]
if len(d) != 1 or len(s) != 1: sys.exit("want one deleted and one shredded line")
if d[0]["id"] != s[0]["id"] or recs.index(d[0]) > recs.index(s[0]): sys.exit("ids/order")
if d[0]["zone"] != "rlc" or s[0]["zone"] != "rlc": sys.exit("zone")
if not s[0]["bytes"] >= 300000: sys.exit("shredded bytes %r" % s[0]["bytes"])
EOF
}

# Renaming another file over a file open for reading: the reader keeps the
# old content; the old backing file is shredded after the close.
test_ops_rename_over_open() {
	local S=$T/s M=$T/m Z=$T/m/rlc oldb
	ops_mount "$S" "$M" -o ttl=1m
	head -c 200000 /dev/urandom >"$T/ref"
	expect cp "$T/ref" "$Z/old"
	oldb=$(ops_only_backing "$S/rlc")
	echo "the new one" >"$Z/new" || fail "write new"
	exec 3<"$Z/old"
	expect mv "$Z/new" "$Z/old"
	expect_eq "$(cat "$Z/old")" "the new one" "content by name after the rename"
	expect_eq "$(ls -A "$Z")" "old" "zone listing after the rename"
	cmp -s "$T/ref" - <&3 || fail "the reader does not see the old content"
	find "$S/rlc" -inum "${oldb%% *}" | grep -q . && fail "old backing file still in rlc"
	sleep 2.5
	expect_eq "$(ops_audit_count "$S/audit.log" shredded)" 0 "shredded lines while the reader is open"
	expect_eq "$(ops_nentries "$S/.trash")" 1 "trash entries while the reader is open"
	exec 3<&-
	wait_until 5 ops_is_n 0 ops_nentries "$S/.trash" || fail "trash not empty 5 s after close"
	wait_until 5 ops_audit_ge "$S/audit.log" shredded 1 || fail "no shredded line after close"
	expect_eq "$(cat "$Z/old")" "the new one" "content after the shred"
	expect_eq "$(find "$S" -inum "${oldb%% *}" | wc -l)" 0 "old backing inode anywhere in the store"
}

# But not past its deadline: a file removed while open is shredded when
# its life ends even though a handle still holds it, which then reads
# nothing more (ESTALE). A write through such a handle before the
# deadline moves the deadline, as for any file. (Renaming over an open
# file defers its shredding the same way.)
test_ops_open_unlinked_until_deadline() {
	local S=$T/s M=$T/m Z=$T/m/rlc out t0
	ops_mount "$S" "$M" -o ttl=3s
	head -c 100000 /dev/urandom >"$T/ref"
	expect cp "$T/ref" "$Z/f"
	expect cp "$T/ref" "$Z/g"
	exec 3<"$Z/f" 4<>"$Z/g"
	t0=$(date +%s%N)
	expect rm "$Z/f" "$Z/g"
	sleep 1.5
	echo more >&4 || fail "write through the handle of the removed g"
	# f's life ends about 3 s after it was written, g's 3 s after that write.
	wait_until 6 ops_audit_ge "$S/audit.log" shredded 1 || fail "f not shredded at its deadline"
	expect_eq "$(ops_nentries "$S/.trash")" 1 "trash entries once f's life has ended"
	out=$(cat <&3 2>&1) && fail "read through f's handle after its deadline: $(echo "$out" | wc -c) bytes"
	case "$out" in *"Stale file handle"*) ;; *) fail "read after the deadline: $out" ;; esac
	wait_until 6 ops_is_n 0 ops_nentries "$S/.trash" || fail "g not shredded at its deadline"
	[ $((($(date +%s%N) - t0) / 1000000)) -ge 4000 ] || fail "g shredded before its moved deadline"
	expect_eq "$(ops_audit_count "$S/audit.log" shredded)" 2 "shredded lines, both handles still open"
	exec 3<&- 4>&-
	sleep 1
	expect_eq "$(ops_audit_count "$S/audit.log" shredded)" 2 "shredded lines after the closes"
}

# A handle opened before the deadline cannot write after it (ESTALE).
test_ops_write_after_deadline() {
	local S=$T/s M=$T/m out
	ops_mount "$S" "$M" -o ttl=2s
	echo start >"$M/rlc/w" || fail "write"
	exec 4>>"$M/rlc/w"
	echo more >&4 || fail "write through the handle before the deadline"
	sleep 3
	out=$( { echo late >&4; } 2>&1) && fail "write after the deadline succeeded"
	case "$out" in *"Stale file handle"*) ;; *) fail "write after the deadline: $out" ;; esac
	exec 4>&-
	[ -e "$M/rlc/w" ] && fail "w still there after the deadline"
	true
}
