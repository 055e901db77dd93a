/* vfs_io.c - open content: per-inode keys and sizes while a file is open,
 * encrypted reads and writes, stamps on change, setattr and readlink. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <linux/limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fileio.h"
#include "layout.h"
#include "vfs_internal.h"

/* Bytes of backing file asked for in advance when a file is opened. */
#define OPEN_PREFETCH (256 * 1024)

static int truncate_locked(struct vfs *v, struct node *n, off_t size);

/* The header the stamp promises for n's content (fk is made from it). */
static int header_from_stamp(struct vfs *v, struct node *n, struct file_header *h)
{
	int rc = 0;

	pthread_mutex_lock(&n->mu);
	if (n->stamp_valid) {
		h->version = FORMAT_VERSION;
		h->type = (uint8_t)n->stamp.kind;
		h->cipher = (uint8_t)v->store->cipher;
		memcpy(h->file_id, n->stamp.id, FILE_ID_BYTES);
	} else {
		rc = -EIO;
	}
	pthread_mutex_unlock(&n->mu);
	return rc;
}

/* Whether header h on disk is the one n's stamp names. */
static bool header_matches(struct vfs *v, struct node *n, const struct file_header *h)
{
	struct file_header want;

	return header_from_stamp(v, n, &want) == 0 && h->type == want.type &&
	       h->cipher == want.cipher && memcmp(h->file_id, want.file_id, FILE_ID_BYTES) == 0;
}

/* Check the header of open n (io held, read or write) if its open left
 * that to the first I/O. Returns 0 or -EIO/-errno. */
static int io_header_check(struct vfs *v, struct node *n)
{
	struct file_header h;
	int rc;

	if (!__atomic_load_n(&n->header_unchecked, __ATOMIC_ACQUIRE))
		return 0;
	rc = fileio_read_header(n->data_fd, &h);
	if (rc == 0 && !header_matches(v, n, &h))
		rc = -EIO;
	if (rc == 0)
		__atomic_store_n(&n->header_unchecked, false, __ATOMIC_RELEASE);
	return rc;
}

/* Open n's content for I/O (io write-locked by the caller): the backing
 * file, its key and size. An open that will read (prefetch) asks for the
 * first blocks and takes the key from the stamp, which names the content
 * and is MAC'd; its header is checked by the first read or write
 * (io_header_check), so that for a file not in the cache the disk read
 * overlaps the reply to OPEN instead of delaying it. Otherwise the header
 * is read and checked against the stamp here. */
static int io_get_fd_locked(struct vfs *v, struct node *n, int fd, bool prefetch)
{
	struct file_header h;
	char path[64];
	int rc;

	if (n->opens++ > 0) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	node_path(n, path, sizeof(path));
	n->data_fd = fd >= 0 ? fd : open(path, O_RDWR | O_CLOEXEC);
	if (n->data_fd < 0) {
		rc = -errno;
		goto out_undo;
	}
	if (prefetch) {
		posix_fadvise(n->data_fd, 0, OPEN_PREFETCH, POSIX_FADV_WILLNEED);
		rc = header_from_stamp(v, n, &h);
	} else {
		rc = fileio_read_header(n->data_fd, &h);
		/* A header from elsewhere fails; one that passes has the
		 * store's cipher, so the key below is the one the stamp gives. */
		if (rc == 0 && !header_matches(v, n, &h))
			rc = -EIO;
	}
	if (rc < 0)
		goto out_close;
	n->fk = filekey_new(v->keys, h.file_id, h.type, h.cipher);
	n->size = fileio_size(n->data_fd);
	if (!n->fk || n->size < 0) {
		rc = n->fk ? -EIO : -ENOMEM;
		filekey_free(n->fk);
		n->fk = NULL;
		goto out_close;
	}
	__atomic_store_n(&n->header_unchecked, prefetch, __ATOMIC_RELEASE);
	return 0;
out_close:
	close(n->data_fd);
	n->data_fd = -1;
out_undo:
	n->opens--;
	return rc;
}

static int io_get_locked(struct vfs *v, struct node *n)
{
	return io_get_fd_locked(v, n, -1, false);
}

/* Close n's content when the last user goes (io write-locked). Returns
 * true when a deferred shred is now due. */
