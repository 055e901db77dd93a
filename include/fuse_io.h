/* fuse_io.h - the session's own I/O on /dev/fuse: asks the kernel for
 * FUSE_HANDLE_KILLPRIV_V2 (libfuse 3.14 cannot) and tells the serving
 * thread when its request asks to drop set-user/group-ID bits. */
#ifndef EKYCFS_FUSE_IO_H
#define EKYCFS_FUSE_IO_H

#include <stdbool.h>

#include <fuse_lowlevel.h>

/* Call after fuse_session_mount; 0 or -errno. */
int fuse_io_attach(struct fuse_session *se);

/* Does the request this thread is serving ask to drop the bits? */
bool fuse_io_kill_suidgid(void);

#endif
