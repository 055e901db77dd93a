/* node.c - the core's inode table: backing inodes the kernel or the core
 * holds, their stamps in memory, and the name codec glue for directories. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "layout.h"
#include "util.h"
#include "vfs_internal.h"

#define DIR_STAMP_LAG (NSEC_PER_SEC) /* a dir stamp on disk may lag 1 s */

int64_t vfs_now(struct vfs *v)
{
	return v->clock(v->clock_arg);
}

int64_t vfs_ttl(struct vfs *v, int zone)
{
	return config_zone_ttl(v->cfg, (size_t)zone);
}

void node_path(const struct node *n, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", n->fd);
}

int node_table_init(struct vfs *v)
{
	v->nbuckets = 1024;
	v->buckets = calloc(v->nbuckets, sizeof(*v->buckets));
	return v->buckets ? 0 : -ENOMEM;
}

static size_t bucket_of(const struct vfs *v, uint64_t ino)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ULL) >> 20) & (v->nbuckets - 1);
}

static void table_grow_locked(struct vfs *v)
{
	size_t nb = v->nbuckets * 2;
	struct node **b = calloc(nb, sizeof(*b));

	if (!b)
		return; /* chains just get longer */
	for (size_t i = 0; i < v->nbuckets; i++) {
		struct node *n = v->buckets[i], *next;

		for (; n; n = next) {
			size_t j = (size_t)((n->ino * 0x9e3779b97f4a7c15ULL) >> 20) & (nb - 1);

			next = n->hnext;
			n->hnext = b[j];
			b[j] = n;
		}
	}
	free(v->buckets);
	v->buckets = b;
	v->nbuckets = nb;
}

static struct node *find_locked(struct vfs *v, uint64_t ino)
{
	struct node *n = v->buckets[bucket_of(v, ino)];

	while (n && n->ino != ino)
		n = n->hnext;
	return n;
}

struct node *node_find_locked(struct vfs *v, uint64_t ino)
{
	return find_locked(v, ino);
}

static void insert_locked(struct vfs *v, struct node *n)
{
	size_t b;

	if (v->nnodes >= v->nbuckets)
		table_grow_locked(v);
	b = bucket_of(v, n->ino);
	n->hnext = v->buckets[b];
	v->buckets[b] = n;
	n->in_table = true;
	v->nnodes++;
}

static void remove_locked(struct vfs *v, struct node *n)
{
	struct node **pp = &v->buckets[bucket_of(v, n->ino)];

	if (!n->in_table)
		return;
	while (*pp && *pp != n)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = n->hnext;
	n->in_table = false;
	v->nnodes--;
}

static void node_destroy(struct vfs *v, struct node *n)
{
	if (n->stamp_dirty)
		node_flush_stamp(v, n);
	if (n->fd >= 0) {
		close(n->fd);
		__atomic_sub_fetch(&v->node_fds, 1, __ATOMIC_RELAXED);
	}
	if (n->data_fd >= 0)
		close(n->data_fd);
	filekey_free(n->fk);
	free(n->bname);
	pthread_mutex_destroy(&n->mu);
	pthread_rwlock_destroy(&n->io);
	free(n);
}

/* Drop a core reference; frees the node when nobody holds it. Takes and
 * releases vfs->lock; recurses up the parent chain iteratively. */
void node_put(struct vfs *v, struct node *n)
{
	while (n) {
		struct node *parent = NULL;

		pthread_mutex_lock(&v->lock);
		if (--n->refs > 0 || n->nlookup > 0 || n->zone_root || n == &v->root) {
			pthread_mutex_unlock(&v->lock);
			return;
		}
		remove_locked(v, n);
		parent = n->parent;
		pthread_mutex_unlock(&v->lock);
		node_destroy(v, n);
		n = parent;
	}
}

void node_ref(struct vfs *v, struct node *n)
{
	pthread_mutex_lock(&v->lock);
	n->refs++;
	pthread_mutex_unlock(&v->lock);
}

