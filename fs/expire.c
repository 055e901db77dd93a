/* expire.c - retention: the sweep before serving, the reaper's verdict on
 * each due entry, and how vanished or deleted entries reach the shredder. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"
#include "util.h"
#include "vfs_internal.h"

/* ---- audit and shredding ---- */

static void fill_rec(struct vfs *v, struct audit_rec *r, enum audit_event ev, int zone,
		     const struct stamp *s, bool valid, int64_t bytes)
{
	memset(r, 0, sizeof(*r));
	r->event = ev;
	r->zone = zone >= 0 ? v->cfg->zones[zone].name : "";
	r->bytes = bytes;
	if (valid) {
		crypto_audit_id(v->keys, s->id, r->id);
		r->born = s->birth;
		r->deadline = expiry_deadline(s->mtime, vfs_ttl(v, zone));
	}
}

void vfs_audit(struct vfs *v, enum audit_event ev, int zone, const struct stamp *s, bool valid,
	       int64_t bytes)
{
	struct audit_rec r;

	if (ev == AUDIT_VANISHED) /* status counts what the audit log says */
		__atomic_add_fetch(&v->stats.vanished, 1, __ATOMIC_RELAXED);
	fill_rec(v, &r, ev, zone, s, valid, bytes);
	audit_log(v->audit, &r, vfs_now(v));
}

void vfs_submit_shred(struct vfs *v, const char *trash_name, int zone, const struct stamp *s,
		      bool valid)
{
	struct audit_rec r;
	off_t bytes = 0;

	fill_rec(v, &r, AUDIT_SHREDDED, zone, s, valid, -1);
	if (v->shredder && shredder_submit(v->shredder, trash_name, &r) == 0)
		return;
	/* Before the worker runs (the sweep), or when it cannot queue. */
	if (shred_file_at(&shred_sys_default, v->store->trash_fd, trash_name, v->cfg->shred_passes,
			  &bytes) < 0)
		return; /* stays in the trash for the next sweep */
	__atomic_add_fetch(&v->stats.shreds, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&v->stats.shred_bytes, (uint64_t)bytes, __ATOMIC_RELAXED);
	r.bytes = bytes;
	audit_log(v->audit, &r, vfs_now(v));
}

/* Move the regular file bname of dirfd to the trash and shred it, or, when
 * a user removed it while it is open, when it is last closed. */
static int trash_at(struct vfs *v, int dirfd, const char *bname, int zone, enum audit_event why)
{
	struct stamp s = {0};
	struct node *n = NULL;
	char tname[33];
	struct stat sb;
	bool valid;
	int rc;

	rc = store_stat_stamp(v->keys, dirfd, bname, &s, &sb);
	if (rc < 0 && rc != -EBADMSG)
		return rc;
	valid = rc == 0;
	n = node_find(v, sb.st_ino);
	/* Vanished: open handles and the kernel's caches stop first, before
	 * the slower work of moving and logging. */
	if (n && why != AUDIT_DELETED)
		node_mark_dead(v, n);
	shred_random_name(tname);
	if (renameat(dirfd, bname, v->store->trash_fd, tname) < 0) {
		node_put(v, n);
		return -errno;
	}
	vfs_audit(v, why, zone, &s, valid, layout_plain_size(sb.st_size));
	if (n && why != AUDIT_DELETED) {
		pthread_rwlock_wrlock(&n->io); /* I/O already under way ends */
		pthread_rwlock_unlock(&n->io);
	}
	vfs_dispose(v, why == AUDIT_DELETED ? n : NULL, tname, zone, &s, valid);
	node_put(v, n);
	return 0;
}

void vfs_dispose(struct vfs *v, struct node *n, const char *tname, int zone, const struct stamp *s,
		 bool valid)
{
	bool deferred = false;

	if (n) {
		node_unhash(v, n);
		pthread_rwlock_wrlock(&n->io);
		if (n->opens > 0) {
			/* POSIX: who has it open keeps reading it until close,
			 * or here until its deadline (reap_deferred). */
			n->unlinked = deferred = true;
			snprintf(n->trash, sizeof(n->trash), "%s", tname);
			pthread_mutex_lock(&v->lock);
			n->refs++;
			n->next_deferred = v->deferred;
			v->deferred = n;
			pthread_mutex_unlock(&v->lock);
		}
		pthread_rwlock_unlock(&n->io);
	}
	if (deferred)
		vfs_schedule(v, &v->trash, tname, node_deadline(n));
	else
		vfs_submit_shred(v, tname, zone, s, valid);
}

