# t_retention.sh - mount tests for trusted time, expiry, vanishing,
# shredding, the mount-time and offline sweeps, and the audit log.
#
# Every timing check is bounded from the outside: a deadline is known to lie
# in [time before the last content change, time after it] + TTL. An entry
# must be there until (lower bound - ~1 s) and must be gone by
# (upper bound + RET_LATE) seconds.

# Lateness allowed after a deadline before an entry must be gone.
RET_LATE=2

# ---- helpers (ret_*) ----

# ret_now: wall-clock time in seconds, with fractions.
ret_now() { date +%s.%N; }

# ret_add A B: A + B (floats).
ret_add() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a + b }'; }

# ret_lt A B: true when A < B (floats).
ret_lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# ret_sleep_until T: sleep until wall-clock time T (no-op if already past).
ret_sleep_until() {
	local d
	d=$(awk -v a="$1" -v b="$(ret_now)" 'BEGIN { d = a - b; printf "%.3f", (d > 0 ? d : 0) }')
	sleep "$d"
}

# ret_by T CMD...: poll CMD every 20 ms until it succeeds; fail (return 1)
# if it has not succeeded when wall-clock time T has passed.
ret_by() {
	local t=$1
	shift
	while :; do
		"$@" 2>/dev/null && return 0
		ret_lt "$(ret_now)" "$t" || break
		sleep 0.02
	done
	"$@" 2>/dev/null
}

# ret_gone PATH: PATH does not exist, and stat says exactly ENOENT.
ret_gone() {
	local out
	if out=$(stat -- "$1" 2>&1); then return 1; fi
	case "$out" in *"No such file or directory"*) return 0 ;; esac
	echo "stat $1: unexpected error: $out" >&2
	return 1
}

# ret_all_gone PATH...: every PATH is gone.
ret_all_gone() {
	local p
	for p in "$@"; do ret_gone "$p" || return 1; done
}

# ret_there PATH...: every PATH can be stat'ed.
ret_there() {
	local p
	for p in "$@"; do stat -- "$p" >/dev/null || fail "$p is gone too early"; done
}

# ret_listed DIR NAME: NAME appears in `ls DIR`.
ret_listed() { ls -a -- "$1" | grep -qxF -- "$2"; }

# ret_nreg DIR...: number of regular files under the DIRs.
ret_nreg() { find "$@" -type f 2>/dev/null | wc -l; }

# ret_nall DIR: number of entries (any type) below DIR.
ret_nall() { find "$1" -mindepth 1 2>/dev/null | wc -l; }

# ret_is_n EXPECTED CMD...: CMD prints EXPECTED (for polling counts).
ret_is_n() {
	local want=$1
	shift
	[ "$("$@")" = "$want" ]
}

# ret_backing_of STORE/ZONE CMD...: run CMD (which creates exactly one new
# backing entry in STORE/ZONE) and print that entry's backing name.
ret_backing_of() {
	local dir=$1 before after
	shift
	before=$(ls -A "$dir" | sort)
	"$@" || fail "could not run: $*"
	after=$(ls -A "$dir" | sort)
	comm -13 <(echo "$before") <(echo "$after")
}

# ret_stamp_hex FILE: the backing stamp xattr as 0x... hex.
ret_stamp_hex() {
	getfattr --absolute-names -e hex -n user.ekycfs.stamp -- "$1" 2>/dev/null |
		sed -n 's/^user\.ekycfs\.stamp=//p'
}

# ret_mount STORE MNT [args]: mount_fs, failing the test with a
# clear message when the mount does not come up.
ret_mount() {
	mount_fs "$@" || fail "mount failed: $*"
}

# ret_drop_caches: drop the kernel's dentry/inode caches, or, when that is
# not permitted, wait out the attribute cache.
ret_drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || sleep 1.5
}

# ret_audit_check LOG: every line is a JSON object with the audit fields.
ret_audit_check() {
	python3 - "$1" <<'EOF'
import json, re, sys
need = {"time", "event", "zone", "id", "born", "deadline", "bytes"}
events = {"vanished", "shredded", "deleted", "invalid_stamp", "destroyed"}
rfc = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
n = 0
for i, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    try:
        r = json.loads(line)
    except Exception as e:
        sys.exit("audit line %d is not JSON (%s): %r" % (i, e, line))
    if not isinstance(r, dict):
        sys.exit("audit line %d is not an object: %r" % (i, line))
    if not need <= set(r):
        sys.exit("audit line %d lacks %s: %r" % (i, sorted(need - set(r)), line))
    if r["event"] not in events:
        sys.exit("audit line %d: unknown event %r" % (i, r["event"]))
    if not isinstance(r["time"], str) or not rfc.match(r["time"]):
        sys.exit("audit line %d: bad time %r" % (i, r["time"]))
    for k in ("born", "deadline"):
        if r[k] is not None and not (isinstance(r[k], str) and rfc.match(r[k])):
            sys.exit("audit line %d: bad %s %r" % (i, k, r[k]))
    n += 1
if n == 0:
    sys.exit("audit log is empty")
EOF
}

# ret_audit_count LOG EVENT [ZONE]: number of lines with that event.
ret_audit_count() {
	python3 - "$@" <<'EOF'
import json, sys
log, ev = sys.argv[1], sys.argv[2]
zone = sys.argv[3] if len(sys.argv) > 3 else None
n = 0
for line in open(log, encoding="utf-8"):
    try:
        r = json.loads(line)
    except Exception:
        continue
    if r.get("event") == ev and (zone is None or r.get("zone") == zone):
        n += 1
print(n)
EOF
}

# ret_audit_at_least LOG EVENT N: at least N lines with EVENT.
ret_audit_at_least() {
	[ "$(ret_audit_count "$1" "$2")" -ge "$3" ]
}

# ---- tests ----