struct node *node_find(struct vfs *v, uint64_t ino)
{
	struct node *n;

	pthread_mutex_lock(&v->lock);
	n = find_locked(v, ino);
	if (n)
		n->refs++;
	pthread_mutex_unlock(&v->lock);
	return n;
}

static int read_stamp_path(struct vfs *v, const char *path, uint64_t ino, struct stamp *s)
{
	uint8_t raw[STAMP_BYTES + 1];
	ssize_t len = getxattr(path, STAMP_XATTR, raw, sizeof(raw));

	if (len < 0) /* missing, oversized, unreadable: a bad stamp (fail closed) */
		return errno == ENOMEM ? -ENOMEM : -EBADMSG;
	return stamp_open(v->keys, raw, (size_t)len, ino, s);
}

static void set_deadline_locked(struct vfs *v, struct node *n)
{
	if (n->zone_root)
		n->deadline = INT64_MAX;
	else if (!n->stamp_valid)
		n->deadline = INT64_MIN;
	else
		n->deadline = expiry_deadline(n->stamp.mtime, vfs_ttl(v, n->zone));
}

int node_load_stamp(struct vfs *v, struct node *n)
{
	char path[64];
	struct stamp s;
	int rc;

	if (n->zone_root || n == &v->root)
		return 0;
	node_path(n, path, sizeof(path));
	pthread_mutex_lock(&n->mu);
	if (n->stamp_dirty || n->stamp_fresh) {
		n->stamp_fresh = false;
		pthread_mutex_unlock(&n->mu);
		return 0;
	}
	rc = read_stamp_path(v, path, n->ino, &s);
	if (rc == 0) {
		n->stamp = s;
		n->stamp_valid = true;
		n->disk_mtime = s.mtime;
	} else if (rc == -EBADMSG) {
		if (n->stamp_valid)
			__atomic_add_fetch(&v->stats.invalid_stamps, 1, __ATOMIC_RELAXED);
		n->stamp_valid = false;
	}
	set_deadline_locked(v, n);
	pthread_mutex_unlock(&n->mu);
	return rc;
}

bool node_stamp(struct node *n, struct stamp *out)
{
	bool valid;

	pthread_mutex_lock(&n->mu);
	*out = n->stamp;
	valid = n->stamp_valid;
	pthread_mutex_unlock(&n->mu);
	return valid;
}

int64_t node_deadline(struct node *n)
{
	int64_t d;

	pthread_mutex_lock(&n->mu);
	d = n->deadline;
	pthread_mutex_unlock(&n->mu);
	return d;
}

static int flush_locked(struct vfs *v, struct node *n)
{
	char path[64];
	uint8_t raw[STAMP_BYTES];

	if (!n->stamp_dirty || !n->stamp_valid)
		return 0;
	stamp_seal(v->keys, &n->stamp, n->ino, raw);
	node_path(n, path, sizeof(path));
	if (setxattr(path, STAMP_XATTR, raw, sizeof(raw), 0) < 0)
		return -errno;
	n->stamp_dirty = false;
	n->disk_mtime = n->stamp.mtime;
	return 0;
}

int node_flush_stamp(struct vfs *v, struct node *n)
{
	int rc;

	pthread_mutex_lock(&n->mu);
	rc = flush_locked(v, n);
	pthread_mutex_unlock(&n->mu);
	return rc;
}

void node_touch(struct vfs *v, struct node *n, int64_t now)
{
	pthread_mutex_lock(&n->mu);
	if (n->stamp_valid && now > n->stamp.mtime) {
		n->stamp.mtime = now;
		n->stamp_dirty = true;
		set_deadline_locked(v, n);
	}
	pthread_mutex_unlock(&n->mu);
}

void node_dir_touch(struct vfs *v, struct node *n, int64_t now)
{
	if (n->zone_root || n == &v->root)
		return;
	pthread_mutex_lock(&n->mu);
	if (n->stamp_valid && now > n->stamp.mtime) {
		n->stamp.mtime = now;
		n->stamp_dirty = true;
		set_deadline_locked(v, n);
		if (now - n->disk_mtime >= DIR_STAMP_LAG)
			flush_locked(v, n);
	}
	pthread_mutex_unlock(&n->mu);
}

