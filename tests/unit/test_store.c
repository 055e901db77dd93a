/* test_store.c - Criterion suite for fs/store.c: creating and recognising a
 * STORE, every refusal (changing nothing), the lock, zone stamps, key modes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "config.h"
#include "crypto.h"
#include "testutil.h"
#include "stamp.h"
#include "store.h"

#define MAX_NAMES 16

static char base[64];
static char spath[128]; /* base/store: not created by setup */
static struct config cfg;
static struct keys *ka, *kb; /* two fixed masters */
static char err[512];

static void setup(void)
{
	uint8_t master[KEY_BYTES];

	cr_assert_eq(crypto_setup(), 0);
	for (size_t i = 0; i < KEY_BYTES; i++)
		master[i] = (uint8_t)i;
	ka = keys_from_master(master);
	master[0] ^= 0xff;
	kb = keys_from_master(master);
	cr_assert(ka && kb);
	cr_assert_eq(config_init(&cfg), 0);
	cr_assert_eq(cfg.nzones, 2, "default zones rlc and idocr");
	strcpy(base, "/tmp/ekycfs-test-store-XXXXXX");
	cr_assert_not_null(mkdtemp(base));
	snprintf(spath, sizeof(spath), "%s/store", base);
	err[0] = '\0';
}

static void teardown(void)
{
	keys_free(ka);
	keys_free(kb);
	config_release(&cfg);
	rm_tree(base);
}

TestSuite(store, .init = setup, .fini = teardown);

/* ---- helpers ---- */

static int sopen(struct store *s, const struct keys *k, bool ephemeral, enum store_mode mode)
{
	err[0] = '\0';
	return store_open(s, spath, &cfg, k, ephemeral, mode, err, sizeof(err));
}

static void sub(char *out, const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", spath, name);
}

/* Contents of the file at p (NUL-terminated); returns its length. */
static size_t read_file(const char *p, char *buf, size_t cap)
{
	int fd = open(p, O_RDONLY);
	ssize_t n;

	cr_assert_geq(fd, 0, "%s: %s", p, strerror(errno));
	n = read(fd, buf, cap - 1);
	cr_assert_geq(n, 0);
	buf[n] = '\0';
	close(fd);
	return (size_t)n;
}

static size_t read_marker(char *buf, size_t cap)
{
	char p[PATH_MAX];

	sub(p, STORE_MARKER);
	return read_file(p, buf, cap);
}

static void write_file(const char *p, const char *text)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	cr_assert_geq(fd, 0, "%s: %s", p, strerror(errno));
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* The raw stamp xattr of STORE/name; returns its length or -1. */
static ssize_t zone_xattr(const char *name, uint8_t *buf, size_t cap)
{
	char p[PATH_MAX];

	sub(p, name);
	return getxattr(p, STAMP_XATTR, buf, cap);
}

/* Names in the directory p, except . and ..; returns how many. */
static size_t list(const char *p, char names[MAX_NAMES][256])
{
	DIR *dp = opendir(p);
	struct dirent *d;
	size_t n = 0;

	cr_assert_not_null(dp, "%s: %s", p, strerror(errno));
	while ((d = readdir(dp))) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		cr_assert_lt(n, (size_t)MAX_NAMES);
		snprintf(names[n++], 256, "%s", d->d_name);
	}
	closedir(dp);
	return n;
}

