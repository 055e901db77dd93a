/* fuse_io.h - the session's own I/O on /dev/fuse: asks the kernel for
 * FUSE_HANDLE_KILLPRIV_V2 (libfuse 3.14 cannot) and tells the serving
 * thread when its request asks to drop set-user/group-ID bits. */
#ifndef EKYCFS_FUSE_IO_H
#define EKYCFS_FUSE_IO_H

#include <stdbool.h>

#include <fuse_lowlevel.h>

/* Reads come in requests of at most FUSE_IO_MAX_READ, with the kernel
 * reading ahead FUSE_IO_READAHEAD_KB: several requests in flight keep
 * more than one core opening blocks during a sequential read. */
#define FUSE_IO_MAX_READ (128 * 1024)
#define FUSE_IO_READAHEAD_KB 1024

/* Raise the kernel's read-ahead for the mount at mountpoint (an absolute
 * path without symlinks, resolved before mounting) to
 * FUSE_IO_READAHEAD_KB (its backing-device setting in sysfs). Best
 * effort: without the right to write there, the kernel's default stays. */
void fuse_io_readahead(const char *mountpoint);

/* Call after fuse_session_mount; 0 or -errno. */
int fuse_io_attach(struct fuse_session *se);

/* Did the kernel grant FUSE_DIRECT_IO_ALLOW_MMAP (shared mmap of a file
 * opened with direct_io)? Known once INIT is answered. */
bool fuse_io_direct_mmap(void);

/* Does the request this thread is serving ask to drop the bits? */
bool fuse_io_kill_suidgid(void);

#endif
