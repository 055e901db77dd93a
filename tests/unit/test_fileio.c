/* test_fileio.c - Criterion suite for fs/fileio.c: random I/O checked against
 * an in-memory model, sparse growth, truncation, and tampering on disk. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "crypto.h"
#include "fileio.h"
#include "layout.h"

#define MODEL_CAP (4 * 1024 * 1024)
#define MAX_BLOCKS 12 /* random offsets land mostly in blocks 0..MAX_BLOCKS */

/* An open content file: backing fd, its key and its plain size. */
struct tfile {
	int fd;
	char path[64];
	struct file_header h;
	struct filekey *fk;
	off_t size; /* plain size, as the caller tracks it */
};

static struct keys *keys; /* master 0..31, shared by every file */

static void setup(void)
{
	uint8_t master[KEY_BYTES];

	cr_assert_eq(crypto_setup(), 0);
	for (int i = 0; i < KEY_BYTES; i++)
		master[i] = (uint8_t)i;
	keys = keys_from_master(master);
	cr_assert_not_null(keys);
}

static void teardown(void)
{
	keys_free(keys);
}

TestSuite(fileio, .init = setup, .fini = teardown);

/* Create an empty content file with file id id_byte, 0x10 + 1, ... */
static void tf_open(struct tfile *t, uint8_t id_byte, int cipher)
{
	memset(t, 0, sizeof(*t));
	strcpy(t->path, "/tmp/ekycfs-test-fileio-XXXXXX");
	t->fd = mkstemp(t->path);
	cr_assert(t->fd >= 0, "mkstemp: %s", strerror(errno));
	t->h.version = FORMAT_VERSION;
	t->h.type = ENTRY_REG;
	t->h.cipher = (uint8_t)cipher;
	for (int i = 0; i < FILE_ID_BYTES; i++)
		t->h.file_id[i] = (uint8_t)(id_byte + i);
	cr_assert_eq(fileio_init(t->fd, &t->h), 0);
	t->fk = filekey_new(keys, t->h.file_id, ENTRY_REG, cipher);
	cr_assert_not_null(t->fk);
	t->size = 0;
}

static void tf_close(struct tfile *t)
{
	filekey_free(t->fk);
	close(t->fd);
	unlink(t->path);
}

static off_t backing_size(int fd)
{
	struct stat st;

	cr_assert_eq(fstat(fd, &st), 0);
	return st.st_size;
}

static void raw_read(int fd, off_t off, void *buf, size_t len)
{
	cr_assert_eq(pread(fd, buf, len, off), (ssize_t)len, "raw read at %jd", (intmax_t)off);
}

static void raw_write(int fd, off_t off, const void *buf, size_t len)
{
	cr_assert_eq(pwrite(fd, buf, len, off), (ssize_t)len, "raw write at %jd", (intmax_t)off);
}

static void flip_byte(int fd, off_t off)
{
	uint8_t b;

	raw_read(fd, off, &b, 1);
	b ^= 0x01;
	raw_write(fd, off, &b, 1);
}

static void fill_pattern(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)((i * 7 + seed * 13 + (i >> 12)) | 1); /* never zero */
}

static bool all_zero(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i])
			return false;
	return true;
}

/* Write len pattern bytes (seed) at off; assert success. */
static void put(struct tfile *t, off_t off, size_t len, unsigned seed)
{
	uint8_t *buf = malloc(len);

	cr_assert_not_null(buf);
	fill_pattern(buf, len, seed);
	cr_assert_eq(fileio_write(t->fd, t->fk, &t->size, buf, len, off), (ssize_t)len,
		     "write off %jd len %zu", (intmax_t)off, len);
	free(buf);
}

/* Read up to len plain bytes at off into out; the fileio_read result. */
static ssize_t get(struct tfile *t, off_t off, size_t len, uint8_t *out)
{
	return fileio_read(t->fd, t->fk, t->size, out, len, off, true);
}

/* A file of nblocks full blocks plus tail bytes, pattern seed 1 from 0. */
static void make_file(struct tfile *t, uint8_t id_byte, int nblocks, size_t tail)
{
	tf_open(t, id_byte, CIPHER_XCHACHA20POLY1305);
	put(t, 0, (size_t)nblocks * BLOCK_SIZE + tail, 1);
}

static void expect_pattern(struct tfile *t, off_t off, size_t len, unsigned seed, off_t base)
{
	uint8_t *got = malloc(len), *want = malloc((size_t)(off - base) + len);

	cr_assert(got && want);
	fill_pattern(want, (size_t)(off - base) + len, seed);
	cr_expect_eq(get(t, off, len, got), (ssize_t)len, "read off %jd len %zu", (intmax_t)off,
		     len);
	cr_expect_eq(memcmp(got, want + (off - base), len), 0, "data at off %jd len %zu",
		     (intmax_t)off, len);
	free(got);
	free(want);
}

/* ---- header and size ---- */

