/* test_crypto.c - Criterion suite for fs/crypto.c: keys and subkeys, key
 * files, block AEAD round trips and tampering, and pinned golden vectors. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "crypto.h"
#include "testutil.h"
#include "layout.h"

#define SENTINEL 0xa5
#define HEX_MAX 129

/* ---- golden vectors ----
 * Master key bytes 0..31, file id bytes 0x10..0x1f, type 1, nonce bytes
 * 0x40..0x57, block index 0x0102030405060708 (every byte of the LE64 index
 * distinct). Computed once, independently of fs/ and of libsodium, with
 * Python's hashlib.blake2b, a hand-written HChaCha20 and the
 * `cryptography` package's ChaCha20Poly1305 / AESGCM. A change to any of
 * these is a change of the on-disk format: existing stores become
 * unreadable. Do not "fix" a constant without a format version bump. */
static const char GOLD_CONTENT[] =
	"21982e61090910863c11e859c77cde27bed6411bbdf3687f95fc3f10954259d0";
static const char GOLD_NAMES[] = "ea8d19432033f0d8c5c2323c34aec2243e9ebb4cfd595c2cda8c2039c212b71f";
static const char GOLD_STAMP[] = "ce2ea8803b7f9ead342574498fb1a136bd1e24c604d3c605a7a40fc78eecc6f0";
static const char GOLD_AUDIT[] = "db66bc8158220bc58fa985941e7fa6057c331e7abd7edd3481ccd10a4f6d80ec";
static const char GOLD_CHECK[] = "e6f4fbb6b7beb6168637f4137de36e5bf8b0b336bb26f5fe079a8f050bca8593";
/* keys_check_value() of master 0..31. */
static const char GOLD_CHECK_VALUE[] =
	"c6e0c4e49b5a2ffef003d97fe095b1fff74ec505b557d4814d5d06c59c791e5e";
/* keys_check_value_bound() of master 0..31 (BLAKE2b-256 keyed with the
 * check subkey over "ekycfs key check v2, zone stamps bound"; computed
 * with Python's hashlib from GOLD_CHECK). */
static const char GOLD_CHECK_VALUE_BOUND[] =
	"39d9b85f1143943f805bcc3da5db920029edb3bca2ad30b5edd7fb24f6f3b139";
/* crypto_audit_id() of file id 0x10..0x1f under master 0..31. */
static const char GOLD_AUDIT_ID[] = "d3397241f6b87b2ee759f94f";
/* File keys for file id 0x10..0x1f, cipher byte 1 and 2. */
static const char GOLD_FILEKEY_XCHACHA[] =
	"62697c4922e08c4c33334b4b5fbd13ebd596f89be29959f457c3920d1cc1cacc";
static const char GOLD_FILEKEY_AES[] =
	"97673858ed850468b36a17d835feb5dd43af6d240514766e91e6d73ad3f03aae";
/* Golden XChaCha20-Poly1305 block: first 16 ciphertext bytes and tag. */
static const char GOLD_PLAIN_XCHACHA[] =
	"ekycfs golden vector: block format v1, xchacha20poly1305.";
static const char GOLD_CT16_XCHACHA[] = "3bd8738d8416c38bf4023c7cc378bc8a";
static const char GOLD_TAG_XCHACHA[] = "2e918c93ea15e5d26e8b2b10081cc8b2";
/* Golden AES-256-GCM block (12-byte nonce 0x40..0x4b, then 12 zero bytes). */
static const char GOLD_PLAIN_AES[] = "ekycfs golden vector: block format v1, aes256gcm.";
static const char GOLD_CT16_AES[] = "5c48f57a540117a9401b7021954eabe0";
static const char GOLD_TAG_AES[] = "949987c54152f04338641cc56f0f6ced";
#define GOLD_INDEX UINT64_C(0x0102030405060708)
#define GOLD_TYPE 1

static uint8_t master0[KEY_BYTES];	/* bytes 0..31 */
static uint8_t file_id0[FILE_ID_BYTES]; /* bytes 0x10..0x1f */
static uint8_t nonce0[BLOCK_NONCE];	/* bytes 0x40..0x57 */
static char tmpdir[64];

