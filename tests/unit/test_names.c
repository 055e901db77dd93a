/* test_names.c - Criterion suite for the name codec (fs/names.c): round trips,
 * authentication, padding, long forms, bad input and pinned golden vectors. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "names.h"

#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#define SENTINEL 0x5a
#define REF_BIN_MAX (NAMES_TAG_BYTES + 256)

static uint8_t key[NAMES_KEY_BYTES];	  /* bytes 0..31: the golden key */
static uint8_t key2[NAMES_KEY_BYTES];	  /* key with one bit flipped */
static uint8_t dirid[NAMES_DIRID_BYTES];  /* bytes 0xa0..0xaf: the golden dirid */
static uint8_t dirid2[NAMES_DIRID_BYTES]; /* dirid with one bit flipped */

static void setup(void)
{
	size_t i;

	cr_assert(sodium_init() >= 0, "sodium_init failed");
	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)i;
	for (i = 0; i < sizeof(dirid); i++)
		dirid[i] = (uint8_t)(0xa0 + i);
	memcpy(key2, key, sizeof(key));
	key2[31] ^= 0x80;
	memcpy(dirid2, dirid, sizeof(dirid));
	dirid2[0] ^= 0x01;
}

TestSuite(names, .init = setup);

/* Expected encoded length for a plain name of len bytes: tag plus the
 * padded size, in unpadded base64. Written out, not derived from the code. */
static int expected_enc_len(size_t len)
{
	static const int by_blocks[] = {75, 118, 160, 203, 246, 288, 331, 374};

	return by_blocks[(len + 31) / 32 - 1];
}

static void fill_name(char *buf, size_t len, unsigned seed)
{
	static const char chars[] = "abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-~";
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = chars[(i * 7 + seed) % (sizeof(chars) - 1)];
	buf[len] = '\0';
	if (len == 1 && buf[0] == '.') /* the one name fill_name must not make */
		buf[0] = '~';
}

static bool untouched(const char *buf, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((uint8_t)buf[i] != SENTINEL)
			return false;
	return true;
}

static bool in_alphabet(const char *s)
{
	return s[0] != '\0' && strspn(s, ALPHABET) == strlen(s);
}

static void assert_round_trip(const char *plain)
{
	char enc[NAMES_ENCODED_MAX + 1];
	char dec[NAMES_PLAIN_MAX + 1];
	size_t len = strlen(plain);
	int rc;

	rc = names_encrypt(key, dirid, plain, enc, sizeof(enc));
	cr_assert_eq(rc, expected_enc_len(len), "encrypt(len %zu) returned %d", len, rc);
	cr_assert_eq(strlen(enc), (size_t)rc);
	cr_assert(in_alphabet(enc), "bad char in \"%s\"", enc);
	rc = names_decrypt(key, dirid, enc, dec, sizeof(dec));
	cr_assert_eq(rc, (int)len, "decrypt(len %zu) returned %d", len, rc);
	cr_assert_eq(memcmp(dec, plain, len + 1), 0, "round trip changed a %zu-byte name", len);
}

/* Decode a base64url string the test made or got from the codec. */
static size_t decode(const char *s, uint8_t *bin, size_t binmax)
{
	size_t binlen = 0;

	cr_assert_eq(sodium_base642bin(bin, binmax, s, strlen(s), NULL, &binlen, NULL, B64), 0,
		     "not base64url: \"%s\"", s);
	return binlen;
}

/* Reference seal written independently of fs/names.c from the documented
 * construction; it can also seal paddings names_encrypt never produces. */
static void ref_seal(const uint8_t *padded, size_t padlen, char *out, size_t outlen)
{
	uint8_t tagkey[32], streamkey[32], msg[NAMES_DIRID_BYTES + 256], bin[REF_BIN_MAX];

	cr_assert(padlen <= 256);
	cr_assert_eq(crypto_kdf_derive_from_key(tagkey, 32, 1, "ekycname", key), 0);
	cr_assert_eq(crypto_kdf_derive_from_key(streamkey, 32, 2, "ekycname", key), 0);
	memcpy(msg, dirid, NAMES_DIRID_BYTES);
	memcpy(msg + NAMES_DIRID_BYTES, padded, padlen);
	cr_assert_eq(crypto_generichash(bin, 24, msg, NAMES_DIRID_BYTES + padlen, tagkey, 32), 0);
	cr_assert_eq(crypto_stream_xchacha20_xor(bin + 24, padded, padlen, bin, streamkey), 0);
	cr_assert(outlen >= sodium_base64_ENCODED_LEN(24 + padlen, B64));
	sodium_bin2base64(out, outlen, bin, 24 + padlen, B64);
}

