/* test_stamp.c - Criterion suite for fs/stamp.c: sealing and opening trusted
 * stamps (MAC, inode binding, golden vector), the expiry decision, RFC 3339. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "config.h"
#include "crypto.h"
#include "stamp.h"

#define GOLDEN_INO 4242
/* keys_from_master(0x00..0x1f), stamp {STAMP_REG, id 0x10..0x1f,
 * birth 1700000000123456789, mtime 1700000100000000000}, ino 4242.
 * Recomputed independently of the C code from the documented layout
 * (version, kind, 2 zero bytes, id, birth LE, mtime LE, then a BLAKE2b-128
 * MAC keyed with the KDF "ekycfs01" subkey 3 over "ekycfs stamp v1" ||
 * ino LE || body). A change here is an on-disk format change. */
#define GOLDEN_HEX                                                               \
	"01010000101112131415161718191a1b1c1d1e1f15cd853dfe9c971700e8a07e159d97" \
	"175e987ed698cb343862b4208fad8e3f02"
/* The same body as a zone folder's stamp (kind 4, flags 1) of zone "rlc":
 * the MAC input ends with the zone's name (hashlib, as above). */
#define GOLDEN_ZONE_HEX                                                          \
	"01040100101112131415161718191a1b1c1d1e1f15cd853dfe9c971700e8a07e159d97" \
	"1764776ed8ec637bb264826e76a0322537"
#define GOLDEN_BIRTH 1700000000123456789LL
#define GOLDEN_MTIME 1700000100000000000LL
#define LABEL "ekycfs stamp v1"
#define BODY (STAMP_BYTES - STAMP_MAC_BYTES)

static struct keys *keys;  /* master 0x00..0x1f */
static struct keys *other; /* master 0x00..0x1e, 0x80 */

static void setup(void)
{
	uint8_t master[KEY_BYTES];

	cr_assert_eq(crypto_setup(), 0);
	for (size_t i = 0; i < KEY_BYTES; i++)
		master[i] = (uint8_t)i;
	keys = keys_from_master(master);
	master[KEY_BYTES - 1] = 0x80;
	other = keys_from_master(master);
	cr_assert(keys && other);
}

static void teardown(void)
{
	keys_free(keys);
	keys_free(other);
}

TestSuite(stamp, .init = setup, .fini = teardown);

static struct stamp golden_stamp(void)
{
	struct stamp s = {.kind = STAMP_REG, .birth = GOLDEN_BIRTH, .mtime = GOLDEN_MTIME};

	for (size_t i = 0; i < FILE_ID_BYTES; i++)
		s.id[i] = (uint8_t)(0x10 + i);
	return s;
}

