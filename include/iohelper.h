/* iohelper.h - a helper thread per calling thread that runs one pread or
 * pwrite in the background, so that large encrypted I/O overlaps the
 * kernel's copy of one chunk with sealing or opening the next. */
#ifndef EKYCFS_IOHELPER_H
#define EKYCFS_IOHELPER_H

#include <stddef.h>
#include <sys/types.h>

struct iohelper;

/* The calling thread's helper, started on first use and stopped when the
 * thread exits; NULL when none can be started (do the I/O inline). */
struct iohelper *iohelper_self(void);

/* Start pwrite_full / pread_full of (buf, len) at off on fd. One at a
 * time: iohelper_wait() before the next. */
void iohelper_pwrite(struct iohelper *h, int fd, const void *buf, size_t len, off_t off);
void iohelper_pread(struct iohelper *h, int fd, void *buf, size_t len, off_t off);

/* Wait for the started call: bytes read for a pread, 0 for a pwrite, or
 * -errno. */
ssize_t iohelper_wait(struct iohelper *h);

#endif