Test(fileio, init_header_round_trip)
{
	struct tfile t;
	struct file_header h;
	static const char junk[] = "old junk that must go away";

	tf_open(&t, 0x10, CIPHER_XCHACHA20POLY1305);
	raw_write(t.fd, 0, junk, sizeof(junk));
	raw_write(t.fd, 10000, junk, sizeof(junk));
	cr_assert_eq(fileio_init(t.fd, &t.h), 0);
	cr_expect_eq(backing_size(t.fd), HEADER_SIZE);
	cr_expect_eq(fileio_size(t.fd), 0);
	memset(&h, 0, sizeof(h));
	cr_assert_eq(fileio_read_header(t.fd, &h), 0);
	cr_expect_eq(h.version, FORMAT_VERSION);
	cr_expect_eq(h.type, ENTRY_REG);
	cr_expect_eq(h.cipher, CIPHER_XCHACHA20POLY1305);
	cr_expect_eq(memcmp(h.file_id, t.h.file_id, FILE_ID_BYTES), 0);
	tf_close(&t);
}

Test(fileio, bad_or_short_header)
{
	struct tfile t;
	struct file_header h;

	tf_open(&t, 0x10, CIPHER_XCHACHA20POLY1305);
	flip_byte(t.fd, 0);
	cr_expect_eq(fileio_read_header(t.fd, &h), -EIO, "bad magic");
	flip_byte(t.fd, 0);
	cr_expect_eq(fileio_read_header(t.fd, &h), 0);
	cr_assert_eq(ftruncate(t.fd, HEADER_SIZE - 1), 0);
	cr_expect_eq(fileio_read_header(t.fd, &h), -EIO, "short header");
	cr_assert_eq(ftruncate(t.fd, 0), 0);
	cr_expect_eq(fileio_read_header(t.fd, &h), -EIO, "empty file");
	cr_expect_eq(fileio_size(t.fd), -EIO);
	tf_close(&t);
}

Test(fileio, torn_backing_size)
{
	struct tfile t;

	make_file(&t, 0x10, 2, 100);
	cr_expect_eq(fileio_size(t.fd), 2 * BLOCK_SIZE + 100);
	for (off_t r = 1; r <= BLOCK_OVERHEAD; r++) {
		cr_assert_eq(ftruncate(t.fd, HEADER_SIZE + BLOCK_DISK + r), 0);
		cr_expect_eq(fileio_size(t.fd), -EIO, "torn remainder %jd", (intmax_t)r);
	}
	cr_assert_eq(ftruncate(t.fd, HEADER_SIZE - 1), 0);
	cr_expect_eq(fileio_size(t.fd), -EIO);
	cr_assert_eq(ftruncate(t.fd, HEADER_SIZE + BLOCK_DISK + BLOCK_OVERHEAD + 1), 0);
	cr_expect_eq(fileio_size(t.fd), BLOCK_SIZE + 1);
	tf_close(&t);
}

/* A caller whose size is ahead of the backing file gets EIO, not garbage. */
Test(fileio, read_with_stale_size)
{
	struct tfile t;
	uint8_t buf[BLOCK_SIZE];
	off_t real;

	make_file(&t, 0x10, 2, 0);
	real = t.size;
	cr_assert_eq(ftruncate(t.fd, layout_backing_size(BLOCK_SIZE)), 0);
	cr_expect_eq(fileio_read(t.fd, t.fk, real, buf, sizeof(buf), BLOCK_SIZE, false), -EIO);
	cr_expect_eq(fileio_read(t.fd, t.fk, real, buf, sizeof(buf), 0, false), BLOCK_SIZE);
	tf_close(&t);
}

/* ---- reads, writes and truncation ---- */

Test(fileio, empty_file_and_eof)
{
	struct tfile t;
	uint8_t buf[64];

	tf_open(&t, 0x10, CIPHER_XCHACHA20POLY1305);
	cr_expect_eq(get(&t, 0, sizeof(buf), buf), 0);
	cr_expect_eq(get(&t, 5000, sizeof(buf), buf), 0);
	put(&t, 0, 100, 1);
	cr_expect_eq(t.size, 100);
	cr_expect_eq(get(&t, 100, sizeof(buf), buf), 0, "read at EOF");
	cr_expect_eq(get(&t, 101, sizeof(buf), buf), 0, "read past EOF");
	cr_expect_eq(get(&t, 90, sizeof(buf), buf), 10, "read across EOF");
	cr_expect_eq(get(&t, 0, 0, buf), 0, "zero-length read");
	cr_expect_eq(fileio_write(t.fd, t.fk, &t.size, buf, 0, 5000), 0, "zero-length write");
	cr_expect_eq(t.size, 100, "zero-length write changed the size");
	expect_pattern(&t, 0, 100, 1, 0);
	tf_close(&t);
}

