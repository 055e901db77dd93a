/* crypto.h - keys and block crypto: the master key and its subkeys in locked
 * memory, per-file keys, and the AEAD that seals each content block. */
#ifndef EKYCFS_CRYPTO_H
#define EKYCFS_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KEY_BYTES 32
#define FILE_ID_BYTES 16
#define KEY_CHECK_BYTES 32
#define STAMP_MAC_BYTES 16
#define AUDIT_ID_BYTES 12

enum cipher_id {
	CIPHER_XCHACHA20POLY1305 = 1,
	CIPHER_AES256GCM = 2,
};

/* Master key and subkeys, all in one sodium_malloc'ed (locked, guarded)
 * allocation. Never copied out except into other locked memory. */
struct keys {
	uint8_t master[KEY_BYTES];
	uint8_t content[KEY_BYTES]; /* per-file key derivation */
	uint8_t names[KEY_BYTES];   /* name codec */
	uint8_t stamp[KEY_BYTES];   /* trusted-stamp MACs */
	uint8_t audit[KEY_BYTES];   /* opaque ids in the audit log */
	uint8_t check[KEY_BYTES];   /* key check value in the store marker */
	uint8_t xattr[KEY_BYTES];   /* user xattrs: slot names and sealed values */
};

/* Initialise libsodium and disable core dumps of this process. Returns 0
 * or -EIO. Call once before anything else here. */
__attribute__((warn_unused_result)) int crypto_setup(void);

/* A new random master key with its subkeys. NULL on ENOMEM. */
struct keys *keys_generate(void);

/* Keys from a 32-byte master. NULL on ENOMEM. */
struct keys *keys_from_master(const uint8_t master[KEY_BYTES]);

/* Read a key file (64 hex digits and an optional newline). Refuses a file
 * readable or writable by group or others (-EPERM) and a malformed one
 * (-EINVAL). Returns 0 and *out, or -errno with err holding one line. */
__attribute__((warn_unused_result)) int keys_load_file(const char *path, struct keys **out,
						       char *err, size_t errlen);

/* Write a new random key file at path, mode 0600, O_EXCL: never
 * overwrites (-EEXIST). Returns 0 or -errno. */
__attribute__((warn_unused_result)) int keys_write_file(const char *path);

/* Wipe and free. NULL is fine. */
void keys_free(struct keys *k);

/* The value stored in the marker to recognise this key. */
void keys_check_value(const struct keys *k, uint8_t out[KEY_CHECK_BYTES]);
/* The check value a store's marker holds once its zone stamps are bound
 * to their zones' names (stamp_open_zone): a marker with the one above is
 * of a store made before, whose unbound zone stamps are taken once. Only
 * the key makes either: no edit of a bound store's marker makes it look
 * unbound (putting back a marker saved before it was bound does). */
void keys_check_value_bound(const struct keys *k, uint8_t out[KEY_CHECK_BYTES]);

/* Constant-time comparison of two check values. */
bool keys_check_equal(const uint8_t a[KEY_CHECK_BYTES], const uint8_t b[KEY_CHECK_BYTES]);

/* Best content cipher on this CPU: AES-256-GCM with AES-NI, else
 * XChaCha20-Poly1305. */
enum cipher_id crypto_best_cipher(void);
bool crypto_cipher_usable(int cipher);
const char *crypto_cipher_name(int cipher);
int crypto_cipher_from_name(const char *name); /* -EINVAL if unknown */

/* Random bytes. */
void crypto_random(void *buf, size_t len);

/* Random bytes for overwriting (shredding): a kernel seed per call,
 * expanded with ChaCha20. */
void crypto_random_bulk(void *buf, size_t len);

/* Keyed 128-bit MAC over msg for the trusted stamp. */
void crypto_stamp_mac(const struct keys *k, const void *msg, size_t len,
		      uint8_t out[STAMP_MAC_BYTES]);
bool crypto_mac_equal(const uint8_t a[STAMP_MAC_BYTES], const uint8_t b[STAMP_MAC_BYTES]);

/* Opaque audit id of an entry: keyed hash of its id, hex into out
 * (2 * AUDIT_ID_BYTES + 1). */
void crypto_audit_id(const struct keys *k, const uint8_t id[FILE_ID_BYTES], char *out);

/* ---- user extended attributes ---- */

#define XATTR_SLOT_PREFIX "user.e."
#define XATTR_SLOT_LEN 29 /* prefix + 22 base64url chars */
#define XATTR_SEAL_OVERHEAD (24 + 1 + 16)

/* The backing xattr name that holds attribute name of the entry id: a
 * keyed hash, so the name itself is not on disk. out: XATTR_SLOT_LEN + 1. */
void crypto_xattr_slot(const struct keys *k, const uint8_t id[FILE_ID_BYTES], const char *name,
		       char *out);

/* Seal name (1..255 bytes) and value (len bytes) for the slot into out
 * (XATTR_SEAL_OVERHEAD + strlen(name) + len bytes). Returns the size. */
size_t crypto_xattr_seal(const struct keys *k, const uint8_t id[FILE_ID_BYTES], const char *slot,
			 const char *name, const void *value, size_t len, uint8_t *out);

/* Open a sealed blob of the slot: the name into name (256 bytes), the
 * value into value (cap bytes; value may be NULL to ask the length).
 * Returns the value length, -EIO if it fails authentication, -ERANGE if
 * cap is too small. */
__attribute__((warn_unused_result)) ssize_t
crypto_xattr_open(const struct keys *k, const uint8_t id[FILE_ID_BYTES], const char *slot,
		  const uint8_t *in, size_t inlen, char *name, void *value, size_t cap);

/* Wipe memory the compiler may not elide. */
void crypto_wipe(void *buf, size_t len);

/* Zero CRYPTO_STACK_BURN bytes of the calling thread's stack below the
 * caller's frame, where the functions it called left their locals (and
 * libraries their spilled registers: plaintext, plain names). Threads call
 * it when an item of work is done, before they wait for the next. A FUSE
 * request went about 13 KiB below the worker's wait point (20-28 KiB from
 * the top of its stack) when this was written, measured by reading an idle
 * daemon's stacks with the burn off; keep big buffers on the heap (the
 * Makefile fails a frame over 16 KiB in fs/). */
#define CRYPTO_STACK_BURN (48 * 1024)
void crypto_wipe_stack(void);

/* ---- per-file keys and block AEAD ---- */

/* Per-file key, derived from the content key and the file id, kept in a
 * locked pool. One per open inode; owner frees it with filekey_free(). */
struct filekey;

/* Derive the key for (file_id, type, cipher). NULL on ENOMEM. */
struct filekey *filekey_new(const struct keys *k, const uint8_t file_id[FILE_ID_BYTES],
			    uint8_t type, int cipher);
void filekey_free(struct filekey *fk);

/* Seal plain[0..len) (1 <= len <= BLOCK_SIZE) as block number index into
 * out (len + BLOCK_OVERHEAD bytes): nonce || ciphertext || tag, with the
 * file id, type and index as associated data. */
void block_seal(const struct filekey *fk, uint64_t index, const uint8_t *plain, size_t len,
		uint8_t *out);

/* Open a sealed block of inlen bytes (BLOCK_OVERHEAD < inlen <=
 * BLOCK_DISK) into out. Returns the plaintext length, or -EIO when the
 * block is not this file's block number index (flipped, moved, swapped,
 * replayed). Nothing is written to out on failure. */
__attribute__((warn_unused_result)) int block_open(const struct filekey *fk, uint64_t index,
						   const uint8_t *in, size_t inlen, uint8_t *out);

#endif
