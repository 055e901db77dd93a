/* crypto.c - the master key, its subkeys, per-file keys and block AEAD.
 * Every key byte lives in sodium_malloc'ed memory and is wiped on free. */
#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"
#include "util.h"

#define KDF_CONTEXT "ekycfs01"
#define KEYFILE_HEX (KEY_BYTES * 2)
#define POOL_CHUNK 64

enum subkey_id {
	SUBKEY_CONTENT = 1,
	SUBKEY_NAMES = 2,
	SUBKEY_STAMP = 3,
	SUBKEY_AUDIT = 4,
	SUBKEY_CHECK = 5,
	SUBKEY_XATTR = 6,
};

struct filekey {
	crypto_aead_aes256gcm_state aes; /* expanded key, AES-GCM only */
	uint8_t key[KEY_BYTES];
	uint8_t ad[FILE_ID_BYTES + 1]; /* file id || type */
	int cipher;
	struct filekey *next_free; /* protected by pool.lock while free */
};

/* A free list of filekeys carved from locked chunks that are never
 * returned: the pool only grows to the peak number of open files. */
static struct {
	pthread_mutex_t lock;
	struct filekey *free;
} pool = {PTHREAD_MUTEX_INITIALIZER, NULL};

int crypto_setup(void)
{
	struct rlimit none = {0, 0};

	if (sodium_init() < 0)
		return -EIO;
	/* A core dump would hold keys and plaintext. */
	if (setrlimit(RLIMIT_CORE, &none) < 0 || prctl(PR_SET_DUMPABLE, 0) < 0)
		return -errno;
	return 0;
}

void crypto_random(void *buf, size_t len)
{
	randombytes_buf(buf, len);
}

void crypto_random_bulk(void *buf, size_t len)
{
	uint8_t seed[randombytes_SEEDBYTES];

	/* A fresh kernel seed per call, expanded in user space (ChaCha20):
	 * overwriting gigabytes should not be bound by getrandom(2). */
	randombytes_buf(seed, sizeof(seed));
	randombytes_buf_deterministic(buf, len, seed);
	sodium_memzero(seed, sizeof(seed));
}

void crypto_wipe(void *buf, size_t len)
{
	sodium_memzero(buf, len);
}

/* The one frame allowed past the Makefile's -Wframe-larger-than. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wframe-larger-than="
__attribute__((noinline)) void crypto_wipe_stack(void)
{
	uint8_t below[CRYPTO_STACK_BURN];

	sodium_memzero(below, sizeof(below));
}
#pragma GCC diagnostic pop

static struct keys *keys_alloc(void)
{
	struct keys *k = sodium_malloc(sizeof(*k));

	if (k)
		sodium_memzero(k, sizeof(*k));
	return k;
}

static void keys_derive(struct keys *k)
{
	crypto_kdf_derive_from_key(k->content, KEY_BYTES, SUBKEY_CONTENT, KDF_CONTEXT, k->master);
	crypto_kdf_derive_from_key(k->names, KEY_BYTES, SUBKEY_NAMES, KDF_CONTEXT, k->master);
	crypto_kdf_derive_from_key(k->stamp, KEY_BYTES, SUBKEY_STAMP, KDF_CONTEXT, k->master);
	crypto_kdf_derive_from_key(k->audit, KEY_BYTES, SUBKEY_AUDIT, KDF_CONTEXT, k->master);
	crypto_kdf_derive_from_key(k->check, KEY_BYTES, SUBKEY_CHECK, KDF_CONTEXT, k->master);
	crypto_kdf_derive_from_key(k->xattr, KEY_BYTES, SUBKEY_XATTR, KDF_CONTEXT, k->master);
}

struct keys *keys_generate(void)
{
	struct keys *k = keys_alloc();

	if (!k)
		return NULL;
	randombytes_buf(k->master, KEY_BYTES);
	keys_derive(k);
	return k;
}

struct keys *keys_from_master(const uint8_t master[KEY_BYTES])
{
	struct keys *k = keys_alloc();

	if (!k)
		return NULL;
	memcpy(k->master, master, KEY_BYTES);
	keys_derive(k);
	return k;
}

void keys_free(struct keys *k)
{
	sodium_free(k); /* wipes before unmapping */
}