Test(fileio, sparse_extension_reads_zeros_and_is_sealed)
{
	struct tfile t;
	const off_t off = 3 * BLOCK_SIZE + 100;
	uint8_t buf[4 * BLOCK_SIZE], raw[BLOCK_DISK];

	tf_open(&t, 0x10, CIPHER_XCHACHA20POLY1305);
	put(&t, off, 10, 2);
	cr_expect_eq(t.size, off + 10);
	cr_expect_eq(fileio_size(t.fd), off + 10);
	cr_expect_eq(backing_size(t.fd), layout_backing_size(off + 10));
	cr_assert_eq(get(&t, 0, (size_t)off, buf), off);
	cr_expect(all_zero(buf, (size_t)off), "gap does not read as zeros");
	expect_pattern(&t, off, 10, 2, off);
	/* The gap is sealed zeros, not a hole or plaintext zeros. */
	for (uint64_t i = 0; i < 3; i++) {
		raw_read(t.fd, layout_block_offset(i), raw, BLOCK_DISK);
		cr_expect_not(all_zero(raw + BLOCK_NONCE, 64), "block %ju stored in clear",
			      (uintmax_t)i);
	}
	/* A gap wider than one extend chunk (32 blocks) and unaligned. */
	put(&t, 300001, 5, 3);
	cr_expect_eq(t.size, 300006);
	cr_expect_eq(fileio_size(t.fd), 300006);
	cr_assert_eq(get(&t, off + 10, BLOCK_SIZE, buf), BLOCK_SIZE);
	cr_expect(all_zero(buf, BLOCK_SIZE));
	cr_assert_eq(get(&t, 100001, sizeof(buf), buf), (ssize_t)sizeof(buf));
	cr_expect(all_zero(buf, sizeof(buf)));
	expect_pattern(&t, 300001, 5, 3, 300001);
	tf_close(&t);
}

Test(fileio, truncate_down_and_up)
{
	struct tfile t;
	uint8_t buf[6 * BLOCK_SIZE];

	make_file(&t, 0x10, 3, 0);
	cr_assert_eq(fileio_truncate(t.fd, t.fk, &t.size, 5000), 0);
	cr_expect_eq(t.size, 5000);
	cr_expect_eq(fileio_size(t.fd), 5000);
	cr_expect_eq(backing_size(t.fd), layout_backing_size(5000));
	expect_pattern(&t, 0, 5000, 1, 0);
	cr_assert_eq(fileio_truncate(t.fd, t.fk, &t.size, 20000), 0);
	cr_expect_eq(t.size, 20000);
	cr_expect_eq(fileio_size(t.fd), 20000);
	cr_assert_eq(get(&t, 5000, 15000, buf), 15000);
	cr_expect(all_zero(buf, 15000), "old bytes came back after shrink and grow");
	expect_pattern(&t, 0, 5000, 1, 0);

	/* To block boundaries, and to the same size. */
	cr_assert_eq(fileio_truncate(t.fd, t.fk, &t.size, 2 * BLOCK_SIZE), 0);
	cr_expect_eq(fileio_size(t.fd), 2 * BLOCK_SIZE);
	cr_assert_eq(fileio_truncate(t.fd, t.fk, &t.size, 2 * BLOCK_SIZE), 0);
	cr_expect_eq(fileio_size(t.fd), 2 * BLOCK_SIZE);
	cr_assert_eq(fileio_truncate(t.fd, t.fk, &t.size, BLOCK_SIZE), 0);
	cr_expect_eq(backing_size(t.fd), HEADER_SIZE + BLOCK_DISK);
	expect_pattern(&t, 0, BLOCK_SIZE, 1, 0);
	cr_assert_eq(fileio_truncate(t.fd, t.fk, &t.size, BLOCK_SIZE + 1), 0);
	cr_assert_eq(get(&t, 0, BLOCK_SIZE + 1, buf), BLOCK_SIZE + 1);
	cr_expect_eq(buf[BLOCK_SIZE], 0);
	cr_assert_eq(fileio_truncate(t.fd, t.fk, &t.size, 1), 0);
	expect_pattern(&t, 0, 1, 1, 0);
	cr_assert_eq(fileio_truncate(t.fd, t.fk, &t.size, 0), 0);
	cr_expect_eq(t.size, 0);
	cr_expect_eq(backing_size(t.fd), HEADER_SIZE);
	cr_expect_eq(fileio_truncate(t.fd, t.fk, &t.size, -1), -EINVAL);
	cr_expect_eq(t.size, 0);
	put(&t, 10, 10, 4);
	cr_assert_eq(get(&t, 0, 20, buf), 20);
	cr_expect(all_zero(buf, 10));
	tf_close(&t);
}

