/* fuse_ops.h - the FUSE edge: low-level operations that adapt kernel
 * requests to the core (vfs.h) and kernel notifications for vanishing. */
#ifndef EKYCFS_FUSE_OPS_H
#define EKYCFS_FUSE_OPS_H

#include <fuse_lowlevel.h>

#include "vfs.h"

extern const struct fuse_lowlevel_ops ekycfs_ops;

/* Where vanish notifications go; owned by main, outlives the loop. */
struct fuse_notify_ctx {
	struct fuse_session *se;
	struct vfs *v;
};

/* Fill out with callbacks that tell the kernel through ctx->se. */
void fuse_ops_notify(struct fuse_notify_ctx *ctx, struct vfs_notify *out);

#endif