int keys_load_file(const char *path, struct keys **out, char *err, size_t errlen)
{
	char *hex = NULL;
	struct keys *k = NULL;
	struct stat st;
	ssize_t n;
	size_t binlen = 0;
	int fd, rc = 0;

	/* A symlink is fine (its target is checked); a fifo does not block. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "key file %s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(err, errlen, "key file %s: not a regular file", path);
		goto out_close;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		rc = -EPERM;
		snprintf(err, errlen, "key file %s: readable by group or others (chmod 600 it)",
			 path);
		goto out_close;
	}
	hex = sodium_malloc(KEYFILE_HEX + 2);
	k = keys_alloc();
	if (!hex || !k) {
		rc = -ENOMEM;
		snprintf(err, errlen, "key file %s: out of memory", path);
		goto out_free;
	}
	n = pread_full(fd, hex, KEYFILE_HEX + 2, 0);
	if (n == KEYFILE_HEX + 1 && hex[KEYFILE_HEX] == '\n')
		n = KEYFILE_HEX;
	if (n != KEYFILE_HEX ||
	    sodium_hex2bin(k->master, KEY_BYTES, hex, KEYFILE_HEX, NULL, &binlen, NULL) != 0 ||
	    binlen != KEY_BYTES) {
		rc = -EINVAL;
		snprintf(err, errlen, "key file %s: not a key (want %d hex digits)", path,
			 KEYFILE_HEX);
		goto out_free;
	}
	keys_derive(k);
	*out = k;
	k = NULL;
out_free:
	keys_free(k);
	sodium_free(hex);
out_close:
	close(fd);
	return rc;
}

int keys_write_file(const char *path)
{
	uint8_t *master = sodium_malloc(KEY_BYTES);
	char *hex = sodium_malloc(KEYFILE_HEX + 2);
	int fd = -1, rc = 0;

	if (!master || !hex) {
		rc = -ENOMEM;
		goto out_free;
	}
	randombytes_buf(master, KEY_BYTES);
	sodium_bin2hex(hex, KEYFILE_HEX + 1, master, KEY_BYTES);
	hex[KEYFILE_HEX] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out_free;
	}
	if (fchmod(fd, 0600) < 0 || write(fd, hex, KEYFILE_HEX + 1) != KEYFILE_HEX + 1 ||
	    fsync(fd) < 0) {
		rc = errno ? -errno : -EIO;
		unlink(path);
	}
	close(fd);
out_free:
	sodium_free(master);
	sodium_free(hex);
	return rc;
}

/* BLAKE2b-256 of label keyed with the check subkey. */
static void check_value(const struct keys *k, const char *label, uint8_t out[KEY_CHECK_BYTES])
{
	crypto_generichash(out, KEY_CHECK_BYTES, (const uint8_t *)label, strlen(label), k->check,
			   KEY_BYTES);
}

void keys_check_value(const struct keys *k, uint8_t out[KEY_CHECK_BYTES])
{
	check_value(k, "ekycfs key check v1", out);
}

void keys_check_value_bound(const struct keys *k, uint8_t out[KEY_CHECK_BYTES])
{
	check_value(k, "ekycfs key check v2, zone stamps bound", out);
}

bool keys_check_equal(const uint8_t a[KEY_CHECK_BYTES], const uint8_t b[KEY_CHECK_BYTES])
{
	return sodium_memcmp(a, b, KEY_CHECK_BYTES) == 0;
}

enum cipher_id crypto_best_cipher(void)
{
	return crypto_aead_aes256gcm_is_available() ? CIPHER_AES256GCM : CIPHER_XCHACHA20POLY1305;
}

bool crypto_cipher_usable(int cipher)
{
	if (cipher == CIPHER_XCHACHA20POLY1305)
		return true;
	return cipher == CIPHER_AES256GCM && crypto_aead_aes256gcm_is_available();
}

const char *crypto_cipher_name(int cipher)
{
	switch (cipher) {
	case CIPHER_XCHACHA20POLY1305:
		return "xchacha20poly1305";
	case CIPHER_AES256GCM:
		return "aes256gcm";
	default:
		return "unknown";
	}
}

int crypto_cipher_from_name(const char *name)
{
	if (strcmp(name, "xchacha20poly1305") == 0)
		return CIPHER_XCHACHA20POLY1305;
	if (strcmp(name, "aes256gcm") == 0)
		return CIPHER_AES256GCM;
	return -EINVAL;
}

void crypto_stamp_mac(const struct keys *k, const void *msg, size_t len,
		      uint8_t out[STAMP_MAC_BYTES])
{
	crypto_generichash(out, STAMP_MAC_BYTES, msg, len, k->stamp, KEY_BYTES);
}

bool crypto_mac_equal(const uint8_t a[STAMP_MAC_BYTES], const uint8_t b[STAMP_MAC_BYTES])
{
	return sodium_memcmp(a, b, STAMP_MAC_BYTES) == 0;
}

void crypto_audit_id(const struct keys *k, const uint8_t id[FILE_ID_BYTES], char *out)
{
	uint8_t h[AUDIT_ID_BYTES];

	crypto_generichash(h, sizeof(h), id, FILE_ID_BYTES, k->audit, KEY_BYTES);
	sodium_bin2hex(out, 2 * AUDIT_ID_BYTES + 1, h, sizeof(h));
}

/* ---- user extended attributes ---- */

void crypto_xattr_slot(const struct keys *k, const uint8_t id[FILE_ID_BYTES], const char *name,
		       char *out)
{
	static const char label[] = "ekycfs xattr slot v1";
	crypto_generichash_state st;
	uint8_t h[16];

	crypto_generichash_init(&st, k->xattr, KEY_BYTES, sizeof(h));
	crypto_generichash_update(&st, (const uint8_t *)label, sizeof(label));
	crypto_generichash_update(&st, id, FILE_ID_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)name, strlen(name));
	crypto_generichash_final(&st, h, sizeof(h));
	memcpy(out, XATTR_SLOT_PREFIX, sizeof(XATTR_SLOT_PREFIX) - 1);
	sodium_bin2base64(out + sizeof(XATTR_SLOT_PREFIX) - 1, 23, h, sizeof(h),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* Associated data: entry id || slot name. */
static size_t xattr_ad(const uint8_t id[FILE_ID_BYTES], const char *slot, uint8_t *ad)
{
	memcpy(ad, id, FILE_ID_BYTES);
	memcpy(ad + FILE_ID_BYTES, slot, XATTR_SLOT_LEN);
	return FILE_ID_BYTES + XATTR_SLOT_LEN;
}

size_t crypto_xattr_seal(const struct keys *k, const uint8_t id[FILE_ID_BYTES], const char *slot,
			 const char *name, const void *value, size_t len, uint8_t *out)
{
	uint8_t ad[FILE_ID_BYTES + XATTR_SLOT_LEN];
	size_t nlen = strlen(name), plen = 1 + nlen + len;
	uint8_t *p = out + 24;

	/* In place: nonce || (name length || name || value) sealed || tag. */
	p[0] = (uint8_t)nlen;
	memcpy(p + 1, name, nlen);
	memcpy(p + 1 + nlen, value, len);
	randombytes_buf(out, 24);
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
		p, p + plen, NULL, p, plen, ad, xattr_ad(id, slot, ad), NULL, out, k->xattr);
	return 24 + plen + 16;
}

ssize_t crypto_xattr_open(const struct keys *k, const uint8_t id[FILE_ID_BYTES], const char *slot,
			  const uint8_t *in, size_t inlen, char *name, void *value, size_t cap)
{
	uint8_t ad[FILE_ID_BYTES + XATTR_SLOT_LEN];
	uint8_t *plain;
	size_t plen, nlen, vlen;
	ssize_t rc = -EIO;

	if (inlen < XATTR_SEAL_OVERHEAD)
		return -EIO;
	plen = inlen - 40;
	plain = malloc(plen);
	if (!plain)
		return -ENOMEM;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
		    plain, NULL, in + 24, plen, in + 24 + plen, ad, xattr_ad(id, slot, ad), in,
		    k->xattr) != 0)
		goto out_free;
	nlen = plain[0];
	if (nlen == 0 || 1 + nlen > plen)
		goto out_free;
	vlen = plen - 1 - nlen;
	memcpy(name, plain + 1, nlen);
	name[nlen] = '\0';
	rc = (ssize_t)vlen;
	if (value && vlen > cap)
		rc = -ERANGE;
	else if (value)
		memcpy(value, plain + 1 + nlen, vlen);