Test(fileio, write_limits)
{
	struct tfile t;
	uint8_t *big = calloc(1, FILEIO_MAX_IO + 1), *back = malloc(FILEIO_MAX_IO);
	off_t before;

	cr_assert(big && back);
	make_file(&t, 0x10, 1, 10);
	before = backing_size(t.fd);
	cr_expect_eq(fileio_write(t.fd, t.fk, &t.size, big, FILEIO_MAX_IO + 1, 0), -EINVAL);
	cr_expect_eq(fileio_write(t.fd, t.fk, &t.size, big, (size_t)1 << 31, 0), -EINVAL);
	cr_expect_eq(fileio_write(t.fd, t.fk, &t.size, big, 1, -1), -EINVAL);
	cr_expect_eq(t.size, BLOCK_SIZE + 10, "a refused write changed the size");
	cr_expect_eq(backing_size(t.fd), before);
	expect_pattern(&t, 0, BLOCK_SIZE + 10, 1, 0);

	/* Exactly FILEIO_MAX_IO at an unaligned offset (257 blocks) works. */
	fill_pattern(big, FILEIO_MAX_IO, 5);
	cr_assert_eq(fileio_write(t.fd, t.fk, &t.size, big, FILEIO_MAX_IO, 4095), FILEIO_MAX_IO);
	cr_expect_eq(t.size, 4095 + FILEIO_MAX_IO);
	cr_assert_eq(get(&t, 4095, FILEIO_MAX_IO, back), FILEIO_MAX_IO);
	cr_expect_eq(memcmp(back, big, FILEIO_MAX_IO), 0);
	expect_pattern(&t, 0, 4095, 1, 0);
	free(big);
	free(back);
	tf_close(&t);
}

/* A read asking for more than FILEIO_MAX_IO returns at most that much. */
Test(fileio, read_clamped_to_max_io)
{
	struct tfile t;
	size_t len = FILEIO_MAX_IO + 3 * BLOCK_SIZE;
	uint8_t *buf = malloc(len);

	cr_assert_not_null(buf);
	tf_open(&t, 0x10, CIPHER_XCHACHA20POLY1305);
	put(&t, 0, FILEIO_MAX_IO, 6);
	put(&t, FILEIO_MAX_IO, 4 * BLOCK_SIZE, 7);
	cr_expect_eq(get(&t, 1, len, buf), FILEIO_MAX_IO);
	expect_pattern(&t, 1, FILEIO_MAX_IO - 1, 6, 0);
	free(buf);
	tf_close(&t);
}

/* A write rewrites only the blocks it covers; the backing size only grows
 * when the file does. */
Test(fileio, write_touches_only_its_blocks)
{
	struct tfile t;
	uint8_t *before = malloc((size_t)layout_backing_size(5 * BLOCK_SIZE));
	uint8_t *after = malloc((size_t)layout_backing_size(5 * BLOCK_SIZE));
	size_t total = (size_t)layout_backing_size(5 * BLOCK_SIZE);

	cr_assert(before && after);
	make_file(&t, 0x10, 5, 0);
	raw_read(t.fd, 0, before, total);
	put(&t, 2 * BLOCK_SIZE + 17, 1, 9);
	cr_expect_eq(t.size, 5 * BLOCK_SIZE);
	cr_expect_eq(backing_size(t.fd), (off_t)total);
	raw_read(t.fd, 0, after, total);
	for (uint64_t i = 0; i < 5; i++) {
		off_t o = layout_block_offset(i);
		bool same = memcmp(before + o, after + o, BLOCK_DISK) == 0;

		cr_expect_eq(same, i != 2, "block %ju %s", (uintmax_t)i,
			     same ? "not rewritten" : "rewritten");
	}
	cr_expect_eq(memcmp(before, after, HEADER_SIZE), 0, "header rewritten");
	free(before);
	free(after);
	tf_close(&t);
}

/* A seam for shrink_wipes_released_ciphertext: this binary's ftruncate
 * wins over libc's for fs/fileio.c too, so when armed it copies the bytes
 * a shrink is about to release, as they are at that moment. */
static struct {
	bool armed;
	uint8_t *seen; /* the released bytes, malloc'ed */
	size_t len;
} shrink_spy;

int ftruncate(int fd, off_t length)
{
	struct stat st;

	if (shrink_spy.armed && fstat(fd, &st) == 0 && st.st_size > length) {
		shrink_spy.len = (size_t)(st.st_size - length);
		shrink_spy.seen = malloc(shrink_spy.len);
		if (shrink_spy.seen &&
		    pread(fd, shrink_spy.seen, shrink_spy.len, length) != (ssize_t)shrink_spy.len)
			shrink_spy.len = 0;
		shrink_spy.armed = false;
	}
	return (int)syscall(SYS_ftruncate, fd, length);
}

/* fileio.h: a shrink overwrites the released ciphertext before truncating,
 * so the freed disk blocks hold nothing of the file. */