void vfs_deferred_done(struct vfs *v, struct node *n)
{
	struct node **p;
	bool listed;

	pthread_mutex_lock(&v->lock);
	for (p = &v->deferred; *p && *p != n; p = &(*p)->next_deferred)
		;
	listed = *p != NULL;
	if (listed)
		*p = n->next_deferred;
	pthread_mutex_unlock(&v->lock);
	if (listed)
		node_put(v, n);
}

/* The deadline of a file removed while still open (trash name tname):
 * it vanishes for its handles too and is shredded now, not at its last
 * close. A write since the removal moved the deadline: judged again
 * then. */
static void reap_deferred(struct vfs *v, const char *tname, int64_t now)
{
	struct node *n;
	struct stamp s;
	int64_t deadline;
	bool due, valid;

	pthread_mutex_lock(&v->lock);
	for (n = v->deferred; n && strcmp(n->trash, tname) != 0; n = n->next_deferred)
		;
	if (n)
		n->refs++;
	pthread_mutex_unlock(&v->lock);
	if (!n)
		return; /* closed, and shredded then */
	deadline = node_deadline(n);
	if (now < deadline) {
		vfs_schedule(v, &v->trash, tname, deadline);
		node_put(v, n);
		return;
	}
	node_mark_dead(v, n);
	pthread_rwlock_wrlock(&n->io); /* I/O under way ends first */
	due = n->unlinked;
	n->unlinked = false; /* the last close has nothing left to shred */
	pthread_rwlock_unlock(&n->io);
	if (due) {
		valid = node_stamp(n, &s);
		vfs_submit_shred(v, tname, n->zone, &s, valid);
		vfs_deferred_done(v, n);
	}
	node_put(v, n);
}

int vfs_trash_file(struct vfs *v, struct node *dir, const char *bname, enum audit_event why)
{
	int rc = trash_at(v, dir->fd, bname, dir->zone, why);

	if (rc == 0)
		vfs_remove_sidecar(dir, bname);
	return rc;
}

/* ---- liveness of directories ---- */

/* Whether a stamp read failed for want of resources (descriptors,
 * memory), which says nothing about the entry: it is kept, and the reaper
 * looks again. Any other failure is a verdict (fail closed): a stamp that
 * cannot be read because of what is on disk counts as invalid, or else an
 * edit of the backing store could keep an entry forever. */
static bool cannot_look(int rc)
{
	return rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM;
}

static bool skip_name(const char *name)
{
	return strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || names_is_sidecar(name);
}

bool vfs_dir_has_live_at(struct vfs *v, int dirfd, const char *name, int64_t now, int zone)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	bool live;

	if (fd < 0)
		return cannot_look(-errno); /* then keep it */
	live = vfs_dir_has_live(v, fd, now, zone);
	close(fd);
	return live;
}

bool vfs_entry_live(struct vfs *v, int dirfd, int zone, const char *name, uint64_t ino, int64_t now,
		    uint8_t *kind)
{
	struct node *n = node_find(v, ino);
	struct stamp s;
	struct stat sb;
	int64_t deadline;
	bool live;
	int rc;

	if (n) {
		live = node_check_live(v, n, now, &deadline) == 0;
		*kind = n->kind;
		node_put(v, n);
		return live;
	}
	rc = store_read_stamp(v->keys, dirfd, name, &s, &ino);
	if (cannot_look(rc)) {
		/* Cannot look now: listed as unknown, the kernel's own lookup
		 * shows any error; the reaper is not told it vanished. */
		*kind = fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode)
				? STAMP_DIR
				: 0;
		return true;
	}
	if (rc < 0)
		return false;
	*kind = s.kind;
	if (!expiry_passed(true, s.mtime, vfs_ttl(v, zone), now))
		return true;
	return s.kind == STAMP_DIR && vfs_dir_has_live_at(v, dirfd, name, now, zone);
}

bool vfs_dir_has_live(struct vfs *v, int dirfd, int64_t now, int zone)
{
	DIR *dp = dir_listing(dirfd, ".");
	struct dirent *d;
	uint8_t kind;
	bool live = false;

	if (!dp) /* out of descriptors: never judge a directory empty blind */
		return cannot_look(-errno);
	while (!live && (d = readdir(dp)))
		live = !skip_name(d->d_name) &&
		       vfs_entry_live(v, dirfd, zone, d->d_name, d->d_ino, now, &kind);
	closedir(dp);
	return live;
}