# An entry is there until its deadline and gone right after it: for stat,
# ls, open, for a process that keeps looking it up across the deadline
# (kernel dentry/attr caches), and for handles opened before (ESTALE, also
# when its pages are in the page cache).
test_retention_vanish_at_deadline() {
	local S=$T/s M=$T/m ttl=3 ta tb f=$T/m/rlc/vanmark_a g=$T/m/idocr/vanmark_b out
	ret_mount "$S" "$M" -o ttl=${ttl}s
	ta=$(ret_now)
	echo "payload-one" >"$f" || fail "create"
	echo "payload-two" >"$g" || fail "create"
	tb=$(ret_now)
	exec 3<"$f" 4<"$f" 5<"$g"
	# Read fd 3 once so that its pages sit in the page cache.
	expect_eq "$(cat <&3)" "payload-one" "read before the deadline"
	# A process that keeps stat'ing the file across the deadline: reports
	# when it first saw ENOENT.
	python3 - "$f" "$(ret_add "$ta" $((ttl - 1)))" "$(ret_add "$tb" $((ttl + RET_LATE + 1)))" \
		>"$T/poll.out" 2>&1 <<'EOF' &
import os, sys, time
p, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
while time.time() < start:
    time.sleep(0.01)
last_ok = None
while time.time() < end:
    t0 = time.time()
    try:
        os.stat(p)
        last_ok = t0
    except FileNotFoundError:
        print("gone %.6f last_ok %s" % (time.time(), last_ok))
        sys.exit(0)
    except OSError as e:
        print("error %s" % e)
        sys.exit(1)
    time.sleep(0.01)
print("never gone, last_ok %s" % last_ok)
sys.exit(1)
EOF
	local poller=$!
	# Deadline minus 1 s: everything is there.
	ret_sleep_until "$(ret_add "$ta" $((ttl - 1)))"
	ret_there "$f" "$g"
	ret_listed "$M/rlc" vanmark_a || fail "not listed before the deadline"
	ret_listed "$M/idocr" vanmark_b || fail "not listed before the deadline"
	expect_eq "$(cat "$f")" "payload-one" "open+read before the deadline"
	expect_eq "$(python3 -c 'import os; print(os.pread(3, 100, 0).decode().strip())')" \
		"payload-one" "pread of an open fd before the deadline"
	# Just before the deadline: look it up again (warms the kernel caches).
	ret_sleep_until "$(ret_add "$ta" "$(ret_add $ttl -0.3)")"
	stat "$f" "$g" >/dev/null || fail "gone before the deadline"
	ls -l "$M/rlc" "$M/idocr" >/dev/null
	# Gone by the deadline + RET_LATE.
	local lim
	lim=$(ret_add "$tb" $((ttl + RET_LATE)))
	ret_by "$lim" ret_all_gone "$f" "$g" ||
		fail "still there $RET_LATE s after the deadline (stat)"
	ret_listed "$M/rlc" vanmark_a && fail "still listed after the deadline"
	ret_listed "$M/idocr" vanmark_b && fail "still listed after the deadline"
	expect_errno "No such file or directory" cat "$f"
	expect_errno "No such file or directory" ls "$f"
	if (exec 6<"$f") 2>/dev/null; then fail "open succeeded after the deadline"; fi
	# The poller saw it vanish, not before the deadline and not late.
	wait "$poller" || fail "poller: $(cat "$T/poll.out")"
	out=$(cat "$T/poll.out")
	echo "poller: $out (deadline in [$(ret_add "$ta" $ttl), $(ret_add "$tb" $ttl)])"
	local gone=${out#gone }
	gone=${gone%% *}
	ret_lt "$gone" "$(ret_add "$ta" $ttl)" && fail "vanished before its deadline: $out (deadline >= $(ret_add "$ta" $ttl))"
	ret_lt "$lim" "$gone" && fail "cached lookup saw it late: $out (limit $lim)"
	# Handles opened before the deadline: reads fail with ESTALE (fd 3's
	# pages were in the page cache; fds 4 and 5 were never read). cat also
	# fstat()s its input first; the bare read(2) is checked with python.
	local errs="" o
	o=$(python3 -c 'import os; os.pread(3, 100, 0)' 2>&1) && errs+=" fd3(cached) read succeeded;"
	case "$o" in *Stale*) ;; *) errs+=" fd3(cached) pread: ${o##*Error: };" ;; esac
	o=$(python3 -c 'import os; os.read(4, 100)' 2>&1) && errs+=" fd4 read succeeded;"
	case "$o" in *Stale*) ;; *) errs+=" fd4 read: ${o##*Error: };" ;; esac
	o=$(cat <&5 2>&1) && errs+=" cat <&5 succeeded;"
	case "$o" in *Stale*) ;; *) errs+=" cat <&5: $o;" ;; esac
	[ -z "$errs" ] || fail "open handles after the deadline, want 'Stale file handle':$errs"
	exec 3<&- 4<&- 5<&-
}