out_free:
	sodium_memzero(plain, plen);
	free(plain);
	return rc;
}

/* ---- per-file keys ---- */

static int pool_grow_locked(void)
{
	struct filekey *chunk = sodium_malloc(POOL_CHUNK * sizeof(*chunk));

	if (!chunk)
		return -ENOMEM;
	for (size_t i = 0; i < POOL_CHUNK; i++) {
		chunk[i].next_free = pool.free;
		pool.free = &chunk[i];
	}
	return 0;
}

struct filekey *filekey_new(const struct keys *k, const uint8_t file_id[FILE_ID_BYTES],
			    uint8_t type, int cipher)
{
	static const char label[] = "ekycfs file key v1";
	crypto_generichash_state st;
	struct filekey *fk = NULL;
	uint8_t c = (uint8_t)cipher;

	if (!crypto_cipher_usable(cipher))
		return NULL;
	pthread_mutex_lock(&pool.lock);
	if (pool.free || pool_grow_locked() == 0) {
		fk = pool.free;
		pool.free = fk->next_free;
	}
	pthread_mutex_unlock(&pool.lock);
	if (!fk)
		return NULL;
	crypto_generichash_init(&st, k->content, KEY_BYTES, KEY_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)label, sizeof(label) - 1);
	crypto_generichash_update(&st, file_id, FILE_ID_BYTES);
	crypto_generichash_update(&st, &c, 1);
	crypto_generichash_final(&st, fk->key, KEY_BYTES);
	sodium_memzero(&st, sizeof(st));
	memcpy(fk->ad, file_id, FILE_ID_BYTES);
	fk->ad[FILE_ID_BYTES] = type;
	fk->cipher = cipher;
	if (cipher == CIPHER_AES256GCM)
		crypto_aead_aes256gcm_beforenm(&fk->aes, fk->key);
	return fk;
}

