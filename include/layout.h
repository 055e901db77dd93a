/* layout.h - on-disk layout of a content file: a fixed header, then sealed
 * blocks. Pure arithmetic, no I/O, so tests can check every boundary. */
#ifndef EKYCFS_LAYOUT_H
#define EKYCFS_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "crypto.h"

#define FORMAT_VERSION 1
#define HEADER_SIZE 32
#define HEADER_MAGIC "EKYF"
#define BLOCK_SIZE 4096
#define BLOCK_NONCE 24 /* slot size; AES-GCM uses the first 12 bytes */
#define BLOCK_TAG 16
#define BLOCK_OVERHEAD (BLOCK_NONCE + BLOCK_TAG)
#define BLOCK_DISK (BLOCK_SIZE + BLOCK_OVERHEAD)

/* Entry types stored in the header (the backing file is always regular). */
enum entry_type {
	ENTRY_REG = 1,
	ENTRY_SYMLINK = 2,
	ENTRY_FIFO = 3,
};

struct file_header {
	uint8_t version;
	uint8_t type;	/* enum entry_type */
	uint8_t cipher; /* enum cipher_id */
	uint8_t file_id[FILE_ID_BYTES];
};

/* Serialise h into HEADER_SIZE bytes. */
void header_encode(const struct file_header *h, uint8_t out[HEADER_SIZE]);

/* Parse HEADER_SIZE bytes. Returns 0, or -EIO on a bad magic, version,
 * type or cipher. */
__attribute__((warn_unused_result)) int header_decode(const uint8_t in[HEADER_SIZE],
						      struct file_header *h);

/* Backing size of a file with plain size bytes of content. */
off_t layout_backing_size(off_t plain);

/* Plain size of a backing file of backing bytes, or -EIO when no plain
 * size maps to it (shorter than the header, or a torn last block). */
off_t layout_plain_size(off_t backing);

/* Backing offset of block index. */
off_t layout_block_offset(uint64_t index);

/* Blocks [*first, *last] that the byte range [off, off+len) touches;
 * len > 0. */
void layout_block_range(off_t off, size_t len, uint64_t *first, uint64_t *last);

#endif
