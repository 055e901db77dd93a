/* test_layout.c - Criterion suite for fs/layout.c: the content-file header
 * (round trip, golden bytes, rejects) and the size and offset arithmetic. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "layout.h"

/* header_encode() of {version 1, ENTRY_REG, XChaCha20-Poly1305, file id
 * 0x10..0x1f}: "EKYF", version, type, cipher, a zero byte, the file id and
 * eight zero bytes. Written out by hand; a change here is a format change. */
static const char GOLD_HEADER[] = "454b5946"
				  "01010100"
				  "101112131415161718191a1b1c1d1e1f"
				  "0000000000000000";

static struct file_header gold_header(void)
{
	struct file_header h = {
		.version = FORMAT_VERSION, .type = ENTRY_REG, .cipher = CIPHER_XCHACHA20POLY1305};

	for (int i = 0; i < FILE_ID_BYTES; i++)
		h.file_id[i] = (uint8_t)(0x10 + i);
	return h;
}

static const char *hex(const uint8_t *buf, size_t len, char *out, size_t cap)
{
	cr_assert(cap > 2 * len);
	sodium_bin2hex(out, cap, buf, len);
	return out;
}

Test(layout, constants)
{
	cr_expect_eq(HEADER_SIZE, 32);
	cr_expect_eq(BLOCK_SIZE, 4096);
	cr_expect_eq(BLOCK_OVERHEAD, 40);
	cr_expect_eq(BLOCK_DISK, 4136);
	cr_expect_eq(FORMAT_VERSION, 1);
	cr_expect_eq(sizeof(off_t), 8, "64-bit file offsets");
}

Test(layout, header_golden_bytes)
{
	struct file_header h = gold_header();
	uint8_t raw[HEADER_SIZE + 8];
	char buf[2 * HEADER_SIZE + 1];

	memset(raw, 0xff, sizeof(raw));
	header_encode(&h, raw);
	cr_expect_str_eq(hex(raw, HEADER_SIZE, buf, sizeof(buf)), GOLD_HEADER);
	for (size_t i = HEADER_SIZE; i < sizeof(raw); i++)
		cr_expect_eq(raw[i], 0xff, "header_encode wrote past HEADER_SIZE at %zu", i);
}

Test(layout, header_decode_golden)
{
	uint8_t raw[HEADER_SIZE];
	size_t binlen = 0;
	struct file_header h;

	cr_assert_eq(sodium_hex2bin(raw, sizeof(raw), GOLD_HEADER, sizeof(GOLD_HEADER) - 1, NULL,
				    &binlen, NULL),
		     0);
	cr_assert_eq(binlen, HEADER_SIZE);
	memset(&h, 0, sizeof(h));
	cr_assert_eq(header_decode(raw, &h), 0);
	cr_expect_eq(h.version, 1);
	cr_expect_eq(h.type, ENTRY_REG);
	cr_expect_eq(h.cipher, CIPHER_XCHACHA20POLY1305);
	for (int i = 0; i < FILE_ID_BYTES; i++)
		cr_expect_eq(h.file_id[i], 0x10 + i);
}

Test(layout, header_round_trip_every_type_and_cipher)
{
	static const uint8_t types[] = {ENTRY_REG, ENTRY_SYMLINK, ENTRY_FIFO};
	static const uint8_t ciphers[] = {CIPHER_XCHACHA20POLY1305, CIPHER_AES256GCM};

	for (size_t t = 0; t < sizeof(types); t++) {
		for (size_t c = 0; c < sizeof(ciphers); c++) {
			struct file_header in = gold_header(), out;
			uint8_t raw[HEADER_SIZE];

			in.type = types[t];
			in.cipher = ciphers[c];
			for (int i = 0; i < FILE_ID_BYTES; i++)
				in.file_id[i] = (uint8_t)(t * 31 + c * 7 + i * 13 + 0x80);
			header_encode(&in, raw);
			memset(&out, 0xee, sizeof(out));
			cr_assert_eq(header_decode(raw, &out), 0, "type %u cipher %u", types[t],
				     ciphers[c]);
			cr_expect_eq(out.version, FORMAT_VERSION);
			cr_expect_eq(out.type, types[t]);
			cr_expect_eq(out.cipher, ciphers[c]);
			cr_expect_eq(memcmp(out.file_id, in.file_id, FILE_ID_BYTES), 0);
		}
	}
}