Test(names, round_trip_every_length)
{
	char plain[NAMES_PLAIN_MAX + 1];
	size_t len;

	for (len = 1; len <= NAMES_PLAIN_MAX; len++) {
		fill_name(plain, len, (unsigned)len);
		assert_round_trip(plain);
	}
}

Test(names, round_trip_unusual_bytes)
{
	static const char *const names[] = {
		"Überweisung_年金_🙂.pdf",
		"  leading and trailing spaces  ",
		"line one\nline two\r\n",
		"tab\there",
		"...",
		".hidden",
		"..a",
		"a..",
		"\x01\x02\x03",
		"\xff\xfe\x80",
		"-",
		"_",
		"L.",
		"name.name",
	};
	char all[256], one[2];
	size_t i, n = 0;
	int c;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_round_trip(names[i]);
	/* every byte 0x01..0xff but '/' in one name, and each as a one-byte name */
	for (c = 0x01; c <= 0xff; c++) {
		if (c == '/')
			continue;
		all[n++] = (char)c;
		if (c == '.')
			continue;
		one[0] = (char)c;
		one[1] = '\0';
		assert_round_trip(one);
	}
	all[n] = '\0';
	cr_assert_eq(n, 254);
	assert_round_trip(all);
}

Test(names, deterministic)
{
	char a[NAMES_ENCODED_MAX + 1], b[NAMES_ENCODED_MAX + 1], c[NAMES_ENCODED_MAX + 1];

	cr_assert_gt(names_encrypt(key, dirid, "report.pdf", a, sizeof(a)), 0);
	cr_assert_gt(names_encrypt(key, dirid, "report.pdf", b, sizeof(b)), 0);
	cr_assert_str_eq(a, b);
	/* a one-byte change moves the whole synthetic IV (first 32 chars) */
	cr_assert_gt(names_encrypt(key, dirid, "report.pdg", c, sizeof(c)), 0);
	cr_assert_neq(memcmp(a, c, 32), 0);
	cr_assert_gt(names_encrypt(key, dirid, "report.pd", c, sizeof(c)), 0);
	cr_assert_str_neq(a, c);
}

Test(names, bound_to_dirid)
{
	char a[NAMES_ENCODED_MAX + 1], b[NAMES_ENCODED_MAX + 1], dec[NAMES_PLAIN_MAX + 1];

	cr_assert_gt(names_encrypt(key, dirid, "passport.jpg", a, sizeof(a)), 0);
	cr_assert_gt(names_encrypt(key, dirid2, "passport.jpg", b, sizeof(b)), 0);
	cr_assert_str_neq(a, b);
	cr_assert_neq(memcmp(a, b, 32), 0, "tags equal across directories");
	memset(dec, SENTINEL, sizeof(dec));
	cr_assert_eq(names_decrypt(key, dirid2, a, dec, sizeof(dec)), -EBADMSG);
	cr_assert_eq(names_decrypt(key, dirid, b, dec, sizeof(dec)), -EBADMSG);
	cr_assert(untouched(dec, sizeof(dec)), "plaintext released before verification");
	cr_assert_eq(names_decrypt(key, dirid2, b, dec, sizeof(dec)), 12);
	cr_assert_str_eq(dec, "passport.jpg");
}

Test(names, wrong_key)
{
	char a[NAMES_ENCODED_MAX + 1], b[NAMES_ENCODED_MAX + 1], dec[NAMES_PLAIN_MAX + 1];

	cr_assert_gt(names_encrypt(key, dirid, "selfie.png", a, sizeof(a)), 0);
	cr_assert_gt(names_encrypt(key2, dirid, "selfie.png", b, sizeof(b)), 0);
	cr_assert_str_neq(a, b);
	memset(dec, SENTINEL, sizeof(dec));
	cr_assert_eq(names_decrypt(key2, dirid, a, dec, sizeof(dec)), -EBADMSG);
	cr_assert_eq(names_decrypt(key, dirid, b, dec, sizeof(dec)), -EBADMSG);
	cr_assert(untouched(dec, sizeof(dec)));
}