static void setup(void)
{
	size_t i;

	cr_assert_eq(crypto_setup(), 0);
	for (i = 0; i < KEY_BYTES; i++)
		master0[i] = (uint8_t)i;
	for (i = 0; i < FILE_ID_BYTES; i++)
		file_id0[i] = (uint8_t)(0x10 + i);
	for (i = 0; i < BLOCK_NONCE; i++)
		nonce0[i] = (uint8_t)(0x40 + i);
	strcpy(tmpdir, "/tmp/ekycfs-test-crypto-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
}

static void teardown(void)
{
	if (rm_tree(tmpdir) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

TestSuite(crypto, .init = setup, .fini = teardown);

static const char *hex(const void *buf, size_t len, char out[HEX_MAX])
{
	cr_assert(2 * len < HEX_MAX);
	sodium_bin2hex(out, HEX_MAX, buf, len);
	return out;
}

static void tmp_path(const char *name, char path[128])
{
	snprintf(path, 128, "%s/%s", tmpdir, name);
}

static void write_text(const char *path, const void *text, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	cr_assert_eq(fchmod(fd, mode), 0);
	close(fd);
}

static size_t read_text(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	n = read(fd, buf, cap);
	cr_assert(n >= 0);
	close(fd);
	return (size_t)n;
}

static bool all_bytes(const uint8_t *buf, size_t len, uint8_t v)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != v)
			return false;
	return true;
}

static const int ciphers[] = {CIPHER_XCHACHA20POLY1305, CIPHER_AES256GCM};
#define NCIPHERS (sizeof(ciphers) / sizeof(ciphers[0]))

/* ---- setup and keys ---- */

Test(crypto, setup_is_idempotent_and_names_ciphers)
{
	cr_assert_eq(crypto_setup(), 0, "a second call must succeed too");
	cr_expect(crypto_cipher_usable(CIPHER_XCHACHA20POLY1305));
	cr_expect_not(crypto_cipher_usable(0));
	cr_expect_not(crypto_cipher_usable(3));
	cr_expect(crypto_cipher_usable(crypto_best_cipher()));
	cr_expect_eq(crypto_best_cipher() == CIPHER_AES256GCM,
		     crypto_cipher_usable(CIPHER_AES256GCM));
	for (size_t i = 0; i < NCIPHERS; i++)
		cr_expect_eq(crypto_cipher_from_name(crypto_cipher_name(ciphers[i])), ciphers[i]);
	cr_expect_str_eq(crypto_cipher_name(CIPHER_XCHACHA20POLY1305), "xchacha20poly1305");
	cr_expect_str_eq(crypto_cipher_name(CIPHER_AES256GCM), "aes256gcm");
	cr_expect_eq(crypto_cipher_from_name("chacha"), -EINVAL);
	cr_expect_eq(crypto_cipher_from_name(""), -EINVAL);
}

/* All six 32-byte fields of k, for pairwise comparison. */
static void key_fields(const struct keys *k, const uint8_t *f[6])
{
	f[0] = k->master;
	f[1] = k->content;
	f[2] = k->names;
	f[3] = k->stamp;
	f[4] = k->audit;
	f[5] = k->check;
}

Test(crypto, generate_distinct_masters_and_subkeys)
{
	struct keys *a = keys_generate(), *b = keys_generate();
	const uint8_t *fa[6], *fb[6];

	cr_assert_not_null(a);
	cr_assert_not_null(b);
	key_fields(a, fa);
	key_fields(b, fb);
	for (int i = 0; i < 6; i++) {
		cr_expect_neq(memcmp(fa[i], fb[i], KEY_BYTES), 0, "field %d equal across keys", i);
		cr_expect_not(all_bytes(fa[i], KEY_BYTES, 0), "field %d all zero", i);
		for (int j = i + 1; j < 6; j++)
			cr_expect_neq(memcmp(fa[i], fa[j], KEY_BYTES), 0, "fields %d and %d equal",
				      i, j);
	}
	keys_free(a);
	keys_free(b);
	keys_free(NULL);
}

Test(crypto, from_master_is_deterministic)
{
	uint8_t other[KEY_BYTES];
	struct keys *a = keys_from_master(master0), *b = keys_from_master(master0), *c;
	const uint8_t *fa[6], *fb[6], *fc[6];

	memcpy(other, master0, KEY_BYTES);
	other[KEY_BYTES - 1] ^= 0x01;
	c = keys_from_master(other);
	cr_assert(a && b && c);
	cr_expect_eq(memcmp(a->master, master0, KEY_BYTES), 0);
	key_fields(a, fa);
	key_fields(b, fb);
	key_fields(c, fc);
	for (int i = 0; i < 6; i++) {
		cr_expect_eq(memcmp(fa[i], fb[i], KEY_BYTES), 0, "field %d differs", i);
		cr_expect_neq(memcmp(fa[i], fc[i], KEY_BYTES), 0, "field %d ignores the master", i);
		for (int j = i + 1; j < 6; j++)
			cr_expect_neq(memcmp(fa[i], fa[j], KEY_BYTES), 0, "fields %d and %d equal",
				      i, j);
	}
	keys_free(a);
	keys_free(b);
	keys_free(c);
}

Test(crypto, golden_subkeys_check_value_audit_id)
{
	struct keys *k = keys_from_master(master0);
	uint8_t cv[KEY_CHECK_BYTES];
	char h[HEX_MAX], id[2 * AUDIT_ID_BYTES + 1];

	cr_assert_not_null(k);
	cr_expect_str_eq(hex(k->content, KEY_BYTES, h), GOLD_CONTENT);
	cr_expect_str_eq(hex(k->names, KEY_BYTES, h), GOLD_NAMES);
	cr_expect_str_eq(hex(k->stamp, KEY_BYTES, h), GOLD_STAMP);
	cr_expect_str_eq(hex(k->audit, KEY_BYTES, h), GOLD_AUDIT);
	cr_expect_str_eq(hex(k->check, KEY_BYTES, h), GOLD_CHECK);
	keys_check_value(k, cv);
	cr_expect_str_eq(hex(cv, sizeof(cv), h), GOLD_CHECK_VALUE);
	keys_check_value_bound(k, cv);
	cr_expect_str_eq(hex(cv, sizeof(cv), h), GOLD_CHECK_VALUE_BOUND);
	memset(id, 'x', sizeof(id));
	crypto_audit_id(k, file_id0, id);
	cr_expect_eq(strlen(id), 2 * AUDIT_ID_BYTES);
	cr_expect_str_eq(id, GOLD_AUDIT_ID);
	keys_free(k);
}

Test(crypto, audit_id_depends_on_id_and_key)
{
	struct keys *k = keys_from_master(master0), *g = keys_generate();
	uint8_t id2[FILE_ID_BYTES];
	char a[2 * AUDIT_ID_BYTES + 1], b[2 * AUDIT_ID_BYTES + 1];

	cr_assert(k && g);
	memcpy(id2, file_id0, FILE_ID_BYTES);
	id2[FILE_ID_BYTES - 1] ^= 0x80;
	crypto_audit_id(k, file_id0, a);
	crypto_audit_id(k, id2, b);
	cr_expect_str_neq(a, b);
	crypto_audit_id(g, file_id0, b);
	cr_expect_str_neq(a, b);
	keys_free(k);
	keys_free(g);
}

Test(crypto, check_value_and_equal)
{
	struct keys *a = keys_from_master(master0), *b = keys_from_master(master0);
	struct keys *c = keys_generate();
	uint8_t va[KEY_CHECK_BYTES], vb[KEY_CHECK_BYTES], vc[KEY_CHECK_BYTES];

	cr_assert(a && b && c);
	keys_check_value(a, va);
	keys_check_value(b, vb);
	keys_check_value(c, vc);
	cr_expect(keys_check_equal(va, vb));
	cr_expect_not(keys_check_equal(va, vc));
	/* The check value must not reveal a subkey or the master. */
	cr_expect_neq(memcmp(va, a->master, KEY_BYTES), 0);
	cr_expect_neq(memcmp(va, a->check, KEY_BYTES), 0);
	for (size_t i = 0; i < KEY_CHECK_BYTES; i++) {
		vb[i] ^= 0x01;
		cr_expect_not(keys_check_equal(va, vb), "byte %zu flipped still equal", i);
		vb[i] ^= 0x01;
	}
	keys_free(a);
	keys_free(b);
	keys_free(c);
}

Test(crypto, stamp_mac)
{
	struct keys *a = keys_from_master(master0), *c = keys_generate();
	static const char msg[] = "stamp message";
	uint8_t m1[STAMP_MAC_BYTES], m2[STAMP_MAC_BYTES];

	cr_assert(a && c);
	crypto_stamp_mac(a, msg, sizeof(msg), m1);
	crypto_stamp_mac(a, msg, sizeof(msg), m2);
	cr_expect(crypto_mac_equal(m1, m2));
	crypto_stamp_mac(a, msg, sizeof(msg) - 1, m2);
	cr_expect_not(crypto_mac_equal(m1, m2));
	crypto_stamp_mac(c, msg, sizeof(msg), m2);
	cr_expect_not(crypto_mac_equal(m1, m2));
	keys_free(a);
	keys_free(c);
}

/* ---- key files ---- */

Test(crypto, write_file_mode_0600_and_loadable)
{
	char path[128], text[128];
	uint8_t m[KEY_BYTES];
	size_t n, binlen = 0;
	struct stat st;
	struct keys *k = NULL, *ref;
	char err[256] = "";
	mode_t old = umask(0);

	tmp_path("key", path);
	cr_assert_eq(keys_write_file(path), 0);
	umask(old);
	cr_assert_eq(lstat(path, &st), 0);
	cr_expect(S_ISREG(st.st_mode));
	cr_expect_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
	n = read_text(path, text, sizeof(text));
	cr_expect_eq(n, 2 * KEY_BYTES + 1, "64 hex digits and a newline");
	cr_expect_eq(text[2 * KEY_BYTES], '\n');
	cr_assert_eq(sodium_hex2bin(m, sizeof(m), text, 2 * KEY_BYTES, NULL, &binlen, NULL), 0);
	cr_assert_eq(binlen, KEY_BYTES);
	cr_assert_eq(keys_load_file(path, &k, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(k);
	ref = keys_from_master(m);
	cr_assert_not_null(ref);
	cr_expect_eq(memcmp(k, ref, sizeof(*k)), 0, "loaded keys differ from the file's master");
	keys_free(k);
	keys_free(ref);
}

Test(crypto, write_file_two_keys_differ)
{
	char p1[128], p2[128], t1[128], t2[128];

	tmp_path("k1", p1);
	tmp_path("k2", p2);
	cr_assert_eq(keys_write_file(p1), 0);
	cr_assert_eq(keys_write_file(p2), 0);
	read_text(p1, t1, sizeof(t1));
	read_text(p2, t2, sizeof(t2));
	cr_expect_neq(memcmp(t1, t2, 2 * KEY_BYTES), 0);
}

Test(crypto, write_file_refuses_to_overwrite)
{
	static const char before[] = "precious, not a key\n";
	char path[128], lnk[128], buf[128];
	struct stat st;
	size_t n;

	tmp_path("existing", path);
	write_text(path, before, sizeof(before) - 1, 0644);
	cr_expect_eq(keys_write_file(path), -EEXIST);
	n = read_text(path, buf, sizeof(buf));
	cr_expect_eq(n, sizeof(before) - 1);
	cr_expect_eq(memcmp(buf, before, n), 0, "file changed");
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0644, "mode changed");

	/* A dangling symlink must not be followed into a new file either. */
	tmp_path("dangling", lnk);
	tmp_path("target", path);
	cr_assert_eq(symlink(path, lnk), 0);
	cr_expect_eq(keys_write_file(lnk), -EEXIST);
	cr_expect_neq(access(path, F_OK), 0, "key written through a symlink");
}

/* Write text as a key file with mode, load it; returns the rc. */
static int load_text(const char *name, const char *text, size_t len, mode_t mode, struct keys **out)
{
	char path[128], err[256] = "";
	int rc;

	tmp_path(name, path);
	write_text(path, text, len, mode);
	*out = NULL;
	rc = keys_load_file(path, out, err, sizeof(err));
	if (rc < 0) {
		cr_expect_null(*out, "%s: *out set on failure", name);
		cr_expect_neq(err[0], '\0', "%s: no error message", name);
		cr_expect_null(strchr(err, '\n'), "%s: error is more than one line", name);
	}
	return rc;
}

static void master0_hex(char out[2 * KEY_BYTES + 1])
{
	sodium_bin2hex(out, 2 * KEY_BYTES + 1, master0, KEY_BYTES);
}

Test(crypto, load_file_golden_with_and_without_newline)
{
	char h[2 * KEY_BYTES + 1], text[80], vh[HEX_MAX];
	uint8_t cv[KEY_CHECK_BYTES];
	struct keys *k;

	master0_hex(h);
	cr_assert_eq(load_text("nl", h, 2 * KEY_BYTES, 0600, &k), 0);
	keys_check_value(k, cv);
	cr_expect_str_eq(hex(cv, sizeof(cv), vh), GOLD_CHECK_VALUE);
	keys_free(k);
	snprintf(text, sizeof(text), "%s\n", h);
	cr_assert_eq(load_text("nonl", text, strlen(text), 0400, &k), 0);
	cr_expect_eq(memcmp(k->master, master0, KEY_BYTES), 0);
	keys_free(k);
}

Test(crypto, load_file_refuses_group_or_other_access)
{
	static const mode_t bad[] = {0640, 0604, 0620, 0602, 0610, 0601, 0660, 0666, 0644};
	char h[2 * KEY_BYTES + 1];
	struct keys *k;

	master0_hex(h);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(load_text("loose", h, 2 * KEY_BYTES, bad[i], &k), -EPERM,
			     "mode %o accepted", bad[i]);
}

Test(crypto, load_file_refuses_malformed)
{
	char h[2 * KEY_BYTES + 1], text[256];
	struct keys *k;

	master0_hex(h);
	cr_expect_eq(load_text("empty", "", 0, 0600, &k), -EINVAL);
	cr_expect_eq(load_text("newline", "\n", 1, 0600, &k), -EINVAL);
	cr_expect_eq(load_text("short", h, 2 * KEY_BYTES - 1, 0600, &k), -EINVAL);
	cr_expect_eq(load_text("half", h, KEY_BYTES, 0600, &k), -EINVAL);
	snprintf(text, sizeof(text), "%.*s\n", 2 * KEY_BYTES - 2, h);
	cr_expect_eq(load_text("short_nl", text, strlen(text), 0600, &k), -EINVAL);

	/* A non-hex digit at the start, the middle and the end. */
	for (size_t pos = 0; pos < 2 * KEY_BYTES; pos += 2 * KEY_BYTES / 2 - 1) {
		strcpy(text, h);
		text[pos] = 'g';
		cr_expect_eq(load_text("nonhex", text, 2 * KEY_BYTES, 0600, &k), -EINVAL,
			     "non-hex at %zu", pos);
	}
	strcpy(text, h);
	text[2 * KEY_BYTES - 1] = 'z';
	cr_expect_eq(load_text("nonhex_last", text, 2 * KEY_BYTES, 0600, &k), -EINVAL);
	strcpy(text, h);
	text[10] = ' ';
	cr_expect_eq(load_text("space", text, 2 * KEY_BYTES, 0600, &k), -EINVAL);
	strcpy(text, h);
	text[10] = '\0';
	cr_expect_eq(load_text("nul", text, 2 * KEY_BYTES, 0600, &k), -EINVAL);

	/* Trailing junk, with or without the newline, short or long. */
	snprintf(text, sizeof(text), "%sx", h);
	cr_expect_eq(load_text("junk1", text, strlen(text), 0600, &k), -EINVAL);
	snprintf(text, sizeof(text), "%s\nx", h);
	cr_expect_eq(load_text("junk2", text, strlen(text), 0600, &k), -EINVAL);
	snprintf(text, sizeof(text), "%s\n\n", h);
	cr_expect_eq(load_text("junk3", text, strlen(text), 0600, &k), -EINVAL);
	snprintf(text, sizeof(text), "%s\r\n", h);
	cr_expect_eq(load_text("crlf", text, strlen(text), 0600, &k), -EINVAL);
	snprintf(text, sizeof(text), "%s%s", h, h);
	cr_expect_eq(load_text("twice", text, strlen(text), 0600, &k), -EINVAL);
	snprintf(text, sizeof(text), "%s\n%s\n", h, h);
	cr_expect_eq(load_text("twice_nl", text, strlen(text), 0600, &k), -EINVAL);
}

Test(crypto, load_file_missing_dir_and_symlink)
{
	char path[128], lnk[128], err[256] = "";
	char h[2 * KEY_BYTES + 1];
	struct keys *k = NULL;

	tmp_path("absent", path);
	cr_expect_eq(keys_load_file(path, &k, err, sizeof(err)), -ENOENT);
	cr_expect_null(k);
	cr_expect_neq(strstr(err, path), NULL, "message does not name the file: %s", err);

	cr_expect_eq(keys_load_file(tmpdir, &k, err, sizeof(err)), -EINVAL, "a directory");
	cr_expect_null(k);

	master0_hex(h);
	tmp_path("real", path);
	write_text(path, h, 2 * KEY_BYTES, 0600);
	tmp_path("link", lnk);
	cr_assert_eq(symlink(path, lnk), 0);
	/* Kubernetes secrets are symlinks: followed, the target's mode counts. */
	cr_expect_eq(keys_load_file(lnk, &k, err, sizeof(err)), 0, "symlink: %s", err);
	cr_expect_not_null(k);
	keys_free(k);
	k = NULL;
	cr_assert_eq(chmod(path, 0644), 0);
	cr_expect_eq(keys_load_file(lnk, &k, err, sizeof(err)), -EPERM, "target mode ignored");
	cr_expect_null(k);
}

/* ---- block AEAD ---- */

static struct keys *gkeys(void)
{
	struct keys *k = keys_from_master(master0);

	cr_assert_not_null(k);
	return k;
}

static void fill_plain(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 131 + seed * 7 + (i >> 8));
}

Test(crypto, filekey_refuses_unusable_cipher)
{
	struct keys *k = gkeys();

	cr_expect_null(filekey_new(k, file_id0, ENTRY_REG, 0));
	cr_expect_null(filekey_new(k, file_id0, ENTRY_REG, 3));
	cr_expect_null(filekey_new(k, file_id0, ENTRY_REG, 255));
	if (!crypto_cipher_usable(CIPHER_AES256GCM))
		cr_expect_null(filekey_new(k, file_id0, ENTRY_REG, CIPHER_AES256GCM));
	filekey_free(NULL);
	keys_free(k);
}

static void round_trip(int cipher, size_t len)
{
	static uint8_t plain[BLOCK_SIZE], sealed[BLOCK_DISK], sealed2[BLOCK_DISK], out[BLOCK_SIZE];
	struct keys *k = gkeys();
	struct filekey *fk = filekey_new(k, file_id0, ENTRY_REG, cipher);

	cr_assert_not_null(fk);
	fill_plain(plain, len, (unsigned)len);
	block_seal(fk, 7, plain, len, sealed);
	block_seal(fk, 7, plain, len, sealed2);
	cr_expect_neq(memcmp(sealed, sealed2, BLOCK_NONCE), 0, "nonce reused (len %zu)", len);
	if (len >= 8)
		cr_expect_neq(memcmp(sealed + BLOCK_NONCE, sealed2 + BLOCK_NONCE, len), 0,
			      "ciphertext repeats (len %zu)", len);
	if (len >= 16)
		cr_expect_neq(memcmp(sealed + BLOCK_NONCE, plain, len), 0, "plaintext on disk");
	memset(out, SENTINEL, sizeof(out));
	cr_assert_eq(block_open(fk, 7, sealed, len + BLOCK_OVERHEAD, out), (int)len,
		     "cipher %d len %zu", cipher, len);
	cr_expect_eq(memcmp(out, plain, len), 0, "cipher %d len %zu", cipher, len);
	cr_expect(all_bytes(out + len, BLOCK_SIZE - len, SENTINEL), "wrote past len %zu", len);
	cr_assert_eq(block_open(fk, 7, sealed2, len + BLOCK_OVERHEAD, out), (int)len);
	cr_expect_eq(memcmp(out, plain, len), 0);
	filekey_free(fk);
	keys_free(k);
}

Test(crypto, seal_open_round_trip_xchacha)
{
	static const size_t lens[] = {1, 2, 15, 16, 17, 4095, 4096};

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		round_trip(CIPHER_XCHACHA20POLY1305, lens[i]);
}

Test(crypto, seal_open_round_trip_aesgcm)
{
	static const size_t lens[] = {1, 2, 15, 16, 17, 4095, 4096};

	if (!crypto_cipher_usable(CIPHER_AES256GCM))
		cr_skip_test("AES-256-GCM not usable on this CPU");
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		round_trip(CIPHER_AES256GCM, lens[i]);
}

Test(crypto, aesgcm_seal_zeroes_nonce_padding)
{
	uint8_t plain[64] = {0}, sealed[64 + BLOCK_OVERHEAD];
	struct keys *k = gkeys();
	struct filekey *fk;

	if (!crypto_cipher_usable(CIPHER_AES256GCM))
		cr_skip_test("AES-256-GCM not usable on this CPU");
	fk = filekey_new(k, file_id0, ENTRY_REG, CIPHER_AES256GCM);
	cr_assert_not_null(fk);
	memset(sealed, SENTINEL, sizeof(sealed));
	block_seal(fk, 0, plain, sizeof(plain), sealed);
	cr_expect(all_bytes(sealed + 12, BLOCK_NONCE - 12, 0));
	filekey_free(fk);
	keys_free(k);
}

/* What a failed block_open of a len-byte block left in out (BLOCK_SIZE
 * bytes, filled with SENTINEL before). */
enum residue { UNTOUCHED, ZEROED, OTHER };

static enum residue residue_of(const uint8_t *out, size_t len)
{
	if (all_bytes(out, BLOCK_SIZE, SENTINEL))
		return UNTOUCHED;
	if (all_bytes(out, len, 0) && all_bytes(out + len, BLOCK_SIZE - len, SENTINEL))
		return ZEROED;
	return OTHER;
}

/* Flip bits 0 and 7 of every byte position of a sealed block of len bytes
 * in turn, skipping [skip_from, skip_to). Each must open as -EIO and leave
 * no plaintext in out; with strict, out must be left untouched, as
 * crypto.h promises ("Nothing is written to out on failure"). */
static void tamper_every_byte(int cipher, size_t len, size_t skip_from, size_t skip_to, bool strict)
{
	static uint8_t plain[BLOCK_SIZE], sealed[BLOCK_DISK], out[BLOCK_SIZE];
	struct keys *k = gkeys();
	struct filekey *fk = filekey_new(k, file_id0, ENTRY_REG, cipher);
	size_t disk = len + BLOCK_OVERHEAD, accepted = 0, leaked = 0, dirtied = 0;
	size_t first_accepted = SIZE_MAX, first_leaked = SIZE_MAX, first_dirtied = SIZE_MAX;

	cr_assert_not_null(fk);
	fill_plain(plain, len, 3);
	block_seal(fk, 1, plain, len, sealed);
	for (size_t pos = 0; pos < disk; pos++) {
		if (pos >= skip_from && pos < skip_to)
			continue;
		for (int bit = 0; bit < 8; bit += 7) {
			enum residue r;
			int rc;

			sealed[pos] ^= (uint8_t)(1u << bit);
			memset(out, SENTINEL, sizeof(out));
			rc = block_open(fk, 1, sealed, disk, out);
			sealed[pos] ^= (uint8_t)(1u << bit);
			r = residue_of(out, len);
			if (rc != -EIO && accepted++ == 0)
				first_accepted = pos;
			if (rc == -EIO && r == OTHER && leaked++ == 0)
				first_leaked = pos;
			if (rc == -EIO && r != UNTOUCHED && dirtied++ == 0)
				first_dirtied = pos;
		}
	}
	cr_expect_eq(accepted, 0, "cipher %d len %zu: %zu flips accepted, first at byte %zu",
		     cipher, len, accepted, first_accepted);
	cr_expect_eq(leaked, 0,
		     "cipher %d len %zu: %zu failed opens left data in out, first at byte %zu",
		     cipher, len, leaked, first_leaked);
	if (strict)
		cr_expect_eq(dirtied, 0,
			     "cipher %d len %zu: %zu failed opens wrote to out (zeroed it), "
			     "first at byte %zu",
			     cipher, len, dirtied, first_dirtied);
	cr_expect_eq(block_open(fk, 1, sealed, disk, out), (int)len, "restored block rejected");
	filekey_free(fk);
	keys_free(k);
}

Test(crypto, tamper_every_byte_xchacha)
{
	tamper_every_byte(CIPHER_XCHACHA20POLY1305, 1, 0, 0, false);
	tamper_every_byte(CIPHER_XCHACHA20POLY1305, 100, 0, 0, false);
	tamper_every_byte(CIPHER_XCHACHA20POLY1305, BLOCK_SIZE, 0, 0, false);
}

/* AES-GCM but for the 12 unused nonce-slot bytes (tested on their own). */
Test(crypto, tamper_every_byte_aesgcm)
{
	if (!crypto_cipher_usable(CIPHER_AES256GCM))
		cr_skip_test("AES-256-GCM not usable on this CPU");
	tamper_every_byte(CIPHER_AES256GCM, 1, 12, BLOCK_NONCE, false);
	tamper_every_byte(CIPHER_AES256GCM, 100, 12, BLOCK_NONCE, false);
	tamper_every_byte(CIPHER_AES256GCM, BLOCK_SIZE, 12, BLOCK_NONCE, false);
}

/* KNOWN BUG (fs/crypto.c block_open): AES-GCM uses only the first 12 bytes
 * of the 24-byte nonce slot; bytes 12..23 are neither authenticated nor
 * checked, so a block with them flipped still opens. crypto.h says a
 * flipped block reads as EIO; DESIGN.md says every byte is authenticated. */
Test(crypto, aesgcm_nonce_padding_is_authenticated)
{
	if (!crypto_cipher_usable(CIPHER_AES256GCM))
		cr_skip_test("AES-256-GCM not usable on this CPU");
	tamper_every_byte(CIPHER_AES256GCM, 100, 0, 12, false);
}

/* KNOWN BUG (fs/crypto.c block_open vs crypto.h "Nothing is written to out
 * on failure"): libsodium 1.0.18 zeroes m when a detached decrypt fails
 * (XChaCha after checking the tag; AES-GCM after decrypting into out while
 * it computes the tag). No plaintext survives (tamper_every_byte checks
 * that), but out is not left alone. */
Test(crypto, failed_open_leaves_out_untouched_xchacha)
{
	tamper_every_byte(CIPHER_XCHACHA20POLY1305, 100, 0, 0, true);
}

Test(crypto, failed_open_leaves_out_untouched_aesgcm)
{
	if (!crypto_cipher_usable(CIPHER_AES256GCM))
		cr_skip_test("AES-256-GCM not usable on this CPU");
	tamper_every_byte(CIPHER_AES256GCM, 100, 12, BLOCK_NONCE, true);
}

/* Seal with fk_seal at index si, open with fk_open at index oi: -EIO, and
 * no plaintext left in out. */
static void expect_rejected(struct filekey *fk_seal, uint64_t si, struct filekey *fk_open,
			    uint64_t oi, const char *what)
{
	static uint8_t plain[BLOCK_SIZE], sealed[BLOCK_DISK], out[BLOCK_SIZE];

	fill_plain(plain, BLOCK_SIZE, 9);
	block_seal(fk_seal, si, plain, BLOCK_SIZE, sealed);
	memset(out, SENTINEL, sizeof(out));
	cr_expect_eq(block_open(fk_open, oi, sealed, BLOCK_DISK, out), -EIO, "%s", what);
	cr_expect_neq(residue_of(out, BLOCK_SIZE), OTHER, "%s: data left in out", what);
}

static void binding(int cipher)
{
	struct keys *k = gkeys(), *k2 = keys_generate();
	uint8_t id2[FILE_ID_BYTES];
	struct filekey *fk, *other_id, *other_type, *other_master, *other_cipher = NULL;
	bool xc = cipher == CIPHER_XCHACHA20POLY1305;

	cr_assert_not_null(k2);
	memcpy(id2, file_id0, FILE_ID_BYTES);
	id2[FILE_ID_BYTES - 1] ^= 0x01;
	fk = filekey_new(k, file_id0, ENTRY_REG, cipher);
	other_id = filekey_new(k, id2, ENTRY_REG, cipher);
	other_type = filekey_new(k, file_id0, ENTRY_SYMLINK, cipher);
	other_master = filekey_new(k2, file_id0, ENTRY_REG, cipher);
	cr_assert(fk && other_id && other_type && other_master);
	expect_rejected(fk, 0, fk, 1, "index 0 opened as 1");
	expect_rejected(fk, 1, fk, 0, "index 1 opened as 0");
	expect_rejected(fk, 5, fk, 5 | (UINT64_C(1) << 32), "index high word ignored");
	expect_rejected(fk, 5, fk, 5 | (UINT64_C(1) << 56), "index top byte ignored");
	expect_rejected(fk, 0, other_id, 0, "block from another file id");
	expect_rejected(other_id, 0, fk, 0, "block from another file id (reverse)");
	expect_rejected(other_type, 0, fk, 0, "block sealed with another type");
	expect_rejected(fk, 0, other_type, 0, "block opened with another type");
	expect_rejected(fk, 0, other_master, 0, "block from another master key");
	if (crypto_cipher_usable(CIPHER_AES256GCM)) {
		other_cipher = filekey_new(k, file_id0, ENTRY_REG,
					   xc ? CIPHER_AES256GCM : CIPHER_XCHACHA20POLY1305);
		cr_assert_not_null(other_cipher);
		expect_rejected(fk, 0, other_cipher, 0, "block opened with another cipher");
	}
	filekey_free(fk);
	filekey_free(other_id);
	filekey_free(other_type);
	filekey_free(other_master);
	filekey_free(other_cipher);
	keys_free(k);
	keys_free(k2);
}

Test(crypto, block_bound_to_index_file_type_key_xchacha)
{
	binding(CIPHER_XCHACHA20POLY1305);
}

Test(crypto, block_bound_to_index_file_type_key_aesgcm)
{
	if (!crypto_cipher_usable(CIPHER_AES256GCM))
		cr_skip_test("AES-256-GCM not usable on this CPU");
	binding(CIPHER_AES256GCM);
}

static void truncated(int cipher)
{
	static uint8_t plain[BLOCK_SIZE], sealed[BLOCK_DISK + 1], out[BLOCK_SIZE];
	struct keys *k = gkeys();
	struct filekey *fk = filekey_new(k, file_id0, ENTRY_REG, cipher);
	static const size_t lens[] = {1, 100, BLOCK_SIZE};

	cr_assert_not_null(fk);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t len = lens[i], disk = len + BLOCK_OVERHEAD;

		fill_plain(plain, len, 1);
		block_seal(fk, 2, plain, len, sealed);
		sealed[disk] = 0;
		for (size_t cut = 1; cut <= disk; cut += (cut < 48 || cut + 48 > disk) ? 1 : 97)
			cr_expect_eq(block_open(fk, 2, sealed, disk - cut, out), -EIO,
				     "cipher %d len %zu cut %zu accepted", cipher, len, cut);
		if (disk < BLOCK_DISK)
			cr_expect_eq(block_open(fk, 2, sealed, disk + 1, out), -EIO,
				     "len %zu with a byte appended accepted", len);
		cr_expect_eq(block_open(fk, 2, sealed, disk, out), (int)len);
	}
	/* Out of range lengths, whatever the bytes. */
	cr_expect_eq(block_open(fk, 2, sealed, 0, out), -EIO);
	cr_expect_eq(block_open(fk, 2, sealed, BLOCK_OVERHEAD, out), -EIO);
	cr_expect_eq(block_open(fk, 2, sealed, BLOCK_DISK + 1, out), -EIO);
	filekey_free(fk);
	keys_free(k);
}

