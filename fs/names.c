/* names.c - the name codec: a synthetic-IV scheme (keyed BLAKE2b tag used as
 * the XChaCha20 nonce) giving one stable, authenticated encoding per name and directory. */
#include "names.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <sodium.h>

#define NAMES_KDF_CONTEXT "ekycname"
#define NAMES_KDF_TAG_ID 1
#define NAMES_KDF_STREAM_ID 2
#define NAMES_PADDED_MAX 256 /* NAMES_PLAIN_MAX rounded up to NAMES_PAD */
#define NAMES_BIN_MAX (NAMES_TAG_BYTES + NAMES_PADDED_MAX)
#define NAMES_LONG_PREFIX "L."
#define NAMES_LONG_PREFIX_LEN 2
#define NAMES_LONG_HASH_BYTES 32
#define NAMES_B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define NAMES_B64_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

_Static_assert(NAMES_KEY_BYTES == crypto_kdf_KEYBYTES, "names key is a kdf key");
_Static_assert(sizeof(NAMES_KDF_CONTEXT) - 1 == crypto_kdf_CONTEXTBYTES, "kdf context size");
_Static_assert(NAMES_TAG_BYTES == crypto_stream_xchacha20_NONCEBYTES, "tag is the nonce");
_Static_assert(NAMES_TAG_BYTES >= crypto_generichash_BYTES_MIN &&
		       NAMES_TAG_BYTES <= crypto_generichash_BYTES_MAX,
	       "tag size is a BLAKE2b output size");
_Static_assert(NAMES_PADDED_MAX % NAMES_PAD == 0 && NAMES_PADDED_MAX >= NAMES_PLAIN_MAX &&
		       NAMES_PADDED_MAX - NAMES_PAD < NAMES_PLAIN_MAX,
	       "padded maximum is the plain maximum rounded up");
_Static_assert(sodium_base64_ENCODED_LEN(NAMES_BIN_MAX, NAMES_B64) <= NAMES_ENCODED_MAX + 1,
	       "longest encoding fits NAMES_ENCODED_MAX");
_Static_assert(sodium_base64_ENCODED_LEN(NAMES_LONG_HASH_BYTES, NAMES_B64) ==
		       NAMES_LONG_LEN - NAMES_LONG_PREFIX_LEN + 1,
	       "long form length");

/* Lives on the caller's stack; wiped by the caller on every path. */
struct names_subkeys {
	uint8_t tag[crypto_generichash_KEYBYTES];	  /* PRF key for the synthetic IV */
	uint8_t stream[crypto_stream_xchacha20_KEYBYTES]; /* cipher key */
};

/* Smallest multiple of NAMES_PAD that holds len bytes, at least NAMES_PAD. */
static size_t padded_len(size_t len)
{
	if (len == 0)
		return NAMES_PAD;
	return (len + NAMES_PAD - 1) / NAMES_PAD * NAMES_PAD;
}