int node_check_live(struct vfs *v, struct node *n, int64_t now, int64_t *deadline)
{
	int64_t d;
	bool dead;

	if (n == &v->root || n->zone_root) {
		*deadline = INT64_MAX;
		return 0;
	}
	node_load_stamp(v, n);
	pthread_mutex_lock(&v->lock);
	dead = n->dead;
	pthread_mutex_unlock(&v->lock);
	d = node_deadline(n);
	*deadline = d;
	if (dead)
		return -ENOENT;
	if (now < d)
		return 0;
	/* A directory outlives its deadline while it holds a live entry. */
	if (n->kind == STAMP_DIR && d != INT64_MIN && vfs_dir_has_live(v, n->fd, now, n->zone)) {
		*deadline = now + NSEC_PER_SEC;
		return 0;
	}
	return -ENOENT;
}

int node_stat(struct vfs *v, struct node *n, struct stat *st)
{
	static const mode_t type[] = {[STAMP_REG] = S_IFREG,
				      [STAMP_SYMLINK] = S_IFLNK,
				      [STAMP_FIFO] = S_IFIFO,
				      [STAMP_DIR] = S_IFDIR};
	off_t size;

	/* A pending stamp goes to disk first: writing it after this reply
	 * would move the ctime the kernel caches from it (tar would see a
	 * file or folder "changed as we read it"). */
	node_flush_stamp(v, n);
	if (fstat(n->fd, st) < 0)
		return -errno;
	if (n == &v->status) {
		st->st_mode = S_IFREG | 0444;
		st->st_size = 0; /* generated at open; read with direct I/O */
		st->st_nlink = 1;
		st->st_ino = 2;
		return 0;
	}
	if (n == &v->root) {
		/* The root only lists zones; everyone may look. */
		st->st_mode = S_IFDIR | 0755;
		return 0;
	}
	if (n->kind == STAMP_DIR)
		return 0;
	st->st_mode = (st->st_mode & 07777) | type[n->kind];
	pthread_rwlock_rdlock(&n->io);
	size = n->opens ? n->size : layout_plain_size(st->st_size);
	pthread_rwlock_unlock(&n->io);
	st->st_size = size < 0 ? 0 : size;
	return 0;
}

/* A new node for backing entry bname in parent; not yet in the table. */
static struct node *node_alloc(struct vfs *v, struct node *parent, const char *bname,
			       const struct stat *sb, int *err)
{
	struct node *n = calloc(1, sizeof(*n));
	int flags = S_ISDIR(sb->st_mode) ? O_RDONLY | O_DIRECTORY : O_PATH, rc = 0;
	struct stat check;

	if (!n || !(n->bname = strdup(bname))) {
		free(n);
		*err = -ENOMEM;
		return NULL;
	}
	n->fd = openat(parent->fd, bname, flags | O_NOFOLLOW | O_CLOEXEC);
	/* Another mount over a backing name is not part of the store: no
	 * node, so nothing goes into it or changes it through the mount. */
	if (n->fd < 0)
		rc = -errno;
	else if (fstat(n->fd, &check) < 0 || check.st_ino != sb->st_ino)
		rc = -ENOENT;
	else if (!on_mount(n->fd, "", &v->store->place))
		rc = -EXDEV;
	if (rc < 0) {
		*err = rc;
		if (n->fd >= 0)
			close(n->fd);
		free(n->bname);
		free(n);
		return NULL;
	}
	__atomic_add_fetch(&v->node_fds, 1, __ATOMIC_RELAXED);
	n->ino = sb->st_ino;
	n->zone = parent->zone;
	n->data_fd = -1;
	pthread_mutex_init(&n->mu, NULL);
	pthread_rwlock_init(&n->io, NULL);
	if (node_load_stamp(v, n) == 0) {
		n->kind = n->stamp.kind;
		n->stamp_fresh = true; /* the lookup in progress checks it next */
	} else
		n->kind = S_ISDIR(sb->st_mode) ? STAMP_DIR : STAMP_REG;
	if (n->kind == STAMP_DIR && !S_ISDIR(sb->st_mode))
		n->stamp_valid = false, n->kind = STAMP_REG, n->deadline = INT64_MIN;
	return n;
}