Test(crypto, truncated_block_xchacha)
{
	truncated(CIPHER_XCHACHA20POLY1305);
}

Test(crypto, truncated_block_aesgcm)
{
	if (!crypto_cipher_usable(CIPHER_AES256GCM))
		cr_skip_test("AES-256-GCM not usable on this CPU");
	truncated(CIPHER_AES256GCM);
}

/* The pool hands out more keys than one chunk holds, each independent. */
Test(crypto, filekey_pool_many_keys)
{
	enum { N = 200 };
	struct keys *k = gkeys();
	struct filekey *fks[N];
	uint8_t id[FILE_ID_BYTES] = {0}, plain[32], sealed[32 + BLOCK_OVERHEAD], out[32];

	fill_plain(plain, sizeof(plain), 5);
	for (int i = 0; i < N; i++) {
		id[0] = (uint8_t)i;
		id[1] = (uint8_t)(i >> 8);
		fks[i] = filekey_new(k, id, ENTRY_REG, CIPHER_XCHACHA20POLY1305);
		cr_assert_not_null(fks[i]);
		for (int j = 0; j < i; j++)
			cr_assert_neq(fks[i], fks[j]);
	}
	for (int i = 0; i < N; i++) {
		block_seal(fks[i], 0, plain, sizeof(plain), sealed);
		cr_expect_eq(block_open(fks[i], 0, sealed, sizeof(sealed), out), 32);
		cr_expect_eq(block_open(fks[(i + 1) % N], 0, sealed, sizeof(sealed), out), -EIO);
	}
	for (int i = 0; i < N; i += 2)
		filekey_free(fks[i]);
	for (int i = 0; i < N; i += 2) {
		id[0] = (uint8_t)i;
		id[1] = (uint8_t)(i >> 8);
		fks[i] = filekey_new(k, id, ENTRY_REG, CIPHER_XCHACHA20POLY1305);
		cr_assert_not_null(fks[i]);
		block_seal(fks[i + 1], 0, plain, sizeof(plain), sealed);
		cr_expect_eq(block_open(fks[i + 1], 0, sealed, sizeof(sealed), out), 32,
			     "a reused pool slot broke its neighbour");
	}
	for (int i = 0; i < N; i++)
		filekey_free(fks[i]);
	keys_free(k);
}