static void to_hex(const uint8_t *in, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", in[i]);
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Re-MAC a hand-edited body, as a forger holding the key could: isolates
 * the checks stamp_open makes after the MAC. */
static void remac(const struct keys *k, uint8_t raw[STAMP_BYTES], uint64_t ino)
{
	uint8_t msg[sizeof(LABEL) - 1 + 8 + BODY];

	memcpy(msg, LABEL, sizeof(LABEL) - 1);
	put64(msg + sizeof(LABEL) - 1, ino);
	memcpy(msg + sizeof(LABEL) - 1 + 8, raw, BODY);
	crypto_stamp_mac(k, msg, sizeof(msg), raw + BODY);
}

Test(stamp, round_trip)
{
	static const uint8_t kinds[] = {STAMP_REG, STAMP_SYMLINK, STAMP_FIFO, STAMP_DIR};
	uint8_t raw[STAMP_BYTES];

	for (size_t i = 0; i < sizeof(kinds); i++) {
		struct stamp in = golden_stamp(), out;

		in.kind = kinds[i];
		in.id[0] = (uint8_t)i;
		in.birth = -5 + (int64_t)i; /* extremes survive the encoding */
		in.mtime = INT64_MAX - (int64_t)i;
		stamp_seal(keys, &in, 77 + i, raw);
		memset(&out, 0xee, sizeof(out));
		cr_assert_eq(stamp_open(keys, raw, sizeof(raw), 77 + i, &out), 0, "kind %u",
			     in.kind);
		cr_expect_eq(out.kind, in.kind);
		cr_expect_arr_eq(out.id, in.id, FILE_ID_BYTES);
		cr_expect_eq(out.birth, in.birth);
		cr_expect_eq(out.mtime, in.mtime);
	}
}

Test(stamp, golden_vector)
{
	struct stamp s = golden_stamp(), out;
	uint8_t raw[STAMP_BYTES];
	char hex[2 * STAMP_BYTES + 1];

	cr_assert_eq(STAMP_BYTES, 52);
	stamp_seal(keys, &s, GOLDEN_INO, raw);
	to_hex(raw, sizeof(raw), hex);
	cr_expect_str_eq(hex, GOLDEN_HEX, "on-disk stamp format changed");
	cr_assert_eq(stamp_open(keys, raw, sizeof(raw), GOLDEN_INO, &out), 0);
	cr_expect_eq(out.kind, STAMP_REG);
	cr_expect_arr_eq(out.id, s.id, FILE_ID_BYTES);
	cr_expect_eq(out.birth, GOLDEN_BIRTH);
	cr_expect_eq(out.mtime, GOLDEN_MTIME);
}

/* A zone folder's stamp names its zone: another zone's, or an entry's
 * reading of it, fails; an entry's kind of stamp read as a zone's is
 * taken but said unbound (a store made before the binding). */
Test(stamp, golden_vector_zone)
{
	struct stamp s = golden_stamp(), out;
	uint8_t raw[STAMP_BYTES];
	char hex[2 * STAMP_BYTES + 1];
	bool unbound = true;

	s.kind = STAMP_DIR;
	stamp_seal_zone(keys, &s, GOLDEN_INO, "rlc", raw);
	to_hex(raw, sizeof(raw), hex);
	cr_expect_str_eq(hex, GOLDEN_ZONE_HEX, "on-disk zone stamp format changed");
	cr_expect_eq(stamp_open_zone(keys, raw, sizeof(raw), GOLDEN_INO, "rlc", &out, &unbound), 0);
	cr_expect_not(unbound);
	cr_expect_eq(out.kind, STAMP_DIR);
	cr_expect_eq(stamp_open_zone(keys, raw, sizeof(raw), GOLDEN_INO, "idocr", &out, &unbound),
		     -EBADMSG, "another zone's name");
	cr_expect_eq(stamp_open_zone(keys, raw, sizeof(raw), GOLDEN_INO + 1, "rlc", &out, &unbound),
		     -EBADMSG, "another inode");
	cr_expect_eq(stamp_open(keys, raw, sizeof(raw), GOLDEN_INO, &out), -EBADMSG,
		     "a zone's stamp taken as an entry's");
	stamp_seal(keys, &s, GOLDEN_INO, raw);
	cr_expect_eq(stamp_open_zone(keys, raw, sizeof(raw), GOLDEN_INO, "rlc", &out, &unbound), 0);
	cr_expect(unbound, "an entry's kind of stamp read as a zone's");
}

Test(stamp, sealing_is_deterministic)
{
	struct stamp s = golden_stamp();
	uint8_t a[STAMP_BYTES], b[STAMP_BYTES];

	stamp_seal(keys, &s, 1, a);
	stamp_seal(keys, &s, 1, b);
	cr_expect_arr_eq(a, b, STAMP_BYTES);
}

Test(stamp, any_flipped_bit_fails)
{
	struct stamp s = golden_stamp(), out;
	uint8_t raw[STAMP_BYTES], bad[STAMP_BYTES];

	stamp_seal(keys, &s, GOLDEN_INO, raw);
	for (size_t i = 0; i < STAMP_BYTES; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(bad, raw, sizeof(bad));
			bad[i] ^= (uint8_t)(1u << bit);
			cr_assert_eq(stamp_open(keys, bad, sizeof(bad), GOLDEN_INO, &out), -EBADMSG,
				     "byte %zu bit %d", i, bit);
		}
	}
}

Test(stamp, bound_to_inode)
{
	struct stamp s = golden_stamp(), out;
	uint8_t raw[STAMP_BYTES];

	stamp_seal(keys, &s, GOLDEN_INO, raw);
	cr_expect_eq(stamp_open(keys, raw, sizeof(raw), GOLDEN_INO + 1, &out), -EBADMSG);
	cr_expect_eq(stamp_open(keys, raw, sizeof(raw), GOLDEN_INO ^ (1ULL << 40), &out), -EBADMSG,
		     "high bits of ino count too");
	cr_expect_eq(stamp_open(keys, raw, sizeof(raw), 0, &out), -EBADMSG);
}