/* The kernel holds n (found by name in parent) again: not pruned, and
 * both used just now. */
static void held_again(struct vfs *v, struct node *parent, struct node *n)
{
	__atomic_store_n(&n->pruned, false, __ATOMIC_RELAXED);
	node_used(v, parent);
	node_used(v, n);
}

struct node *node_get(struct vfs *v, struct node *parent, const char *bname, const struct stat *sb,
		      int *err)
{
	struct node *n = node_find(v, sb->st_ino), *fresh;
	struct stat cur;

	/* A node whose backing inode lost its last name while the kernel
	 * still holds it must not stand for a new entry that got the same
	 * inode number. */
	if (n && (n->zone_root || (fstat(n->fd, &cur) == 0 && cur.st_nlink > 0))) {
		held_again(v, parent, n);
		return n;
	}
	if (n) {
		node_unhash(v, n);
		node_put(v, n);
	}
	fresh = node_alloc(v, parent, bname, sb, err);
	if (!fresh)
		return NULL;
	pthread_mutex_lock(&v->lock);
	n = find_locked(v, sb->st_ino);
	if (n) {
		n->refs++;
	} else {
		n = fresh;
		fresh = NULL;
		n->refs = 1;
		n->parent = parent;
		parent->refs++;
		insert_locked(v, n);
	}
	pthread_mutex_unlock(&v->lock);
	if (fresh)
		node_destroy(v, fresh);
	held_again(v, parent, n);
	prune_kick(v);
	return n;
}

void node_move(struct vfs *v, struct node *n, struct node *parent, const char *bname)
{
	char *copy = strdup(bname);
	struct node *old;

	if (!copy)
		return;
	pthread_mutex_lock(&v->lock);
	old = n->parent;
	parent->refs++;
	n->parent = parent;
	free(n->bname);
	n->bname = copy;
	pthread_mutex_unlock(&v->lock);
	node_put(v, old); /* the reference n held on its old parent */
}

void node_insert(struct vfs *v, struct node *n)
{
	pthread_mutex_lock(&v->lock);
	if (!find_locked(v, n->ino))
		insert_locked(v, n);
	pthread_mutex_unlock(&v->lock);
}

void node_rebind(struct vfs *v, struct node *n, int fd, uint64_t ino)
{
	pthread_mutex_lock(&v->lock);
	pthread_mutex_lock(&n->mu);
	remove_locked(v, n);
	/* Same fd number: others may be using /proc/self/fd/N right now. */
	dup3(fd, n->fd, O_CLOEXEC);
	n->ino = ino;
	insert_locked(v, n);
	pthread_mutex_unlock(&n->mu);
	pthread_mutex_unlock(&v->lock);
	close(fd);
}

void node_unhash(struct vfs *v, struct node *n)
{
	pthread_mutex_lock(&v->lock);
	if (!n->zone_root)
		remove_locked(v, n);
	pthread_mutex_unlock(&v->lock);
}

/* Set on the reaper's thread: only there may node_mark_dead tell the
 * kernel at once. Inside a request (a single-threaded loop's RMDIR, say)
 * the invalidation could wait for a page whose READ queues behind it. */
static __thread bool notify_here;

void node_notify_from_this_thread(void)
{
	notify_here = true;
}

void node_mark_dead(struct vfs *v, struct node *n)
{
	bool was;

	pthread_mutex_lock(&v->lock);
	was = n->dead;
	n->dead = true;
	if (!n->zone_root)
		remove_locked(v, n); /* its inode number may be reused */
	pthread_mutex_unlock(&v->lock);
	/* Whatever the kernel caches of it goes now: attributes, and pages a
	 * mapping or a splice would still read. */
	if (!was && notify_here && v->notify.inode_gone)
		v->notify.inode_gone(v->notify.arg, n);
}

