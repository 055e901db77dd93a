/* layout.c - header encoding and the arithmetic that maps plain offsets and
 * sizes onto the header-plus-sealed-blocks layout of a content file. */
#include "layout.h"

#include <errno.h>
#include <string.h>

void header_encode(const struct file_header *h, uint8_t out[HEADER_SIZE])
{
	memset(out, 0, HEADER_SIZE);
	memcpy(out, HEADER_MAGIC, 4);
	out[4] = h->version;
	out[5] = h->type;
	out[6] = h->cipher;
	memcpy(out + 8, h->file_id, FILE_ID_BYTES);
}

int header_decode(const uint8_t in[HEADER_SIZE], struct file_header *h)
{
	if (memcmp(in, HEADER_MAGIC, 4) != 0 || in[4] != FORMAT_VERSION)
		return -EIO;
	if (in[5] < ENTRY_REG || in[5] > ENTRY_FIFO)
		return -EIO;
	if (in[6] != CIPHER_XCHACHA20POLY1305 && in[6] != CIPHER_AES256GCM)
		return -EIO;
	h->version = in[4];
	h->type = in[5];
	h->cipher = in[6];
	memcpy(h->file_id, in + 8, FILE_ID_BYTES);
	return 0;
}

off_t layout_backing_size(off_t plain)
{
	off_t full = plain / BLOCK_SIZE, rem = plain % BLOCK_SIZE;

	return HEADER_SIZE + full * BLOCK_DISK + (rem ? rem + BLOCK_OVERHEAD : 0);
}

off_t layout_plain_size(off_t backing)
{
	off_t body = backing - HEADER_SIZE, full, rem;

	if (body < 0)
		return -EIO;
	full = body / BLOCK_DISK;
	rem = body % BLOCK_DISK;
	if (rem != 0 && rem <= BLOCK_OVERHEAD)
		return -EIO;
	return full * BLOCK_SIZE + (rem ? rem - BLOCK_OVERHEAD : 0);
}

off_t layout_block_offset(uint64_t index)
{
	return HEADER_SIZE + (off_t)index * BLOCK_DISK;
}

void layout_block_range(off_t off, size_t len, uint64_t *first, uint64_t *last)
{
	*first = (uint64_t)off / BLOCK_SIZE;
	*last = ((uint64_t)off + len - 1) / BLOCK_SIZE;
}