# Life is extended by content changes (write, truncate) and by nothing else:
# touch into the future or a truncation to the same size does not extend;
# cp -p / tar x of old files do not shorten (they are stamped when created).
test_retention_only_content_changes_count() {
	local S=$T/s M=$T/m ttl=3 ta tb tw tw2 old=946684800 e1 e2
	ret_mount "$S" "$M" -o ttl=${ttl}s
	mkdir -p "$T/src/tardir"
	echo "cp-data" >"$T/src/cpmark"
	echo "tar-data" >"$T/src/tardir/tarmark"
	touch -d @$old "$T/src/cpmark" "$T/src/tardir/tarmark" "$T/src/tardir"
	tar -C "$T/src" -cf "$T/old.tar" tardir || fail "tar c"

	ta=$(ret_now)
	echo "w" >"$M/rlc/wmark"
	echo "t" >"$M/rlc/trmark"
	echo "u1" >"$M/rlc/u1mark"
	echo "u2" >"$M/idocr/u2mark"
	echo "s" >"$M/rlc/samemark"
	cp -p "$T/src/cpmark" "$M/rlc/cpmark" || fail "cp -p into the mount"
	tar -C "$M/idocr" -xf "$T/old.tar" || fail "tar x into the mount"
	tb=$(ret_now)
	ret_lt "$tb" "$(ret_add "$ta" 0.8)" || fail "setup too slow for the test: $ta .. $tb"

	e1=$(getfattr --only-values -n user.ekycfs.expires "$M/rlc/u1mark") || fail "getfattr"
	touch -d '+1 hour' "$M/rlc/u1mark" || fail "touch -d +1 hour"
	touch -d @$(($(date +%s) + 86400)) "$M/idocr/u2mark" || fail "touch -d @future"
	[ "$(stat -c %Y "$M/rlc/u1mark")" -gt $(($(date +%s) + 3000)) ] || fail "touch did not set mtime"
	[ "$(stat -c %Y "$M/idocr/u2mark")" -gt $(($(date +%s) + 80000)) ] || fail "touch did not set mtime"
	e2=$(getfattr --only-values -n user.ekycfs.expires "$M/rlc/u1mark") || fail "getfattr"
	expect_eq "$e2" "$e1" "expires after touch -d"
	expect_eq "$(stat -c %Y "$M/rlc/cpmark")" $old "cp -p kept the old mtime"
	expect_eq "$(stat -c %Y "$M/idocr/tardir/tarmark")" $old "tar x kept the old mtime"
	# Old mtimes did not shorten anything.
	ret_there "$M/rlc/cpmark" "$M/idocr/tardir" "$M/idocr/tardir/tarmark"
	expect_eq "$(cat "$M/idocr/tardir/tarmark")" "tar-data" "tar x content"

	# Before the first deadline: content changes on wmark and trmark.
	ret_sleep_until "$(ret_add "$tb" 2)"
	ret_there "$M/rlc/wmark" "$M/rlc/trmark" "$M/rlc/u1mark" "$M/idocr/u2mark" \
		"$M/rlc/cpmark" "$M/idocr/tardir/tarmark"
	tw=$(ret_now)
	echo "more" >>"$M/rlc/wmark" || fail "append"
	truncate -s 100 "$M/rlc/trmark" || fail "truncate"
	e1=$(getfattr --only-values -n user.ekycfs.expires "$M/rlc/samemark") || fail "getfattr"
	truncate -s 2 "$M/rlc/samemark" || fail "truncate to the same size"
	tw2=$(ret_now)
	e2=$(getfattr --only-values -n user.ekycfs.expires "$M/rlc/samemark") || fail "getfattr"
	expect_eq "$e2" "$e1" "expires after a truncation to the same size"
	# The new deadline is reported.
	local ew ewant_lo ewant_hi
	ew=$(date -u -d "$(getfattr --only-values -n user.ekycfs.expires "$M/rlc/wmark")" +%s) ||
		fail "expires after write"
	ewant_lo=${tw%.*}
	ewant_hi=${tw2%.*}
	[ "$ew" -ge $((ewant_lo + ttl)) ] && [ "$ew" -le $((ewant_hi + ttl)) ] ||
		fail "expires after a write: $ew, want $((ewant_lo + ttl))..$((ewant_hi + ttl))"

	# One second before the extended deadline (past the original one):
	# the changed files are there.
	ret_sleep_until "$(ret_add "$tw" $((ttl - 1)))"
	ret_there "$M/rlc/wmark" "$M/rlc/trmark"
	expect_eq "$(head -n 2 "$M/rlc/wmark" | tr '\n' ' ')" "w more " "content after append"
	expect_eq "$(stat -c %s "$M/rlc/trmark")" 100 "size after truncate"

	# The touched / copied / extracted files went at their original deadline.
	# So did the one truncated to its own size (its content did not change).
	ret_by "$(ret_add "$tb" $((ttl + RET_LATE)))" ret_all_gone \
		"$M/rlc/u1mark" "$M/idocr/u2mark" "$M/rlc/cpmark" "$M/idocr/tardir/tarmark" \
		"$M/rlc/samemark" || fail "touch -d / cp -p / tar x / truncate to the same size changed the deadline"
	ret_there "$M/rlc/wmark" "$M/rlc/trmark"
	# And the written ones go at last write + TTL.
	ret_by "$(ret_add "$tw2" $((ttl + RET_LATE)))" ret_all_gone "$M/rlc/wmark" "$M/rlc/trmark" ||
		fail "written file outlived last write + TTL"
}

# user.ekycfs.expires: RFC 3339 UTC, about now + TTL, read-only.
test_retention_expires_xattr() {
	local S=$T/s M=$T/m ttl=4 ta tb v e f=$T/m/idocr/expmark
	ret_mount "$S" "$M" -o ttl=${ttl}s
	ta=$(date +%s)
	echo x >"$f" || fail "create"
	tb=$(date +%s)
	v=$(getfattr --only-values -n user.ekycfs.expires "$f") || fail "getfattr expires"
	[[ "$v" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$ ]] ||
		fail "expires is not RFC 3339 UTC: '$v'"
	e=$(date -u -d "$v" +%s) || fail "unparsable: $v"
	[ "$e" -ge $((ta + ttl)) ] && [ "$e" -le $((tb + ttl)) ] ||
		fail "expires $v ($e) not in $((ta + ttl))..$((tb + ttl))"
	# Also through the usual getfattr -n output form.
	getfattr -n user.ekycfs.expires "$f" 2>/dev/null | grep -qx "user.ekycfs.expires=\"$v\"" ||
		fail "getfattr -n output"
	expect_errno "Operation not permitted" setfattr -n user.ekycfs.expires -v "2099-01-01T00:00:00Z" "$f"
	expect_errno "Operation not permitted" setfattr -x user.ekycfs.expires "$f"
	expect_eq "$(getfattr --only-values -n user.ekycfs.expires "$f")" "$v" "expires after setfattr attempts"
	ret_there "$f"
}

