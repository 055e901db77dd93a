/* fileio.c - random-access encrypted I/O: each read or write touches only the
 * sealed blocks its range covers, in one pread/pwrite of the backing file. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iohelper.h"
#include "util.h"

#define SPAN_BLOCKS (FILEIO_MAX_IO / BLOCK_SIZE + 2)
#define PIPE_BLOCKS 32	/* 128 KiB chunks for I/O of more than one chunk */
#define SPLIT_BLOCKS 16 /* a spread read of 16 to 32 blocks is halved */

static const uint8_t zeros[BLOCK_SIZE * 32];

/* Per-thread scratch for a span of sealed blocks; FUSE worker threads
 * reuse it, so the hot path does no allocation. */
static __thread uint8_t *span_buf;
static pthread_key_t span_key; /* frees a thread's span when it exits */
static pthread_once_t span_once = PTHREAD_ONCE_INIT;

static void span_key_init(void)
{
	pthread_key_create(&span_key, free);
}

static uint8_t *span_scratch(void)
{
	if (!span_buf) {
		pthread_once(&span_once, span_key_init);
		span_buf = malloc((size_t)SPAN_BLOCKS * BLOCK_DISK);
		pthread_setspecific(span_key, span_buf);
	}
	return span_buf;
}

/* Plain length of block index in a file of plain size size (0 if beyond). */
static size_t block_len(off_t size, uint64_t index)
{
	off_t start = (off_t)index * BLOCK_SIZE;

	if (size <= start)
		return 0;
	return size - start >= BLOCK_SIZE ? BLOCK_SIZE : (size_t)(size - start);
}

int fileio_init(int fd, const struct file_header *h)
{
	uint8_t raw[HEADER_SIZE];

	header_encode(h, raw);
	if (ftruncate(fd, 0) < 0)
		return -errno;
	return pwrite_full(fd, raw, HEADER_SIZE, 0);
}

int fileio_read_header(int fd, struct file_header *h)
{
	uint8_t raw[HEADER_SIZE];
	ssize_t n = pread_full(fd, raw, HEADER_SIZE, 0);

	if (n < 0)
		return (int)n;
	if (n != HEADER_SIZE)
		return -EIO;
	return header_decode(raw, h);
}

off_t fileio_size(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	return layout_plain_size(st.st_size);
}

/* Bytes of the pipelined chunk starting at disk offset at (of total). */
static size_t chunk_len(size_t at, size_t total)
{
	size_t c = (size_t)PIPE_BLOCKS * BLOCK_DISK;

	return total - at < c ? total - at : c;
}

/* Plain bytes [off, off + len) of a read, the whole request or one of its
 * halves. Owned by the caller's stack. */
struct piece {
	int fd;
	const struct filekey *fk;
	off_t size;	       /* plain size of the file */
	off_t off;	       /* within the file */
	size_t len;	       /* > 0 */
	uint8_t *buf;	       /* where the plaintext goes */
	uint8_t *span;	       /* the sealed blocks: a part of the caller's scratch */
	struct iohelper *pipe; /* overlaps chunks of a large piece, or NULL */
	ssize_t result;	       /* 0 or -errno, set by read_piece */
};

static void read_piece(void *arg)
{
	struct piece *p = arg;
	uint8_t *span = p->span, *out = p->buf;
	uint8_t plain[BLOCK_SIZE];
	uint64_t first, last;
	off_t disk_off;
	size_t disk_len, pos = 0, want = 0;
	ssize_t n = 0;

	layout_block_range(p->off, p->len, &first, &last);
	disk_off = layout_block_offset(first);
	disk_len = (size_t)(layout_backing_size(p->size) - disk_off);
	if (disk_len > (last - first + 1) * BLOCK_DISK)
		disk_len = (last - first + 1) * BLOCK_DISK;
	/* A large read opens one chunk while the helper reads the next. */
	if (p->pipe)
		iohelper_pread(p->pipe, p->fd, span, want = chunk_len(0, disk_len), disk_off);
	else if ((n = pread_full(p->fd, span, disk_len, disk_off)) >= 0 && (size_t)n != disk_len)
		n = -EIO;
	for (uint64_t i = first; n >= 0 && i <= last; i++) {
		size_t blen = block_len(p->size, i), at = (size_t)(i - first) * BLOCK_DISK;
		size_t skip = i == first ? (size_t)(p->off % BLOCK_SIZE) : 0;
		size_t take = blen - skip < p->len - pos ? blen - skip : p->len - pos;

		if (p->pipe && at % ((size_t)PIPE_BLOCKS * BLOCK_DISK) == 0) {
			n = iohelper_wait(p->pipe);
			if (n < 0 || (size_t)n != want) {
				n = n < 0 ? n : -EIO;
				break;
			}
			if (at + want < disk_len)
				iohelper_pread(p->pipe, p->fd, span + at + want,
					       chunk_len(at + want, disk_len),
					       disk_off + (off_t)(at + want));
			want = chunk_len(at + want, disk_len);
		}
		/* A block wholly inside buf decrypts in place, else via plain. */
		if (skip == 0 && take == blen) {
			n = block_open(p->fk, i, span + at, blen + BLOCK_OVERHEAD, out + pos);
		} else {
			n = block_open(p->fk, i, span + at, blen + BLOCK_OVERHEAD, plain);
			if (n >= 0)
				memcpy(out + pos, plain + skip, take);
		}
		pos += take;
	}
	if (p->pipe && n < 0)
		iohelper_wait(p->pipe); /* nothing may still write into span */
	crypto_wipe(plain, sizeof(plain));
	p->result = n < 0 ? n : 0;
}