/* ---- destroying whole directories ---- */

static int purge_fd(struct vfs *v, int dirfd, int zone, enum audit_event ev);

/* Empty and remove the directory name in dirfd, logging it as ev. */
static int purge_subdir(struct vfs *v, int dirfd, const char *name, int zone, enum audit_event ev)
{
	struct stamp s = {0};
	struct stat sb;
	bool valid;
	int fd;
	struct node *n;

	/* Something mounted there is not the store's: never gone into. */
	if (!on_mount(dirfd, name, &v->store->place))
		return -EBUSY;
	valid = store_stat_stamp(v->keys, dirfd, name, &s, &sb) == 0;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		purge_fd(v, fd, zone, ev);
		close(fd);
	}
	if (shred_dir_at(&shred_sys_default, dirfd, name) < 0)
		return -ENOTEMPTY;
	n = node_find(v, sb.st_ino);
	if (n)
		node_mark_dead(v, n); /* its inode number may come back */
	node_put(v, n);
	vfs_audit(v, ev, zone, &s, valid, 0);
	return 0;
}

/* Destroy everything inside dirfd: files shredded, directories emptied and
 * removed. Each entry is logged as ev. */
static int purge_fd(struct vfs *v, int dirfd, int zone, enum audit_event ev)
{
	DIR *dp = dir_listing(dirfd, ".");
	struct dirent *d;
	int rc = 0;

	if (!dp)
		return -errno;
	while ((d = readdir(dp))) {
		struct stat sb;

		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd, d->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(sb.st_mode)) {
			if (purge_subdir(v, dirfd, d->d_name, zone, ev) < 0)
				rc = -ENOTEMPTY;
		} else if (names_is_sidecar(d->d_name) || sb.st_nlink > 1 || !S_ISREG(sb.st_mode)) {
			unlinkat(dirfd, d->d_name, 0);
		} else if (trash_at(v, dirfd, d->d_name, zone, ev) < 0) {
			rc = -EIO;
		}
	}
	closedir(dp);
	return rc;
}

int vfs_purge_dir(struct vfs *v, struct node *dir)
{
	return purge_fd(v, dir->fd, dir->zone, AUDIT_VANISHED);
}

/* ---- the reaper's side ---- */

void vfs_schedule(struct vfs *v, struct node *dir, const char *bname, int64_t deadline)
{
	if (!v->reaper || !dir || dir == &v->root)
		return;
	node_ref(v, dir);
	/* On failure the push released the reference; the next sweep finds
	 * the entry again. */
	if (reaper_push(v->reaper, deadline, dir, bname) < 0) {
	}
}

void vfs_reaper_release(void *ctx, void *dir)
{
	node_put(ctx, dir);
}

void vfs_recheck_dir(struct vfs *v, struct node *dir, int64_t now)
{
	struct node *parent;
	char *bname;

	if (dir->zone_root || vfs_is_virtual(v, dir) || now < node_deadline(dir))
		return;
	pthread_mutex_lock(&v->lock);
	parent = dir->parent;
	if (parent)
		parent->refs++; /* taken under the lock: a rename may drop dir's */
	bname = dir->bname ? strdup(dir->bname) : NULL;
	pthread_mutex_unlock(&v->lock);
	if (parent && bname && v->reaper) {
		/* The item owns the reference; a failed push released it, and
		 * the next sweep finds the directory. */
		if (reaper_push(v->reaper, now, parent, bname) < 0) {
		}
	} else {
		node_put(v, parent);
	}
	free(bname);
}

/* The entry bname in dir has vanished: remove it, shred it, tell the
 * kernel. n is its node when the core holds one. */
static void vanish(struct vfs *v, struct node *dir, const char *bname, const struct stat *sb,
		   struct node *n, int64_t now)
{
	char plain[NAMES_PLAIN_MAX + 1];
	bool named = vfs_decode(v, dir, bname, plain, sizeof(plain)) >= 0;
	int rc;