Test(stamp, other_key_fails)
{
	struct stamp s = golden_stamp(), out;
	uint8_t raw[STAMP_BYTES];

	stamp_seal(keys, &s, GOLDEN_INO, raw);
	cr_expect_eq(stamp_open(other, raw, sizeof(raw), GOLDEN_INO, &out), -EBADMSG);
	stamp_seal(other, &s, GOLDEN_INO, raw);
	cr_expect_eq(stamp_open(keys, raw, sizeof(raw), GOLDEN_INO, &out), -EBADMSG);
}

Test(stamp, wrong_length_fails)
{
	struct stamp s = golden_stamp(), out;
	uint8_t raw[STAMP_BYTES + 8];

	memset(raw, 0, sizeof(raw));
	stamp_seal(keys, &s, GOLDEN_INO, raw);
	cr_expect_eq(stamp_open(keys, raw, STAMP_BYTES - 1, GOLDEN_INO, &out), -EBADMSG);
	cr_expect_eq(stamp_open(keys, raw, STAMP_BYTES + 1, GOLDEN_INO, &out), -EBADMSG);
	cr_expect_eq(stamp_open(keys, raw, STAMP_BYTES + 8, GOLDEN_INO, &out), -EBADMSG);
	cr_expect_eq(stamp_open(keys, raw, 0, GOLDEN_INO, &out), -EBADMSG);
	cr_expect_eq(stamp_open(keys, raw, STAMP_BYTES, GOLDEN_INO, &out), 0, "control");
}

/* Even with a MAC that verifies, another version or kind is refused. */
Test(stamp, wrong_version_or_kind_fails)
{
	struct stamp s = golden_stamp(), out;
	uint8_t raw[STAMP_BYTES];

	stamp_seal(keys, &s, GOLDEN_INO, raw);
	remac(keys, raw, GOLDEN_INO);
	cr_assert_eq(stamp_open(keys, raw, sizeof(raw), GOLDEN_INO, &out), 0,
		     "remac reproduces the MAC");
	raw[0] = STAMP_VERSION + 1;
	remac(keys, raw, GOLDEN_INO);
	cr_expect_eq(stamp_open(keys, raw, sizeof(raw), GOLDEN_INO, &out), -EBADMSG, "version 2");
	raw[0] = 0;
	remac(keys, raw, GOLDEN_INO);
	cr_expect_eq(stamp_open(keys, raw, sizeof(raw), GOLDEN_INO, &out), -EBADMSG, "version 0");
	raw[0] = STAMP_VERSION;
	raw[1] = 0;
	remac(keys, raw, GOLDEN_INO);
	cr_expect_eq(stamp_open(keys, raw, sizeof(raw), GOLDEN_INO, &out), -EBADMSG, "kind 0");
	raw[1] = STAMP_DIR + 1;
	remac(keys, raw, GOLDEN_INO);
	cr_expect_eq(stamp_open(keys, raw, sizeof(raw), GOLDEN_INO, &out), -EBADMSG, "kind 5");
}

Test(stamp, failed_open_reports_nothing)
{
	struct stamp s = golden_stamp(), out, before;
	uint8_t raw[STAMP_BYTES];

	stamp_seal(keys, &s, GOLDEN_INO, raw);
	raw[30] ^= 1; /* mtime: a forger's favourite byte */
	memset(&out, 0x5a, sizeof(out));
	before = out;
	cr_expect_eq(stamp_open(keys, raw, sizeof(raw), GOLDEN_INO, &out), -EBADMSG);
	cr_expect_arr_eq(&out, &before, sizeof(out), "out written on failure");
}

/* ---- the expiry decision ---- */

#define T0 1700000000123456789LL
#define HOUR_NS (3600 * NSEC_PER_SEC)

Test(expiry, invalid_stamp_is_always_expired)
{
	static const int64_t nows[] = {INT64_MIN, 0, T0 - HOUR_NS, T0, T0 + 1};

	for (size_t i = 0; i < sizeof(nows) / sizeof(nows[0]); i++)
		cr_expect(expiry_passed(false, T0, CONFIG_DEFAULT_TTL, nows[i]), "now %lld",
			  (long long)nows[i]);
}

Test(expiry, boundary)
{
	int64_t deadline = T0 + 3 * NSEC_PER_SEC;

	cr_expect_not(expiry_passed(true, T0, 3, deadline - 1), "1 ns before: live");
	cr_expect(expiry_passed(true, T0, 3, deadline), "at the deadline: expired");
	cr_expect(expiry_passed(true, T0, 3, deadline + 1));
	cr_expect_not(expiry_passed(true, T0, 3, T0), "just written: live");
	cr_expect_not(expiry_passed(true, T0, 3, T0 - HOUR_NS), "clock went back: live");
}

