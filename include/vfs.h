/* vfs.h - the filesystem core: zones, entries, encrypted content and names,
 * trusted stamps and expiry, as plain C calls returning 0 or -errno. The
 * FUSE edge (fuse_ops.c) only adapts requests to these. */
#ifndef EKYCFS_VFS_H
#define EKYCFS_VFS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "audit.h"
#include "config.h"
#include "crypto.h"
#include "shred.h"
#include "stamp.h"
#include "store.h"

struct vfs;
struct node;
struct handle;
struct dirhandle;

/* How the core tells the kernel that an entry vanished (the FUSE edge
 * implements these with notify_delete / notify_inval_inode). Called from
 * the reaper thread with no core lock held. */
struct vfs_notify {
	void (*entry_gone)(void *arg, struct node *parent, struct node *child, const char *name);
	void (*inode_gone)(void *arg, struct node *n);
	/* n's attributes changed under a request that does not reply with
	 * them; must not touch n's cached pages (the request may lock them). */
	void (*attrs_changed)(void *arg, struct node *n);
	void *arg;
};

/* An entry handed back by lookup and the creating calls: the node (with
 * one kernel lookup reference taken), its attributes and how long the
 * kernel may cache them (never past the entry's deadline). */
struct vfs_entry {
	struct node *node;
	struct stat st;
	double timeout;
};

/* Who is asking: for ownership of new entries. */
struct vfs_caller {
	uid_t uid;
	gid_t gid;
	mode_t umask;
};

/* Counters for `ekycfs status`; updated atomically. */
struct vfs_stats {
	uint64_t shreds, shred_bytes, invalid_stamps, vanished;
};

/* Build the core over an open store. Does not start threads. NULL and
 * *err = -errno on failure. The store, config, keys and audit (may be NULL)
 * must outlive the vfs. */
struct vfs *vfs_new(const struct config *cfg, struct store *store, const struct keys *keys,
		    struct audit *audit, clock_fn clock, void *clock_arg, int *err);

/* Sweep the store: destroy the trash, what expired, what has an invalid
 * stamp, and everything of a reset zone or a dead ephemeral store; when
 * schedule is true, schedule every live entry for the reaper. Runs before
 * anything is served, and offline for --sweep. Returns 0 or -errno. */
__attribute__((warn_unused_result)) int vfs_sweep(struct vfs *v, bool schedule);

/* Start / stop the reaper and shredder threads. */
__attribute__((warn_unused_result)) int vfs_start(struct vfs *v, const struct vfs_notify *n);
void vfs_stop(struct vfs *v);

/* Stop, release every node, free. NULL is fine. */
void vfs_free(struct vfs *v);

struct node *vfs_root(struct vfs *v);
const struct vfs_stats *vfs_stats(struct vfs *v);
size_t vfs_pending(struct vfs *v);

/* Descriptor budget. The core holds a descriptor for every inode the
 * kernel remembers, and the kernel remembers every inode it has seen until
 * memory runs short; so past high descriptors (0, the default: a quarter
 * of the open-file limit at vfs_start) a thread asks the kernel to drop the
 * files used longest ago, until three quarters of high are left. Call
 * before vfs_start. */
void vfs_set_fd_budget(struct vfs *v, size_t high);
/* One pruning pass, as that thread makes it: ask the kernel (through
 * entry_gone with no child) to drop the least recently used files it
 * holds, by a name they still have, until no more than keep descriptors would
 * be left, leaving out folders, open files and files already asked about
 * since their last lookup. Returns how many entries it asked for. */
size_t vfs_prune(struct vfs *v, size_t keep);
/* Descriptors held for entries now. */
size_t vfs_node_fds(struct vfs *v);