Test(fileio, shrink_wipes_released_ciphertext)
{
	struct tfile t;
	off_t newsize = BLOCK_SIZE + 100, from = layout_backing_size(newsize);
	size_t len = (size_t)(layout_backing_size(3 * BLOCK_SIZE + 5) - from), same = 0;
	uint8_t *old = malloc(len);

	cr_assert_not_null(old);
	make_file(&t, 0x10, 3, 5);
	raw_read(t.fd, from, old, len);
	shrink_spy.armed = true;
	cr_assert_eq(fileio_truncate(t.fd, t.fk, &t.size, newsize), 0);
	cr_assert_not(shrink_spy.armed, "fileio_truncate did not call ftruncate");
	cr_assert_not_null(shrink_spy.seen);
	cr_assert_eq(shrink_spy.len, len);
	for (size_t i = 0; i < len; i++)
		same += shrink_spy.seen[i] == old[i];
	cr_expect_lt(same, len / 64, "%zu of %zu released bytes still hold the old ciphertext",
		     same, len);
	cr_expect_not(all_zero(shrink_spy.seen, len), "released bytes zeroed, not random");
	expect_pattern(&t, 0, (size_t)newsize, 1, 0);
	free(shrink_spy.seen);
	free(old);
	tf_close(&t);
}

/* ---- the model run ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint64_t below(uint64_t n)
{
	return rnd() % n;
}

/* Offsets cluster on block boundaries; a few land far out for big gaps. */
static off_t pick_off(void)
{
	uint64_t r = below(100);
	off_t block = (off_t)below(MAX_BLOCKS + 1) * BLOCK_SIZE, off;

	if (r < 3)
		off = (off_t)below(64 * BLOCK_SIZE);
	else if (r < 65)
		off = block + (off_t)below(7) - 3;
	else
		off = block + (off_t)below(BLOCK_SIZE);
	return off < 0 ? 0 : off;
}

static size_t pick_len(void)
{
	static const size_t lens[] = {1, 2, 3, 4095, 4096, 4097, 8191, 8192, 8193, 12288};
	uint64_t r = below(100);

	if (r < 50)
		return lens[below(sizeof(lens) / sizeof(lens[0]))];
	if (r < 92)
		return 1 + (size_t)below(3 * BLOCK_SIZE);
	if (r < 97) /* around the sizes a spread call halves: 64 to 128 KiB */
		return 15 * BLOCK_SIZE + (size_t)below(19 * BLOCK_SIZE);
	if (r < 98)
		return FILEIO_MAX_IO;
	return 1 + (size_t)below(FILEIO_MAX_IO);
}

struct model {
	uint8_t *data; /* MODEL_CAP bytes; zero past size */
	off_t size;
};

static void model_check_all(struct tfile *t, const struct model *m, uint8_t *buf, int op)
{
	for (off_t off = 0; off < m->size; off += FILEIO_MAX_IO) {
		size_t want =
			m->size - off < FILEIO_MAX_IO ? (size_t)(m->size - off) : FILEIO_MAX_IO;

		cr_assert_eq(get(t, off, FILEIO_MAX_IO, buf), (ssize_t)want, "op %d", op);
		cr_assert_eq(memcmp(buf, m->data + off, want), 0, "op %d: content at %jd", op,
			     (intmax_t)off);
	}
}

static void model_run(int cipher, uint64_t seed, int ops)
{
	struct tfile t;
	struct model m = {calloc(1, MODEL_CAP), 0};
	uint8_t *buf = malloc(FILEIO_MAX_IO), *got = malloc(FILEIO_MAX_IO);
	int nw = 0, nt = 0, nr = 0;

	cr_assert(m.data && buf && got);
	rng_state = seed;
	tf_open(&t, 0x20, cipher);
	for (int op = 0; op < ops; op++) {
		uint64_t kind = below(100);
		off_t off = pick_off();
		size_t len = pick_len();
		bool spread = below(2); /* halves reads of 16 to 32 blocks over two threads */

		if (kind < 45) {
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)rnd();
			cr_assert_eq(fileio_write(t.fd, t.fk, &t.size, buf, len, off), (ssize_t)len,
				     "op %d: write off %jd len %zu", op, (intmax_t)off, len);
			memcpy(m.data + off, buf, len);
			if (off + (off_t)len > m.size)
				m.size = off + (off_t)len;
			nw++;
		} else if (kind < 60) {
			cr_assert_eq(fileio_truncate(t.fd, t.fk, &t.size, off), 0,
				     "op %d: truncate %jd", op, (intmax_t)off);
			if (off < m.size)
				memset(m.data + off, 0, (size_t)(m.size - off));
			m.size = off;
			nt++;
		} else {
			ssize_t want = off >= m.size		   ? 0
				       : (off_t)len < m.size - off ? (ssize_t)len
								   : (ssize_t)(m.size - off);
			ssize_t n = fileio_read(t.fd, t.fk, t.size, got, len, off, spread);

			cr_assert_eq(n, want, "op %d: read off %jd len %zu size %jd", op,
				     (intmax_t)off, len, (intmax_t)m.size);
			cr_assert_eq(memcmp(got, m.data + off, (size_t)want), 0,
				     "op %d: read off %jd len %zu", op, (intmax_t)off, len);
			nr++;
		}
		cr_assert_eq(t.size, m.size, "op %d: tracked size", op);
		cr_assert_eq(fileio_size(t.fd), m.size, "op %d: fileio_size", op);
		cr_assert_eq(backing_size(t.fd), layout_backing_size(m.size), "op %d", op);
		if (op % 200 == 199)
			model_check_all(&t, &m, got, op);
	}
	model_check_all(&t, &m, got, ops);
	cr_expect_gt(nw, ops / 3);
	cr_expect_gt(nt, ops / 10);
	cr_expect_gt(nr, ops / 3);
	tf_close(&t);
	free(m.data);
	free(buf);
	free(got);
}

