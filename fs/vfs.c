/* vfs.c - the core's lifecycle and namespace: lookup, attributes, creating,
 * removing, renaming and linking entries inside zones. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fileio.h"
#include "layout.h"
#include "util.h"
#include "vfs_internal.h"

#define ZONE_ROOT_REFS (1u << 30) /* zone roots are never freed */

static void node_init_fixed(struct node *n, int fd, int zone)
{
	n->fd = fd;
	n->zone = zone;
	n->data_fd = -1;
	n->refs = ZONE_ROOT_REFS;
	n->deadline = INT64_MAX;
	pthread_mutex_init(&n->mu, NULL);
	pthread_rwlock_init(&n->io, NULL);
}

/* CPUs this process may run on (its affinity mask, which a container's
 * cpuset also narrows); 1 when that cannot be read. */
static int usable_cpus(void)
{
	cpu_set_t set;

	return sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
}

struct vfs *vfs_new(const struct config *cfg, struct store *store, const struct keys *keys,
		    struct audit *audit, clock_fn clock, void *clock_arg, int *err)
{
	struct vfs *v = calloc(1, sizeof(*v));

	if (!v || node_table_init(v) < 0) {
		free(v);
		*err = -ENOMEM;
		return NULL;
	}
	v->cfg = cfg;
	v->store = store;
	v->keys = keys;
	v->audit = audit;
	v->clock = clock;
	v->clock_arg = clock_arg;
	v->timeout = 1.0;
	v->as_root = geteuid() == 0;
	v->cores = usable_cpus() > 1;
	pthread_mutex_init(&v->lock, NULL);
	pthread_mutex_init(&v->prune_mu, NULL);
	pthread_cond_init(&v->prune_cv, NULL);
	node_init_fixed(&v->root, store->fd, -1);
	node_init_fixed(&v->status, store->fd, -1);
	node_init_fixed(&v->trash, store->trash_fd, -1);
	v->status.kind = STAMP_REG;
	v->status.zone_root = true; /* never expires, never freed */
	v->reaper = reaper_new(clock, clock_arg, vfs_reap, vfs_reaper_release, v);
	if (!v->reaper) {
		*err = -ENOMEM;
		vfs_free(v);
		return NULL;
	}
	for (size_t i = 0; i < store->nzones; i++) {
		struct node *z = calloc(1, sizeof(*z));
		struct stat sb;

		if (!z || store->zone_fd[i] < 0 || fstat(store->zone_fd[i], &sb) < 0) {
			free(z);
			*err = z ? -ENOENT : -ENOMEM;
			vfs_free(v);
			return NULL;
		}
		node_init_fixed(z, store->zone_fd[i], (int)i);
		z->ino = sb.st_ino;
		z->kind = STAMP_DIR;
		z->zone_root = true;
		z->stamp = store->zone_stamp[i];
		z->stamp_valid = true;
		v->zones[i] = z;
		node_insert(v, z);
	}
	return v;
}

struct node *vfs_root(struct vfs *v)
{
	return &v->root;
}

const struct vfs_stats *vfs_stats(struct vfs *v)
{
	return &v->stats;
}

int vfs_start(struct vfs *v, const struct vfs_notify *n)
{
	int rc;

	if (n)
		v->notify = *n;
	if (!v->shredder)
		v->shredder = shredder_start(v->store->trash_fd, v->cfg->shred_passes, v->audit,
					     &v->stats.shreds, &v->stats.shred_bytes);
	if (!v->shredder)
		return -ENOMEM;
	rc = reaper_start(v->reaper);
	if (rc == 0 && !v->prune_running)
		rc = prune_start(v);
	return rc;
}

size_t vfs_pending(struct vfs *v)
{
	return v->reaper ? reaper_pending(v->reaper) : 0;
}

void vfs_stop(struct vfs *v)
{
	prune_stop(v);
	if (v->reaper)
		reaper_stop(v->reaper);
	if (v->shredder)
		shredder_drain(v->shredder);
}