/* Read the piece, in the calling thread's scratch: pipelined through its
 * helper when large; inline when small or not spread. A spread piece of
 * SPLIT_BLOCKS to PIPE_BLOCKS blocks is halved instead: the helper reads
 * the second half, into *tail and the scratch right after the first
 * half's blocks, while this thread reads the first, and true is returned.
 * Each half sets its own result. */
static bool read_run(struct piece *p, struct piece *tail, bool spread)
{
	struct iohelper *mate;
	uint64_t first, last, mid;

	p->span = span_scratch();
	if (!p->span) {
		p->result = -ENOMEM;
		return false;
	}
	layout_block_range(p->off, p->len, &first, &last);
	if (last - first >= PIPE_BLOCKS)
		p->pipe = iohelper_self();
	if (p->pipe || !spread || last - first + 1 < SPLIT_BLOCKS || !(mate = iohelper_self())) {
		read_piece(p);
		return false;
	}
	mid = first + (last - first + 1) / 2;
	*tail = *p;
	tail->off = (off_t)mid * BLOCK_SIZE;
	tail->span += (mid - first) * BLOCK_DISK;
	p->len = (size_t)(tail->off - p->off);
	tail->len -= p->len;
	tail->buf += p->len;
	iohelper_call(mate, read_piece, tail);
	read_piece(p);
	iohelper_wait(mate);
	return true;
}

ssize_t fileio_read(int fd, const struct filekey *fk, off_t size, void *buf, size_t len, off_t off,
		    bool spread)
{
	struct piece p = {.fd = fd, .fk = fk, .size = size, .off = off, .buf = buf}, tail;

	if (off >= size || len == 0)
		return 0;
	if ((off_t)len > size - off)
		len = (size_t)(size - off);
	if (len > FILEIO_MAX_IO)
		len = FILEIO_MAX_IO;
	p.len = len;
	if (read_run(&p, &tail, spread) && p.result >= 0)
		p.result = tail.result;
	return p.result < 0 ? p.result : (ssize_t)len;
}

/* Old plaintext of block index into plain; returns its length or -errno. */
static int read_block(int fd, const struct filekey *fk, off_t size, uint64_t index, uint8_t *plain)
{
	uint8_t sealed[BLOCK_DISK];
	size_t blen = block_len(size, index);
	ssize_t n;

	if (blen == 0)
		return 0;
	n = pread_full(fd, sealed, blen + BLOCK_OVERHEAD, layout_block_offset(index));
	if (n < 0)
		return (int)n;
	if ((size_t)n != blen + BLOCK_OVERHEAD)
		return -EIO;
	return block_open(fk, index, sealed, blen + BLOCK_OVERHEAD, plain);
}