Test(fileio, model_random_ops_xchacha, .timeout = 120)
{
	model_run(CIPHER_XCHACHA20POLY1305, UINT64_C(0x454b594346530001), 2500);
}

Test(fileio, model_random_ops_aesgcm, .timeout = 120)
{
	if (!crypto_cipher_usable(CIPHER_AES256GCM))
		cr_skip_test("AES-256-GCM not usable on this CPU");
	model_run(CIPHER_AES256GCM, UINT64_C(0x454b594346530002), 2000);
}

/* ---- tampering with the backing file ---- */

/* Positions inside a sealed full block: nonce, ciphertext start, middle,
 * end, and the tag. */
static const size_t tamper_pos[] = {0, 23, 24, 25, 24 + 2048, 24 + 4095, 24 + 4096, 4135};

Test(fileio, flipped_byte_in_block_1)
{
	uint8_t buf[4 * BLOCK_SIZE];

	for (size_t i = 0; i < sizeof(tamper_pos) / sizeof(tamper_pos[0]); i++) {
		struct tfile t;
		off_t at = layout_block_offset(1) + (off_t)tamper_pos[i];
		off_t before;

		make_file(&t, 0x10, 3, 500);
		flip_byte(t.fd, at);
		cr_expect_eq(get(&t, BLOCK_SIZE, BLOCK_SIZE, buf), -EIO, "pos %zu", tamper_pos[i]);
		cr_expect_eq(get(&t, BLOCK_SIZE + 100, 1, buf), -EIO, "pos %zu", tamper_pos[i]);
		cr_expect_eq(get(&t, BLOCK_SIZE - 1, 2, buf), -EIO, "pos %zu: read across 0-1",
			     tamper_pos[i]);
		cr_expect_eq(get(&t, 0, sizeof(buf), buf), -EIO, "pos %zu: whole file",
			     tamper_pos[i]);
		expect_pattern(&t, 0, BLOCK_SIZE, 1, 0);
		expect_pattern(&t, BLOCK_SIZE - 1, 1, 1, 0);
		expect_pattern(&t, 2 * BLOCK_SIZE, BLOCK_SIZE + 500, 1, 0);

		/* A partial write or a truncate into block 1 must read it first. */
		before = backing_size(t.fd);
		cr_expect_eq(fileio_write(t.fd, t.fk, &t.size, buf, 10, BLOCK_SIZE + 5), -EIO,
			     "pos %zu: partial write over a bad block", tamper_pos[i]);
		cr_expect_eq(fileio_write(t.fd, t.fk, &t.size, buf, 10, 2 * BLOCK_SIZE - 5), -EIO,
			     "pos %zu: write across 1-2", tamper_pos[i]);
		cr_expect_eq(t.size, 3 * BLOCK_SIZE + 500);
		cr_expect_eq(backing_size(t.fd), before);
		cr_expect_eq(fileio_truncate(t.fd, t.fk, &t.size, BLOCK_SIZE + 7), -EIO,
			     "pos %zu: truncate into a bad block", tamper_pos[i]);
		cr_expect_eq(t.size, 3 * BLOCK_SIZE + 500);
		expect_pattern(&t, 2 * BLOCK_SIZE, 10, 1, 0);

		/* A write covering the whole block replaces it (nothing to keep). */
		put(&t, BLOCK_SIZE, BLOCK_SIZE, 8);
		expect_pattern(&t, BLOCK_SIZE, BLOCK_SIZE, 8, BLOCK_SIZE);
		tf_close(&t);
	}
}

Test(fileio, flipped_byte_in_partial_last_block)
{
	struct tfile t;
	uint8_t buf[BLOCK_SIZE];

	make_file(&t, 0x10, 2, 100);
	flip_byte(t.fd, layout_block_offset(2) + BLOCK_NONCE + 99);
	cr_expect_eq(get(&t, 2 * BLOCK_SIZE, 100, buf), -EIO);
	cr_expect_eq(fileio_write(t.fd, t.fk, &t.size, buf, 1, 2 * BLOCK_SIZE + 100), -EIO,
		     "append to a bad last block");
	expect_pattern(&t, 0, 2 * BLOCK_SIZE, 1, 0);
	tf_close(&t);
}

/* Swap two sealed blocks of equal length on disk. */
static void swap_blocks(int fd, uint64_t a, uint64_t b)
{
	uint8_t x[BLOCK_DISK], y[BLOCK_DISK];

	raw_read(fd, layout_block_offset(a), x, BLOCK_DISK);
	raw_read(fd, layout_block_offset(b), y, BLOCK_DISK);
	raw_write(fd, layout_block_offset(a), y, BLOCK_DISK);
	raw_write(fd, layout_block_offset(b), x, BLOCK_DISK);
}