# A stamp edited on the backing file (zeroed, copied from another file,
# removed) makes the entry vanish while mounted, and it gets shredded; the
# same edits while unmounted are shredded by the sweep at the next mount.
test_retention_tampered_stamp() {
	local S=$T/s M=$T/m K=$T/key z zero b
	declare -A B
	"$EKYCFS" --genkey "$K" >/dev/null || fail "genkey"
	ret_mount "$S" "$M" -o ttl=1m,key_file="$K"
	for n in tA tB tC tD tE tF tG tH; do
		B[$n]=$(ret_backing_of "$S/rlc" sh -c "echo data-$n >'$M/rlc/$n'")
		[ -n "${B[$n]}" ] || fail "no backing entry for $n"
	done
	z=$(ret_stamp_hex "$S/rlc/${B[tA]}")
	expect_eq "$(( (${#z} - 2) / 2 ))" 52 "stamp xattr length (bytes)"
	zero=0x$(printf '0%.0s' $(seq 104))
	# While mounted: zero tA's stamp, copy tB's onto tC, remove tF's.
	expect setfattr -n user.ekycfs.stamp -v "$zero" "$S/rlc/${B[tA]}"
	expect setfattr -n user.ekycfs.stamp -v "$(ret_stamp_hex "$S/rlc/${B[tB]}")" "$S/rlc/${B[tC]}"
	expect setfattr -x user.ekycfs.stamp "$S/rlc/${B[tF]}"
	ret_drop_caches
	ret_by "$(ret_add "$(ret_now)" 2)" ret_all_gone "$M/rlc/tA" "$M/rlc/tC" "$M/rlc/tF" ||
		fail "entries with a tampered stamp still visible: $(ls "$M/rlc" | tr '\n' ' ')"
	ret_listed "$M/rlc" tA && fail "tA (zeroed stamp) still listed"
	ret_listed "$M/rlc" tC && fail "tC (copied stamp) still listed"
	ret_listed "$M/rlc" tF && fail "tF (removed stamp) still listed"
	expect_eq "$(cat "$M/rlc/tB")" "data-tB" "untouched tB"
	expect_eq "$(cat "$M/rlc/tD")" "data-tD" "untouched tD"
	# Vanished means shredded: their backing files leave the store.
	for n in tA tC tF; do
		ret_by "$(ret_add "$(ret_now)" 3)" eval "! find '$S' -name '${B[$n]}' | grep -q ." ||
			fail "backing file of vanished $n (${B[$n]}) still in the store"
	done

	# Without dropping caches: gone once the kernel's attribute/entry
	# caches (about 1 s) have expired.
	stat "$M/rlc/tE" >/dev/null || fail "tE gone too early"
	expect setfattr -n user.ekycfs.stamp -v "$zero" "$S/rlc/${B[tE]}"
	ret_by "$(ret_add "$(ret_now)" 2.5)" ret_gone "$M/rlc/tE" ||
		fail "tE (zeroed stamp, caches not dropped) still visible after 2.5 s"
	ret_by "$(ret_add "$(ret_now)" 3)" eval "! find '$S' -name '${B[tE]}' | grep -q ." ||
		fail "backing file of vanished tE still in the store"

	# While unmounted: zero tG's stamp, copy tB's onto tH.
	umount_fs "$M"
	expect setfattr -n user.ekycfs.stamp -v "$zero" "$S/rlc/${B[tG]}"
	expect setfattr -n user.ekycfs.stamp -v "$(ret_stamp_hex "$S/rlc/${B[tB]}")" "$S/rlc/${B[tH]}"
	local inv0
	inv0=$(ret_audit_count "$S/audit.log" invalid_stamp)
	ret_mount "$S" "$M" -o ttl=1m,key_file="$K"
	# The sweep before serving shredded them.
	for n in tA tC tE tF tG tH; do
		find "$S" -name "${B[$n]}" | grep -q . && fail "backing file of $n still there after remount"
	done
	expect_eq "$(ret_nreg "$S/rlc" "$S/.trash")" 2 "backing files after remount (tB, tD)"
	ret_all_gone "$M/rlc/tG" "$M/rlc/tH" || fail "tampered entries visible after remount"
	expect_eq "$(ls "$M/rlc" | tr '\n' ' ')" "tB tD " "listing after remount"
	expect_eq "$(cat "$M/rlc/tB")" "data-tB" "tB after remount"
	expect_eq "$(cat "$M/rlc/tD")" "data-tD" "tD after remount"
	[ "$(ret_audit_count "$S/audit.log" invalid_stamp)" -ge $((inv0 + 2)) ] ||
		fail "no invalid_stamp audit lines for the sweep"
}