void filekey_free(struct filekey *fk)
{
	if (!fk)
		return;
	sodium_memzero(fk, sizeof(*fk));
	pthread_mutex_lock(&pool.lock);
	fk->next_free = pool.free;
	pool.free = fk;
	pthread_mutex_unlock(&pool.lock);
}

/* Associated data: file id || type || block index (little endian). */
static void block_ad(const struct filekey *fk, uint64_t index, uint8_t ad[FILE_ID_BYTES + 9])
{
	memcpy(ad, fk->ad, FILE_ID_BYTES + 1);
	for (int i = 0; i < 8; i++)
		ad[FILE_ID_BYTES + 1 + i] = (uint8_t)(index >> (8 * i));
}

/* Random nonces from a per-thread pool refilled 4 KiB at a time: one
 * getrandom call per ~170 blocks instead of one per block. */
static void nonce_bytes(uint8_t *out, size_t len)
{
	static __thread uint8_t nonces[4096];
	static __thread size_t left;

	if (left < len) {
		randombytes_buf(nonces, sizeof(nonces));
		left = sizeof(nonces);
	}
	memcpy(out, nonces + sizeof(nonces) - left, len);
	left -= len;
}

void block_seal(const struct filekey *fk, uint64_t index, const uint8_t *plain, size_t len,
		uint8_t *out)
{
	uint8_t ad[FILE_ID_BYTES + 9];
	uint8_t *nonce = out, *ct = out + BLOCK_NONCE, *tag = out + BLOCK_NONCE + len;

	block_ad(fk, index, ad);
	if (fk->cipher == CIPHER_AES256GCM) {
		nonce_bytes(nonce, crypto_aead_aes256gcm_NPUBBYTES);
		memset(nonce + crypto_aead_aes256gcm_NPUBBYTES, 0,
		       BLOCK_NONCE - crypto_aead_aes256gcm_NPUBBYTES);
		crypto_aead_aes256gcm_encrypt_detached_afternm(ct, tag, NULL, plain, len, ad,
							       sizeof(ad), NULL, nonce, &fk->aes);
	} else {
		nonce_bytes(nonce, BLOCK_NONCE);
		crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
			ct, tag, NULL, plain, len, ad, sizeof(ad), NULL, nonce, fk->key);
	}
}

int block_open(const struct filekey *fk, uint64_t index, const uint8_t *in, size_t inlen,
	       uint8_t *out)
{
	uint8_t ad[FILE_ID_BYTES + 9], plain[BLOCK_SIZE];
	size_t len;
	int rc;

	if (inlen <= BLOCK_OVERHEAD || inlen > BLOCK_DISK)
		return -EIO;
	len = inlen - BLOCK_OVERHEAD;
	block_ad(fk, index, ad);
	/* Into a scratch block first: libsodium's AES-GCM decrypts while it
	 * checks the tag, and out must never see unauthenticated bytes. */
	if (fk->cipher == CIPHER_AES256GCM) {
		/* The unused nonce bytes are zero when sealed; check them too, so
		 * that every stored byte is authenticated. */
		if (!sodium_is_zero(in + crypto_aead_aes256gcm_NPUBBYTES,
				    BLOCK_NONCE - crypto_aead_aes256gcm_NPUBBYTES))
			return -EIO;
		rc = crypto_aead_aes256gcm_decrypt_detached_afternm(plain, NULL, in + BLOCK_NONCE,
								    len, in + BLOCK_NONCE + len, ad,
								    sizeof(ad), in, &fk->aes);
	} else {
		rc = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
			plain, NULL, in + BLOCK_NONCE, len, in + BLOCK_NONCE + len, ad, sizeof(ad),
			in, fk->key);
	}
	if (rc == 0)
		memcpy(out, plain, len);
	/* No plaintext stays behind in this thread's stack. */
	crypto_wipe(plain, len);
	return rc == 0 ? (int)len : -EIO;
}
