/* fuse_ops.c - the thin FUSE edge: each low-level request becomes one core
 * call, and -errno becomes fuse_reply_err. The FUSE inode is the node. */
#include "fuse_ops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "fuse_io.h"

static struct vfs *vfs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct node *node_of(fuse_req_t req, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? vfs_root(vfs_of(req)) : (struct node *)(uintptr_t)ino;
}

static fuse_ino_t ino_of(struct vfs *v, struct node *n)
{
	return n == vfs_root(v) ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

static struct vfs_caller caller_of(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);

	return (struct vfs_caller){c->uid, c->gid, c->umask};
}

static void reply_entry(fuse_req_t req, int rc, struct vfs_entry *e)
{
	struct fuse_entry_param p = {0};

	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	p.ino = ino_of(vfs_of(req), e->node);
	p.attr = e->st;
	p.attr_timeout = p.entry_timeout = e->timeout;
	if (fuse_reply_entry(req, &p) != 0)
		vfs_forget(vfs_of(req), e->node, 1);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->max_write = FILEIO_MAX_IO;
	conn->max_readahead = FUSE_IO_READAHEAD_KB * 1024;
	conn->max_read = FUSE_IO_MAX_READ; /* as the mount option says */
	/* Writes land in whole blocks; the kernel's cached writes would
	 * outlive a deadline, so no writeback cache. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* auto_inval_data stays on: before a cached read, the kernel asks
	 * for the attributes once their timeout (capped at the deadline) has
	 * passed, so an open handle gets ESTALE at the deadline even when the
	 * reaper is late. Set-ID bits are dropped through
	 * FUSE_HANDLE_KILLPRIV_V2 only (fuse_io.c), never v1's implicit way. */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	/* No atomic O_TRUNC: the kernel then truncates with a SETATTR after
	 * its own checks (a running executable's ETXTBSY, an LSM such as
	 * Landlock refusing truncation), instead of leaving it to an OPEN
	 * that those checks may still fail after the data is gone. */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct vfs_entry e;

	reply_entry(req, vfs_lookup(vfs_of(req), node_of(req, parent), name, &e), &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	vfs_forget(vfs_of(req), node_of(req, ino), nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	for (size_t i = 0; i < count; i++)
		vfs_forget(vfs_of(req), node_of(req, f[i].ino), f[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	double t;
	int rc = vfs_getattr(vfs_of(req), node_of(req, ino), &st, &t);

	(void)fi;
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, t);
}

static int to_vfs_set(int valid)
{
	static const struct {
		int fuse, vfs;
	} map[] = {
		{FUSE_SET_ATTR_MODE, VFS_SET_MODE},
		{FUSE_SET_ATTR_UID, VFS_SET_UID},
		{FUSE_SET_ATTR_GID, VFS_SET_GID},
		{FUSE_SET_ATTR_SIZE, VFS_SET_SIZE},
		{FUSE_SET_ATTR_ATIME, VFS_SET_ATIME},
		{FUSE_SET_ATTR_MTIME, VFS_SET_MTIME},
		{FUSE_SET_ATTR_ATIME_NOW, VFS_SET_ATIME_NOW},
		{FUSE_SET_ATTR_MTIME_NOW, VFS_SET_MTIME_NOW},
	};
	int out = 0;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (valid & map[i].fuse)
			out |= map[i].vfs;
	return out;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
		       struct fuse_file_info *fi)
{
	struct stat st;
	double t;
	int set = to_vfs_set(valid) | (fuse_io_kill_suidgid() ? VFS_SET_DROP_SUIDGID : 0);
	int rc = vfs_setattr(vfs_of(req), node_of(req, ino), attr, set, &st, &t);

	(void)fi;
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, t);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[4096];
	int rc = vfs_readlink(vfs_of(req), node_of(req, ino), buf, sizeof(buf));

	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_readlink(req, buf);
	crypto_wipe(buf, sizeof(buf));
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct vfs_caller c = caller_of(req);
	struct vfs_entry e;

	(void)rdev;
	reply_entry(req, vfs_mknod(vfs_of(req), node_of(req, parent), name, mode, &c, &e), &e);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct vfs_caller c = caller_of(req);
	struct vfs_entry e;

	reply_entry(req, vfs_mkdir(vfs_of(req), node_of(req, parent), name, mode, &c, &e), &e);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct vfs_caller c = caller_of(req);
	struct vfs_entry e;

	reply_entry(req, vfs_symlink(vfs_of(req), node_of(req, parent), name, link, &c, &e), &e);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -vfs_unlink(vfs_of(req), node_of(req, parent), name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -vfs_rmdir(vfs_of(req), node_of(req, parent), name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	fuse_reply_err(req, -vfs_rename(vfs_of(req), node_of(req, parent), name,
					node_of(req, newparent), newname, flags));
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct vfs_entry e;

	reply_entry(req,
		    vfs_link(vfs_of(req), node_of(req, ino), node_of(req, newparent), newname, &e),
		    &e);
}

/* A handle that may write bypasses the kernel's page cache: each read and
 * write reaches ekycfs, which checks the deadline, and reads need no
 * attribute round trip first (auto_inval_data asks for one after every
 * write). Read-only handles keep the cache and its read-ahead. Only where
 * the kernel still allows shared mmap of such a file. */
static bool handle_writes_direct(const struct fuse_file_info *fi)
{
	return (fi->flags & O_ACCMODE) != O_RDONLY && fuse_io_direct_mmap();
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct handle *h;
	int rc = vfs_open(vfs_of(req), node_of(req, ino), fi->flags, &h);

	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = vfs_handle_direct(h) || handle_writes_direct(fi);
	/* A read-only handle has nothing to flush at close(): spare the
	 * round trip. (A writable one writes its stamp then.) */
	fi->noflush = (fi->flags & O_ACCMODE) == O_RDONLY;
	if (fuse_reply_open(req, fi) != 0)
		vfs_release(vfs_of(req), h);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct vfs_caller c = caller_of(req);
	struct fuse_entry_param p = {0};
	struct vfs_entry e;
	struct handle *h;
	int rc = vfs_create(vfs_of(req), node_of(req, parent), name, mode, fi->flags, &c, &e, &h);

	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = handle_writes_direct(fi);
	p.ino = ino_of(vfs_of(req), e.node);
	p.attr = e.st;
	p.attr_timeout = p.entry_timeout = e.timeout;
	if (fuse_reply_create(req, &p, fi) != 0) {
		vfs_release(vfs_of(req), h);
		vfs_forget(vfs_of(req), e.node, 1);
	}
}

static struct handle *handle_of(struct fuse_file_info *fi)
{
	return (struct handle *)(uintptr_t)fi->fh;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	char *buf = malloc(size ? size : 1);
	ssize_t n;

	(void)ino;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = vfs_read(vfs_of(req), handle_of(fi), buf, size, off);
	/* A read that failed part-way (a bad block) may have opened the
	 * blocks before it, or the other half's: none goes out. */
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	crypto_wipe(buf, size);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	ssize_t n = fuse_io_kill_suidgid() ? vfs_drop_suidgid(vfs_of(req), handle_of(fi)) : 0;

	(void)ino;
	if (n == 0)
		n = vfs_write(vfs_of(req), handle_of(fi), buf, size, off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, -vfs_flush(vfs_of(req), handle_of(fi)));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, -vfs_release(vfs_of(req), handle_of(fi)));
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, -vfs_fsync(vfs_of(req), handle_of(fi), datasync != 0));
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirhandle *dh;
	int rc = vfs_opendir(vfs_of(req), node_of(req, ino), &dh);

	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)dh;
	if (fuse_reply_open(req, fi) != 0)
		vfs_releasedir(vfs_of(req), dh);
}

struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t size, used;
	bool plus;
	struct node **refs; /* plus: nodes whose lookup reference went in buf */
	size_t nrefs;
};