static bool io_put_locked(struct vfs *v, struct node *n)
{
	if (--n->opens > 0)
		return false;
	node_flush_stamp(v, n);
	close(n->data_fd);
	n->data_fd = -1;
	filekey_free(n->fk);
	n->fk = NULL;
	__atomic_store_n(&n->header_unchecked, false, __ATOMIC_RELEASE);
	return n->unlinked;
}

/* Shred a file that was removed while open, now that it is closed. */
static void shred_deferred(struct vfs *v, struct node *n)
{
	struct stamp s;
	bool valid = node_stamp(n, &s);

	vfs_submit_shred(v, n->trash, n->zone, &s, valid);
	vfs_deferred_done(v, n);
}

static bool expired_now(struct vfs *v, struct node *n)
{
	bool dead;

	pthread_mutex_lock(&v->lock);
	dead = n->dead;
	pthread_mutex_unlock(&v->lock);
	return dead || vfs_now(v) >= node_deadline(n);
}

/* A handle on n; fd, when not -1, is an O_RDWR fd on its backing file
 * that the handle takes over (the one create just made). */
static int handle_new(struct vfs *v, struct node *n, int flags, int fd, struct handle **h)
{
	struct handle *nh = calloc(1, sizeof(*nh));
	int rc;

	if (!nh) {
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	pthread_rwlock_wrlock(&n->io);
	/* Prefetch only what an open that reads an existing file will want. */
	rc = io_get_fd_locked(v, n, fd,
			      fd < 0 && !(flags & O_TRUNC) && (flags & O_ACCMODE) != O_WRONLY);
	/* Also O_RDONLY|O_TRUNC, as Linux does. (The FUSE edge passes no
	 * O_TRUNC: without atomic O_TRUNC the kernel sends a SETATTR.) */
	if (rc == 0 && (flags & O_TRUNC)) {
		rc = truncate_locked(v, n, 0);
		if (rc < 0)
			io_put_locked(v, n); /* just opened by name: not unlinked */
	}
	pthread_rwlock_unlock(&n->io);
	if (rc < 0) {
		free(nh);
		return rc;
	}
	node_ref(v, n);
	nh->n = n;
	nh->append = flags & O_APPEND;
	*h = nh;
	return 0;
}

/* A handle on the status file: a snapshot taken now. */
static int status_open(struct vfs *v, int flags, struct handle **h)
{
	struct handle *nh;
	int rc;

	if ((flags & O_ACCMODE) != O_RDONLY)
		return -EACCES;
	nh = calloc(1, sizeof(*nh));
	if (!nh)
		return -ENOMEM;
	rc = vfs_status_text(v, &nh->text, &nh->text_len);
	if (rc < 0) {
		free(nh);
		return rc;
	}
	nh->n = &v->status;
	*h = nh;
	return 0;
}

int vfs_open(struct vfs *v, struct node *n, int flags, struct handle **h)
{
	int64_t deadline;
	int rc;

	if (n == &v->status)
		return status_open(v, flags, h);
	if (n == &v->root || n->kind == STAMP_DIR)
		return -EISDIR;
	rc = node_check_live(v, n, vfs_now(v), &deadline);
	if (rc < 0)
		return rc;
	node_used(v, n);
	return handle_new(v, n, flags, -1, h);
}

int vfs_create(struct vfs *v, struct node *parent, const char *name, mode_t mode, int flags,
	       const struct vfs_caller *c, struct vfs_entry *e, struct handle **h)
{
	int fd = -1, rc = vfs_make_file(v, parent, name, mode & 07777, STAMP_REG, c, e, &fd);

	if (rc < 0)
		return rc;
	rc = handle_new(v, e->node, flags & ~O_TRUNC, fd, h);
	if (rc < 0) {
		vfs_forget(v, e->node, 1);
		vfs_unlink(v, parent, name);
	}
	return rc;
}

/* Whether the read or write beginning now is the only one in progress, so
 * that a second core is likely idle and may open half of a read. Every
 * call is paired with io_end(). */
static bool io_begin(struct vfs *v)
{
	return __atomic_fetch_add(&v->io_busy, 1, __ATOMIC_RELAXED) == 0 && v->cores;
}

static void io_end(struct vfs *v)
{
	__atomic_fetch_sub(&v->io_busy, 1, __ATOMIC_RELAXED);
}

ssize_t vfs_read(struct vfs *v, struct handle *h, void *buf, size_t len, off_t off)
{
	struct node *n = h->n;
	ssize_t rc;

	if (h->text) {
		if (off >= (off_t)h->text_len)
			return 0;
		rc = (ssize_t)(h->text_len - (size_t)off < len ? h->text_len - (size_t)off : len);
		memcpy(buf, h->text + off, (size_t)rc);
		return rc;
	}
	pthread_rwlock_rdlock(&n->io);
	if (expired_now(v, n))
		rc = -ESTALE; /* vanished: an open handle returns no more data */
	else if ((rc = io_header_check(v, n)) == 0) {
		bool spread = io_begin(v);

		rc = fileio_read(n->data_fd, n->fk, n->size, buf, len, off, spread);
		io_end(v);
	}
	pthread_rwlock_unlock(&n->io);
	return rc;
}

ssize_t vfs_write(struct vfs *v, struct handle *h, const void *buf, size_t len, off_t off)
{
	struct node *n = h->n;
	ssize_t rc;

	if (h->text)
		return -EBADF;
	pthread_rwlock_wrlock(&n->io);
	if (expired_now(v, n)) {
		rc = -ESTALE;
	} else if ((rc = io_header_check(v, n)) == 0) {
		(void)io_begin(v); /* counted, so that no read is halved meanwhile */
		rc = fileio_write(n->data_fd, n->fk, &n->size, buf, len, h->append ? n->size : off);
		io_end(v);
		if (rc > 0)
			node_touch(v, n, vfs_now(v));
	}
	pthread_rwlock_unlock(&n->io);
	return rc;
}

static int drop_suidgid(struct node *n)
{
	struct stat st;
	char path[64];
	mode_t mode;

	if (n->kind != STAMP_REG)
		return 0;
	if (fstatat(n->fd, "", &st, AT_EMPTY_PATH) < 0)
		return -errno;
	mode = st.st_mode & 07777 & ~S_ISUID;
	if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		mode &= ~S_ISGID;
	if (mode == (st.st_mode & 07777))
		return 0;
	node_path(n, path, sizeof(path));
	return chmod(path, mode) < 0 ? -errno : 1;
}

int vfs_drop_suidgid(struct vfs *v, struct handle *h)
{
	int rc = h->text ? 0 : drop_suidgid(h->n);

	/* The kernel keeps the old mode after a write: tell it. */
	if (rc > 0 && v->notify.attrs_changed)
		v->notify.attrs_changed(v->notify.arg, h->n);
	return rc < 0 ? rc : 0;
}

int vfs_flush(struct vfs *v, struct handle *h)
{
	return h->text ? 0 : node_flush_stamp(v, h->n);
}

int vfs_fsync(struct vfs *v, struct handle *h, bool datasync)
{
	struct node *n = h->n;
	int rc;

	if (h->text)
		return 0;
	rc = node_flush_stamp(v, n);
	pthread_rwlock_rdlock(&n->io);
	/* fsync, not fdatasync, when the stamp xattr must reach the disk too. */
	if (rc == 0 && (datasync ? fdatasync(n->data_fd) : fsync(n->data_fd)) < 0)
		rc = -errno;
	if (rc == 0 && datasync && fsync(n->data_fd) < 0)
		rc = -errno;
	pthread_rwlock_unlock(&n->io);
	return rc;
}

int vfs_release(struct vfs *v, struct handle *h)
{
	struct node *n = h->n;
	bool shred;

	if (h->text) {
		free(h->text);
		free(h);
		return 0;
	}
	pthread_rwlock_wrlock(&n->io);
	shred = io_put_locked(v, n);
	if (shred)
		n->unlinked = false; /* this close shreds it, not its deadline */
	pthread_rwlock_unlock(&n->io);
	if (shred)
		shred_deferred(v, n);
	node_put(v, n);
	free(h);
	return 0;
}

int vfs_readlink(struct vfs *v, struct node *n, char *buf, size_t len)
{
	ssize_t got;
	int64_t deadline;
	int rc;

	if (n->kind != STAMP_SYMLINK)
		return -EINVAL;
	rc = node_check_live(v, n, vfs_now(v), &deadline);
	if (rc < 0)
		return rc;
	pthread_rwlock_wrlock(&n->io);
	rc = io_get_locked(v, n);
	if (rc == 0) {
		got = io_header_check(v, n);
		if (got == 0)
			got = fileio_read(n->data_fd, n->fk, n->size, buf, len - 1, 0, false);
		rc = got < 0 ? (int)got : 0;
		if (got >= 0)
			buf[got] = '\0';
		io_put_locked(v, n); /* a symlink is never open elsewhere */
	}
	pthread_rwlock_unlock(&n->io);
	return rc;
}

/* Copy n's user xattr slots from fd `from` to fd `to` (same entry id). */
static void copy_user_xattrs(int from, int to)
{
	/* Both on the heap, so that a request's stack stays within what
	 * crypto_wipe_stack() clears after it. */
	char *list = malloc(XATTR_LIST_MAX), *val = malloc(XATTR_SIZE_MAX);
	ssize_t len = list ? flistxattr(from, list, XATTR_LIST_MAX) : -1;

	for (ssize_t i = 0; val && i < len; i += (ssize_t)strlen(list + i) + 1) {
		ssize_t vlen;

		if (strncmp(list + i, XATTR_SLOT_PREFIX, strlen(XATTR_SLOT_PREFIX)) != 0)
			continue;
		vlen = fgetxattr(from, list + i, val, XATTR_SIZE_MAX);
		if (vlen >= 0)
			fsetxattr(to, list + i, val, (size_t)vlen, 0);
	}
	free(val);
	free(list);
}

/* Make an empty backing file in the trash that continues entry n: same
 * file id, owner, mode and user xattrs, stamped now. Returns its fd. */
static int make_successor(struct vfs *v, struct node *n, const struct stat *old, char tname[33])
{
	struct file_header h = {.version = FORMAT_VERSION};
	struct stamp s;
	struct stat sb;
	int fd, rc;

	node_stamp(n, &s);
	h.type = s.kind;
	h.cipher = (uint8_t)v->store->cipher;
	memcpy(h.file_id, s.id, FILE_ID_BYTES);
	s.mtime = vfs_now(v);
	shred_random_name(tname);
	fd = openat(v->store->trash_fd, tname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
		    old->st_mode & 07777);
	if (fd < 0)
		return -errno;
	rc = fchown(fd, old->st_uid, old->st_gid) < 0 ? -errno : 0;
	/* chown cleared set-user-ID (and set-group-ID): the mode stays the
	 * old one; who may not keep those bits loses them in vfs_setattr. */
	if (rc == 0 && fchmod(fd, old->st_mode & 07777) < 0)
		rc = -errno;
	if (rc == 0)
		rc = fileio_init(fd, &h);
	if (rc == 0 && fstat(fd, &sb) < 0)
		rc = -errno;
	if (rc == 0) {
		copy_user_xattrs(n->data_fd, fd);
		rc = store_write_stamp(v->keys, fd, sb.st_ino, &s);
	}
	if (rc < 0) {
		close(fd);
		unlinkat(v->store->trash_fd, tname, 0);
		return rc;
	}
	return fd;
}

/* Truncate to zero by swapping a fresh empty backing file in for the old
 * one (atomically, RENAME_EXCHANGE): the old content leaves at once and is
 * shredded in the background rather than inline. n is open and io
 * write-locked. Returns 0, or -EAGAIN when the caller should truncate in
 * place (hard links, or nothing worth moving). */
static int swap_empty_locked(struct vfs *v, struct node *n)
{
	char path[64], real[PATH_MAX], tname[33], *base;
	struct stat old, sb;
	struct stamp s;
	int dirfd, fd, pfd, rc = -EAGAIN;

	if (fstat(n->data_fd, &old) < 0 || old.st_nlink != 1 || n->size <= BLOCK_SIZE)
		return -EAGAIN;
	node_path(n, path, sizeof(path));
	ssize_t len = readlink(path, real, sizeof(real) - 1);
	if (len <= 0)
		return -EAGAIN;
	real[len] = '\0';
	base = strrchr(real, '/');
	if (!base || base == real)
		return -EAGAIN;
	*base++ = '\0';
	dirfd = open(real, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -EAGAIN;
	fd = make_successor(v, n, &old, tname);
	if (fd < 0)
		goto out_dir;
	if (renameat2(v->store->trash_fd, tname, dirfd, base, RENAME_EXCHANGE) < 0) {
		close(fd);
		unlinkat(v->store->trash_fd, tname, 0);
		goto out_dir;
	}
	/* The name may have been renamed over meanwhile: only our old inode
	 * may go to the shredder. */
	if (fstatat(v->store->trash_fd, tname, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
	    sb.st_ino != old.st_ino ||
	    (pfd = openat(dirfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		renameat2(v->store->trash_fd, tname, dirfd, base, RENAME_EXCHANGE);
		close(fd);
		unlinkat(v->store->trash_fd, tname, 0);
		goto out_dir;
	}
	fstat(pfd, &sb);
	node_rebind(v, n, pfd, sb.st_ino);
	close(n->data_fd);
	n->data_fd = fd;
	n->size = 0;
	bool valid = node_stamp(n, &s);

	node_load_stamp(v, n); /* the successor's, sealed for its inode */
	vfs_submit_shred(v, tname, n->zone, &s, valid);
	rc = 0;
out_dir:
	close(dirfd);
	return rc;
}

/* Set the size of open n (io write-locked), zero by swapping. */
static int truncate_locked(struct vfs *v, struct node *n, off_t size)
{
	static const struct timespec mtime_now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
	off_t before = n->size;
	int rc = io_header_check(v, n);

	if (rc == 0)
		rc = size == 0 ? swap_empty_locked(v, n) : -EAGAIN;
	if (rc == -EAGAIN)
		rc = fileio_truncate(n->data_fd, n->fk, &n->size, size);
	/* A truncation marks the times even when the size stays (as on
	 * ext4, and POSIX for O_TRUNC; the backing file's own ftruncate only
	 * marks them when the size moves), but only one that changes the
	 * content restarts its life: to the same size it is no more than a
	 * touch, which never extends a life. */
	if (rc == 0 && size == before && futimens(n->data_fd, mtime_now) < 0)
		rc = -errno;
	if (rc == 0 && size != before)
		node_touch(v, n, vfs_now(v));
	return rc;
}

/* Truncate n to size, opening its content for the time it takes. */
static int set_size(struct vfs *v, struct node *n, off_t size)
{
	int rc;

	if (n->kind == STAMP_DIR)
		return -EISDIR;
	if (n->kind != STAMP_REG)
		return -EINVAL;
	pthread_rwlock_wrlock(&n->io);
	rc = io_get_locked(v, n);
	if (rc == 0) {
		rc = expired_now(v, n) ? -ESTALE : truncate_locked(v, n, size);
		io_put_locked(v, n);
	}
	pthread_rwlock_unlock(&n->io);
	return rc;
}

static int set_times(struct node *n, const struct stat *in, int to_set)
{
	struct timespec ts[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
	char path[64];

	if (to_set & VFS_SET_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (to_set & VFS_SET_ATIME)
		ts[0] = in->st_atim;
	if (to_set & VFS_SET_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (to_set & VFS_SET_MTIME)
		ts[1] = in->st_mtim;
	node_path(n, path, sizeof(path));
	/* Only what users see changes; the trusted stamp stays as it is. */
	if (utimensat(AT_FDCWD, path, ts, 0) < 0)
		return -errno;
	return 0;
}

int vfs_setattr(struct vfs *v, struct node *n, const struct stat *in, int to_set, struct stat *out,
		double *timeout)
{
	char path[64];
	int64_t deadline;
	int rc;

	if (vfs_is_virtual(v, n))
		return -EPERM;
	rc = node_check_live(v, n, vfs_now(v), &deadline);
	if (rc < 0)
		return rc == -ENOENT ? -ESTALE : rc;
	node_path(n, path, sizeof(path));
	if (to_set & VFS_SET_MODE && chmod(path, in->st_mode & 07777) < 0)
		return -errno;
	if (to_set & (VFS_SET_UID | VFS_SET_GID) &&
	    fchownat(n->fd, "", to_set & VFS_SET_UID ? in->st_uid : (uid_t)-1,
		     to_set & VFS_SET_GID ? in->st_gid : (gid_t)-1, AT_EMPTY_PATH) < 0)
		return -errno;
	if (to_set & VFS_SET_SIZE && (rc = set_size(v, n, in->st_size)) < 0)
		return rc;
	if (to_set & VFS_SET_DROP_SUIDGID && (rc = drop_suidgid(n)) < 0)
		return rc;
	if (to_set & (VFS_SET_ATIME | VFS_SET_MTIME | VFS_SET_ATIME_NOW | VFS_SET_MTIME_NOW) &&
	    (rc = set_times(n, in, to_set)) < 0)
		return rc;
	return vfs_getattr(v, n, out, timeout);
}