/* Replace each character of a valid encoding by each other character that
 * could stand there; nothing may decrypt. */
static void assert_no_flip_decrypts(const char *plain)
{
	/* high bytes too: libsodium 1.0.18 alone decodes some of them as digits */
	static const char extra[] = ".=+/ \n\x7f\x80\x9f\xa0\xbf\xc0\xdf\xe0\xff";
	char enc[NAMES_ENCODED_MAX + 1], mod[NAMES_ENCODED_MAX + 1], dec[NAMES_PLAIN_MAX + 1];
	char subst[sizeof(ALPHABET) + sizeof(extra)];
	size_t i, j, len, badmsg = 0, inval = 0;
	int rc;

	snprintf(subst, sizeof(subst), "%s%s", ALPHABET, extra);

	rc = names_encrypt(key, dirid, plain, enc, sizeof(enc));
	cr_assert_gt(rc, 0);
	len = (size_t)rc;
	for (i = 0; i < len; i++) {
		for (j = 0; subst[j] != '\0'; j++) {
			char c = subst[j];

			if (c == enc[i])
				continue;
			memcpy(mod, enc, len + 1);
			mod[i] = c;
			memset(dec, SENTINEL, sizeof(dec));
			rc = names_decrypt(key, dirid, mod, dec, sizeof(dec));
			cr_assert(rc == -EBADMSG || rc == -EINVAL, "flip at %zu to '%c' gave %d", i,
				  c, rc);
			cr_assert(untouched(dec, sizeof(dec)));
			if (rc == -EBADMSG)
				badmsg++;
			else
				inval++;
		}
	}
	/* most flips reach the tag check; non-alphabet ones never do */
	cr_assert_gt(badmsg, len * 60);
	cr_assert_geq(inval, len * (sizeof(extra) - 1));
}

Test(names, every_char_flip_fails)
{
	char plain[NAMES_PLAIN_MAX + 1];

	assert_no_flip_decrypts("passport_E12345678.jpg");
	fill_name(plain, 200, 3);
	assert_no_flip_decrypts(plain);
}