/* ---- golden blocks: the on-disk format, built by hand ---- */

/* The documented file key: BLAKE2b-256 keyed with keys->content over
 * "ekycfs file key v1" || file_id || cipher byte. */
static void doc_file_key(const struct keys *k, uint8_t cipher, uint8_t out[KEY_BYTES])
{
	static const char label[] = "ekycfs file key v1";
	uint8_t msg[sizeof(label) - 1 + FILE_ID_BYTES + 1];

	memcpy(msg, label, sizeof(label) - 1);
	memcpy(msg + sizeof(label) - 1, file_id0, FILE_ID_BYTES);
	msg[sizeof(msg) - 1] = cipher;
	cr_assert_eq(crypto_generichash(out, KEY_BYTES, msg, sizeof(msg), k->content, KEY_BYTES),
		     0);
}

/* The documented associated data: file_id || type || index LE64. */
static void doc_ad(uint8_t type, uint64_t index, uint8_t ad[FILE_ID_BYTES + 9])
{
	memcpy(ad, file_id0, FILE_ID_BYTES);
	ad[FILE_ID_BYTES] = type;
	for (int i = 0; i < 8; i++)
		ad[FILE_ID_BYTES + 1 + i] = (uint8_t)(index >> (8 * i));
}

Test(crypto, golden_block_xchacha)
{
	const size_t len = sizeof(GOLD_PLAIN_XCHACHA) - 1;
	uint8_t key[KEY_BYTES], ad[FILE_ID_BYTES + 9], sealed[BLOCK_DISK], out[BLOCK_SIZE];
	char h[HEX_MAX];
	struct keys *k = gkeys();
	struct filekey *fk;

	doc_file_key(k, CIPHER_XCHACHA20POLY1305, key);
	cr_expect_str_eq(hex(key, KEY_BYTES, h), GOLD_FILEKEY_XCHACHA);
	doc_ad(GOLD_TYPE, GOLD_INDEX, ad);
	memcpy(sealed, nonce0, BLOCK_NONCE);
	cr_assert_eq(crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
			     sealed + BLOCK_NONCE, sealed + BLOCK_NONCE + len, NULL,
			     (const uint8_t *)GOLD_PLAIN_XCHACHA, len, ad, sizeof(ad), NULL, nonce0,
			     key),
		     0);
	cr_expect_str_eq(hex(sealed + BLOCK_NONCE, 16, h), GOLD_CT16_XCHACHA);
	cr_expect_str_eq(hex(sealed + BLOCK_NONCE + len, BLOCK_TAG, h), GOLD_TAG_XCHACHA);

	fk = filekey_new(k, file_id0, GOLD_TYPE, CIPHER_XCHACHA20POLY1305);
	cr_assert_not_null(fk);
	memset(out, SENTINEL, sizeof(out));
	cr_assert_eq(block_open(fk, GOLD_INDEX, sealed, len + BLOCK_OVERHEAD, out), (int)len,
		     "block_open rejects the documented format");
	cr_expect_eq(memcmp(out, GOLD_PLAIN_XCHACHA, len), 0);
	cr_expect_eq(block_open(fk, GOLD_INDEX - 1, sealed, len + BLOCK_OVERHEAD, out), -EIO);

	/* And block_seal's output opens with the documented construction. */
	block_seal(fk, GOLD_INDEX, (const uint8_t *)GOLD_PLAIN_XCHACHA, len, sealed);
	memset(out, 0, sizeof(out));
	cr_expect_eq(crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
			     out, NULL, sealed + BLOCK_NONCE, len, sealed + BLOCK_NONCE + len, ad,
			     sizeof(ad), sealed, key),
		     0, "block_seal does not follow the documented format");
	cr_expect_eq(memcmp(out, GOLD_PLAIN_XCHACHA, len), 0);
	sodium_memzero(key, sizeof(key));
	filekey_free(fk);
	keys_free(k);
}