/* Golden header with byte pos set to v must be rejected. */
static void expect_bad(size_t pos, uint8_t v, const char *what)
{
	struct file_header h = gold_header();
	uint8_t raw[HEADER_SIZE];

	header_encode(&h, raw);
	raw[pos] = v;
	cr_expect_eq(header_decode(raw, &h), -EIO, "%s (byte %zu = %u) accepted", what, pos, v);
}

Test(layout, header_rejects_bad_fields)
{
	for (size_t i = 0; i < 4; i++) {
		expect_bad(i, 0, "magic");
		expect_bad(i, (uint8_t)(HEADER_MAGIC[i] ^ 0x20), "magic case");
	}
	expect_bad(4, 0, "version");
	expect_bad(4, FORMAT_VERSION + 1, "version");
	expect_bad(4, 0xff, "version");
	expect_bad(5, 0, "type");
	expect_bad(5, ENTRY_FIFO + 1, "type");
	expect_bad(5, 0xff, "type");
	expect_bad(6, 0, "cipher");
	expect_bad(6, CIPHER_AES256GCM + 1, "cipher");
	expect_bad(6, 0xff, "cipher");
}

Test(layout, header_all_zero_and_all_ff_rejected)
{
	uint8_t raw[HEADER_SIZE];
	struct file_header h;

	memset(raw, 0, sizeof(raw));
	cr_expect_eq(header_decode(raw, &h), -EIO);
	memset(raw, 0xff, sizeof(raw));
	cr_expect_eq(header_decode(raw, &h), -EIO);
}

/* Backing size written out from the layout, not from the code under test. */
static off_t expected_backing(off_t plain)
{
	off_t full = plain / 4096, rem = plain % 4096;

	return 32 + full * 4136 + (rem ? rem + 40 : 0);
}

Test(layout, backing_size_known_values)
{
	cr_expect_eq(layout_backing_size(0), 32);
	cr_expect_eq(layout_backing_size(1), 73);
	cr_expect_eq(layout_backing_size(4095), 32 + 4095 + 40);
	cr_expect_eq(layout_backing_size(4096), 32 + 4136);
	cr_expect_eq(layout_backing_size(4097), 32 + 4136 + 41);
	cr_expect_eq(layout_backing_size(8192), 32 + 2 * 4136);
	cr_expect_eq(layout_plain_size(32), 0);
	cr_expect_eq(layout_plain_size(73), 1);
	cr_expect_eq(layout_plain_size(32 + 4136), 4096);
	cr_expect_eq(layout_plain_size(32 + 4136 + 41), 4097);
}

Test(layout, backing_plain_inverse_small)
{
	off_t prev = -1;

	for (off_t p = 0; p <= 3 * BLOCK_SIZE + 5; p++) {
		off_t b = layout_backing_size(p);

		cr_assert_eq(b, expected_backing(p), "backing(%jd)", (intmax_t)p);
		cr_assert_gt(b, prev, "backing not increasing at %jd", (intmax_t)p);
		cr_assert_eq(layout_plain_size(b), p, "plain(backing(%jd))", (intmax_t)p);
		prev = b;
	}
}

/* Every backing size either maps to exactly one plain size or is torn. */
Test(layout, every_backing_size_small)
{
	for (off_t b = 0; b <= 32 + 3 * BLOCK_DISK + 100; b++) {
		off_t p = layout_plain_size(b);
		off_t body = b - 32, rem = body % 4136;
		bool torn = body < 0 || (rem >= 1 && rem <= 40);

		if (torn) {
			cr_assert_eq(p, -EIO, "backing %jd gave %jd", (intmax_t)b, (intmax_t)p);
		} else {
			cr_assert_geq(p, 0, "backing %jd rejected", (intmax_t)b);
			cr_assert_eq(layout_backing_size(p), b, "backing %jd", (intmax_t)b);
		}
	}
}

Test(layout, backing_plain_inverse_large)
{
	static const off_t bases[] = {
		(off_t)1 << 31, (off_t)1 << 32, (off_t)1 << 40,
		(off_t)1 << 50, (off_t)1 << 60, (off_t)4096 * 1000003,
	};

	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		for (off_t d = -BLOCK_SIZE - 3; d <= BLOCK_SIZE + 3; d++) {
			off_t p = bases[i] + d, b = layout_backing_size(p);

			cr_assert_eq(b, expected_backing(p), "backing(%jd)", (intmax_t)p);
			cr_assert_eq(layout_plain_size(b), p, "plain(backing(%jd))", (intmax_t)p);
		}
	}
}

