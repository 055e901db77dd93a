/* iohelper.h - a helper thread per calling thread that runs one pread,
 * pwrite or function in the background, so that large encrypted I/O
 * overlaps the kernel's copy of one chunk with sealing or opening the
 * next, and a mid-sized read opens its halves on two cores. */
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

/* Start fn(arg) on the helper thread. One at a time, as above. */
void iohelper_call(struct iohelper *h, void (*fn)(void *), void *arg);

/* Wait for the started call: bytes read for a pread, 0 for a pwrite, or
 * -errno (0 after iohelper_call). */
ssize_t iohelper_wait(struct iohelper *h);

#endif