Test(names, every_bit_flip_fails)
{
	char plain[NAMES_PLAIN_MAX + 1], enc[NAMES_ENCODED_MAX + 1], dec[NAMES_PLAIN_MAX + 1];
	uint8_t bin[REF_BIN_MAX];
	size_t binlen, bit;

	fill_name(plain, NAMES_PLAIN_MAX, 5);
	cr_assert_eq(names_encrypt(key, dirid, plain, enc, sizeof(enc)), 374);
	binlen = decode(enc, bin, sizeof(bin));
	cr_assert_eq(binlen, (size_t)REF_BIN_MAX);
	for (bit = 0; bit < binlen * 8; bit++) {
		bin[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		sodium_bin2base64(enc, sizeof(enc), bin, binlen, B64);
		cr_assert_eq(names_decrypt(key, dirid, enc, dec, sizeof(dec)), -EBADMSG,
			     "bit %zu flipped still decrypts", bit);
		bin[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}

Test(names, truncate_extend_splice)
{
	char a[NAMES_ENCODED_MAX + 1], b[NAMES_ENCODED_MAX + 1], mod[NAMES_ENCODED_MAX + 2];
	char plain[NAMES_PLAIN_MAX + 1], dec[NAMES_PLAIN_MAX + 1];
	uint8_t bin[REF_BIN_MAX];
	size_t len, binlen;
	int rc;

	fill_name(plain, 40, 1);
	cr_assert_eq(names_encrypt(key, dirid, plain, a, sizeof(a)), 118);
	/* cut to a shorter valid shape: tag || first 32 ciphertext bytes */
	binlen = decode(a, bin, sizeof(bin));
	cr_assert_eq(binlen, NAMES_TAG_BYTES + 64);
	sodium_bin2base64(mod, sizeof(mod), bin, NAMES_TAG_BYTES + 32, B64);
	cr_assert_eq(strlen(mod), 75);
	cr_assert_eq(names_decrypt(key, dirid, mod, dec, sizeof(dec)), -EBADMSG);
	/* the same cut taken on characters: the last char's 2 spare bits decide
	 * whether it is refused as base64 or by the tag; it never decrypts */
	memcpy(mod, a, 75);
	mod[75] = '\0';
	rc = names_decrypt(key, dirid, mod, dec, sizeof(dec));
	cr_assert(rc == -EINVAL || rc == -EBADMSG, "character cut gave %d", rc);
	len = strlen(a);
	memcpy(mod, a, len - 1);
	mod[len - 1] = '\0';
	cr_assert_eq(names_decrypt(key, dirid, mod, dec, sizeof(dec)), -EINVAL);
	memcpy(mod, a, len);
	mod[len] = 'A';
	mod[len + 1] = '\0';
	cr_assert_eq(names_decrypt(key, dirid, mod, dec, sizeof(dec)), -EINVAL);
	/* tag of one name over the ciphertext of another of the same length */
	fill_name(plain, 40, 2);
	cr_assert_eq(names_encrypt(key, dirid, plain, b, sizeof(b)), 118);
	memcpy(mod, a, 32);
	memcpy(mod + 32, b + 32, 118 - 32 + 1);
	cr_assert_eq(names_decrypt(key, dirid, mod, dec, sizeof(dec)), -EBADMSG);
}

Test(names, length_leaks_only_padded_size)
{
	static const struct {
		size_t plain, padded;
		int enc;
	} cases[] = {
		{1, 32, 75}, {31, 32, 75}, {32, 32, 75}, {33, 64, 118}, {255, 256, 374},
	};
	char plain[NAMES_PLAIN_MAX + 1], enc[NAMES_ENCODED_MAX + 1];
	uint8_t bin[REF_BIN_MAX];
	size_t i, binlen;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fill_name(plain, cases[i].plain, 9);
		cr_assert_eq(names_encrypt(key, dirid, plain, enc, sizeof(enc)), cases[i].enc,
			     "plain length %zu", cases[i].plain);
		binlen = decode(enc, bin, sizeof(bin));
		cr_assert_eq(binlen, NAMES_TAG_BYTES + cases[i].padded, "plain length %zu",
			     cases[i].plain);
	}
	/* the short/long boundary: up to 160 plain bytes stay short */
	fill_name(plain, 160, 4);
	cr_assert_leq(names_encrypt(key, dirid, plain, enc, sizeof(enc)), NAMES_SHORT_MAX);
	fill_name(plain, 161, 4);
	cr_assert_gt(names_encrypt(key, dirid, plain, enc, sizeof(enc)), NAMES_SHORT_MAX);
}

Test(names, alphabet_only)
{
	char plain[NAMES_PLAIN_MAX + 1], enc[NAMES_ENCODED_MAX + 1];
	unsigned seed;
	size_t len;

	for (seed = 0; seed < 64; seed++) {
		for (len = 1; len <= NAMES_PLAIN_MAX; len += 17) {
			fill_name(plain, len, seed);
			cr_assert_gt(names_encrypt(key, dirid, plain, enc, sizeof(enc)), 0);
			cr_assert(in_alphabet(enc), "bad char in \"%s\"", enc);
			cr_assert_null(strchr(enc, '.'));
		}
	}
}

Test(names, long_form)
{
	char plain[NAMES_PLAIN_MAX + 1], enc[NAMES_ENCODED_MAX + 1], enc2[NAMES_ENCODED_MAX + 1];
	char lf[NAMES_LONG_LEN + 1], lf2[NAMES_LONG_LEN + 1], mod[64];
	const char *p;

	fill_name(plain, 200, 6);
	cr_assert_gt(names_encrypt(key, dirid, plain, enc, sizeof(enc)), NAMES_SHORT_MAX);
	cr_assert_eq(names_long_form(enc, lf, sizeof(lf)), NAMES_LONG_LEN);
	cr_assert_eq(strlen(lf), (size_t)NAMES_LONG_LEN);
	cr_assert_eq(strncmp(lf, "L.", 2), 0);
	cr_assert(in_alphabet(lf + 2));
	cr_assert(names_is_long(lf));
	cr_assert_not(names_is_sidecar(lf));
	cr_assert_eq(names_long_form(enc, lf2, sizeof(lf2)), NAMES_LONG_LEN);
	cr_assert_str_eq(lf, lf2);
	fill_name(plain, 200, 7);
	cr_assert_gt(names_encrypt(key, dirid, plain, enc2, sizeof(enc2)), NAMES_SHORT_MAX);
	cr_assert_eq(names_long_form(enc2, lf2, sizeof(lf2)), NAMES_LONG_LEN);
	cr_assert_str_neq(lf, lf2);
	cr_assert_eq(names_long_form(enc, lf2, NAMES_LONG_LEN), -ERANGE);

	snprintf(mod, sizeof(mod), "%s%s", lf, NAMES_LONG_SUFFIX);
	cr_assert(names_is_sidecar(mod));
	cr_assert_not(names_is_long(mod));

	/* shapes that are not long forms */
	cr_assert_not(names_is_long(enc));
	cr_assert_not(names_is_long(""));
	cr_assert_not(names_is_long("L."));
	snprintf(mod, sizeof(mod), "%.44s", lf);
	cr_assert_not(names_is_long(mod));
	snprintf(mod, sizeof(mod), "%sA", lf);
	cr_assert_not(names_is_long(mod));
	snprintf(mod, sizeof(mod), "%s", lf);
	mod[0] = 'l';
	cr_assert_not(names_is_long(mod));
	mod[0] = 'L';
	mod[1] = '-';
	cr_assert_not(names_is_long(mod));
	mod[1] = '.';
	mod[20] = '.';
	cr_assert_not(names_is_long(mod));
	mod[20] = '\x80';
	cr_assert_not(names_is_long(mod));
	mod[20] = '\xff';
	cr_assert_not(names_is_long(mod));
	/* the last char carries 4 hash bits and 2 zero bits: a non-zero one is rejected */
	snprintf(mod, sizeof(mod), "%s", lf);
	p = strchr(ALPHABET, lf[NAMES_LONG_LEN - 1]);
	cr_assert_not_null(p);
	cr_assert_eq((p - ALPHABET) % 4, 0);
	mod[NAMES_LONG_LEN - 1] = ALPHABET[(p - ALPHABET) | 1];
	cr_assert_not(names_is_long(mod));

	/* shapes that are not sidecars */
	snprintf(mod, sizeof(mod), "%s.nam", lf);
	cr_assert_not(names_is_sidecar(mod));
	snprintf(mod, sizeof(mod), "%s.namex", lf);
	cr_assert_not(names_is_sidecar(mod));
	snprintf(mod, sizeof(mod), "%s.NAME", lf);
	cr_assert_not(names_is_sidecar(mod));
	snprintf(mod, sizeof(mod), "%s_name", lf);
	cr_assert_not(names_is_sidecar(mod));
	snprintf(mod, sizeof(mod), "%s.name", lf);
	mod[0] = 'M';
	cr_assert_not(names_is_sidecar(mod));
	cr_assert_not(names_is_sidecar(".name"));
	cr_assert_not(names_is_sidecar(""));
}

Test(names, encrypt_rejects_bad_names)
{
	char big[4097], enc[NAMES_ENCODED_MAX + 1];

	memset(enc, SENTINEL, sizeof(enc));
	cr_assert_eq(names_encrypt(key, dirid, "", enc, sizeof(enc)), -EINVAL);
	cr_assert_eq(names_encrypt(key, dirid, ".", enc, sizeof(enc)), -EINVAL);
	cr_assert_eq(names_encrypt(key, dirid, "..", enc, sizeof(enc)), -EINVAL);
	cr_assert_eq(names_encrypt(key, dirid, "/", enc, sizeof(enc)), -EINVAL);
	cr_assert_eq(names_encrypt(key, dirid, "a/b", enc, sizeof(enc)), -EINVAL);
	cr_assert_eq(names_encrypt(key, dirid, "abc/", enc, sizeof(enc)), -EINVAL);
	cr_assert_eq(names_encrypt(key, dirid, "/abc", enc, sizeof(enc)), -EINVAL);
	fill_name(big, 256, 0);
	cr_assert_eq(names_encrypt(key, dirid, big, enc, sizeof(enc)), -ENAMETOOLONG);
	fill_name(big, 4096, 0);
	cr_assert_eq(names_encrypt(key, dirid, big, enc, sizeof(enc)), -ENAMETOOLONG);
	cr_assert(untouched(enc, sizeof(enc)));

	/* output room: exactly the encoding plus its NUL */
	cr_assert_eq(names_encrypt(key, dirid, "a", enc, 75), -ERANGE);
	cr_assert(untouched(enc, sizeof(enc)));
	cr_assert_eq(names_encrypt(key, dirid, "a", enc, 76), 75);
	fill_name(big, 255, 0);
	cr_assert_eq(names_encrypt(key, dirid, big, enc, 374), -ERANGE);
	cr_assert_eq(names_encrypt(key, dirid, big, enc, 375), 374);
}

Test(names, decrypt_rejects_non_encodings)
{
	static const char *const bad[] = {
		"",
		"A",
		"AA",
		"AAAA",
		"report.pdf",
		"L.abc",
		"has space",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
	};
	char enc[NAMES_ENCODED_MAX + 1], mod[1024], dec[NAMES_PLAIN_MAX + 1];
	char lf[NAMES_LONG_LEN + 1];
	uint8_t bin[400];
	size_t i, len;

	memset(dec, SENTINEL, sizeof(dec));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(names_decrypt(key, dirid, bad[i], dec, sizeof(dec)), -EINVAL, "\"%s\"",
			     bad[i]);
	/* valid base64url of binaries with the wrong size */
	memset(bin, 0x42, sizeof(bin));
	{
		static const size_t sizes[] = {1, 24, 25, 55, 57, 89, 279, 281, 312};

		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			sodium_bin2base64(mod, sizeof(mod), bin, sizes[i], B64);
			cr_assert_eq(names_decrypt(key, dirid, mod, dec, sizeof(dec)), -EINVAL,
				     "binary of %zu bytes", sizes[i]);
		}
	}
	/* right size, never sealed: a forgery */
	sodium_bin2base64(mod, sizeof(mod), bin, 24 + 32, B64);
	cr_assert_eq(names_decrypt(key, dirid, mod, dec, sizeof(dec)), -EBADMSG);

	cr_assert_eq(names_encrypt(key, dirid, "id-card.png", enc, sizeof(enc)), 75);
	len = strlen(enc);
	/* trailing newline, padded base64, standard alphabet */
	snprintf(mod, sizeof(mod), "%s\n", enc);
	cr_assert_eq(names_decrypt(key, dirid, mod, dec, sizeof(dec)), -EINVAL);
	snprintf(mod, sizeof(mod), "%s=", enc);
	cr_assert_eq(names_decrypt(key, dirid, mod, dec, sizeof(dec)), -EINVAL);
	for (i = 0; i < len; i++) {
		if (enc[i] == '-' || enc[i] == '_') {
			memcpy(mod, enc, len + 1);
			mod[i] = enc[i] == '-' ? '+' : '/';
			cr_assert_eq(names_decrypt(key, dirid, mod, dec, sizeof(dec)), -EINVAL);
		}
	}
	/* a long form is not an encoded form */
	cr_assert_eq(names_long_form(enc, lf, sizeof(lf)), NAMES_LONG_LEN);
	cr_assert_eq(names_decrypt(key, dirid, lf, dec, sizeof(dec)), -EINVAL);
	/* overlong input is refused without reading it all as base64 */
	memset(mod, 'A', sizeof(mod) - 1);
	mod[sizeof(mod) - 1] = '\0';
	cr_assert_eq(names_decrypt(key, dirid, mod, dec, sizeof(dec)), -EINVAL);
	mod[NAMES_ENCODED_MAX + 1] = '\0';
	cr_assert_eq(names_decrypt(key, dirid, mod, dec, sizeof(dec)), -EINVAL);
	cr_assert(untouched(dec, sizeof(dec)));

	/* output room: the name plus its NUL */
	cr_assert_eq(names_decrypt(key, dirid, enc, dec, 11), -ERANGE);
	cr_assert(untouched(dec, sizeof(dec)));
	cr_assert_eq(names_decrypt(key, dirid, enc, dec, 12), 11);
	cr_assert_str_eq(dec, "id-card.png");
}

Test(names, reference_construction_matches)
{
	static const char *const names[] = {"a", "passport_E12345678.jpg", ".bashrc"};
	char plain[NAMES_PLAIN_MAX + 1], enc[NAMES_ENCODED_MAX + 1], ref[NAMES_ENCODED_MAX + 1];
	uint8_t padded[256];
	size_t i, len;

	for (i = 0; i < sizeof(names) / sizeof(names[0]) + 3; i++) {
		if (i < sizeof(names) / sizeof(names[0]))
			snprintf(plain, sizeof(plain), "%s", names[i]);
		else
			fill_name(plain, i == 3 ? 32 : i == 4 ? 33 : 255, 8);
		len = strlen(plain);
		memset(padded, 0, sizeof(padded));
		memcpy(padded, plain, len);
		ref_seal(padded, (len + 31) / 32 * 32, ref, sizeof(ref));
		cr_assert_gt(names_encrypt(key, dirid, plain, enc, sizeof(enc)), 0);
		cr_assert_str_eq(enc, ref, "names_encrypt(\"%s\") differs from reference", plain);
	}
}

/* Sealed with the real keys, so they pass the tag: only the plaintext
 * checks can stop them. */
static void assert_forged_rejected(const void *padded, size_t padlen)
{
	char enc[NAMES_ENCODED_MAX + 1], dec[NAMES_PLAIN_MAX + 1];

	ref_seal(padded, padlen, enc, sizeof(enc));
	memset(dec, SENTINEL, sizeof(dec));
	cr_assert_eq(names_decrypt(key, dirid, enc, dec, sizeof(dec)), -EBADMSG);
	cr_assert(untouched(dec, sizeof(dec)));
}

Test(names, authentic_but_non_canonical_plaintext)
{
	uint8_t p[256];
	char enc[NAMES_ENCODED_MAX + 1], dec[NAMES_PLAIN_MAX + 1];

	memset(p, 0, sizeof(p));
	assert_forged_rejected(p, 32); /* empty name */
	memcpy(p, "ab\0c", 4);
	assert_forged_rejected(p, 32); /* data after the padding starts */
	memset(p, 0, sizeof(p));
	memcpy(p, "abc", 3);
	p[31] = 0x01;
	assert_forged_rejected(p, 32); /* non-NUL padding byte */
	memset(p, 0, sizeof(p));
	memcpy(p, "abc", 3);
	assert_forged_rejected(p, 64); /* over-padded */
	memcpy(p, "a/b", 3);
	assert_forged_rejected(p, 32);
	memset(p, 0, sizeof(p));
	p[0] = '.';
	assert_forged_rejected(p, 32);
	p[1] = '.';
	assert_forged_rejected(p, 32);
	memset(p, 'x', sizeof(p));
	assert_forged_rejected(p, 256); /* 256 bytes: one past NAME_MAX */

	/* the control case: 32 non-NUL bytes in 32 is canonical and decrypts */
	ref_seal(p, 32, enc, sizeof(enc));
	cr_assert_eq(names_decrypt(key, dirid, enc, dec, sizeof(dec)), 32);
	cr_assert_eq(memcmp(dec, p, 32), 0);
}

/* Pinned outputs: a change here means existing stores no longer decrypt. */
#define GOLDEN_PLAIN "passport_E12345678.jpg"
#define GOLDEN_ENCODED "nBCGNbVh_y29kqelznYeaoxpv1o0pYlL2PswmLrc0_-Vw_ksQvfekkdbe2BjZbo_hn_5TZeDPzc"
#define GOLDEN_LONG "L.-1wsr4sYyhrdAesJAd83kGM75RdDy1VVvk2EPXSIy2o"

static void golden_long_plain(char *buf)
{
	static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	size_t i;

	for (i = 0; i < NAMES_PLAIN_MAX; i++)
		buf[i] = chars[i % (sizeof(chars) - 1)];
	buf[NAMES_PLAIN_MAX] = '\0';
}

Test(names, golden_vectors)
{
	char enc[NAMES_ENCODED_MAX + 1], dec[NAMES_PLAIN_MAX + 1], plain[NAMES_PLAIN_MAX + 1];
	char lf[NAMES_LONG_LEN + 1];

	cr_assert_eq(names_encrypt(key, dirid, GOLDEN_PLAIN, enc, sizeof(enc)), 75);
	cr_assert_str_eq(enc, GOLDEN_ENCODED);
	cr_assert_eq(names_decrypt(key, dirid, GOLDEN_ENCODED, dec, sizeof(dec)),
		     (int)strlen(GOLDEN_PLAIN));
	cr_assert_str_eq(dec, GOLDEN_PLAIN);

	golden_long_plain(plain);
	cr_assert_eq(names_encrypt(key, dirid, plain, enc, sizeof(enc)), 374);
	cr_assert_eq(names_long_form(enc, lf, sizeof(lf)), NAMES_LONG_LEN);
	cr_assert_str_eq(lf, GOLDEN_LONG);
	cr_assert(names_is_long(GOLDEN_LONG));
}