Test(expiry, two_hour_default)
{
	cr_assert_eq(CONFIG_DEFAULT_TTL, 7200);
	cr_expect_eq(expiry_deadline(T0, CONFIG_DEFAULT_TTL), T0 + 7200000000000LL);
	cr_expect_not(expiry_passed(true, T0, CONFIG_DEFAULT_TTL, T0 + 2 * HOUR_NS - 1));
	cr_expect(expiry_passed(true, T0, CONFIG_DEFAULT_TTL, T0 + 2 * HOUR_NS));
	cr_expect_not(
		expiry_passed(true, T0, CONFIG_DEFAULT_TTL, T0 + HOUR_NS + 59 * 60 * NSEC_PER_SEC));
}

Test(expiry, deadline_arithmetic)
{
	cr_expect_eq(expiry_deadline(0, 1), NSEC_PER_SEC);
	cr_expect_eq(expiry_deadline(5, 90), 5 + 90 * NSEC_PER_SEC);
	cr_expect_eq(expiry_deadline(T0, 3), T0 + 3000000000LL);
	/* The longest ttl config accepts (ten years) does not overflow. */
	cr_expect_eq(expiry_deadline(T0, 10LL * 366 * 24 * 3600),
		     T0 + 10LL * 366 * 24 * 3600 * NSEC_PER_SEC);
	cr_expect_gt(expiry_deadline(T0, 10LL * 366 * 24 * 3600), T0);
}

Test(expiry, realtime_clock_is_ns)
{
	int64_t a = clock_realtime(NULL), b = clock_realtime(NULL);

	cr_expect_gt(a, 1600000000LL * NSEC_PER_SEC, "ns since the epoch, not s");
	cr_expect_lt(a, 4102444800LL * NSEC_PER_SEC, "before 2100");
	cr_expect_geq(b, a);
}

/* ---- RFC 3339 ---- */

static void expect_rfc3339(int64_t ns, const char *want)
{
	char out[32];

	memset(out, 'x', sizeof(out));
	format_rfc3339(ns, out, sizeof(out));
	cr_expect_str_eq(out, want, "ns %lld", (long long)ns);
}

Test(rfc3339, known_instants)
{
	expect_rfc3339(0, "1970-01-01T00:00:00Z");
	expect_rfc3339(1764425138LL * NSEC_PER_SEC, "2025-11-29T14:05:38Z");
	expect_rfc3339(1764425138LL * NSEC_PER_SEC + 999999999, "2025-11-29T14:05:38Z");
	expect_rfc3339(T0, "2023-11-14T22:13:20Z");
	expect_rfc3339(951782400LL * NSEC_PER_SEC, "2000-02-29T00:00:00Z");
	expect_rfc3339(2147483648LL * NSEC_PER_SEC, "2038-01-19T03:14:08Z");
}

Test(rfc3339, milliseconds_truncated)
{
	char out[32];

	format_rfc3339_ms(0, out, sizeof(out));
	cr_expect_str_eq(out, "1970-01-01T00:00:00.000Z");
	format_rfc3339_ms(1764425138LL * NSEC_PER_SEC + 999999999, out, sizeof(out));
	cr_expect_str_eq(out, "2025-11-29T14:05:38.999Z", "rounded up into the next second?");
	format_rfc3339_ms(T0, out, sizeof(out));
	cr_expect_str_eq(out, "2023-11-14T22:13:20.123Z");
	format_rfc3339_ms(1764425138LL * NSEC_PER_SEC + 1000000, out, sizeof(out));
	cr_expect_str_eq(out, "2025-11-29T14:05:38.001Z");
	format_rfc3339_ms(1764425138LL * NSEC_PER_SEC + 999999, out, sizeof(out));
	cr_expect_str_eq(out, "2025-11-29T14:05:38.000Z");
}

Test(rfc3339, ms_fits_25_bytes)
{
	char out[25];

	format_rfc3339_ms(T0, out, sizeof(out));
	cr_expect_str_eq(out, "2023-11-14T22:13:20.123Z");
}

Test(rfc3339, fits_21_bytes)
{
	char out[21];

	format_rfc3339(1764425138LL * NSEC_PER_SEC, out, sizeof(out));
	cr_expect_str_eq(out, "2025-11-29T14:05:38Z");
}
