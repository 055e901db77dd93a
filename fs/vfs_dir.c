/* vfs_dir.c - listing directories (names decrypted, vanished entries left
 * out) and the extended attributes seen through the mount. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "util.h"
#include "vfs_internal.h"

#define USER_PREFIX "user."
#define PRIVATE_PREFIX "user.ekycfs."

int vfs_opendir(struct vfs *v, struct node *n, struct dirhandle **dh)
{
	struct dirhandle *d;
	int64_t deadline;
	int rc;

	if (n != &v->root && n->kind != STAMP_DIR)
		return -ENOTDIR;
	rc = node_check_live(v, n, vfs_now(v), &deadline);
	if (rc < 0)
		return rc;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	if (n != &v->root) {
		d->dp = dir_listing(n->fd, ".");
		if (!d->dp) {
			rc = -errno;
			free(d);
			return rc;
		}
	}
	node_ref(v, n);
	d->n = n;
	*dh = d;
	return 0;
}

static int readdir_root(struct vfs *v, off_t off, bool plus, vfs_emit_fn emit, void *arg)
{
	struct stat st = {.st_mode = S_IFDIR};

	for (off_t i = off; i < (off_t)v->cfg->nzones + 2; i++) {
		const char *name = i == 0 ? "." : i == 1 ? ".." : v->cfg->zones[i - 2].name;
		struct vfs_entry e, *ep = NULL;

		st.st_ino = i < 2 ? 1 : v->zones[i - 2]->ino;
		if (plus && i >= 2 && vfs_lookup(v, &v->root, name, &e) == 0)
			ep = &e;
		if (emit(arg, name, ep ? &ep->st : &st, i + 1, ep)) {
			if (ep)
				vfs_forget(v, ep->node, 1);
			break;
		}
	}
	return 0;
}

/* A backing name that does not decrypt in this directory (moved here or
 * altered by hand) is never shown; it is logged without any name and left
 * to the reaper, which judges it by its own stamp. */
static void foreign_name(struct vfs *v, struct node *dir, const char *stored, int64_t now)
{
	vfs_audit(v, AUDIT_BAD_NAME, dir->zone, &(struct stamp){0}, false, -1);
	vfs_schedule(v, dir, stored, now);
}

/* With plus: the entry as a lookup would give it. Returns 0, or -ENOENT
 * when it is not to be listed. */
static int plus_entry(struct vfs *v, struct node *dir, const char *stored, int64_t now,
		      struct vfs_entry *e)
{
	struct stat sb;

