/* fileio.h - encrypted content I/O on an open backing file: plain offsets in,
 * sealed blocks out. No locking here; the caller serialises writers. */
#ifndef EKYCFS_FILEIO_H
#define EKYCFS_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "crypto.h"
#include "layout.h"

/* Largest single read or write the callers hand in (FUSE max_write). */
#define FILEIO_MAX_IO (1024 * 1024)

/* Write the header of a new, empty content file. Returns 0 or -errno. */
__attribute__((warn_unused_result)) int fileio_init(int fd, const struct file_header *h);

/* Read and check the header. Returns 0, -EIO for a bad one, or -errno. */
__attribute__((warn_unused_result)) int fileio_read_header(int fd, struct file_header *h);

/* Plain size of the open file, from its backing size. -EIO if torn. */
off_t fileio_size(int fd);

/* Read up to len plain bytes at off from a file of plain size size.
 * Returns bytes read (0 at or past EOF) or -EIO if any block touched fails
 * authentication, or -errno. spread: the caller expects a core to be free;
 * a read that touches 16 to 32 blocks (about 64 to 128 KiB) then opens
 * half of them on the calling thread's helper (iohelper.h). The bytes are
 * the same either way. */
ssize_t fileio_read(int fd, const struct filekey *fk, off_t size, void *buf, size_t len, off_t off,
		    bool spread);

/* Write len (<= FILEIO_MAX_IO) bytes at off; a gap past *size is filled
 * with sealed zeros. Only the blocks the range covers are rewritten; the
 * first and last are read, checked and merged when partly covered.
 * Updates *size. Returns len or -errno (-EIO on a bad existing block). */
ssize_t fileio_write(int fd, const struct filekey *fk, off_t *size, const void *buf, size_t len,
		     off_t off);

/* Set the plain size to newsize: shrinking reseals the new last block and
 * overwrites the released ciphertext with random bytes before truncating;
 * growing appends sealed zeros. Updates *size. Returns 0 or -errno. */
__attribute__((warn_unused_result)) int fileio_truncate(int fd, const struct filekey *fk,
							off_t *size, off_t newsize);

#endif