Test(crypto, golden_block_aesgcm)
{
	const size_t len = sizeof(GOLD_PLAIN_AES) - 1;
	uint8_t key[KEY_BYTES], ad[FILE_ID_BYTES + 9], sealed[BLOCK_DISK], out[BLOCK_SIZE];
	char h[HEX_MAX];
	struct keys *k = gkeys();
	struct filekey *fk;

	/* The key derivation does not need AES-NI; pin it everywhere. */
	doc_file_key(k, CIPHER_AES256GCM, key);
	cr_expect_str_eq(hex(key, KEY_BYTES, h), GOLD_FILEKEY_AES);
	if (!crypto_cipher_usable(CIPHER_AES256GCM)) {
		keys_free(k);
		cr_skip_test("AES-256-GCM not usable on this CPU");
	}
	doc_ad(GOLD_TYPE, GOLD_INDEX, ad);
	memcpy(sealed, nonce0, 12);
	memset(sealed + 12, 0, BLOCK_NONCE - 12);
	cr_assert_eq(crypto_aead_aes256gcm_encrypt_detached(sealed + BLOCK_NONCE,
							    sealed + BLOCK_NONCE + len, NULL,
							    (const uint8_t *)GOLD_PLAIN_AES, len,
							    ad, sizeof(ad), NULL, nonce0, key),
		     0);
	cr_expect_str_eq(hex(sealed + BLOCK_NONCE, 16, h), GOLD_CT16_AES);
	cr_expect_str_eq(hex(sealed + BLOCK_NONCE + len, BLOCK_TAG, h), GOLD_TAG_AES);

	fk = filekey_new(k, file_id0, GOLD_TYPE, CIPHER_AES256GCM);
	cr_assert_not_null(fk);
	cr_assert_eq(block_open(fk, GOLD_INDEX, sealed, len + BLOCK_OVERHEAD, out), (int)len,
		     "block_open rejects the documented format");
	cr_expect_eq(memcmp(out, GOLD_PLAIN_AES, len), 0);

	block_seal(fk, GOLD_INDEX, (const uint8_t *)GOLD_PLAIN_AES, len, sealed);
	memset(out, 0, sizeof(out));
	cr_expect_eq(crypto_aead_aes256gcm_decrypt_detached(out, NULL, sealed + BLOCK_NONCE, len,
							    sealed + BLOCK_NONCE + len, ad,
							    sizeof(ad), sealed, key),
		     0, "block_seal does not follow the documented format");
	cr_expect_eq(memcmp(out, GOLD_PLAIN_AES, len), 0);
	sodium_memzero(key, sizeof(key));
	filekey_free(fk);
	keys_free(k);
}

/* Layout constants the golden blocks rely on. */
Test(crypto, block_format_constants)
{
	cr_expect_eq(BLOCK_NONCE, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	cr_expect_geq(BLOCK_NONCE, crypto_aead_aes256gcm_NPUBBYTES);
	cr_expect_eq(BLOCK_TAG, crypto_aead_xchacha20poly1305_ietf_ABYTES);
	cr_expect_eq(BLOCK_TAG, crypto_aead_aes256gcm_ABYTES);
	cr_expect_eq(BLOCK_OVERHEAD, 40);
	cr_expect_eq(BLOCK_DISK, 4136);
}

/* crypto_wipe and crypto_random do what they say. */
Test(crypto, wipe_and_random)
{
	uint8_t a[64], b[64];

	crypto_random(a, sizeof(a));
	crypto_random(b, sizeof(b));
	cr_expect_neq(memcmp(a, b, sizeof(a)), 0);
	crypto_wipe(a, sizeof(a));
	cr_expect(all_bytes(a, sizeof(a), 0));
}