	if (prune_over_budget(v))
		return -EMFILE; /* listed plainly: no descriptor for what ls may never use */
	if (fstatat(dir->fd, stored, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return -ENOENT;
	return vfs_entry_at(v, dir, stored, &sb, now, e); /* -EMFILE: list it plainly */
}

/* vfs_readdir's work; plain is the caller's scratch for each name. */
static int readdir_dir(struct vfs *v, struct dirhandle *dh, off_t off, bool plus, vfs_emit_fn emit,
		       void *arg, char plain[NAMES_PLAIN_MAX + 1])
{
	static const mode_t types[] = {[STAMP_REG] = S_IFREG,
				       [STAMP_SYMLINK] = S_IFLNK,
				       [STAMP_FIFO] = S_IFIFO,
				       [STAMP_DIR] = S_IFDIR};
	int64_t now = vfs_now(v);
	DIR *dp = dh->dp;
	struct dirent *d;
	int rc;

	if (dh->n == &v->root)
		return readdir_root(v, off, plus, emit, arg);
	if (off != dh->pos)
		seekdir(dp, off);
	for (;;) {
		struct stat st = {0};
		struct vfs_entry e, *ep = NULL;
		uint8_t kind = STAMP_REG;
		long here = telldir(dp);

		errno = 0;
		d = readdir(dp);
		if (!d)
			return errno ? -errno : 0;
		dh->pos = telldir(dp);
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0) {
			st.st_mode = S_IFDIR;
			snprintf(plain, NAMES_PLAIN_MAX + 1, "%s", d->d_name);
		} else if (names_is_sidecar(d->d_name)) {
			continue;
		} else if (vfs_decode(v, dh->n, d->d_name, plain, NAMES_PLAIN_MAX + 1) < 0) {
			foreign_name(v, dh->n, d->d_name, now);
			continue;
		} else if (plus && (rc = plus_entry(v, dh->n, d->d_name, now, &e)) == 0) {
			ep = &e;
			st = e.st;
		} else if (plus && rc == -ENOENT) {
			continue; /* vanished */
		} else if (!vfs_entry_live(v, dh->n->fd, dh->n->zone, d->d_name, d->d_ino, now,
					   &kind)) {
			/* Also the fallback when a plus entry cannot be made (out of
			 * fds): listed plainly, the kernel looks it up itself and
			 * any error shows there instead of a silent gap. A vanished
			 * one is handed to the reaper. */
			vfs_schedule(v, dh->n, d->d_name, now);
			continue;
		} else {
			st.st_mode = types[kind];
		}
		if (!ep)
			st.st_ino = d->d_ino;
		if (emit(arg, plain, &st, dh->pos, ep)) {
			if (ep)
				vfs_forget(v, ep->node, 1);
			seekdir(dp, here);
			dh->pos = here;
			return 0;
		}
	}
}

int vfs_readdir(struct vfs *v, struct dirhandle *dh, off_t off, bool plus, vfs_emit_fn emit,
		void *arg)
{
	char plain[NAMES_PLAIN_MAX + 1];
	int rc = readdir_dir(v, dh, off, plus, emit, arg, plain);

	crypto_wipe(plain, sizeof(plain)); /* the last name listed */
	return rc;
}

int vfs_releasedir(struct vfs *v, struct dirhandle *dh)
{
	if (dh->dp)
		closedir(dh->dp);
	node_put(v, dh->n);
	free(dh);
	return 0;
}

/* ---- extended attributes ----
 * user.NAME is kept in a backing xattr whose name is a keyed hash of the
 * entry id and NAME; its value seals NAME and the value together, bound to
 * the entry and the slot. Neither names nor values reach the disk. */

static int check_name(const char *name)
{
	if (strncmp(name, USER_PREFIX, strlen(USER_PREFIX)) != 0)
		return -EOPNOTSUPP;
	if (strncmp(name, PRIVATE_PREFIX, strlen(PRIVATE_PREFIX)) == 0)
		return -EPERM;
	if (strlen(name) > XATTR_NAME_MAX)
		return -ERANGE;
	return 0;
}

/* Path of n's backing entry and its id, for a live, non-virtual node. */
static int xattr_target(struct vfs *v, struct node *n, char *path, size_t len,
			uint8_t id[FILE_ID_BYTES])
{
	int64_t deadline;
	int rc = node_check_live(v, n, vfs_now(v), &deadline);

	if (rc < 0)
		return rc;
	if (vfs_is_virtual(v, n))
		return -EPERM;
	node_path(n, path, len);
	pthread_mutex_lock(&n->mu);
	memcpy(id, n->stamp.id, FILE_ID_BYTES);
	pthread_mutex_unlock(&n->mu);
	return 0;
}

int vfs_setxattr(struct vfs *v, struct node *n, const char *name, const void *value, size_t size,
		 int flags)
{
	char path[64], slot[XATTR_SLOT_LEN + 1];
	uint8_t id[FILE_ID_BYTES], *blob;
	size_t len;
	int rc = check_name(name);

	if (rc == 0)
		rc = xattr_target(v, n, path, sizeof(path), id);
	if (rc < 0)
		return rc;
	blob = malloc(XATTR_SEAL_OVERHEAD + strlen(name) + size);
	if (!blob)
		return -ENOMEM;
	crypto_xattr_slot(v->keys, id, name, slot);
	len = crypto_xattr_seal(v->keys, id, slot, name, value, size, blob);
	rc = setxattr(path, slot, blob, len, flags) < 0 ? -errno : 0;
	free(blob);
	return rc == -E2BIG || rc == -ENOSPC ? -E2BIG : rc;
}

/* Read and open slot of path: the name into name, the value into value. */
static ssize_t read_slot(struct vfs *v, const char *path, const uint8_t id[FILE_ID_BYTES],
			 const char *slot, char name[XATTR_NAME_MAX + 1], void *value, size_t cap)
{
	ssize_t len = getxattr(path, slot, NULL, 0), got;
	uint8_t *blob;

	if (len < 0)
		return -errno;
	blob = malloc((size_t)len + 1);
	if (!blob)
		return -ENOMEM;
	got = getxattr(path, slot, blob, (size_t)len);
	if (got < 0)
		got = -errno;
	else
		got = crypto_xattr_open(v->keys, id, slot, blob, (size_t)got, name, value, cap);
	free(blob);
	return got;
}

/* user.ekycfs.expires: the deadline as RFC 3339 UTC. */
static ssize_t get_expires(struct vfs *v, struct node *n, void *value, size_t size)
{
	char text[32];
	int64_t deadline;
	size_t len;

	if (vfs_is_virtual(v, n) || n->zone_root)
		return -ENODATA; /* never expires */
	if (node_check_live(v, n, vfs_now(v), &deadline) < 0)
		return -ENOENT;
	format_rfc3339(node_deadline(n), text, sizeof(text));
	len = strlen(text);
	if (size == 0)
		return (ssize_t)len;
	if (size < len)
		return -ERANGE;
	memcpy(value, text, len);
	return (ssize_t)len;
}

ssize_t vfs_getxattr(struct vfs *v, struct node *n, const char *name, void *value, size_t size)
{
	char path[64], slot[XATTR_SLOT_LEN + 1], stored[XATTR_NAME_MAX + 1];
	uint8_t id[FILE_ID_BYTES];
	ssize_t len;
	int rc;

	if (strcmp(name, VFS_XATTR_EXPIRES) == 0)
		return get_expires(v, n, value, size);
	/* Outside user.* (security.*, system.posix_acl_*, trusted.*) is not
	 * supported at all, and saying so lets ls -l stop asking for every
	 * file (coreutils' ls remembers it per device); ENODATA would cost two
	 * round trips per file listed. */
	rc = check_name(name);
	if (rc == -EPERM)
		return -ENODATA;
	if (rc == 0)
		rc = xattr_target(v, n, path, sizeof(path), id);
	if (rc < 0)
		return rc == -EPERM ? -ENODATA : rc;
	crypto_xattr_slot(v->keys, id, name, slot);
	len = read_slot(v, path, id, slot, stored, size ? value : NULL, size);
	if (len >= 0 && strcmp(stored, name) != 0)
		len = -EIO; /* a blob from another slot */
	crypto_wipe(stored, sizeof(stored));
	return len;
}

ssize_t vfs_listxattr(struct vfs *v, struct node *n, char *list, size_t size)
{
	char path[64], *raw, name[XATTR_NAME_MAX + 1];
	uint8_t id[FILE_ID_BYTES];
	ssize_t len, out = 0;
	int rc = xattr_target(v, n, path, sizeof(path), id);

	if (rc < 0)
		return rc == -EPERM ? 0 : rc;
	/* 64 KiB: on the heap, so that a request's stack stays within what
	 * crypto_wipe_stack() clears after it. */
	raw = malloc(XATTR_LIST_MAX);
	if (!raw)
		return -ENOMEM;
	len = listxattr(path, raw, XATTR_LIST_MAX);
	if (len < 0) {
		len = -errno;
		free(raw);
		return len;
	}
	/* Only the user's own; the stamp and user.ekycfs.expires stay out
	 * so that cp -a and rsync -X do not try to copy them. */
	for (ssize_t i = 0; i < len; i += (ssize_t)strlen(raw + i) + 1) {
		const char *slot = raw + i;
		size_t need;

		if (strncmp(slot, XATTR_SLOT_PREFIX, strlen(XATTR_SLOT_PREFIX)) != 0 ||
		    strlen(slot) != XATTR_SLOT_LEN ||
		    read_slot(v, path, id, slot, name, NULL, 0) < 0)
			continue;
		need = strlen(name) + 1;
		if (size && (size_t)out + need > size) {
			out = -ERANGE;
			break;
		}
		if (size)
			memcpy(list + out, name, need);
		out += (ssize_t)need;
	}
	crypto_wipe(name, sizeof(name)); /* the last name read */
	free(raw);
	return out;
}

int vfs_removexattr(struct vfs *v, struct node *n, const char *name)
{
	char path[64], slot[XATTR_SLOT_LEN + 1];
	uint8_t id[FILE_ID_BYTES];
	int rc;

	if (strcmp(name, VFS_XATTR_EXPIRES) == 0)
		return -EPERM;
	rc = check_name(name);
	if (rc == 0)
		rc = xattr_target(v, n, path, sizeof(path), id);
	if (rc < 0)
		return rc;
	crypto_xattr_slot(v->keys, id, name, slot);
	return removexattr(path, slot) < 0 ? -errno : 0;
}