# After an entry vanishes and is shredded, nothing of it stays in STORE:
# no regular file, no backing name, no stamp-bearing entry, nothing in the
# trash, no plaintext.
test_retention_shred_leaves_nothing() {
	local S=$T/s M=$T/m ttl=2 ta tb names i
	ret_mount "$S" "$M" -o ttl=${ttl}s
	expect_eq "$(ret_nreg "$S/rlc" "$S/idocr" "$S/.trash")" 0 "backing files before"
	ta=$(ret_now)
	mkdir -p "$M/rlc/shrmark_dir/sub"
	for i in 1 2 3; do echo "shrmark-content-$i" >"$M/rlc/shrmark_f$i"; done
	echo "shrmark-content-n" >"$M/rlc/shrmark_dir/sub/shrmark_n"
	head -c 1048576 /dev/urandom >"$M/idocr/shrmark_big"
	echo "shrmark-content-i" >"$M/idocr/shrmark_i"
	tb=$(ret_now)
	expect_eq "$(ret_nreg "$S/rlc" "$S/idocr")" 6 "backing files after create"
	names=$(find "$S/rlc" "$S/idocr" -mindepth 1 -printf '%f\n')
	ret_by "$(ret_add "$tb" $((ttl + RET_LATE)))" ret_all_gone "$M/rlc/shrmark_f1" \
		"$M/rlc/shrmark_dir" "$M/idocr/shrmark_big" ||
		fail "not gone after the deadline"
	# The shredder runs in the background; give it a moment.
	ret_by "$(ret_add "$(ret_now)" 3)" ret_is_n 0 ret_nall "$S/rlc" ||
		fail "STORE/rlc not empty: $(find "$S/rlc" -mindepth 1)"
	ret_by "$(ret_add "$(ret_now)" 3)" ret_is_n 0 ret_nall "$S/idocr" ||
		fail "STORE/idocr not empty: $(find "$S/idocr" -mindepth 1)"
	ret_by "$(ret_add "$(ret_now)" 3)" ret_is_n 0 ret_nall "$S/.trash" ||
		fail "STORE/.trash not empty: $(ls -A "$S/.trash")"
	local nm
	for nm in $names; do
		find "$S" -name "$nm" | grep -q . && fail "backing name $nm still in the store"
	done
	# The only stamp-bearing entries left are the zone roots.
	local stamped
	stamped=$(getfattr -R --absolute-names -m '^user\.ekycfs\.' "$S" 2>/dev/null |
		sed -n 's/^# file: //p' | sort | tr '\n' ' ')
	expect_eq "$stamped" "$S/idocr $S/rlc " "entries carrying an ekycfs xattr"
	no_plaintext "$S" shrmark
	ls "$M" | grep -qx rlc || fail "zone root rlc vanished"
	ls "$M" | grep -qx idocr || fail "zone root idocr vanished"
}

# Directories: one holding a live entry outlives its own deadline (also when
# the live entry is nested), and goes once that entry goes; an empty one goes
# at its deadline; one whose last entry is removed after its deadline goes.
test_retention_directories() {
	local S=$T/s M=$T/m ttl=3 t0 t0b tfa tfb tr
	local a=$T/m/rlc/dmark_a
	ret_mount "$S" "$M" -o ttl=${ttl}s
	t0=$(ret_now)
	mkdir -p "$a/dmark_b/dmark_c" "$M/rlc/dmark_empty" "$M/idocr/dmark_single" "$M/rlc/dmark_rm" ||
		fail "mkdir"
	t0b=$(ret_now)
	ret_sleep_until "$(ret_add "$t0" 1.5)"
	ret_there "$a" "$a/dmark_b/dmark_c" "$M/rlc/dmark_empty" "$M/idocr/dmark_single" "$M/rlc/dmark_rm"
	# Files created late, well before the directories' deadline.
	ret_sleep_until "$(ret_add "$t0" 2.5)"
	tfa=$(ret_now)
	echo "deep" >"$a/dmark_b/dmark_c/dmark_f" || fail "create nested file"
	echo "rm" >"$M/rlc/dmark_rm/dmark_g" || fail "create file"
	tfb=$(ret_now)
	# Across the directories' deadline, up to 0.6 s before the file's:
	# the chain is there all the time.
	local t_end
	t_end=$(ret_add "$tfa" "$(ret_add $ttl -0.6)")
	while ret_lt "$(ret_now)" "$t_end"; do
		ret_there "$a" "$a/dmark_b" "$a/dmark_b/dmark_c" "$a/dmark_b/dmark_c/dmark_f" "$M/rlc/dmark_rm"
		ret_listed "$M/rlc" dmark_a || fail "dmark_a not listed while it holds a live file"
		sleep 0.1
	done
	expect_eq "$(cat "$a/dmark_b/dmark_c/dmark_f")" "deep" "nested file"
	# The empty directories went at their own deadline.
	ret_by "$(ret_add "$t0b" $((ttl + RET_LATE)))" ret_all_gone \
		"$M/rlc/dmark_empty" "$M/idocr/dmark_single" ||
		fail "empty directory outlived its deadline"
	# Removing the last entry of a directory past its deadline: it goes.
	tr=$(ret_now)
	rm "$M/rlc/dmark_rm/dmark_g" || fail "rm"
	ret_by "$(ret_add "$tr" $RET_LATE)" ret_gone "$M/rlc/dmark_rm" ||
		fail "directory past its deadline stayed after its last entry was removed"
	# The file's deadline takes the whole chain with it.
	ret_by "$(ret_add "$tfb" $((ttl + RET_LATE)))" ret_all_gone \
		"$a/dmark_b/dmark_c/dmark_f" "$a/dmark_b/dmark_c" "$a/dmark_b" "$a" ||
		fail "nested directories outlived their last live entry"
	expect_eq "$(ls -A "$M/rlc" "$M/idocr" | grep -c dmark)" 0 "listing"
	expect_eq "$(ls "$M" | tr '\n' ' ')" "idocr rlc " "zone roots"
	ret_by "$(ret_add "$(ret_now)" 3)" ret_is_n 0 ret_nall "$S/rlc" ||
		fail "STORE/rlc not empty: $(find "$S/rlc" -mindepth 1)"
	ret_by "$(ret_add "$(ret_now)" 3)" ret_is_n 0 ret_nall "$S/idocr" ||
		fail "STORE/idocr not empty: $(find "$S/idocr" -mindepth 1)"
}