/* A spread read of 25 blocks is halved at block 12: blocks 0-11 on the
 * calling thread, 12-24 on its helper. A bad block in either half fails
 * it, as it fails a read done alone, and the other blocks still read. */
Test(fileio, spread_halves_fail_alike)
{
	static const uint64_t bad[] = {0, 5, 11, 12, 20, 24};
	size_t len = 25 * BLOCK_SIZE - 200; /* [100, 25 blocks - 100) */
	uint8_t *buf = malloc(len);

	cr_assert_not_null(buf);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tfile t;

		make_file(&t, 0x30, 24, 4000);
		flip_byte(t.fd, layout_block_offset(bad[i]) + 30);
		cr_expect_eq(fileio_read(t.fd, t.fk, t.size, buf, len, 100, true), -EIO,
			     "spread read, bad block %ju", (uintmax_t)bad[i]);
		cr_expect_eq(fileio_read(t.fd, t.fk, t.size, buf, len, 100, false), -EIO,
			     "read, bad block %ju", (uintmax_t)bad[i]);
		if (bad[i] > 0)
			expect_pattern(&t, 0, (size_t)bad[i] * BLOCK_SIZE, 1, 0);
		if (bad[i] < 24)
			expect_pattern(&t, (off_t)(bad[i] + 1) * BLOCK_SIZE,
				       (size_t)(24 - bad[i]) * BLOCK_SIZE - BLOCK_SIZE + 4000, 1,
				       0);
		tf_close(&t);
	}
	free(buf);
}

/* A write of many blocks merges its partly covered first and last blocks;
 * when the last one is bad the write fails after the others were sealed,
 * and nothing of them may reach the disk. */
Test(fileio, write_fails_whole_on_a_bad_last_block)
{
	size_t len = 25 * BLOCK_SIZE - 200; /* [100, 25 blocks - 100): 0 and 24 merged */
	uint8_t *buf = malloc(len), *disk = malloc(30 * BLOCK_DISK),
		*after = malloc(30 * BLOCK_DISK);
	struct tfile t;
	off_t before;

	cr_assert(buf && disk && after);
	make_file(&t, 0x32, 24, 4000);
	flip_byte(t.fd, layout_block_offset(24) + 30);
	before = backing_size(t.fd);
	raw_read(t.fd, 0, disk, (size_t)before);
	fill_pattern(buf, len, 9);
	cr_expect_eq(fileio_write(t.fd, t.fk, &t.size, buf, len, 100), -EIO);
	cr_expect_eq(backing_size(t.fd), before);
	cr_expect_eq(t.size, 24 * BLOCK_SIZE + 4000);
	raw_read(t.fd, 0, after, (size_t)before);
	cr_expect_eq(memcmp(disk, after, (size_t)before), 0, "blocks 0-23 were written");
	tf_close(&t);
	free(buf);
	free(disk);
	free(after);
}

Test(fileio, swapped_blocks)
{
	struct tfile t;
	uint8_t buf[BLOCK_SIZE];

	make_file(&t, 0x10, 3, 0);
	swap_blocks(t.fd, 0, 1);
	cr_expect_eq(get(&t, 0, 1, buf), -EIO, "block 1 read as block 0");
	cr_expect_eq(get(&t, BLOCK_SIZE, 1, buf), -EIO, "block 0 read as block 1");
	expect_pattern(&t, 2 * BLOCK_SIZE, BLOCK_SIZE, 1, 0);
	swap_blocks(t.fd, 0, 1);
	expect_pattern(&t, 0, 3 * BLOCK_SIZE, 1, 0);
	tf_close(&t);
}

Test(fileio, block_copied_within_file)
{
	struct tfile t;
	uint8_t sealed[BLOCK_DISK], buf[BLOCK_SIZE];

	make_file(&t, 0x10, 3, 0);
	raw_read(t.fd, layout_block_offset(0), sealed, BLOCK_DISK);
	raw_write(t.fd, layout_block_offset(2), sealed, BLOCK_DISK);
	cr_expect_eq(get(&t, 2 * BLOCK_SIZE, 1, buf), -EIO, "block 0 replayed at 2");
	expect_pattern(&t, 0, 2 * BLOCK_SIZE, 1, 0);
	tf_close(&t);
}

Test(fileio, block_from_another_file)
{
	struct tfile t, u;
	uint8_t sealed[BLOCK_DISK], buf[BLOCK_SIZE];

	make_file(&t, 0x10, 2, 0);
	make_file(&u, 0x11, 2, 0); /* same key, same content, other file id */
	raw_read(u.fd, layout_block_offset(0), sealed, BLOCK_DISK);
	raw_write(t.fd, layout_block_offset(0), sealed, BLOCK_DISK);
	cr_expect_eq(get(&t, 0, BLOCK_SIZE, buf), -EIO, "other file's block 0 accepted");
	expect_pattern(&t, BLOCK_SIZE, BLOCK_SIZE, 1, 0);
	expect_pattern(&u, 0, 2 * BLOCK_SIZE, 1, 0);
	tf_close(&t);
	tf_close(&u);
}