/* Write [off, off+len) with off <= *size: the in-file case. */
static ssize_t write_span(int fd, const struct filekey *fk, off_t *size, const uint8_t *buf,
			  size_t len, off_t off)
{
	uint8_t *span = span_scratch();
	uint8_t plain[BLOCK_SIZE];
	uint64_t first, last;
	off_t end = off + (off_t)len;
	size_t pos = 0, disk_len = 0, flushed = 0;
	struct iohelper *pipe;
	int rc;

	if (!span)
		return -ENOMEM;
	layout_block_range(off, len, &first, &last);
	pipe = last - first >= PIPE_BLOCKS ? iohelper_self() : NULL;
	for (uint64_t i = first; i <= last; i++) {
		off_t bstart = (off_t)i * BLOCK_SIZE;
		size_t old = block_len(*size, i);
		size_t from = i == first ? (size_t)(off - bstart) : 0;
		size_t to = end - bstart >= BLOCK_SIZE ? BLOCK_SIZE : (size_t)(end - bstart);
		size_t blen = to > old ? to : old;
		uint8_t *sealed = span + disk_len;

		if (from > 0 || to < old) {
			rc = read_block(fd, fk, *size, i, plain);
			if (rc < 0) {
				if (flushed > 0)
					iohelper_wait(pipe); /* span is still being written */
				return rc;
			}
			memcpy(plain + from, buf + pos, to - from);
			block_seal(fk, i, plain, blen, sealed);
			crypto_wipe(plain, sizeof(plain));
		} else {
			block_seal(fk, i, buf + pos, blen, sealed);
		}
		pos += to - from;
		disk_len += blen + BLOCK_OVERHEAD;
		/* A large write hands each sealed chunk to the helper and seals
		 * the next one while the kernel copies it. */
		if (pipe && ((i - first + 1) % PIPE_BLOCKS == 0 || i == last)) {
			if (flushed > 0 && (rc = (int)iohelper_wait(pipe)) < 0)
				return rc;
			iohelper_pwrite(pipe, fd, span + flushed, disk_len - flushed,
					layout_block_offset(first) + (off_t)flushed);
			flushed = disk_len;
		}
	}
	rc = pipe ? (int)iohelper_wait(pipe)
		  : pwrite_full(fd, span, disk_len, layout_block_offset(first));
	if (rc < 0)
		return rc;
	/* Write-behind: a large write starts the disk write of what it just
	 * put in the backing file's cache, so that a stream's disk time
	 * overlaps its encryption instead of all waiting for the final fsync.
	 * Only a hint: errors show at fsync as usual. */
	if (pipe)
		(void)sync_file_range(fd, layout_block_offset(first), (off_t)disk_len,
				      SYNC_FILE_RANGE_WRITE);
	if (end > *size)
		*size = end;
	return (ssize_t)len;
}

/* Grow the file with sealed zeros up to newsize. */
static int extend(int fd, const struct filekey *fk, off_t *size, off_t newsize)
{
	while (*size < newsize) {
		size_t chunk = sizeof(zeros);
		ssize_t n;

		if ((off_t)chunk > newsize - *size)
			chunk = (size_t)(newsize - *size);
		n = write_span(fd, fk, size, zeros, chunk, *size);
		if (n < 0)
			return (int)n;
	}
	return 0;
}

ssize_t fileio_write(int fd, const struct filekey *fk, off_t *size, const void *buf, size_t len,
		     off_t off)
{
	int rc;

	if (len == 0)
		return 0;
	if (len > FILEIO_MAX_IO || off < 0)
		return -EINVAL;
	if (off > *size) {
		rc = extend(fd, fk, size, off);
		if (rc < 0)
			return rc;
	}
	return write_span(fd, fk, size, buf, len, off);
}

/* Overwrite the ciphertext a shrink releases with random bytes, so that
 * the freed disk blocks hold nothing of the file. */
static int wipe_tail(int fd, off_t from, off_t to)
{
	uint8_t *buf = span_scratch();

	if (!buf)
		return -ENOMEM;
	while (from < to) {
		size_t n = to - from > (off_t)FILEIO_MAX_IO ? FILEIO_MAX_IO : (size_t)(to - from);
		int rc;

		crypto_random_bulk(buf, n);
		rc = pwrite_full(fd, buf, n, from);
		if (rc < 0)
			return rc;
		from += (off_t)n;
	}
	return 0;
}

int fileio_truncate(int fd, const struct filekey *fk, off_t *size, off_t newsize)
{
	uint8_t plain[BLOCK_SIZE], sealed[BLOCK_DISK];
	uint64_t index = (uint64_t)(newsize / BLOCK_SIZE);
	size_t keep = (size_t)(newsize % BLOCK_SIZE);
	int rc;

	if (newsize < 0)
		return -EINVAL;
	if (newsize >= *size)
		return extend(fd, fk, size, newsize);
	if (keep) {
		rc = read_block(fd, fk, *size, index, plain);
		if (rc < 0)
			return rc;
		block_seal(fk, index, plain, keep, sealed);
		crypto_wipe(plain, sizeof(plain));
		rc = pwrite_full(fd, sealed, keep + BLOCK_OVERHEAD, layout_block_offset(index));
		if (rc < 0)
			return rc;
	}
	rc = wipe_tail(fd, layout_backing_size(newsize), layout_backing_size(*size));
	if (rc < 0)
		return rc;
	if (ftruncate(fd, layout_backing_size(newsize)) < 0)
		return -errno;
	*size = newsize;
	return 0;
}