	if (S_ISDIR(sb->st_mode)) {
		rc = purge_subdir(v, dir->fd, bname, dir->zone, AUDIT_VANISHED);
	} else if (sb->st_nlink > 1) {
		/* One name of a hard-linked file; the others have their items. */
		rc = unlinkat(dir->fd, bname, 0) < 0 ? -errno : 0;
		if (rc == 0) {
			struct stamp s = {0};
			bool valid = n && node_stamp(n, &s);

			vfs_audit(v, AUDIT_VANISHED, dir->zone, &s, valid, -1);
		}
	} else {
		rc = vfs_trash_file(v, dir, bname, AUDIT_VANISHED);
	}
	if (rc < 0) {
		/* Not removed (out of descriptors, or a directory that got a
		 * new entry): the reaper judges it again in a second. */
		if (cannot_look(rc) || rc == -ENOTEMPTY)
			vfs_schedule(v, dir, bname, now + NSEC_PER_SEC);
		goto out;
	}
	vfs_remove_sidecar(dir, bname);
	/* Marking tells the kernel (once); a hard-linked file's other names
	 * live on, but what the kernel caches of it goes all the same. */
	if (n && (S_ISDIR(sb->st_mode) || sb->st_nlink <= 1))
		node_mark_dead(v, n);
	else if (n && v->notify.inode_gone)
		v->notify.inode_gone(v->notify.arg, n);
	if (v->notify.entry_gone && named)
		v->notify.entry_gone(v->notify.arg, dir, n, plain);
	vfs_recheck_dir(v, dir, now);
out:
	crypto_wipe(plain, sizeof(plain));
}

/* Verdict on an entry not held in memory: *deadline, and whether it is
 * live (a directory past its deadline is live while it holds live ones). */
static bool judge_on_disk(struct vfs *v, struct node *dir, const char *bname, int64_t now,
			  int64_t *deadline)
{
	struct stamp s;
	uint64_t ino;
	int rc = store_read_stamp(v->keys, dir->fd, bname, &s, &ino);

	if (cannot_look(rc)) {
		*deadline = now + NSEC_PER_SEC; /* cannot look now: again in a second */
		return true;
	}
	if (rc == -ENOENT) { /* removed meanwhile */
		*deadline = INT64_MIN;
		return false;
	}
	if (rc < 0) {
		__atomic_add_fetch(&v->stats.invalid_stamps, 1, __ATOMIC_RELAXED);
		vfs_audit(v, AUDIT_INVALID_STAMP, dir->zone, &s, false, -1);
		*deadline = INT64_MIN;
		return false;
	}
	*deadline = expiry_deadline(s.mtime, vfs_ttl(v, dir->zone));
	if (now < *deadline)
		return true;
	if (s.kind == STAMP_DIR && vfs_dir_has_live_at(v, dir->fd, bname, now, dir->zone)) {
		*deadline = INT64_MAX; /* judged again when its last entry goes */
		return true;
	}
	return false;
}