static bool listed(char names[MAX_NAMES][256], size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

/* Everything a refused open must leave as it was. */
struct snapshot {
	char marker[1024];
	size_t marker_len;
	uint8_t zstamp[CONFIG_MAX_ZONES][STAMP_BYTES + 8];
	ssize_t zstamp_len[CONFIG_MAX_ZONES];
	char names[MAX_NAMES][256];
	size_t n;
};

static void take(struct snapshot *sn)
{
	memset(sn, 0, sizeof(*sn));
	sn->marker_len = read_marker(sn->marker, sizeof(sn->marker));
	for (size_t i = 0; i < cfg.nzones; i++)
		sn->zstamp_len[i] = zone_xattr(cfg.zones[i].name, sn->zstamp[i], STAMP_BYTES + 8);
	sn->n = list(spath, sn->names);
}

static void expect_unchanged(const struct snapshot *before)
{
	struct snapshot now;

	take(&now);
	cr_expect_eq(now.marker_len, before->marker_len);
	cr_expect_str_eq(now.marker, before->marker, "marker changed");
	for (size_t i = 0; i < cfg.nzones; i++) {
		cr_expect_eq(now.zstamp_len[i], before->zstamp_len[i]);
		cr_expect_arr_eq(now.zstamp[i], before->zstamp[i], STAMP_BYTES + 8,
				 "zone %s stamp changed", cfg.zones[i].name);
	}
	cr_expect_eq(now.n, before->n, "entries added or removed");
	for (size_t i = 0; i < before->n; i++)
		cr_expect(listed(now.names, now.n, before->names[i]), "%s gone", before->names[i]);
}

static void create_store(const struct keys *k, bool ephemeral)
{
	struct store s;

	cr_assert_eq(sopen(&s, k, ephemeral, STORE_MOUNT), 0, "%s", err);
	cr_assert(s.created);
	store_close(&s);
}

/* The check value a marker holds: bound (zone stamps bound), or the one
 * of a store made before. */
static void check_hex_of(const struct keys *k, bool bound, char hex[2 * KEY_CHECK_BYTES + 1])
{
	uint8_t check[KEY_CHECK_BYTES];

	if (bound)
		keys_check_value_bound(k, check);
	else
		keys_check_value(k, check);
	sodium_bin2hex(hex, 2 * KEY_CHECK_BYTES + 1, check, KEY_CHECK_BYTES);
}

static void check_hex(const struct keys *k, char hex[2 * KEY_CHECK_BYTES + 1])
{
	check_hex_of(k, true, hex);
}

/* Replace the marker's version=2 by version=DIGIT, nothing else. */
static void set_marker_version(char digit)
{
	char marker[1024], p[PATH_MAX], *v;

	read_marker(marker, sizeof(marker));
	v = strstr(marker, "\nversion=2\n");
	cr_assert_not_null(v, "marker without version 2: %s", marker);
	v[9] = digit;
	sub(p, STORE_MARKER);
	write_file(p, marker);
}

/* Make the store's marker (for key k) one of a store made before zone
 * stamps were bound. */
static void make_marker_unbound(const struct keys *k)
{
	char marker[1024], bound[2 * KEY_CHECK_BYTES + 1], old[2 * KEY_CHECK_BYTES + 1],
		p[PATH_MAX];
	char *at;

	read_marker(marker, sizeof(marker));
	check_hex_of(k, true, bound);
	check_hex_of(k, false, old);
	at = strstr(marker, bound);
	cr_assert_not_null(at, "marker without the bound check value: %s", marker);
	memcpy(at, old, strlen(old));
	sub(p, STORE_MARKER);
	write_file(p, marker);
	set_marker_version('1');
}

/* ---- creation ---- */

Test(store, mount_creates_missing_store)
{
	char marker[1024], p[PATH_MAX], hex[2 * KEY_CHECK_BYTES + 1], line[160];
	int64_t before = clock_realtime(NULL);
	struct store s;
	struct stat sb, zb;

	cr_assert_eq(sopen(&s, ka, false, STORE_MOUNT), 0, "%s", err);
	cr_expect(s.created);
	cr_expect_not(s.ephemeral);
	cr_expect_not(s.destroy_all);
	cr_expect(crypto_cipher_usable(s.cipher));
	cr_assert_eq(stat(spath, &sb), 0);
	cr_expect(S_ISDIR(sb.st_mode));
	cr_expect_eq(sb.st_mode & 0077, 0, "store readable by others: %o", sb.st_mode & 0777);

	read_marker(marker, sizeof(marker));
	cr_expect_eq(strncmp(marker, "ekycfs-store\n", 13), 0, "marker: %s", marker);
	cr_expect_not_null(strstr(marker, "\nversion=2\n"), "marker: %s", marker);
	cr_expect_not_null(strstr(marker, "\nkey_mode=keyfile\n"), "marker: %s", marker);
	snprintf(line, sizeof(line), "\ncipher=%s\n", crypto_cipher_name(s.cipher));
	cr_expect_not_null(strstr(marker, line), "marker: %s", marker);
	check_hex(ka, hex);
	snprintf(line, sizeof(line), "\nkey_check=%s\n", hex);
	cr_expect_not_null(strstr(marker, line), "marker: %s", marker);
	{ /* the key itself never reaches the disk */
		char master_hex[2 * KEY_BYTES + 1];

		sodium_bin2hex(master_hex, sizeof(master_hex), ka->master, KEY_BYTES);
		cr_expect_null(strstr(marker, master_hex), "master key in the marker");
	}

	sub(p, STORE_TRASH);
	cr_assert_eq(stat(p, &sb), 0);
	cr_expect(S_ISDIR(sb.st_mode));
	cr_expect_geq(s.trash_fd, 0);
	cr_assert_eq(s.nzones, 2);
	for (size_t i = 0; i < 2; i++) {
		struct stamp st;
		uint64_t ino = 0;
		bool unbound = true;

		sub(p, cfg.zones[i].name);
		cr_assert_eq(stat(p, &sb), 0, "zone %s missing", cfg.zones[i].name);
		cr_expect(S_ISDIR(sb.st_mode));
		cr_assert_geq(s.zone_fd[i], 0);
		cr_assert_eq(fstat(s.zone_fd[i], &zb), 0);
		cr_expect_eq(zb.st_ino, sb.st_ino, "zone_fd is not the zone dir");
		cr_assert_eq(store_read_zone_stamp(ka, s.fd, cfg.zones[i].name, &st, &unbound), 0,
			     "zone %s has no valid stamp", cfg.zones[i].name);
		cr_expect_not(unbound, "a new zone stamp names its zone");
		cr_expect_eq(store_read_stamp(ka, s.fd, cfg.zones[i].name, &st, &ino), -EBADMSG,
			     "a zone stamp read as an entry's");
		cr_expect_eq(st.kind, STAMP_DIR);
		cr_expect_arr_eq(st.id, s.zone_stamp[i].id, FILE_ID_BYTES);
		cr_expect_geq(st.birth, before);
		cr_expect_leq(st.birth, st.mtime);
	}
	cr_expect_neq(memcmp(s.zone_stamp[0].id, s.zone_stamp[1].id, FILE_ID_BYTES), 0,
		      "zones share a directory id");
	store_close(&s);
	store_close(&s); /* idempotent */
}

Test(store, mount_initialises_existing_empty_dir)
{
	struct store s;
	char marker[1024];

	cr_assert_eq(mkdir(spath, 0700), 0);
	cr_assert_eq(sopen(&s, ka, false, STORE_MOUNT), 0, "%s", err);
	cr_expect(s.created);
	read_marker(marker, sizeof(marker));
	cr_expect_not_null(strstr(marker, "version=2"));
	store_close(&s);
}

Test(store, reopen_with_same_key_file)
{
	char kpath[PATH_MAX];
	struct keys *k1 = NULL, *k2 = NULL;
	struct store s;
	struct stamp first[2];
	struct snapshot sn;

	snprintf(kpath, sizeof(kpath), "%s/key", base);
	cr_assert_eq(keys_write_file(kpath), 0);
	cr_assert_eq(keys_load_file(kpath, &k1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(keys_load_file(kpath, &k2, err, sizeof(err)), 0, "%s", err);

	cr_assert_eq(sopen(&s, k1, false, STORE_MOUNT), 0, "%s", err);
	memcpy(first, s.zone_stamp, sizeof(first));
	store_close(&s);
	take(&sn);

	cr_assert_eq(sopen(&s, k2, false, STORE_MOUNT), 0, "%s", err);
	cr_expect_not(s.created);
	cr_expect_not(s.ephemeral);
	cr_expect_not(s.destroy_all);
	for (size_t i = 0; i < 2; i++) {
		cr_expect_not(s.zone_reset[i], "zone %zu reset on a plain remount", i);
		cr_expect_arr_eq(s.zone_stamp[i].id, first[i].id, FILE_ID_BYTES);
		cr_expect_eq(s.zone_stamp[i].birth, first[i].birth);
	}
	store_close(&s);
	expect_unchanged(&sn);

	cr_assert_eq(sopen(&s, k2, false, STORE_SWEEP), 0, "%s", err);
	cr_expect_not(s.created);
	cr_expect_not(s.zone_reset[0]);
	store_close(&s);
	expect_unchanged(&sn);
	keys_free(k1);
	keys_free(k2);
}

/* ---- refusals that change nothing ---- */

Test(store, wrong_key_rejected)
{
	struct snapshot sn;
	struct store s;

	create_store(ka, false);
	take(&sn);
	cr_expect_eq(sopen(&s, kb, false, STORE_MOUNT), -EKEYREJECTED);
	cr_expect_not_null(strstr(err, "wrong key"), "got: %s", err);
	cr_expect_not_null(strstr(err, spath), "path not named: %s", err);
	expect_unchanged(&sn);
	cr_expect_eq(sopen(&s, kb, false, STORE_SWEEP), -EKEYREJECTED);
	cr_expect_not_null(strstr(err, "wrong key"), "got: %s", err);
	expect_unchanged(&sn);
	/* The lock went with the refusal. */
	cr_assert_eq(sopen(&s, ka, false, STORE_MOUNT), 0, "%s", err);
	store_close(&s);
}

static void make_foreign_dir(void)
{
	char p[PATH_MAX];

	cr_assert_eq(mkdir(spath, 0755), 0);
	sub(p, "precious.txt");
	write_file(p, "hello");
	sub(p, "photos");
	cr_assert_eq(mkdir(p, 0755), 0);
	sub(p, "photos/x.jpg");
	write_file(p, "jpegdata");
}

static void expect_foreign_dir_untouched(void)
{
	char names[MAX_NAMES][256], p[PATH_MAX], buf[64];

	cr_expect_eq(list(spath, names), 2);
	cr_expect(listed(names, 2, "precious.txt"));
	cr_expect(listed(names, 2, "photos"));
	sub(p, "precious.txt");
	read_file(p, buf, sizeof(buf));
	cr_expect_str_eq(buf, "hello");
	sub(p, "photos/x.jpg");
	read_file(p, buf, sizeof(buf));
	cr_expect_str_eq(buf, "jpegdata");
	sub(p, "photos");
	cr_expect_eq(list(p, names), 1);
}

Test(store, non_empty_dir_without_marker_refused)
{
	struct store s;

	make_foreign_dir();
	cr_expect_lt(sopen(&s, ka, false, STORE_MOUNT), 0);
	cr_expect_not_null(strstr(err, "not an ekycfs store"), "got: %s", err);
	expect_foreign_dir_untouched();
	cr_expect_lt(sopen(&s, ka, true, STORE_MOUNT), 0, "ephemeral too");
	expect_foreign_dir_untouched();
	cr_expect_lt(sopen(&s, ka, false, STORE_SWEEP), 0);
	expect_foreign_dir_untouched();
}

Test(store, sweep_refuses_empty_or_missing)
{
	char names[MAX_NAMES][256];
	struct store s;

	cr_expect_lt(sopen(&s, ka, false, STORE_SWEEP), 0, "missing dir");
	cr_expect_neq(err[0], '\0');
	cr_expect_neq(access(spath, F_OK), 0, "sweep created the store");
	cr_assert_eq(mkdir(spath, 0700), 0);
	cr_expect_lt(sopen(&s, ka, false, STORE_SWEEP), 0, "empty dir");
	cr_expect_not_null(strstr(err, "not an ekycfs store"), "got: %s", err);
	cr_expect_eq(list(spath, names), 0, "sweep wrote into an empty dir");
}

Test(store, file_instead_of_dir_refused)
{
	char buf[64];
	struct store s;

	write_file(spath, "not a store");
	cr_expect_lt(sopen(&s, ka, false, STORE_MOUNT), 0);
	cr_expect_not_null(strstr(err, "not a directory"), "got: %s", err);
	cr_expect_lt(sopen(&s, ka, false, STORE_SWEEP), 0);
	cr_expect_not_null(strstr(err, "not a directory"), "got: %s", err);
	read_file(spath, buf, sizeof(buf));
	cr_expect_str_eq(buf, "not a store");
}

Test(store, second_open_is_busy)
{
	struct store s1, s2, s3;

	cr_assert_eq(sopen(&s1, ka, false, STORE_MOUNT), 0, "%s", err);
	cr_expect_eq(sopen(&s2, ka, false, STORE_MOUNT), -EBUSY);
	cr_expect_not_null(strstr(err, "in use"), "got: %s", err);
	cr_expect_eq(sopen(&s2, ka, false, STORE_SWEEP), -EBUSY, "a sweep of a mounted store");
	cr_expect_geq(s1.fd, 0);
	cr_expect_geq(fcntl(s1.fd, F_GETFD), 0, "first open's fd closed by the second");
	store_close(&s1);
	cr_assert_eq(sopen(&s3, ka, false, STORE_MOUNT), 0, "lock not released: %s", err);
	store_close(&s3);
}

Test(store, other_format_version_refused)
{
	char p[PATH_MAX];
	struct snapshot sn;
	struct store s;

	create_store(ka, false);
	set_marker_version('3');
	sub(p, STORE_MARKER);
	take(&sn);
	cr_expect_lt(sopen(&s, ka, false, STORE_MOUNT), 0);
	cr_expect_not_null(strstr(err, "version"), "got: %s", err);
	expect_unchanged(&sn);

	write_file(p, "garbage\n");
	take(&sn);
	cr_expect_lt(sopen(&s, ka, false, STORE_MOUNT), 0);
	expect_unchanged(&sn);
}

/* ---- key modes ---- */

Test(store, ephemeral_reopen_destroys_all)
{
	struct keys *e1 = keys_generate(), *e2 = keys_generate();
	char marker[1024], hex[2 * KEY_CHECK_BYTES + 1];
	struct store s;

	cr_assert(e1 && e2);
	cr_assert_eq(sopen(&s, e1, true, STORE_MOUNT), 0, "%s", err);
	cr_expect(s.created);
	cr_expect(s.ephemeral);
	cr_expect_not(s.destroy_all, "a new store has nothing to destroy");
	store_close(&s);
	read_marker(marker, sizeof(marker));
	cr_expect_not_null(strstr(marker, "\nkey_mode=ephemeral\n"), "marker: %s", marker);

	cr_assert_eq(sopen(&s, e2, true, STORE_MOUNT), 0, "%s", err);
	cr_expect_not(s.created);
	cr_expect(s.ephemeral);
	cr_expect(s.destroy_all);
	for (size_t i = 0; i < 2; i++) {
		struct stamp st;
		bool unbound;

		cr_expect(s.zone_reset[i], "zone %zu not reset", i);
		cr_expect_eq(store_read_zone_stamp(e2, s.fd, cfg.zones[i].name, &st, &unbound), 0,
			     "zone stamp not rewritten for the new key");
		cr_expect_eq(store_read_zone_stamp(e1, s.fd, cfg.zones[i].name, &st, &unbound),
			     -EBADMSG);
	}
	store_close(&s);
	read_marker(marker, sizeof(marker));
	check_hex(e2, hex);
	cr_expect_not_null(strstr(marker, hex), "marker not rewritten for the new key");
	keys_free(e1);
	keys_free(e2);
}

Test(store, ephemeral_marker_with_key_file_refused)
{
	struct keys *e = keys_generate();
	struct snapshot sn;
	struct store s;

	cr_assert_not_null(e);
	create_store(e, true);
	take(&sn);
	cr_expect_lt(sopen(&s, ka, false, STORE_MOUNT), 0);
	cr_expect_not_null(strstr(err, "ephemeral"), "got: %s", err);
	expect_unchanged(&sn);
	cr_expect_lt(sopen(&s, ka, false, STORE_SWEEP), 0);
	expect_unchanged(&sn);
	keys_free(e);
}

Test(store, key_file_marker_with_ephemeral_refused)
{
	struct keys *e = keys_generate();
	struct snapshot sn;
	struct store s;

	cr_assert_not_null(e);
	create_store(ka, false);
	take(&sn);
	cr_expect_lt(sopen(&s, e, true, STORE_MOUNT), 0);
	cr_expect_not_null(strstr(err, "key_file"), "got: %s", err);
	expect_unchanged(&sn);
	/* Even with the right key in hand, the mode must match. */
	cr_expect_lt(sopen(&s, ka, true, STORE_MOUNT), 0);
	expect_unchanged(&sn);
	keys_free(e);
}

/* ---- zone stamps ---- */

Test(store, tampered_zone_stamp_resets_zone)
{
	uint8_t raw[STAMP_BYTES + 8];
	char p[PATH_MAX];
	struct stamp old, st;
	struct store s;
	bool unbound;
	ssize_t n;

	cr_assert_eq(sopen(&s, ka, false, STORE_MOUNT), 0, "%s", err);
	old = s.zone_stamp[0];
	store_close(&s);
	n = zone_xattr("rlc", raw, sizeof(raw));
	cr_assert_eq(n, STAMP_BYTES);
	raw[30] ^= 0x01; /* push the mtime */
	sub(p, "rlc");
	cr_assert_eq(setxattr(p, STAMP_XATTR, raw, (size_t)n, 0), 0);

	cr_assert_eq(sopen(&s, ka, false, STORE_MOUNT), 0, "%s", err);
	cr_expect(s.zone_reset[0], "tampered zone not reset");
	cr_expect_not(s.zone_reset[1], "untouched zone reset");
	cr_assert_eq(store_read_zone_stamp(ka, s.fd, "rlc", &st, &unbound), 0,
		     "no new valid stamp");
	cr_expect_eq(st.kind, STAMP_DIR);
	cr_expect_neq(memcmp(st.id, old.id, FILE_ID_BYTES), 0, "directory id reused");
	cr_expect_arr_eq(st.id, s.zone_stamp[0].id, FILE_ID_BYTES);
	store_close(&s);
}

Test(store, missing_zone_stamp_resets_zone)
{
	char p[PATH_MAX];
	struct stamp st;
	struct store s;
	bool unbound;

	create_store(ka, false);
	sub(p, "idocr");
	cr_assert_eq(removexattr(p, STAMP_XATTR), 0);
	cr_assert_eq(sopen(&s, ka, false, STORE_MOUNT), 0, "%s", err);
	cr_expect_not(s.zone_reset[0]);
	cr_expect(s.zone_reset[1]);
	cr_expect_eq(store_read_zone_stamp(ka, s.fd, "idocr", &st, &unbound), 0);
	store_close(&s);
}

/* Zone folders swapped in the backing store (each with its TTL): each
 * stamp names the other zone, so both are reset, and nothing of one zone
 * lives on under the other's TTL. */
Test(store, swapped_zone_folders_reset)
{
	char a[PATH_MAX], b[PATH_MAX], t[PATH_MAX];
	struct store s;

	create_store(ka, false);
	sub(a, "rlc");
	sub(b, "idocr");
	sub(t, "swap");
	cr_assert_eq(rename(a, t), 0);
	cr_assert_eq(rename(b, a), 0);
	cr_assert_eq(rename(t, b), 0);
	cr_assert_eq(sopen(&s, ka, false, STORE_MOUNT), 0, "%s", err);
	cr_expect(s.zone_reset[0], "rlc (idocr's folder) not reset");
	cr_expect(s.zone_reset[1], "idocr (rlc's folder) not reset");
	store_close(&s);
}

/* A store made before zone stamps named their zone: its zone stamp (an
 * entry's kind of stamp) is taken at the first mount, not reset, and
 * sealed again bound to the zone, keeping its id (names inside decrypt). */
Test(store, unbound_zone_stamp_bound_at_mount)
{
	struct stamp st, old;
	struct stat sb;
	struct store s;
	bool unbound = false;

	create_store(ka, false);
	cr_assert_eq(sopen(&s, ka, false, STORE_MOUNT), 0, "%s", err);
	old = s.zone_stamp[0];
	cr_assert_eq(fstat(s.zone_fd[0], &sb), 0);
	cr_assert_eq(store_write_stamp(ka, s.zone_fd[0], sb.st_ino, &old), 0);
	cr_assert_eq(store_read_zone_stamp(ka, s.fd, "rlc", &st, &unbound), 0);
	cr_expect(unbound);
	store_close(&s);
	/* In a bound store such a stamp is a folder moved into the zone's
	 * place: reset, by a sweep too. */
	cr_assert_eq(sopen(&s, ka, false, STORE_SWEEP), 0, "%s", err);
	cr_expect(s.zone_reset[0], "an unbound zone stamp taken in a bound store");
	cr_expect_not(s.zone_reset[1]);
	store_close(&s);
	/* In a store made before the binding it is taken: by a sweep, and
	 * by a mount asked to upgrade the store, which a plain mount refuses
	 * (changing nothing). A zone this config leaves out (its folder
	 * made by hand here, with an unbound zone stamp) is bound too. */
	make_marker_unbound(ka);
	{
		char p[PATH_MAX];
		struct stamp other = old;
		int fd;

		sub(p, "selfie");
		cr_assert_eq(mkdir(p, 0755), 0);
		fd = open(p, O_RDONLY | O_DIRECTORY);
		cr_assert_geq(fd, 0);
		cr_assert_eq(fstat(fd, &sb), 0);
		cr_assert_eq(store_write_stamp(ka, fd, sb.st_ino, &other), 0);
		close(fd);
	}
	cr_assert_eq(sopen(&s, ka, false, STORE_SWEEP), 0, "%s", err);
	cr_expect_not(s.zone_reset[0], "an unbound zone stamp reset by a sweep");
	cr_assert_eq(store_read_zone_stamp(ka, s.fd, "rlc", &st, &unbound), 0);
	cr_expect(unbound, "a sweep rewrote the zone stamp");
	store_close(&s);
	cr_expect_eq(sopen(&s, ka, false, STORE_MOUNT), -EINVAL, "an older store mounted unasked");
	cr_expect_not_null(strstr(err, "-o upgrade"), "%s", err);
	cfg.upgrade = true;
	cr_assert_eq(sopen(&s, ka, false, STORE_MOUNT), 0, "%s", err);
	cfg.upgrade = false;
	cr_expect_not(s.zone_reset[0], "an unbound zone stamp reset");
	cr_assert_eq(store_read_zone_stamp(ka, s.fd, "selfie", &st, &unbound), 0);
	cr_expect_not(unbound, "a zone the config leaves out not bound");
	cr_assert_eq(store_read_zone_stamp(ka, s.fd, "rlc", &st, &unbound), 0);
	cr_expect_not(unbound, "not bound at the mount");
	cr_expect_arr_eq(st.id, old.id, FILE_ID_BYTES);
	cr_expect(s.zones_bound);
	store_close(&s);
	{ /* and the marker says so from now on */
		char marker[1024], hex[2 * KEY_CHECK_BYTES + 1];

		read_marker(marker, sizeof(marker));
		check_hex(ka, hex);
		cr_expect_not_null(strstr(marker, hex), "marker not bound: %s", marker);
	}
}

/* A few builds wrote the bound check value with version=1: such a store
 * is an unbound one (upgrade asked for), not one with a wrong key. */
Test(store, version_1_with_bound_check_value)
{
	char marker[1024];
	struct store s;

	create_store(ka, false);
	set_marker_version('1');
	cr_expect_eq(sopen(&s, ka, false, STORE_MOUNT), -EINVAL);
	cr_expect_not_null(strstr(err, "-o upgrade"), "%s", err);
	cr_expect_eq(sopen(&s, kb, false, STORE_MOUNT), -EKEYREJECTED, "%s", err);
	cfg.upgrade = true;
	cr_assert_eq(sopen(&s, ka, false, STORE_MOUNT), 0, "%s", err);
	cfg.upgrade = false;
	cr_expect(s.zones_bound);
	cr_expect_not(s.zone_reset[0]);
	cr_expect_not(s.zone_reset[1]);
	store_close(&s);
	read_marker(marker, sizeof(marker));
	cr_expect_not_null(strstr(marker, "\nversion=2\n"), "%s", marker);
}

/* A sweep reports a bad zone but writes nothing, and creates no zone. */
Test(store, sweep_changes_nothing)
{
	uint8_t raw[STAMP_BYTES + 8];
	char p[PATH_MAX];
	struct snapshot sn;
	struct store s;
	ssize_t n;

	create_store(ka, false);
	n = zone_xattr("rlc", raw, sizeof(raw));
	cr_assert_eq(n, STAMP_BYTES);
	raw[0] ^= 0x80;
	sub(p, "rlc");
	cr_assert_eq(setxattr(p, STAMP_XATTR, raw, (size_t)n, 0), 0);
	sub(p, "idocr");
	cr_assert_eq(rmdir(p), 0);
	take(&sn);
	cr_assert_eq(sopen(&s, ka, false, STORE_SWEEP), 0, "%s", err);
	cr_expect(s.zone_reset[0]);
	cr_expect_lt(s.zone_fd[1], 0, "missing zone opened");
	store_close(&s);
	expect_unchanged(&sn);
	cr_expect_neq(access(p, F_OK), 0, "sweep created a zone");
}

Test(store, stamp_round_trip_and_inode_binding)
{
	struct stamp in = {.kind = STAMP_REG,
			   .birth = 1700000000123456789LL,
			   .mtime = 1700000100000000000LL},
		     out;
	uint8_t raw[STAMP_BYTES + 8];
	char pa[PATH_MAX], pb[PATH_MAX];
	struct stat sa, sb;
	uint64_t ino = 0;
	int dfd, fa;
	ssize_t n;

	for (size_t i = 0; i < FILE_ID_BYTES; i++)
		in.id[i] = (uint8_t)(0x10 + i);
	dfd = open(base, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(dfd, 0);
	snprintf(pa, sizeof(pa), "%s/a", base);
	snprintf(pb, sizeof(pb), "%s/b", base);
	write_file(pa, "A");
	write_file(pb, "B");
	cr_assert_eq(stat(pa, &sa), 0);
	cr_assert_eq(stat(pb, &sb), 0);
	fa = open(pa, O_RDONLY);
	cr_assert_geq(fa, 0);

	cr_expect_eq(store_read_stamp(ka, dfd, "a", &out, &ino), -EBADMSG, "no stamp yet");
	cr_assert_eq(store_write_stamp(ka, fa, sa.st_ino, &in), 0);
	cr_assert_eq(store_read_stamp(ka, dfd, "a", &out, &ino), 0);
	cr_expect_eq(ino, sa.st_ino);
	cr_expect_eq(out.kind, in.kind);
	cr_expect_arr_eq(out.id, in.id, FILE_ID_BYTES);
	cr_expect_eq(out.birth, in.birth);
	cr_expect_eq(out.mtime, in.mtime);
	cr_expect_eq(store_read_stamp(kb, dfd, "a", &out, &ino), -EBADMSG, "other key");

	/* Copied onto another file (cp -a, setfattr): not valid there. */
	n = getxattr(pa, STAMP_XATTR, raw, sizeof(raw));
	cr_assert_eq(n, STAMP_BYTES);
	cr_assert_eq(setxattr(pb, STAMP_XATTR, raw, (size_t)n, 0), 0);
	ino = 0;
	cr_expect_eq(store_read_stamp(ka, dfd, "b", &out, &ino), -EBADMSG);
	cr_expect_eq(ino, sb.st_ino);

	/* Sealed for the wrong inode. */
	cr_assert_eq(store_write_stamp(ka, fa, sb.st_ino, &in), 0);
	cr_expect_eq(store_read_stamp(ka, dfd, "a", &out, &ino), -EBADMSG);

	/* Truncated value. */
	cr_assert_eq(setxattr(pb, STAMP_XATTR, raw, (size_t)n - 1, 0), 0);
	cr_expect_eq(store_read_stamp(ka, dfd, "b", &out, &ino), -EBADMSG);

	cr_expect_eq(store_read_stamp(ka, dfd, "missing", &out, &ino), -ENOENT);
	close(fa);
	close(dfd);
}

/* ---- stat and xattr read from the same inode ---- */

struct swapper {
	int dfd;
	atomic_int stop;
	atomic_long swaps;
};

static void *swap_loop(void *arg)
{
	struct swapper *w = arg;

	while (!atomic_load(&w->stop))
		if (renameat2(w->dfd, "A", w->dfd, "B", RENAME_EXCHANGE) == 0)
			atomic_fetch_add(&w->swaps, 1);
	return NULL;
}

/* Two entries, each validly stamped for its own inode, trade names without
 * pause (a user's mv over a name the reaper is judging). Each name always
 * holds one of them, so every read must be valid: an inode number taken
 * from one and a stamp from the other would make a live entry "invalid"
 * and get it shredded. */
Test(store, read_stamp_consistent_under_rename, .timeout = 60)
{
	static const char *const names[] = {"A", "B"};
	struct swapper w = {.stop = 0, .swaps = 0};
	long bad = 0, reads = 0, first = 0;
	pthread_t th;

	w.dfd = open(base, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(w.dfd, 0);
	for (size_t i = 0; i < 2; i++) {
		struct stamp st = {.kind = STAMP_REG, .birth = 1, .mtime = 2};
		struct stat sb;
		int fd = openat(w.dfd, names[i], O_CREAT | O_RDWR, 0600);

		cr_assert_geq(fd, 0);
		cr_assert_eq(fstat(fd, &sb), 0);
		st.id[0] = (uint8_t)i;
		cr_assert_eq(store_write_stamp(ka, fd, sb.st_ino, &st), 0);
		close(fd);
	}
	if (renameat2(w.dfd, "A", w.dfd, "B", RENAME_EXCHANGE) < 0)
		cr_skip_test("RENAME_EXCHANGE unsupported here: %s", strerror(errno));
	cr_assert_eq(pthread_create(&th, NULL, swap_loop, &w), 0);
	for (reads = 0; reads < 100000; reads++) {
		struct stamp st;
		uint64_t ino;
		int rc = store_read_stamp(ka, w.dfd, "A", &st, &ino);

		if (rc != 0 && bad++ == 0)
			first = rc;
	}
	atomic_store(&w.stop, 1);
	pthread_join(th, NULL);
	close(w.dfd);
	cr_expect_eq(bad, 0, "%ld of %ld reads failed (first: %ld) during %ld renames", bad, reads,
		     first, atomic_load(&w.swaps));
}
