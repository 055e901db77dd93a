/* names.h - the name codec: deterministic authenticated encryption of the
 * names inside a zone, bound to the directory that holds them. */
#ifndef EKYCFS_NAMES_H
#define EKYCFS_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAMES_KEY_BYTES 32
#define NAMES_DIRID_BYTES 16
#define NAMES_PLAIN_MAX 255 /* NAME_MAX */
#define NAMES_PAD 32	    /* plaintext padded to a multiple of this */
#define NAMES_TAG_BYTES 24
/* Longest encoded form: tag + 256 padded bytes in unpadded base64url. */
#define NAMES_ENCODED_MAX 376
/* Encoded forms longer than this are stored by hash (see names_long_form). */
#define NAMES_SHORT_MAX 255
/* "L." + 43 base64url chars of a BLAKE2b-256 hash */
#define NAMES_LONG_LEN 45
#define NAMES_LONG_SUFFIX ".name" /* sidecar holding the full encoded name */

/* Encrypt plain (1..255 bytes, no '/' or NUL, not "." or "..") for the
 * directory dirid. Writes the NUL-terminated encoded form (base64url
 * alphabet only, never a '.') to out (outlen >= NAMES_ENCODED_MAX + 1).
 * Same key, dirid and name always give the same output.
 * Returns the encoded length, -EINVAL for a bad name, -ENAMETOOLONG past
 * 255 bytes, -ERANGE if out is too small. */
__attribute__((warn_unused_result)) int names_encrypt(const uint8_t key[NAMES_KEY_BYTES],
						      const uint8_t dirid[NAMES_DIRID_BYTES],
						      const char *plain, char *out, size_t outlen);

/* Decrypt an encoded form made by names_encrypt for the same dirid.
 * Writes the NUL-terminated plain name to out (outlen >= 256).
 * Returns its length, or -EBADMSG when the name was not made with this
 * key and dirid (tampered, moved from another directory, foreign),
 * -EINVAL when it is not an encoded form at all, -ERANGE if out is small. */
__attribute__((warn_unused_result)) int names_decrypt(const uint8_t key[NAMES_KEY_BYTES],
						      const uint8_t dirid[NAMES_DIRID_BYTES],
						      const char *encoded, char *out,
						      size_t outlen);

/* The name to store on disk for an encoded form longer than
 * NAMES_SHORT_MAX: "L." followed by the base64url BLAKE2b-256 of encoded.
 * out must hold NAMES_LONG_LEN + 1 bytes. Returns NAMES_LONG_LEN. */
int names_long_form(const char *encoded, char *out, size_t outlen);

/* True if a backing name is a long form ("L." + 43 chars, nothing more). */
bool names_is_long(const char *stored);

/* True if a backing name is a long form's sidecar (long form + ".name"). */
bool names_is_sidecar(const char *stored);

#endif