/* Namespace. parent and nodes are ones the kernel holds. */
int vfs_lookup(struct vfs *v, struct node *parent, const char *name, struct vfs_entry *e);
void vfs_forget(struct vfs *v, struct node *n, uint64_t nlookup);
int vfs_getattr(struct vfs *v, struct node *n, struct stat *st, double *timeout);
/* to_set: FATTR_* style bits from the edge (VFS_SET_*). */
#define VFS_SET_MODE (1 << 0)
#define VFS_SET_UID (1 << 1)
#define VFS_SET_GID (1 << 2)
#define VFS_SET_SIZE (1 << 3)
#define VFS_SET_ATIME (1 << 4)
#define VFS_SET_MTIME (1 << 5)
#define VFS_SET_ATIME_NOW (1 << 7)
#define VFS_SET_MTIME_NOW (1 << 8)
#define VFS_SET_CTIME (1 << 10)
#define VFS_SET_DROP_SUIDGID (1 << 11) /* the caller lacks CAP_FSETID */
int vfs_setattr(struct vfs *v, struct node *n, const struct stat *in, int to_set, struct stat *out,
		double *timeout);
int vfs_readlink(struct vfs *v, struct node *n, char *buf, size_t len);
int vfs_mknod(struct vfs *v, struct node *parent, const char *name, mode_t mode,
	      const struct vfs_caller *c, struct vfs_entry *e);
int vfs_mkdir(struct vfs *v, struct node *parent, const char *name, mode_t mode,
	      const struct vfs_caller *c, struct vfs_entry *e);
int vfs_symlink(struct vfs *v, struct node *parent, const char *name, const char *target,
		const struct vfs_caller *c, struct vfs_entry *e);
int vfs_unlink(struct vfs *v, struct node *parent, const char *name);
int vfs_rmdir(struct vfs *v, struct node *parent, const char *name);
int vfs_rename(struct vfs *v, struct node *parent, const char *name, struct node *newparent,
	       const char *newname, unsigned flags);
int vfs_link(struct vfs *v, struct node *n, struct node *newparent, const char *newname,
	     struct vfs_entry *e);
int vfs_statfs(struct vfs *v, struct statvfs *st);

/* Content. */
int vfs_create(struct vfs *v, struct node *parent, const char *name, mode_t mode, int flags,
	       const struct vfs_caller *c, struct vfs_entry *e, struct handle **h);
int vfs_open(struct vfs *v, struct node *n, int flags, struct handle **h);
ssize_t vfs_read(struct vfs *v, struct handle *h, void *buf, size_t len, off_t off);
ssize_t vfs_write(struct vfs *v, struct handle *h, const void *buf, size_t len, off_t off);
/* Drop the set-user-ID bit, and set-group-ID of a group-executable file,
 * as a write or truncate by a caller without CAP_FSETID must. */
int vfs_drop_suidgid(struct vfs *v, struct handle *h);
int vfs_flush(struct vfs *v, struct handle *h);
int vfs_fsync(struct vfs *v, struct handle *h, bool datasync);
int vfs_release(struct vfs *v, struct handle *h);

/* Directories. emit returns non-zero when the caller's buffer is full;
 * the entry is then offered again at the next call. With plus, each entry
 * but "." and ".." comes with e: a lookup reference the caller keeps when
 * it emits the entry (it is dropped here when emit says full). */
typedef int (*vfs_emit_fn)(void *arg, const char *name, const struct stat *st, off_t next,
			   const struct vfs_entry *e);
int vfs_opendir(struct vfs *v, struct node *n, struct dirhandle **dh);
int vfs_readdir(struct vfs *v, struct dirhandle *dh, off_t off, bool plus, vfs_emit_fn emit,
		void *arg);
int vfs_releasedir(struct vfs *v, struct dirhandle *dh);

/* The read-only control file at the mount root, read by `ekycfs status`:
 * not a zone, not listed, regenerated at each open. One "key value..."
 * line per fact. */
#define VFS_STATUS_NAME ".ekycfs.status"

/* True when h reads a generated file the kernel must not cache. */
bool vfs_handle_direct(const struct handle *h);

/* Extended attributes: user.* pass through (stored under a private
 * prefix); user.ekycfs.expires is read-only and computed. */
#define VFS_XATTR_EXPIRES "user.ekycfs.expires"
int vfs_setxattr(struct vfs *v, struct node *n, const char *name, const void *value, size_t size,
		 int flags);
ssize_t vfs_getxattr(struct vfs *v, struct node *n, const char *name, void *value, size_t size);
ssize_t vfs_listxattr(struct vfs *v, struct node *n, char *list, size_t size);
int vfs_removexattr(struct vfs *v, struct node *n, const char *name);

#endif