# What expired while unmounted is gone before the first access and shredded
# at mount (S1), or by --sweep offline (S2); what is still live stays.
# --sweep refuses a directory that is not a store and changes nothing in it.
test_retention_remount_and_sweep() {
	local K=$T/key ttl=4 t0 t0b ty s m out rc
	"$EKYCFS" --genkey "$K" >/dev/null || fail "genkey"
	ret_mount "$T/s1" "$T/m1" -o ttl=${ttl}s,key_file="$K"
	ret_mount "$T/s2" "$T/m2" -o ttl=${ttl}s,key_file="$K"
	t0=$(ret_now)
	for m in "$T/m1" "$T/m2"; do
		mkdir "$m/rlc/rmmark_dir" || fail "mkdir"
		echo old1 >"$m/rlc/rmmark_old1"
		echo old2 >"$m/idocr/rmmark_old2"
		echo old3 >"$m/rlc/rmmark_dir/rmmark_old3"
	done
	t0b=$(ret_now)
	ret_sleep_until "$(ret_add "$t0" 2.5)"
	ty=$(ret_now)
	for m in "$T/m1" "$T/m2"; do echo young >"$m/idocr/rmmark_young"; done
	for s in "$T/s1" "$T/s2"; do
		expect_eq "$(ret_nreg "$s/rlc" "$s/idocr")" 4 "backing files before unmount"
	done
	umount_fs "$T/m1"
	umount_fs "$T/m2"
	ret_sleep_until "$(ret_add "$t0b" "$ttl.3")"
	ret_lt "$(ret_now)" "$(ret_add "$ty" $((ttl - 2)))" || fail "test too slow: young would expire"

	# S1: mount again.
	ret_mount "$T/s1" "$T/m1" -o ttl=${ttl}s,key_file="$K"
	expect_eq "$(ret_nreg "$T/s1/rlc" "$T/s1/idocr" "$T/s1/.trash")" 1 \
		"backing files right after mount (only the young one)"
	expect_eq "$(ret_nall "$T/s1/rlc")" 0 "STORE/rlc entries right after mount"
	expect_eq "$(ls "$T/m1/rlc" | tr '\n' ' ')" "" "rlc listing after remount"
	expect_eq "$(ls "$T/m1/idocr" | tr '\n' ' ')" "rmmark_young " "idocr listing after remount"
	ret_all_gone "$T/m1/rlc/rmmark_old1" "$T/m1/idocr/rmmark_old2" "$T/m1/rlc/rmmark_dir" ||
		fail "expired entries visible after remount"
	expect_eq "$(cat "$T/m1/idocr/rmmark_young")" young "live entry after remount"
	ret_audit_at_least "$T/s1/audit.log" shredded 3 || fail "no shredded audit lines after remount"

	# S2: offline sweep.
	out=$("$EKYCFS" --sweep -o key_file="$K",ttl=${ttl}s "$T/s2" 2>&1)
	rc=$?
	expect_eq "$rc" 0 "--sweep exit status (output: $out)"
	[ -n "$out" ] || fail "--sweep printed no summary"
	expect_eq "$(ret_nreg "$T/s2/rlc" "$T/s2/idocr" "$T/s2/.trash")" 1 \
		"backing files after --sweep (only the young one)"
	expect_eq "$(ret_nall "$T/s2/rlc")" 0 "STORE/rlc entries after --sweep"
	ret_audit_at_least "$T/s2/audit.log" shredded 3 || fail "no shredded audit lines after --sweep"
	ret_mount "$T/s2" "$T/m2" -o ttl=${ttl}s,key_file="$K"
	expect_eq "$(cat "$T/m2/idocr/rmmark_young")" young "live entry after --sweep"

	# Not a store: refused, untouched (even when it looks like one).
	local P=$T/plain before after
	mkdir -p "$P/rlc/sub" "$P/idocr" "$P/.trash"
	echo precious >"$P/rlc/file"
	echo precious2 >"$P/rlc/sub/file2"
	echo junk >"$P/.trash/x"
	echo '{}' >"$P/audit.log"
	touch -d @946684800 "$P/rlc/file" "$P/rlc/sub/file2"
	before=$(cd "$P" && find . -printf '%p %y %s %T@ %i\n' | sort && find . -type f -exec md5sum {} + | sort)
	if "$EKYCFS" --sweep -o key_file="$K",ttl=${ttl}s "$P" >"$T/sw.out" 2>&1; then
		fail "--sweep accepted a directory that is not a store"
	fi
	[ -s "$T/sw.out" ] || fail "--sweep refused silently"
	if "$EKYCFS" --sweep "$P" >/dev/null 2>&1; then fail "--sweep (no options) accepted a non-store"; fi
	after=$(cd "$P" && find . -printf '%p %y %s %T@ %i\n' | sort && find . -type f -exec md5sum {} + | sort)
	expect_eq "$after" "$before" "non-store directory after --sweep"
}

# rm shreds: the backing file goes, the audit log says deleted then
# shredded; rm -rf of 200 files completes and empties STORE/<zone>.
test_retention_rm_shreds() {
	local S=$T/s M=$T/m b i d
	ret_mount "$S" "$M" -o ttl=1m
	b=$(ret_backing_of "$S/rlc" sh -c "echo rmdata >'$M/rlc/rmshred_mark'")
	[ -n "$b" ] || fail "no backing file"
	expect rm "$M/rlc/rmshred_mark"
	ret_gone "$M/rlc/rmshred_mark" || fail "still there after rm"
	ret_by "$(ret_add "$(ret_now)" 2)" eval "! find '$S' -name '$b' | grep -q ." ||
		fail "backing file still in the store after rm"
	ret_by "$(ret_add "$(ret_now)" 2)" ret_is_n 0 ret_nall "$S/.trash" || fail "trash not empty"
	ret_by "$(ret_add "$(ret_now)" 2)" ret_audit_at_least "$S/audit.log" shredded 1 ||
		fail "no shredded line after rm"
	python3 - "$S/audit.log" <<'EOF' || fail "audit after rm: $(cat "$S/audit.log")"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
dele = [i for i, r in enumerate(recs) if r["event"] == "deleted"]
if len(dele) != 1:
    sys.exit("want one deleted line")
d = recs[dele[0]]
sh = [i for i, r in enumerate(recs) if r["event"] == "shredded" and r["id"] == d["id"]]
if not sh or sh[0] < dele[0]:
    sys.exit("want a shredded line with the same id after the deleted one")
if d["zone"] != "rlc":
    sys.exit("zone")
EOF
	# A tree of 200 files.
	for d in $(seq 10); do
		mkdir -p "$M/rlc/rmtree/d$d" || fail "mkdir"
		for i in $(seq 20); do echo "file $d $i" >"$M/rlc/rmtree/d$d/f$i"; done
	done
	expect_eq "$(find "$M/rlc/rmtree" -type f | wc -l)" 200 "files in the tree"
	expect_eq "$(ret_nreg "$S/rlc")" 200 "backing files of the tree"
	timeout 60 rm -rf "$M/rlc/rmtree" || fail "rm -rf of 200 files failed"
	ret_gone "$M/rlc/rmtree" || fail "tree still there"
	expect_eq "$(ls -A "$M/rlc" | wc -l)" 0 "rlc listing after rm -rf"
	ret_by "$(ret_add "$(ret_now)" 5)" ret_is_n 0 ret_nall "$S/rlc" ||
		fail "STORE/rlc not empty after rm -rf: $(find "$S/rlc" -mindepth 1 | head -5)"
	ret_by "$(ret_add "$(ret_now)" 5)" ret_is_n 0 ret_nall "$S/.trash" ||
		fail "STORE/.trash not empty after rm -rf: $(ls -A "$S/.trash" | wc -l)"
	ret_by "$(ret_add "$(ret_now)" 5)" ret_audit_at_least "$S/audit.log" shredded 201 ||
		fail "shredded lines: $(ret_audit_count "$S/audit.log" shredded), want >= 201"
	[ "$(ret_audit_count "$S/audit.log" deleted)" -ge 201 ] ||
		fail "deleted lines: $(ret_audit_count "$S/audit.log" deleted), want >= 201"
	ret_audit_check "$S/audit.log" || fail "audit log format"
}