/* A name the codec will carry: 1..255 bytes, no NUL or '/', not "." or "..". */
static bool name_ok(const uint8_t *name, size_t len)
{
	if (len == 0 || len > NAMES_PLAIN_MAX)
		return false;
	if (memchr(name, '\0', len) || memchr(name, '/', len))
		return false;
	if (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')))
		return false;
	return true;
}

/* Per-thread subkey scratch in locked, guarded memory (sodium_malloc),
 * freed when the thread exits; the subkeys are wiped after every call. */
static pthread_key_t subkeys_key;
static pthread_once_t subkeys_once = PTHREAD_ONCE_INIT;

static void subkeys_key_init(void)
{
	pthread_key_create(&subkeys_key, sodium_free);
}

static struct names_subkeys *locked_subkeys(void)
{
	struct names_subkeys *sk;

	pthread_once(&subkeys_once, subkeys_key_init);
	sk = pthread_getspecific(subkeys_key);
	if (!sk) {
		sk = sodium_malloc(sizeof(*sk));
		if (sk && pthread_setspecific(subkeys_key, sk) != 0) {
			sodium_free(sk);
			sk = NULL;
		}
	}
	return sk;
}

static int derive_subkeys(struct names_subkeys *sk, const uint8_t key[NAMES_KEY_BYTES])
{
	if (!sk)
		return -ENOMEM;
	if (crypto_kdf_derive_from_key(sk->tag, sizeof(sk->tag), NAMES_KDF_TAG_ID,
				       NAMES_KDF_CONTEXT, key) != 0 ||
	    crypto_kdf_derive_from_key(sk->stream, sizeof(sk->stream), NAMES_KDF_STREAM_ID,
				       NAMES_KDF_CONTEXT, key) != 0)
		return -EIO;
	return 0;
}

/* tag = BLAKE2b-192 keyed with the tag subkey over dirid || padded. */
static int compute_tag(uint8_t tag[NAMES_TAG_BYTES], const struct names_subkeys *sk,
		       const uint8_t dirid[NAMES_DIRID_BYTES], const uint8_t *padded, size_t padlen)
{
	crypto_generichash_state st;
	int rc = 0;

	if (crypto_generichash_init(&st, sk->tag, sizeof(sk->tag), NAMES_TAG_BYTES) != 0 ||
	    crypto_generichash_update(&st, dirid, NAMES_DIRID_BYTES) != 0 ||
	    crypto_generichash_update(&st, padded, padlen) != 0 ||
	    crypto_generichash_final(&st, tag, NAMES_TAG_BYTES) != 0)
		rc = -EIO;
	sodium_memzero(&st, sizeof(st));
	return rc;
}

/* dst = src XOR XChaCha20(stream subkey, nonce = tag): both directions. */
static int apply_stream(uint8_t *dst, const uint8_t *src, size_t len,
			const uint8_t tag[NAMES_TAG_BYTES], const struct names_subkeys *sk)
{
	if (crypto_stream_xchacha20_xor(dst, src, len, tag, sk->stream) != 0)
		return -EIO;
	return 0;
}

/* Decode n chars of canonical unpadded base64url: every char in the alphabet,
 * all consumed (NULL end pointer), zero trailing bits (libsodium checks).
 * The alphabet check is ours because libsodium 1.0.18's constant-time
 * decoder maps some bytes >= 0x80 onto valid digits: without it one binary
 * would have several spellings, and one name several backing names. */
static bool b64_decode(uint8_t *bin, size_t binmax, const char *s, size_t n, size_t *binlen)
{
	if (strspn(s, NAMES_B64_ALPHABET) < n)
		return false;
	return sodium_base642bin(bin, binmax, s, n, NULL, binlen, NULL, NAMES_B64) == 0;
}

/* Base64url-decode encoded into bin; succeed only for tag || k * NAMES_PAD
 * bytes, 1 <= k <= 8, written canonically with nothing before or after. */
static int decode_bin(const char *encoded, uint8_t bin[NAMES_BIN_MAX], size_t *binlen)
{
	size_t n = strnlen(encoded, NAMES_ENCODED_MAX + 1);

	if (n > NAMES_ENCODED_MAX)
		return -EINVAL;
	if (!b64_decode(bin, NAMES_BIN_MAX, encoded, n, binlen))
		return -EINVAL;
	if (*binlen < NAMES_TAG_BYTES + NAMES_PAD || (*binlen - NAMES_TAG_BYTES) % NAMES_PAD != 0)
		return -EINVAL;
	return 0;
}

/* Strip the NUL padding of an authenticated padded name and check that it is
 * exactly what names_encrypt would have produced. Sets *len on success. */
static int unpad(const uint8_t *padded, size_t padlen, size_t *len)
{
	const uint8_t *nul = memchr(padded, '\0', padlen);
	size_t n = nul ? (size_t)(nul - padded) : padlen;

	if (!sodium_is_zero(padded + n, padlen - n))
		return -EBADMSG;
	if (padded_len(n) != padlen || !name_ok(padded, n))
		return -EBADMSG;
	*len = n;
	return 0;
}

int names_encrypt(const uint8_t key[NAMES_KEY_BYTES], const uint8_t dirid[NAMES_DIRID_BYTES],
		  const char *plain, char *out, size_t outlen)
{
	struct names_subkeys *sk = locked_subkeys();
	uint8_t padded[NAMES_PADDED_MAX];
	uint8_t bin[NAMES_BIN_MAX]; /* tag || ciphertext */
	size_t len, padlen;
	int rc;

	len = strnlen(plain, NAMES_PLAIN_MAX + 1);
	if (len > NAMES_PLAIN_MAX)
		return -ENAMETOOLONG;
	if (!name_ok((const uint8_t *)plain, len))
		return -EINVAL;
	padlen = padded_len(len);
	if (outlen < sodium_base64_ENCODED_LEN(NAMES_TAG_BYTES + padlen, NAMES_B64))
		return -ERANGE;

	memset(padded, 0, sizeof(padded));
	memcpy(padded, plain, len);
	rc = derive_subkeys(sk, key);
	if (rc < 0)
		goto out_wipe;
	rc = compute_tag(bin, sk, dirid, padded, padlen);
	if (rc < 0)
		goto out_wipe;
	rc = apply_stream(bin + NAMES_TAG_BYTES, padded, padlen, bin, sk);
	if (rc < 0)
		goto out_wipe;
	sodium_bin2base64(out, outlen, bin, NAMES_TAG_BYTES + padlen, NAMES_B64);
	rc = (int)strlen(out);
out_wipe:
	if (sk)
		sodium_memzero(sk, sizeof(*sk));
	sodium_memzero(padded, sizeof(padded));
	return rc;
}

int names_decrypt(const uint8_t key[NAMES_KEY_BYTES], const uint8_t dirid[NAMES_DIRID_BYTES],
		  const char *encoded, char *out, size_t outlen)
{
	struct names_subkeys *sk = locked_subkeys();
	uint8_t bin[NAMES_BIN_MAX];	  /* tag || ciphertext */
	uint8_t padded[NAMES_PADDED_MAX]; /* scratch: unverified until the tag matches */
	uint8_t tag[NAMES_TAG_BYTES];
	size_t binlen, padlen, len;
	int rc;

	rc = decode_bin(encoded, bin, &binlen);
	if (rc < 0)
		return rc;
	padlen = binlen - NAMES_TAG_BYTES;

	rc = derive_subkeys(sk, key);
	if (rc < 0)
		goto out_wipe;
	rc = apply_stream(padded, bin + NAMES_TAG_BYTES, padlen, bin, sk);
	if (rc < 0)
		goto out_wipe;
	rc = compute_tag(tag, sk, dirid, padded, padlen);
	if (rc < 0)
		goto out_wipe;
	if (sodium_memcmp(tag, bin, NAMES_TAG_BYTES) != 0) {
		rc = -EBADMSG;
		goto out_wipe;
	}
	rc = unpad(padded, padlen, &len);
	if (rc < 0)
		goto out_wipe;
	if (outlen < len + 1) {
		rc = -ERANGE;
		goto out_wipe;
	}
	memcpy(out, padded, len);
	out[len] = '\0';
	rc = (int)len;
out_wipe:
	if (sk)
		sodium_memzero(sk, sizeof(*sk));
	sodium_memzero(padded, sizeof(padded));
	return rc;
}

int names_long_form(const char *encoded, char *out, size_t outlen)
{
	uint8_t hash[NAMES_LONG_HASH_BYTES];

	if (outlen < NAMES_LONG_LEN + 1)
		return -ERANGE;
	if (crypto_generichash(hash, sizeof(hash), (const unsigned char *)encoded, strlen(encoded),
			       NULL, 0) != 0)
		return -EIO;
	memcpy(out, NAMES_LONG_PREFIX, NAMES_LONG_PREFIX_LEN);
	sodium_bin2base64(out + NAMES_LONG_PREFIX_LEN, outlen - NAMES_LONG_PREFIX_LEN, hash,
			  sizeof(hash), NAMES_B64);
	return NAMES_LONG_LEN;
}

/* The first NAMES_LONG_LEN chars of s (known to be there) are a long form:
 * the prefix, then the canonical base64url of exactly one hash. */
static bool long_prefix_ok(const char *s)
{
	uint8_t hash[NAMES_LONG_HASH_BYTES];
	size_t hlen;

	if (memcmp(s, NAMES_LONG_PREFIX, NAMES_LONG_PREFIX_LEN) != 0)
		return false;
	if (!b64_decode(hash, sizeof(hash), s + NAMES_LONG_PREFIX_LEN,
			NAMES_LONG_LEN - NAMES_LONG_PREFIX_LEN, &hlen))
		return false;
	return hlen == sizeof(hash);
}

bool names_is_long(const char *stored)
{
	return strnlen(stored, NAMES_LONG_LEN + 1) == NAMES_LONG_LEN && long_prefix_ok(stored);
}

bool names_is_sidecar(const char *stored)
{
	const size_t suffix_len = sizeof(NAMES_LONG_SUFFIX) - 1;

	if (strnlen(stored, NAMES_LONG_LEN + suffix_len + 1) != NAMES_LONG_LEN + suffix_len)
		return false;
	return memcmp(stored + NAMES_LONG_LEN, NAMES_LONG_SUFFIX, suffix_len) == 0 &&
	       long_prefix_ok(stored);
}