Test(layout, torn_sizes_rejected)
{
	for (off_t b = 0; b < HEADER_SIZE; b++)
		cr_expect_eq(layout_plain_size(b), -EIO, "backing %jd shorter than the header",
			     (intmax_t)b);
	cr_expect_eq(layout_plain_size(-1), -EIO);
	for (off_t blocks = 0; blocks < 4; blocks++) {
		for (off_t r = 1; r <= BLOCK_OVERHEAD; r++) {
			off_t b = HEADER_SIZE + blocks * BLOCK_DISK + r;

			cr_expect_eq(layout_plain_size(b), -EIO, "torn backing %jd accepted",
				     (intmax_t)b);
		}
		/* One past the overhead is a one-byte block, valid. */
		cr_expect_eq(layout_plain_size(HEADER_SIZE + blocks * BLOCK_DISK + 41),
			     blocks * BLOCK_SIZE + 1);
	}
	for (off_t r = 1; r <= BLOCK_OVERHEAD; r++) {
		off_t b = HEADER_SIZE + ((off_t)1 << 30) * BLOCK_DISK + r;

		cr_expect_eq(layout_plain_size(b), -EIO, "torn large backing %jd accepted",
			     (intmax_t)b);
	}
}

Test(layout, block_offset)
{
	cr_expect_eq(layout_block_offset(0), 32);
	cr_expect_eq(layout_block_offset(1), 32 + 4136);
	cr_expect_eq(layout_block_offset(2), 32 + 2 * 4136);
	cr_expect_eq(layout_block_offset((uint64_t)1 << 32), 32 + ((off_t)1 << 32) * 4136);
	for (uint64_t i = 0; i < 10; i++)
		cr_expect_eq(layout_block_offset(i), layout_backing_size((off_t)i * BLOCK_SIZE));
}

static void expect_range(off_t off, size_t len, uint64_t first, uint64_t last)
{
	uint64_t f = 0xdead, l = 0xbeef;

	layout_block_range(off, len, &f, &l);
	cr_expect_eq(f, first, "off %jd len %zu: first %ju", (intmax_t)off, len, (uintmax_t)f);
	cr_expect_eq(l, last, "off %jd len %zu: last %ju", (intmax_t)off, len, (uintmax_t)l);
}

Test(layout, block_range_boundaries)
{
	expect_range(0, 1, 0, 0);
	expect_range(0, 4095, 0, 0);
	expect_range(0, 4096, 0, 0);
	expect_range(0, 4097, 0, 1);
	expect_range(1, 4095, 0, 0);
	expect_range(1, 4096, 0, 1);
	expect_range(4095, 1, 0, 0);
	expect_range(4095, 2, 0, 1);
	expect_range(4095, 4097, 0, 1);
	expect_range(4095, 4098, 0, 2);
	expect_range(4096, 1, 1, 1);
	expect_range(4096, 4096, 1, 1);
	expect_range(4096, 4097, 1, 2);
	expect_range(8191, 1, 1, 1);
	expect_range(8191, 2, 1, 2);
	expect_range(0, 1024 * 1024, 0, 255);
	expect_range(1, 1024 * 1024, 0, 256);
	expect_range(4095, 1024 * 1024 + 2, 0, 257);
	expect_range((off_t)1 << 40, 1, (uint64_t)1 << 28, (uint64_t)1 << 28);
	expect_range(((off_t)1 << 40) - 1, 2, ((uint64_t)1 << 28) - 1, (uint64_t)1 << 28);
}

/* Near every block boundary, against a byte-by-byte definition: the
 * blocks are those holding the first and the last byte of the range. */
Test(layout, block_range_near_boundaries)
{
	static const off_t deltas[] = {-3, -2, -1, 0, 1, 2, 3, 2048};
	static const size_t lens[] = {1, 2, 3, 4094, 4095, 4096, 4097, 4098, 8191, 8192, 8193};

	for (off_t k = 0; k < 4; k++) {
		for (size_t d = 0; d < sizeof(deltas) / sizeof(deltas[0]); d++) {
			off_t off = k * BLOCK_SIZE + deltas[d];

			if (off < 0)
				continue;
			for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
				uint64_t f, l, ef = UINT64_MAX, el = 0;

				for (off_t b = off; b < off + (off_t)lens[i]; b++) {
					uint64_t blk = 0;

					for (off_t s = 4096; s <= b; s += 4096)
						blk++;
					ef = blk < ef ? blk : ef;
					el = blk > el ? blk : el;
				}
				layout_block_range(off, lens[i], &f, &l);
				cr_assert_eq(f, ef, "off %jd len %zu", (intmax_t)off, lens[i]);
				cr_assert_eq(l, el, "off %jd len %zu", (intmax_t)off, lens[i]);
			}
		}
	}
}