void vfs_reap(void *ctx, struct reaper_item *item)
{
	struct vfs *v = ctx;
	struct node *dir = item->dir, *n;
	int64_t now = vfs_now(v), deadline;
	struct stat sb;
	bool live;

	node_notify_from_this_thread(); /* the reaper's thread, no request */

	if (dir == &v->trash) {
		reap_deferred(v, item->name, now);
		goto out;
	}
	if (dir->dead || names_is_sidecar(item->name) ||
	    fstatat(dir->fd, item->name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		goto out; /* renamed or removed meanwhile: its new place has an item */
	n = node_find(v, sb.st_ino);
	if (n) {
		live = node_check_live(v, n, now, &deadline) == 0;
		if (live && n->kind == STAMP_DIR && now >= node_deadline(n))
			deadline = INT64_MAX;
		if (!live && deadline == INT64_MIN) /* its stamp went bad in place */
			vfs_audit(v, AUDIT_INVALID_STAMP, dir->zone, &(struct stamp){0}, false, -1);
	} else {
		live = judge_on_disk(v, dir, item->name, now, &deadline);
	}
	if (live && deadline != INT64_MAX)
		vfs_schedule(v, dir, item->name, deadline);
	else if (!live)
		vanish(v, dir, item->name, &sb, n, now);
	node_put(v, n);
out:
	reaper_item_release(v->reaper, item);
}

/* ---- the sweep ---- */

static void sweep_trash(struct vfs *v)
{
	DIR *dp = dir_listing(v->store->trash_fd, ".");
	struct dirent *d;
	off_t bytes;

	if (!dp)
		return;
	while ((d = readdir(dp))) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		/* Files, and directories a crash left half-made (empty). */
		if (shred_file_at(&shred_sys_default, v->store->trash_fd, d->d_name,
				  v->cfg->shred_passes, &bytes) == 0 ||
		    shred_dir_at(&shred_sys_default, v->store->trash_fd, d->d_name) == 0) {
			struct audit_rec r;

			fill_rec(v, &r, AUDIT_SHREDDED, -1, NULL, false, bytes);
			audit_log(v->audit, &r, vfs_now(v));
			__atomic_add_fetch(&v->stats.shreds, 1, __ATOMIC_RELAXED);
			__atomic_add_fetch(&v->stats.shred_bytes, (uint64_t)bytes,
					   __ATOMIC_RELAXED);
		}
	}
	closedir(dp);
}

/* A long form's sidecar whose entry is gone is removed. */
static void sweep_sidecar(int dirfd, const char *name)
{
	char owner[NAMES_LONG_LEN + 1];
	struct stat sb;

	snprintf(owner, sizeof(owner), "%.*s", NAMES_LONG_LEN, name);
	if (fstatat(dirfd, owner, &sb, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
		unlinkat(dirfd, name, 0);
}

static size_t sweep_dir(struct vfs *v, struct node *dir, int64_t now, bool schedule);

/* Sweep one entry of dir; returns 1 when it stays live. */
static int sweep_entry(struct vfs *v, struct node *dir, const char *name, int64_t now,
		       bool schedule)
{
	struct stamp s;
	struct stat sb;
	int64_t deadline;
	int rc;
	bool valid;

	/* Another mount over a name in the store is not the store's: it is
	 * neither judged nor touched (and keeps its folder). */
	if (!on_mount(dir->fd, name, &v->store->place))
		return 1;
	rc = store_stat_stamp(v->keys, dir->fd, name, &s, &sb);
	valid = rc == 0;
	/* sb is filled unless the open failed; a bad or missing stamp is
	 * invalid, a failure to look keeps the entry for a later look. */
	if (rc < 0 && rc != -EBADMSG && fstatat(dir->fd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return 0; /* gone meanwhile */
	if (cannot_look(rc)) {
		if (schedule)
			vfs_schedule(v, dir, name, now + NSEC_PER_SEC);
		return 1;
	}
	if (!valid) {
		__atomic_add_fetch(&v->stats.invalid_stamps, 1, __ATOMIC_RELAXED);
		vfs_audit(v, AUDIT_INVALID_STAMP, dir->zone, &s, false, -1);
	}
	deadline = valid ? expiry_deadline(s.mtime, vfs_ttl(v, dir->zone)) : INT64_MIN;
	if (S_ISDIR(sb.st_mode) && valid) {
		int err;
		struct node *child = node_get(v, dir, name, &sb, &err);
		size_t live = child ? sweep_dir(v, child, now, schedule) : 1;

		node_put(v, child);
		if (now < deadline || live > 0) {
			if (schedule && now < deadline)
				vfs_schedule(v, dir, name, deadline);
			return 1;
		}
		vanish(v, dir, name, &sb, NULL, now);
		return 0;
	}
	if (valid && now < deadline) {
		if (schedule)
			vfs_schedule(v, dir, name, deadline);
		return 1;
	}
	vanish(v, dir, name, &sb, NULL, now);
	return 0;
}

static size_t sweep_dir(struct vfs *v, struct node *dir, int64_t now, bool schedule)
{
	DIR *dp = dir_listing(dir->fd, ".");
	struct dirent *d;
	size_t live = 0;

	if (!dp)
		return 1; /* unreadable: keep it, never destroy blindly */
	while ((d = readdir(dp))) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (names_is_sidecar(d->d_name))
			sweep_sidecar(dir->fd, d->d_name);
		else
			live += (size_t)sweep_entry(v, dir, d->d_name, now, schedule);
	}
	closedir(dp);
	return live;
}

int vfs_sweep(struct vfs *v, bool schedule)
{
	int64_t now = vfs_now(v);

	sweep_trash(v);
	for (size_t i = 0; i < v->store->nzones; i++) {
		if (!v->zones[i])
			continue;
		if (v->store->destroy_all || v->store->zone_reset[i])
			purge_fd(v, v->zones[i]->fd, (int)i, AUDIT_DESTROYED);
		else
			sweep_dir(v, v->zones[i], now, schedule);
	}
	return 0;
}