void vfs_free(struct vfs *v)
{
	if (!v)
		return;
	vfs_stop(v);
	reaper_free(v->reaper);
	v->reaper = NULL;
	node_table_free(v);
	shredder_stop(v->shredder);
	for (size_t i = 0; i < CONFIG_MAX_ZONES; i++) {
		if (!v->zones[i])
			continue;
		pthread_mutex_destroy(&v->zones[i]->mu);
		pthread_rwlock_destroy(&v->zones[i]->io);
		free(v->zones[i]); /* its fd belongs to the store */
	}
	pthread_mutex_destroy(&v->root.mu);
	pthread_rwlock_destroy(&v->root.io);
	pthread_mutex_destroy(&v->status.mu);
	pthread_rwlock_destroy(&v->status.io);
	pthread_mutex_destroy(&v->trash.mu);
	pthread_rwlock_destroy(&v->trash.io);
	pthread_mutex_destroy(&v->prune_mu);
	pthread_cond_destroy(&v->prune_cv);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

/* ---- helpers ---- */

static double cache_timeout(struct vfs *v, int64_t deadline, int64_t now)
{
	double left;

	if (deadline == INT64_MAX)
		return v->timeout;
	left = (double)(deadline - now) / NSEC_PER_SEC;
	if (left <= 0)
		return 0;
	return left < v->timeout ? left : v->timeout;
}

/* Take a kernel lookup reference in place of the core one node_get gave. */
static void to_lookup_ref(struct vfs *v, struct node *n)
{
	pthread_mutex_lock(&v->lock);
	n->nlookup++;
	n->refs--;
	pthread_mutex_unlock(&v->lock);
}

/* Fill e for the live node n (one core reference held, turned into a
 * lookup reference on success). */
static int fill_entry(struct vfs *v, struct node *n, int64_t now, struct vfs_entry *e)
{
	int64_t deadline;
	int rc = node_check_live(v, n, now, &deadline);

	if (rc == 0)
		rc = node_stat(v, n, &e->st);
	if (rc < 0) {
		node_put(v, n);
		return rc;
	}
	e->node = n;
	e->timeout = cache_timeout(v, deadline, now);
	to_lookup_ref(v, n);
	return 0;
}

static int zone_of_name(struct vfs *v, const char *name)
{
	return config_zone_index(v->cfg, name);
}

/* The directory must be a zone or a directory inside one. */
static int check_dir(struct vfs *v, struct node *dir)
{
	if (dir == &v->root)
		return -EACCES;
	if (dir->kind != STAMP_DIR)
		return -ENOTDIR;
	return 0;
}

/* The backing entry of name in the zone directory dir: its encoded name
 * and its stat. Names that cannot exist (".", "..") are -ENOENT. */
static int stat_entry(struct vfs *v, struct node *dir, const char *name, struct bname *b,
		      struct stat *sb)
{
	int rc = check_dir(v, dir);

	if (rc == 0)
		rc = vfs_encode(v, dir, name, b);
	if (rc < 0)
		return rc == -EINVAL ? -ENOENT : rc;
	if (fstatat(dir->fd, b->name, sb, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

int vfs_lookup(struct vfs *v, struct node *parent, const char *name, struct vfs_entry *e)
{
	struct bname b;
	struct stat sb;
	int rc;

	memset(e, 0, sizeof(*e));
	if (parent == &v->root) {
		int z = zone_of_name(v, name);

		if (strcmp(name, VFS_STATUS_NAME) == 0) {
			node_ref(v, &v->status);
			return fill_entry(v, &v->status, vfs_now(v), e);
		}
		if (z < 0)
			return -ENOENT;
		node_ref(v, v->zones[z]);
		return fill_entry(v, v->zones[z], vfs_now(v), e);
	}
	rc = stat_entry(v, parent, name, &b, &sb);
	if (rc < 0)
		return rc;
	return vfs_entry_at(v, parent, b.name, &sb, vfs_now(v), e);
}

int vfs_entry_at(struct vfs *v, struct node *dir, const char *bname, const struct stat *sb,
		 int64_t now, struct vfs_entry *e)
{
	struct node *n;
	int rc;

	if (!S_ISDIR(sb->st_mode) && !S_ISREG(sb->st_mode))
		return -EIO; /* not something ekycfs made */
	n = node_get(v, dir, bname, sb, &rc);
	if (!n)
		return rc;
	rc = fill_entry(v, n, now, e);
	if (rc == -ENOENT)
		vfs_schedule(v, dir, bname, now); /* shred it soon */
	return rc;
}

void vfs_forget(struct vfs *v, struct node *n, uint64_t nlookup)
{
	if (vfs_is_virtual(v, n))
		return;
	pthread_mutex_lock(&v->lock);
	n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
	n->refs++;
	pthread_mutex_unlock(&v->lock);
	node_put(v, n);
}

int vfs_getattr(struct vfs *v, struct node *n, struct stat *st, double *timeout)
{
	int64_t now = vfs_now(v), deadline;
	int rc = node_check_live(v, n, now, &deadline);

	/* The kernel asks by inode (fstat, or before a read through an open
	 * handle): the inode it holds is stale. Lookups by name get ENOENT. */
	if (rc < 0)
		return rc == -ENOENT ? -ESTALE : rc;
	*timeout = cache_timeout(v, deadline, now);
	node_used(v, n);
	return node_stat(v, n, st);
}

/* ---- creating ---- */

/* Give the new entry its name: link the unnamed O_TMPFILE fd, or (tmp
 * not empty) move it from the trash. Fails with EEXIST, never replaces. */
static int place(struct vfs *v, struct node *parent, const struct bname *b, int fd, const char *tmp)
{
	char path[64];

	if (tmp[0])
		return renameat2(v->store->trash_fd, tmp, parent->fd, b->name, RENAME_NOREPLACE);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, path, parent->fd, b->name, AT_SYMLINK_FOLLOW);
}

/* Stamp a new backing entry while it has no name yet (an O_TMPFILE, or
 * tmp in the trash; fd open on it), then give it its name: nobody ever
 * sees it unstamped, so no lookup or reaper can take it for an invalid
 * one. Makes its node into e. */
static int place_new(struct vfs *v, struct node *parent, const struct bname *b, int fd,
		     const char *tmp, uint8_t kind, const uint8_t id[FILE_ID_BYTES],
		     const struct vfs_caller *c, struct vfs_entry *e)
{
	struct stamp s = {.kind = kind};
	int64_t now = vfs_now(v);
	struct stat sb;
	struct node *n;
	int rc;

	if (v->as_root && (c->uid != 0 || c->gid != 0) && fchown(fd, c->uid, c->gid) < 0)
		return -errno;
	if (fstat(fd, &sb) < 0)
		return -errno;
	memcpy(s.id, id, FILE_ID_BYTES);
	s.birth = s.mtime = now;
	rc = store_write_stamp(v->keys, fd, sb.st_ino, &s);
	if (rc < 0)
		return rc;
	if (place(v, parent, b, fd, tmp) < 0)
		return -errno;
	n = node_get(v, parent, b->name, &sb, &rc);
	if (!n) {
		if (tmp[0])
			renameat(parent->fd, b->name, v->store->trash_fd, tmp); /* for the undo */
		else
			unlinkat(parent->fd, b->name, 0);
		return rc;
	}
	node_dir_touch(v, parent, now);
	vfs_schedule(v, parent, b->name, expiry_deadline(now, vfs_ttl(v, parent->zone)));
	return fill_entry(v, n, now, e);
}

/* Undo a half-made entry: the temporary in the trash goes, and the long
 * name's sidecar unless another entry holds that name. */
static void undo_new(struct vfs *v, struct node *parent, const struct bname *b, const char *tmp,
		     bool dir)
{
	struct stat sb;

	if (tmp[0])
		unlinkat(v->store->trash_fd, tmp, dir ? AT_REMOVEDIR : 0);
	if (fstatat(parent->fd, b->name, &sb, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
		vfs_remove_sidecar(parent, b->name);
}

/* Encode name for a new entry in parent, with its sidecar when long. */
static int new_name(struct vfs *v, struct node *parent, const char *name, struct bname *b)
{
	int rc = check_dir(v, parent);

	if (rc == 0)
		rc = vfs_encode(v, parent, name, b);
	if (rc == 0 && b->is_long)
		rc = vfs_write_sidecar(parent, b);
	return rc;
}

/* Make a content file (regular, symlink or fifo) with its header. The
 * open O_RDWR fd is returned in *fdp when fdp is not NULL. */
int vfs_make_file(struct vfs *v, struct node *parent, const char *name, mode_t mode, uint8_t kind,
		  const struct vfs_caller *c, struct vfs_entry *e, int *fdp)
{
	struct file_header h = {
		.version = FORMAT_VERSION, .type = kind, .cipher = (uint8_t)v->store->cipher};
	struct bname b;
	char tmp[33];
	int fd, rc;

	rc = new_name(v, parent, name, &b);
	if (rc < 0)
		return rc;
	/* Unnamed until stamped; in the trash where O_TMPFILE is not there. */
	tmp[0] = '\0';
	fd = openat(parent->fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, mode & 07777);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
		shred_random_name(tmp);
		fd = openat(v->store->trash_fd, tmp,
			    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 07777);
	}
	if (fd < 0) {
		rc = -errno;
		undo_new(v, parent, &b, tmp, false);
		return rc;
	}
	crypto_random(h.file_id, FILE_ID_BYTES);
	rc = fileio_init(fd, &h);
	if (rc == 0)
		rc = place_new(v, parent, &b, fd, tmp, kind, h.file_id, c, e);
	if (rc < 0) {
		close(fd);
		undo_new(v, parent, &b, tmp, false);
		return rc;
	}
	if (fdp)
		*fdp = fd;
	else
		close(fd);
	return 0;
}

int vfs_mknod(struct vfs *v, struct node *parent, const char *name, mode_t mode,
	      const struct vfs_caller *c, struct vfs_entry *e)
{
	if (S_ISREG(mode))
		return vfs_make_file(v, parent, name, mode, STAMP_REG, c, e, NULL);
	if (S_ISFIFO(mode))
		return vfs_make_file(v, parent, name, mode, STAMP_FIFO, c, e, NULL);
	return parent == &v->root ? -EACCES : -EPERM; /* devices and sockets */
}

int vfs_mkdir(struct vfs *v, struct node *parent, const char *name, mode_t mode,
	      const struct vfs_caller *c, struct vfs_entry *e)
{
	uint8_t id[FILE_ID_BYTES];
	struct bname b;
	char tmp[33];
	int fd, rc;

	rc = new_name(v, parent, name, &b);
	if (rc < 0)
		return rc;
	shred_random_name(tmp);
	if (mkdirat(v->store->trash_fd, tmp, mode & 07777) < 0) {
		rc = -errno;
		undo_new(v, parent, &b, tmp, true);
		return rc;
	}
	fd = openat(v->store->trash_fd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		undo_new(v, parent, &b, tmp, true);
		return rc;
	}
	crypto_random(id, sizeof(id));
	rc = place_new(v, parent, &b, fd, tmp, STAMP_DIR, id, c, e);
	close(fd);
	if (rc < 0)
		undo_new(v, parent, &b, tmp, true);
	return rc;
}

int vfs_symlink(struct vfs *v, struct node *parent, const char *name, const char *target,
		const struct vfs_caller *c, struct vfs_entry *e)
{
	size_t len = strlen(target);
	int fd = -1, rc;

	if (len == 0 || len >= PATH_MAX)
		return len ? -ENAMETOOLONG : -ENOENT;
	rc = vfs_make_file(v, parent, name, 0777, STAMP_SYMLINK, c, e, &fd);
	if (rc < 0)
		return rc;
	pthread_rwlock_wrlock(&e->node->io);
	struct filekey *fk =
		filekey_new(v->keys, e->node->stamp.id, STAMP_SYMLINK, v->store->cipher);
	off_t size = 0;
	rc = fk ? (int)fileio_write(fd, fk, &size, target, len, 0) : -ENOMEM;
	filekey_free(fk);
	pthread_rwlock_unlock(&e->node->io);
	close(fd);
	if (rc >= 0) {
		e->st.st_size = (off_t)len;
		return 0;
	}
	vfs_forget(v, e->node, 1);
	vfs_unlink(v, parent, name);
	return rc;
}

int vfs_link(struct vfs *v, struct node *n, struct node *newparent, const char *newname,
	     struct vfs_entry *e)
{
	char path[64];
	struct bname b;
	int rc;

	if (n->kind == STAMP_DIR)
		return -EPERM;
	if (newparent != &v->root && newparent->zone != n->zone)
		return -EXDEV;
	rc = new_name(v, newparent, newname, &b);
	if (rc < 0)
		return rc;
	node_path(n, path, sizeof(path));
	if (linkat(AT_FDCWD, path, newparent->fd, b.name, AT_SYMLINK_FOLLOW) < 0) {
		rc = -errno;
		if (rc != -EEXIST)
			vfs_remove_sidecar(newparent, b.name);
		return rc;
	}
	/* Known by its newest name: after "ln a b; rm a" the kernel holds b. */
	node_move(v, n, newparent, b.name);
	node_dir_touch(v, newparent, vfs_now(v));
	vfs_schedule(v, newparent, b.name, node_deadline(n));
	node_ref(v, n);
	return fill_entry(v, n, vfs_now(v), e);
}

/* ---- removing ---- */

/* The name node ino was known by went while other names remain: know it by
 * another one in the same folder, if there is one (the pruner asks the
 * kernel to drop entries by name; a gone name would pin the node). */
static void rename_after_unlink(struct vfs *v, struct node *parent, const char *gone, uint64_t ino)
{
	struct node *n = node_find(v, ino);
	struct dirent *d;
	DIR *dp;
	bool same;

	if (!n)
		return;
	pthread_mutex_lock(&v->lock);
	same = n->parent == parent && n->bname && strcmp(n->bname, gone) == 0;
	pthread_mutex_unlock(&v->lock);
	dp = same ? dir_listing(parent->fd, ".") : NULL;
	while (dp && (d = readdir(dp)))
		if (d->d_ino == ino && !names_is_sidecar(d->d_name)) {
			node_move(v, n, parent, d->d_name);
			break;
		}
	if (dp)
		closedir(dp);
	node_put(v, n);
}

int vfs_unlink(struct vfs *v, struct node *parent, const char *name)
{
	struct bname b;
	struct stat sb;
	int rc;

	rc = stat_entry(v, parent, name, &b, &sb);
	if (rc < 0)
		return rc;
	if (S_ISDIR(sb.st_mode))
		return -EISDIR;
	if (sb.st_nlink > 1) {
		/* Other names keep the content alive; only this name goes. */
		if (unlinkat(parent->fd, b.name, 0) < 0)
			return -errno;
		vfs_remove_sidecar(parent, b.name);
		rename_after_unlink(v, parent, b.name, sb.st_ino);
	} else {
		rc = vfs_trash_file(v, parent, b.name, AUDIT_DELETED);
	}
	if (rc == 0)
		vfs_recheck_dir(v, parent, vfs_now(v)); /* was it its last live entry? */
	return rc;
}

int vfs_rmdir(struct vfs *v, struct node *parent, const char *name)
{
	struct bname b;
	struct stat sb;
	struct node *n;
	int rc;

	rc = stat_entry(v, parent, name, &b, &sb);
	if (rc < 0)
		return rc;
	if (!S_ISDIR(sb.st_mode))
		return -ENOTDIR;
	n = node_get(v, parent, b.name, &sb, &rc);
	if (!n)
		return rc;
	/* Vanished entries not yet shredded must not keep it from going. */
	if (vfs_dir_has_live(v, n->fd, vfs_now(v), n->zone)) {
		node_put(v, n);
		return -ENOTEMPTY;
	}
	rc = vfs_purge_dir(v, n);
	if (rc == 0 && unlinkat(parent->fd, b.name, AT_REMOVEDIR) < 0)
		rc = -errno;
	if (rc == 0) {
		struct stamp s;
		bool valid = node_stamp(n, &s);

		vfs_remove_sidecar(parent, b.name);
		vfs_recheck_dir(v, parent, vfs_now(v));
		node_mark_dead(v, n);
		vfs_audit(v, AUDIT_DELETED, n->zone, &s, valid, 0);
	}
	node_put(v, n);
	return rc;
}

/* ---- renaming ---- */

/* Keep the entry about to be replaced for shredding: a hard link in the
 * trash survives the rename, which stays atomic. */
static int keep_victim(struct vfs *v, struct node *dir, const char *bname, char trash[33],
		       struct stamp *s, bool *valid, struct stat *victim)
{
	uint64_t ino;
	struct stat sb;

	trash[0] = '\0';
	if (fstatat(dir->fd, bname, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISREG(sb.st_mode) || sb.st_nlink > 1)
		return 0;
	*valid = store_read_stamp(v->keys, dir->fd, bname, s, &ino) == 0;
	*victim = sb;
	shred_random_name(trash);
	if (linkat(dir->fd, bname, v->store->trash_fd, trash, 0) < 0)
		return -errno;
	return 1;
}

int vfs_rename(struct vfs *v, struct node *parent, const char *name, struct node *newparent,
	       const char *newname, unsigned flags)
{
	struct bname ob, nb;
	struct stat sb;
	struct stamp vs = {0};
	bool vvalid = false;
	char trash[33];
	struct stat kept_sb;
	int rc, kept;

	if (parent == &v->root || newparent == &v->root)
		return -EACCES;
	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;
	rc = check_dir(v, parent);
	if (rc == 0)
		rc = check_dir(v, newparent);
	if (rc < 0)
		return rc;
	if (parent->zone != newparent->zone)
		return -EXDEV;
	rc = stat_entry(v, parent, name, &ob, &sb);
	if (rc == 0)
		rc = vfs_encode(v, newparent, newname, &nb);
	if (rc < 0)
		return rc == -EINVAL ? -ENOENT : rc;
	if (parent == newparent && strcmp(ob.name, nb.name) == 0)
		return 0;
	kept = (flags & RENAME_NOREPLACE)
		       ? 0
		       : keep_victim(v, newparent, nb.name, trash, &vs, &vvalid, &kept_sb);
	if (kept < 0)
		return kept;
	if (nb.is_long && (rc = vfs_write_sidecar(newparent, &nb)) < 0)
		goto out_unkeep;
	if (renameat2(parent->fd, ob.name, newparent->fd, nb.name, flags) < 0) {
		rc = -errno;
		if (nb.is_long && !kept &&
		    fstatat(newparent->fd, nb.name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			vfs_remove_sidecar(newparent, nb.name);
		goto out_unkeep;
	}
	vfs_remove_sidecar(parent, ob.name);
	if (parent != newparent)
		vfs_recheck_dir(v, parent, vfs_now(v));
	if (kept) {
		struct node *victim = node_find(v, kept_sb.st_ino);

		vfs_audit(v, AUDIT_DELETED, newparent->zone, &vs, vvalid,
			  layout_plain_size(kept_sb.st_size));
		vfs_dispose(v, victim, trash, newparent->zone, &vs, vvalid);
		node_put(v, victim);
	}
	struct node *n = node_find(v, sb.st_ino);
	if (n)
		node_move(v, n, newparent, nb.name);
	node_dir_touch(v, newparent, vfs_now(v));
	vfs_schedule(v, newparent, nb.name, n ? node_deadline(n) : vfs_now(v));
	node_put(v, n);
	return 0;
out_unkeep:
	if (kept)
		unlinkat(v->store->trash_fd, trash, 0);
	return rc;
}

int vfs_statfs(struct vfs *v, struct statvfs *st)
{
	if (fstatvfs(v->store->fd, st) < 0)
		return -errno;
	st->f_namemax = NAMES_PLAIN_MAX;
	return 0;
}