static int emit_entry(void *arg, const char *name, const struct stat *st, off_t next,
		      const struct vfs_entry *e)
{
	struct dirbuf *b = arg;
	struct fuse_entry_param p = {0};
	size_t need = b->plus ? fuse_add_direntry_plus(b->req, NULL, 0, name, NULL, 0)
			      : fuse_add_direntry(b->req, NULL, 0, name, NULL, 0);

	if (b->used + need > b->size)
		return 1;
	if (!b->plus) {
		fuse_add_direntry(b->req, b->buf + b->used, b->size - b->used, name, st, next);
	} else {
		/* "." and "..": no entry, so the kernel makes no dentry. */
		p.attr = *st;
		if (e) {
			p.ino = ino_of(fuse_req_userdata(b->req), e->node);
			p.attr_timeout = p.entry_timeout = e->timeout;
			b->refs[b->nrefs++] = e->node;
		}
		fuse_add_direntry_plus(b->req, b->buf + b->used, b->size - b->used, name, &p, next);
	}
	b->used += need;
	return 0;
}

static void do_readdir(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi, bool plus)
{
	/* An entry takes at least 32 bytes of the buffer. */
	struct dirbuf b = {req, malloc(size), size, 0, plus, calloc(size / 32 + 1, sizeof(void *)),
			   0};
	int rc;

	if (!b.buf || !b.refs) {
		fuse_reply_err(req, ENOMEM);
		goto out_free;
	}
	rc = vfs_readdir(vfs_of(req), (struct dirhandle *)(uintptr_t)fi->fh, off, plus, emit_entry,
			 &b);
	if (rc < 0 && b.used == 0) {
		fuse_reply_err(req, -rc);
	} else if (fuse_reply_buf(req, b.buf, b.used) != 0) {
		/* The kernel never saw these entries: give the references back. */
		for (size_t i = 0; i < b.nrefs; i++)
			vfs_forget(vfs_of(req), b.refs[i], 1);
	}
out_free:
	free(b.refs);
	if (b.buf)
		crypto_wipe(b.buf, b.used); /* the names listed */
	free(b.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)ino;
	do_readdir(req, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)ino;
	do_readdir(req, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	vfs_releasedir(vfs_of(req), (struct dirhandle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;
	int rc = vfs_statfs(vfs_of(req), &st);

	(void)ino;
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_statfs(req, &st);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	fuse_reply_err(req,
		       -vfs_setxattr(vfs_of(req), node_of(req, ino), name, value, size, flags));
}

/* Shared by getxattr and listxattr: size 0 asks for the length. */
static void reply_xattr(fuse_req_t req, ssize_t n, const char *buf, size_t size)
{
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = vfs_getxattr(vfs_of(req), node_of(req, ino), name, buf, size);
	reply_xattr(req, n, buf, size);
	if (buf)
		crypto_wipe(buf, size);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = vfs_listxattr(vfs_of(req), node_of(req, ino), buf, size);
	reply_xattr(req, n, buf, size);
	if (buf)
		crypto_wipe(buf, size);
	free(buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, -vfs_removexattr(vfs_of(req), node_of(req, ino), name));
}

const struct fuse_lowlevel_ops ekycfs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
};

/* ---- vanishing through the kernel's caches ---- */

static void notify_entry_gone(void *arg, struct node *parent, struct node *child, const char *name)
{
	struct fuse_notify_ctx *c = arg;
	fuse_ino_t p = ino_of(c->v, parent);

	if (child)
		fuse_lowlevel_notify_delete(c->se, p, ino_of(c->v, child), name, strlen(name));
	else
		fuse_lowlevel_notify_inval_entry(c->se, p, name, strlen(name));
}

static void notify_inode_gone(void *arg, struct node *n)
{
	struct fuse_notify_ctx *c = arg;

	fuse_lowlevel_notify_inval_inode(c->se, ino_of(c->v, n), 0, 0);
}

static void notify_attrs_changed(void *arg, struct node *n)
{
	struct fuse_notify_ctx *c = arg;

	/* A negative offset: attributes only, no page is touched. */
	fuse_lowlevel_notify_inval_inode(c->se, ino_of(c->v, n), -1, 0);
}

void fuse_ops_notify(struct fuse_notify_ctx *ctx, struct vfs_notify *out)
{
	out->entry_gone = notify_entry_gone;
	out->inode_gone = notify_inode_gone;
	out->attrs_changed = notify_attrs_changed;
	out->arg = ctx;
}