void node_table_free(struct vfs *v)
{
	for (size_t i = 0; i < v->nbuckets; i++) {
		struct node *n = v->buckets[i], *next;

		for (; n; n = next) {
			next = n->hnext;
			if (n->zone_root)
				continue; /* owned by vfs->zones */
			node_destroy(v, n);
		}
	}
	free(v->buckets);
	v->buckets = NULL;
}

/* ---- names ---- */

int vfs_encode(struct vfs *v, struct node *dir, const char *name, struct bname *b)
{
	int len = names_encrypt(v->keys->names, dir->stamp.id, name, b->full, sizeof(b->full));

	if (len < 0)
		return len;
	b->is_long = len > NAMES_SHORT_MAX;
	if (b->is_long)
		names_long_form(b->full, b->name, sizeof(b->name));
	else
		memcpy(b->name, b->full, (size_t)len + 1);
	return 0;
}

int vfs_decode(struct vfs *v, struct node *dir, const char *stored, char *out, size_t outlen)
{
	char full[NAMES_ENCODED_MAX + 2], side[NAMES_LONG_LEN + sizeof(NAMES_LONG_SUFFIX)];
	char check[NAMES_LONG_LEN + 1];
	struct stat st;
	ssize_t len;
	int fd;

	if (!names_is_long(stored))
		return names_decrypt(v->keys->names, dir->stamp.id, stored, out, outlen);
	snprintf(side, sizeof(side), "%.*s%s", NAMES_LONG_LEN, stored, NAMES_LONG_SUFFIX);
	/* Only a regular file is read (a fifo there must not block a lookup,
	 * a listing or the reaper). */
	fd = open_regular_at(dir->fd, side, O_RDONLY, 0, &st);
	if (fd < 0)
		return -EBADMSG;
	len = read(fd, full, sizeof(full) - 1);
	close(fd);
	if (len <= NAMES_SHORT_MAX || len > NAMES_ENCODED_MAX)
		return -EBADMSG;
	full[len] = '\0';
	/* The sidecar must belong to this long form, or it names another. */
	names_long_form(full, check, sizeof(check));
	if (strcmp(check, stored) != 0)
		return -EBADMSG;
	return names_decrypt(v->keys->names, dir->stamp.id, full, out, outlen);
}

/* The sidecar side in dirfd, open for writing: the one there when it is
 * a plain file of the store's with no other name, else a new one in its
 * place (what stood there, a link to something else, keeps its data). */
static int open_sidecar(int dirfd, const char *side)
{
	struct stat st;
	int fd = open_regular_at(dirfd, side, O_WRONLY, 1, &st);

	if (fd >= 0)
		return fd;
	if (unlinkat(dirfd, side, 0) < 0 && errno != ENOENT)
		return -errno;
	fd = openat(dirfd, side, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

int vfs_write_sidecar(struct node *dir, const struct bname *b)
{
	char side[NAMES_LONG_LEN + sizeof(NAMES_LONG_SUFFIX)];
	size_t len = strlen(b->full);
	int fd, rc = 0;

	snprintf(side, sizeof(side), "%.*s%s", NAMES_LONG_LEN, b->name, NAMES_LONG_SUFFIX);
	fd = open_sidecar(dir->fd, side);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, 0) < 0 || write(fd, b->full, len) != (ssize_t)len)
		rc = -EIO;
	close(fd);
	return rc;
}

void vfs_remove_sidecar(struct node *dir, const char *stored)
{
	char side[NAMES_LONG_LEN + sizeof(NAMES_LONG_SUFFIX)];

	if (!names_is_long(stored))
		return;
	snprintf(side, sizeof(side), "%.*s%s", NAMES_LONG_LEN, stored, NAMES_LONG_SUFFIX);
	unlinkat(dir->fd, side, 0);
}