/* The whole file read with the key of another file id fails everywhere. */
Test(fileio, wrong_file_key)
{
	struct tfile t;
	uint8_t buf[BLOCK_SIZE], other_id[FILE_ID_BYTES];
	struct filekey *fk2;

	make_file(&t, 0x10, 2, 7);
	memcpy(other_id, t.h.file_id, FILE_ID_BYTES);
	other_id[0] ^= 0x01;
	fk2 = filekey_new(keys, other_id, ENTRY_REG, CIPHER_XCHACHA20POLY1305);
	cr_assert_not_null(fk2);
	for (off_t off = 0; off < t.size; off += BLOCK_SIZE)
		cr_expect_eq(fileio_read(t.fd, fk2, t.size, buf, 1, off, false), -EIO, "off %jd",
			     (intmax_t)off);
	filekey_free(fk2);
	fk2 = filekey_new(keys, t.h.file_id, ENTRY_SYMLINK, CIPHER_XCHACHA20POLY1305);
	cr_assert_not_null(fk2);
	cr_expect_eq(fileio_read(t.fd, fk2, t.size, buf, 1, 0, false), -EIO, "type not bound");
	filekey_free(fk2);
	tf_close(&t);
}

/* LIMITATION, by design of the format: the associated data binds a block to
 * its file id, type and index, but not to a version. An older ciphertext
 * of the same block at the same index is still valid, so rolling a single
 * block back (someone who kept a copy of the backing file writes its old
 * block 2 back) reads the old data without an error. Only a rollback that
 * changes a block's length is caught (the tag lands elsewhere). This test
 * pins what the code guarantees today; a format that adds a per-write
 * version (or a MAC over the block tags in the stamp) would make it fail
 * and should then assert -EIO instead. */
Test(fileio, limitation_same_position_rollback_not_detected)
{
	struct tfile t;
	uint8_t old[BLOCK_DISK], buf[BLOCK_SIZE];

	make_file(&t, 0x10, 4, 0);
	raw_read(t.fd, layout_block_offset(2), old, BLOCK_DISK);
	put(&t, 2 * BLOCK_SIZE, BLOCK_SIZE, 9); /* new version of block 2 */
	expect_pattern(&t, 2 * BLOCK_SIZE, BLOCK_SIZE, 9, 2 * BLOCK_SIZE);
	raw_write(t.fd, layout_block_offset(2), old, BLOCK_DISK);
	cr_expect_eq(get(&t, 2 * BLOCK_SIZE, BLOCK_SIZE, buf), BLOCK_SIZE,
		     "same-position rollback is now detected: update this test");
	expect_pattern(&t, 2 * BLOCK_SIZE, BLOCK_SIZE, 1, 0); /* the OLD data */
	tf_close(&t);
}

/* A rollback of a partial last block to an older, shorter version changes
 * the block's length: detected unless the backing size is rolled back too. */
Test(fileio, shorter_old_last_block_detected)
{
	struct tfile t;
	uint8_t old[100 + BLOCK_OVERHEAD], buf[BLOCK_SIZE];

	make_file(&t, 0x10, 1, 100);
	raw_read(t.fd, layout_block_offset(1), old, sizeof(old));
	put(&t, BLOCK_SIZE + 100, 50, 9);
	raw_write(t.fd, layout_block_offset(1), old, sizeof(old));
	cr_expect_eq(get(&t, BLOCK_SIZE, 150, buf), -EIO);
	tf_close(&t);
}

/* LIMITATION: the plain size is not authenticated. Cutting the backing file
 * at a block boundary drops whole blocks without any error: the file just
 * reads shorter. (A cut inside a block is caught: torn size or bad tag.) */
Test(fileio, limitation_truncation_at_block_boundary_not_detected)
{
	struct tfile t;
	uint8_t buf[BLOCK_SIZE];

	make_file(&t, 0x10, 3, 0);
	cr_assert_eq(ftruncate(t.fd, layout_backing_size(2 * BLOCK_SIZE)), 0);
	cr_expect_eq(fileio_size(t.fd), 2 * BLOCK_SIZE,
		     "boundary truncation is now detected: update this test");
	t.size = fileio_size(t.fd);
	expect_pattern(&t, 0, 2 * BLOCK_SIZE, 1, 0);

	/* Cut inside block 1, past the torn zone: the block fails. */
	cr_assert_eq(ftruncate(t.fd, layout_backing_size(BLOCK_SIZE + 1000)), 0);
	t.size = fileio_size(t.fd);
	cr_expect_eq(t.size, BLOCK_SIZE + 1000);
	cr_expect_eq(get(&t, BLOCK_SIZE, 10, buf), -EIO);
	expect_pattern(&t, 0, BLOCK_SIZE, 1, 0);
	tf_close(&t);
}