# The audit log (here at a custom path): vanished and shredded lines for
# expiry, deleted for rm, each line valid JSON with the fields, and no
# plaintext name or content anywhere in it.
test_retention_audit_log() {
	local S=$T/s M=$T/m A=$T/auditdir/log.jsonl ttl=2 tb
	local mk=audmark_Q7x9
	mkdir -p "$T/auditdir"
	ret_mount "$S" "$M" -o ttl=${ttl}s,audit_log="$A"
	mkdir "$M/rlc/${mk}_dir"
	echo "${mk}_content1" >"$M/rlc/${mk}_dir/${mk}_f1"
	echo "${mk}_content2" >"$M/rlc/${mk}_f2"
	echo "${mk}_content3" >"$M/idocr/${mk}_f3"
	echo "${mk}_content4" >"$M/idocr/${mk}_rm"
	tb=$(ret_now)
	rm "$M/idocr/${mk}_rm" || fail "rm"
	ret_by "$(ret_add "$tb" $((ttl + RET_LATE)))" ret_all_gone \
		"$M/rlc/${mk}_dir" "$M/rlc/${mk}_f2" "$M/idocr/${mk}_f3" || fail "not vanished"
	ret_by "$(ret_add "$(ret_now)" 3)" ret_audit_at_least "$A" shredded 4 ||
		fail "shredded lines: $(ret_audit_count "$A" shredded), want >= 4"
	ret_audit_check "$A" || fail "audit log format: $(cat "$A")"
	[ "$(ret_audit_count "$A" vanished)" -ge 3 ] || fail "vanished lines: $(ret_audit_count "$A" vanished)"
	[ "$(ret_audit_count "$A" vanished idocr)" -ge 1 ] || fail "no vanished line for zone idocr"
	[ "$(ret_audit_count "$A" vanished rlc)" -ge 2 ] || fail "no vanished lines for zone rlc"
	expect_eq "$(ret_audit_count "$A" deleted)" 1 "deleted lines"
	# Every vanished file has a shredded line with its id; a file written
	# once has deadline - born = TTL (plus the moment between create and
	# write).
	python3 - "$A" "$ttl" <<'EOF' || fail "audit content: $(cat "$A")"
import calendar, json, re, sys, time
recs = [json.loads(l) for l in open(sys.argv[1])]
ttl = int(sys.argv[2])
def ts(s):
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$", s)
    return calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) + float(m.group(2) or 0)
shred_ids = {r["id"] for r in recs if r["event"] == "shredded"}
files = [r for r in recs if r["event"] == "vanished" and r["bytes"] and r["bytes"] > 0]
if len(files) < 3:
    sys.exit("want >= 3 vanished lines with bytes > 0, got %d" % len(files))
for r in files:
    if r["id"] not in shred_ids:
        sys.exit("vanished %s has no shredded line" % r["id"])
    d = ts(r["deadline"]) - ts(r["born"])
    if not ttl <= d < ttl + 1:
        sys.exit("deadline - born = %s for %r" % (d, r))
    if ts(r["time"]) < ts(r["deadline"]):
        sys.exit("vanished before its deadline: %r" % r)
EOF
	if grep -q -i "audmark" "$A"; then fail "a plaintext name or content is in the audit log"; fi
	if grep -q -i "content[1-4]" "$A"; then fail "plaintext content in the audit log"; fi
	no_plaintext "$S" audmark
}

# 300 entries expiring within the same second all vanish within RET_LATE
# seconds of the deadline, and are all shredded.
test_retention_many_at_once() {
	local S=$T/s M=$T/m ttl=5 ta tb i n=300
	ret_mount "$S" "$M" -o ttl=${ttl}s
	ta=$(ret_now)
	for i in $(seq $n); do echo "m$i" >"$M/rlc/many$i"; done
	tb=$(ret_now)
	ret_lt "$tb" "$(ret_add "$ta" 1)" || fail "creating $n files took more than 1 s"
	expect_eq "$(ret_nreg "$S/rlc")" $n "backing files"
	ret_sleep_until "$(ret_add "$ta" $((ttl - 1)))"
	expect_eq "$(ls "$M/rlc" | wc -l)" $n "listed 1 s before the deadline"
	# A script that succeeds when none of the entries is visible any more
	# (neither by name nor in the listing).
	cat >"$T/left.py" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
left = sum(os.path.lexists(os.path.join(d, "many%d" % i)) for i in range(1, n + 1))
print(left)
sys.exit(1 if left or os.listdir(d) else 0)
EOF
	# Look every one of them up just before the deadline (kernel caches).
	ret_sleep_until "$(ret_add "$ta" "$(ret_add $ttl -1.2)")"
	expect_eq "$(python3 "$T/left.py" "$M/rlc" $n)" $n "visible by name just before the deadline"
	expect_eq "$(ls "$M/rlc" | wc -l)" $n "listed just before the deadline"
	local lim
	lim=$(ret_add "$tb" $((ttl + RET_LATE)))
	ret_by "$lim" eval 'python3 "$T/left.py" "$M/rlc" $n >/dev/null'
	local rc=$? left
	left=$(ls "$M/rlc" | wc -l)
	[ $rc -eq 0 ] || fail "$left of $n entries still there $RET_LATE s after the deadline"
	ret_by "$(ret_add "$(ret_now)" 5)" ret_is_n 0 ret_nall "$S/rlc" ||
		fail "STORE/rlc: $(ret_nall "$S/rlc") entries left after shredding"
	ret_by "$(ret_add "$(ret_now)" 5)" ret_is_n 0 ret_nall "$S/.trash" ||
		fail "STORE/.trash: $(ret_nall "$S/.trash") entries left"
	ret_by "$(ret_add "$(ret_now)" 3)" ret_audit_at_least "$S/audit.log" shredded $n ||
		fail "shredded lines: $(ret_audit_count "$S/audit.log" shredded)"
	expect_eq "$(ret_audit_count "$S/audit.log" vanished)" $n "vanished lines"
}

# An open read-only handle gets nothing past the deadline even when the
# reaper cannot run (the daemon is stopped across the deadline): the kernel
# must ask the daemon (attribute timeout capped at the deadline, checked
# before each cached read) instead of answering from its page cache.
test_retention_open_handle_stopped_daemon() {
	local store=$T/store mnt=$T/mnt pid reader
	trap 'kill -CONT $FG_PID 2>/dev/null; cleanup_mounts' EXIT
	mount_fg "$store" "$mnt" "$T/daemon.log" -o ttl=3s
	pid=$FG_PID
	printf 'SECRET-PLAINTEXT' >"$mnt/rlc/f" || fail "write"
	python3 - "$mnt/rlc/f" "$T/go" "$T/out" <<'PY' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
assert os.pread(fd, 16, 0) == b"SECRET-PLAINTEXT"  # now in the page cache
while not os.path.exists(sys.argv[2]):
    time.sleep(0.02)
try:
    out = "DATA " + os.pread(fd, 16, 0).decode()
except OSError as e:
    out = "ERR %d" % e.errno
open(sys.argv[3], "w").write(out)
PY
	reader=$!
	sleep 0.5
	kill -STOP "$pid" || fail "SIGSTOP"
	sleep 4 # past the deadline; no reaper, no notification
	touch "$T/go"
	sleep 1
	grep -q SECRET "$T/out" 2>/dev/null && fail "read cached plaintext past the deadline"
	kill -CONT "$pid"
	wait "$reader" || fail "reader failed"
	case "$(cat "$T/out")" in "ERR 116") ;; *) fail "reader got: $(cat "$T/out")" ;; esac
	return 0
}

# Zone folders swapped in the backing store while unmounted (each zone
# with its own TTL): each folder's stamp names its own zone, so both are
# reset at the next mount, and nothing of rlc lives on under idocr's TTL.
test_retention_swapped_zone_folders() {
	local S=$T/s M=$T/m
	printf '[zone rlc]\nttl = 1h\n[zone idocr]\nttl = 2h\n' >"$T/zones.conf"
	"$EKYCFS" --genkey "$T/key" >/dev/null || fail genkey
	ret_mount "$S" "$M" -o "config=$T/zones.conf,key_file=$T/key"
	echo "face" >"$M/rlc/face.jpg" || fail write
	mkdir "$M/rlc/d" && echo "doc" >"$M/rlc/d/f" || fail "folder"
	echo "id" >"$M/idocr/id.jpg" || fail write
	umount_fs "$M"
	wait_until 10 flock -n "$S" true || fail "the store is still locked"
	mv "$S/rlc" "$S/t" && mv "$S/idocr" "$S/rlc" && mv "$S/t" "$S/idocr" || fail "swapping"
	ret_mount "$S" "$M" -o "config=$T/zones.conf,key_file=$T/key"
	expect_eq "$(ls -A "$M/rlc" "$M/idocr" | grep -cv -e '^$' -e ':$')" 0 "entries after the swap"
	expect_eq "$(grep -c '"event":"destroyed"' "$S/audit.log")" 4 "destroyed audit lines"
	expect_eq "$(find "$S/rlc" "$S/idocr" -mindepth 1 | wc -l)" 0 "backing entries after the swap"
	# A zone mounted normally again keeps what it holds.
	echo "new" >"$M/rlc/n.jpg" || fail write
	umount_fs "$M"
	wait_until 10 flock -n "$S" true || fail "the store is still locked"
	ret_mount "$S" "$M" -o "config=$T/zones.conf,key_file=$T/key"
	expect_eq "$(cat "$M/rlc/n.jpg")" new "content after a plain remount"
	# Nor can a folder of one zone be put in the place of another zone.
	mkdir "$M/rlc/sub" && echo "doc" >"$M/rlc/sub/g.jpg" || fail "folder"
	umount_fs "$M"
	wait_until 10 flock -n "$S" true || fail "the store is still locked"
	mv "$S/idocr" "$S/idocr.old" || fail "moving idocr away"
	mv "$(find "$S/rlc" -mindepth 1 -maxdepth 1 -type d)" "$S/idocr" || fail "moving the folder"
	ret_mount "$S" "$M" -o "config=$T/zones.conf,key_file=$T/key"
	expect_eq "$(ls -A "$M/idocr")" "" "entries of a folder put in a zone's place"
	expect_eq "$(find "$S/idocr" -mindepth 1 | wc -l)" 0 "backing entries of that folder"
}
