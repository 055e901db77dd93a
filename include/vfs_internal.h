/* vfs_internal.h - what the core's own files share: the mount-wide context,
 * nodes and their table, and helpers for names, stamps and removal. Not
 * for the FUSE edge, which sees only vfs.h. */
#ifndef EKYCFS_VFS_INTERNAL_H
#define EKYCFS_VFS_INTERNAL_H

#include <pthread.h>

#include "names.h"
#include "reaper.h"
#include "vfs.h"

/* One backing inode the kernel or the core currently refers to. The FUSE
 * inode number is the node's address (the root is vfs->root). */
struct node {
	struct node *hnext; /* table chain; vfs->lock */
	uint64_t ino;	    /* backing inode number, the table key */
	int fd;		    /* O_PATH for files, O_RDONLY|O_DIRECTORY for dirs */
	uint64_t nlookup;   /* kernel references; vfs->lock */
	uint32_t refs;	    /* core references (handles, reaper items, calls); vfs->lock */
	int zone;	    /* zone index; -1 for the root */
	uint8_t kind;	    /* enum stamp_kind; 0 for the root */
	bool zone_root;	    /* zone directory: never expires, never freed */
	bool in_table;	    /* vfs->lock */
	bool dead;	    /* vanished or removed: handles get ESTALE; vfs->lock */
	bool pruned;	    /* the kernel was asked to drop it; atomic */
	uint64_t used;	    /* vfs->tick when last used; atomic */

	/* where the node sits (the name it was made or found by, moved by
	 * renames, links, and unlinks of a hard link's current name): folder
	 * re-checks, and pruning; vfs->lock */
	struct node *parent; /* counted reference, NULL for zone roots */
	char *bname;	     /* backing name in parent */

	/* trusted stamp in memory; mu */
	pthread_mutex_t mu;
	struct stamp stamp;
	bool stamp_valid;
	bool stamp_dirty; /* newer than the xattr on disk */
	bool stamp_fresh; /* just read from disk: the next load may skip */
	int64_t deadline; /* ns; INT64_MAX for zone roots */
	int64_t disk_mtime;

	/* open content; io (write-locked to change, read-locked to read) */
	pthread_rwlock_t io;
	int data_fd;	       /* O_RDWR while opens > 0, else -1 */
	struct filekey *fk;    /* while opens > 0 */
	bool header_unchecked; /* fk came from the stamp; the first I/O checks
				* the header (vfs_io.c); atomic, set under io */
	off_t size;	       /* plain size while opens > 0 */
	unsigned opens;
	bool unlinked;		    /* removed by a user while open: shred at last close
				     * or at its deadline, whichever comes first */
	char trash[33];		    /* its name in the trash */
	struct node *next_deferred; /* in vfs->deferred while unlinked; vfs->lock */
};

struct handle {
	struct node *n;
	bool append;
	char *text; /* the status file's snapshot, taken at open */
	size_t text_len;
};

struct dirhandle {
	struct node *n;
	void *dp; /* DIR *, NULL for the root */
	off_t pos;
};

struct vfs {
	const struct config *cfg;
	struct store *store;
	const struct keys *keys;
	struct audit *audit;
	clock_fn clock;
	void *clock_arg;
	struct reaper *reaper;
	struct shredder *shredder;
	struct vfs_notify notify;
	double timeout; /* longest kernel cache time, seconds */
	bool as_root;	/* running as root: chown new entries to the caller */
	bool cores;	/* more than one CPU: a lone read may be halved */
	int io_busy;	/* reads and writes in progress; atomic */

	pthread_mutex_t lock;
	struct node **buckets;	 /* lock */
	size_t nbuckets, nnodes; /* lock */
	struct node root;
	struct node status;    /* the read-only control file in the root */
	struct node trash;     /* the trash folder, for the reaper items of */
	struct node *deferred; /* files removed while open (a reference each); lock */
	struct node *zones[CONFIG_MAX_ZONES];
	struct vfs_stats stats; /* atomics */

	/* descriptor budget (prune.c) */
	size_t node_fds; /* descriptors held by nodes of node_alloc; atomic */
	uint64_t tick;	 /* use counter for node->used; atomic */
	size_t fd_high;	 /* prune past this many node_fds; set before start */
	pthread_mutex_t prune_mu;
	pthread_cond_t prune_cv;
	pthread_t pruner;
	bool prune_running;	       /* atomic */
	bool prune_stop, prune_kicked; /* prune_mu */
};

/* Encoded names: the backing name (short or long form) and, for a long
 * one, the full encoded form kept in its sidecar. */
struct bname {
	char name[NAMES_ENCODED_MAX + 1]; /* what is stored in the directory */
	char full[NAMES_ENCODED_MAX + 1]; /* the full encoded form */
	bool is_long;
};

int64_t vfs_now(struct vfs *v);
int64_t vfs_ttl(struct vfs *v, int zone);

/* node.c */
int node_table_init(struct vfs *v);
void node_table_free(struct vfs *v);
/* Find or make the node of entry bname in parent (sb from fstatat), with
 * one core reference. Returns NULL and *err on failure. */
struct node *node_get(struct vfs *v, struct node *parent, const char *bname, const struct stat *sb,
		      int *err);
/* Find by backing inode, under vfs->lock; no reference taken. */
struct node *node_find_locked(struct vfs *v, uint64_t ino);
/* Find by backing inode with one core reference, or NULL. */
struct node *node_find(struct vfs *v, uint64_t ino);
void node_ref(struct vfs *v, struct node *n);
/* Put a node made by the caller (a zone root) in the table. */
void node_insert(struct vfs *v, struct node *n);
void node_put(struct vfs *v, struct node *n);
/* Point a directory node at (parent, bname) after a rename. */
void node_move(struct vfs *v, struct node *n, struct node *parent, const char *bname);
/* Point n at another backing inode (fd an O_PATH fd on it, ino its
 * number), rehashing it; n's old fd is closed. */
void node_rebind(struct vfs *v, struct node *n, int fd, uint64_t ino);
/* Take n out of the table: its backing inode lost its last name, and the
 * inode number may come back for a new entry. */
void node_unhash(struct vfs *v, struct node *n);
/* Vanished or removed: handles get ESTALE; also unhashed. On the thread
 * that called node_notify_from_this_thread (the reaper's), the first time,
 * the kernel is also told to drop what it caches of n (inode_gone). */
void node_mark_dead(struct vfs *v, struct node *n);
void node_notify_from_this_thread(void);
/* Re-read the stamp from disk unless memory holds a newer one. */
int node_load_stamp(struct vfs *v, struct node *n);
/* Record a content change at now (memory only; flushed lazily). */
void node_touch(struct vfs *v, struct node *n, int64_t now);
/* Record that an entry was added to directory n. */
void node_dir_touch(struct vfs *v, struct node *n, int64_t now);
int node_flush_stamp(struct vfs *v, struct node *n);
int64_t node_deadline(struct node *n);
/* A copy of n's stamp taken under its lock; returns whether it is valid. */
bool node_stamp(struct node *n, struct stamp *out);
/* 0 when n is live at now (its deadline in *deadline), -ENOENT when it
 * has vanished. Reloads the stamp. */
int node_check_live(struct vfs *v, struct node *n, int64_t now, int64_t *deadline);
/* "/proc/self/fd/N" for n->fd. */
void node_path(const struct node *n, char *buf, size_t len);
/* n's attributes as users see them; a pending stamp is written first. */
int node_stat(struct vfs *v, struct node *n, struct stat *st);

/* The entry bname (stat sb) of dir as a kernel would look it up at now:
 * a lookup reference in e, or -ENOENT when it has vanished. */
int vfs_entry_at(struct vfs *v, struct node *dir, const char *bname, const struct stat *sb,
		 int64_t now, struct vfs_entry *e);

/* Make a content file (regular, symlink or fifo) named name in parent,
 * with its header and stamp; e as for a lookup. The open O_RDWR fd is
 * returned in *fdp when fdp is not NULL. */
int vfs_make_file(struct vfs *v, struct node *parent, const char *name, mode_t mode, uint8_t kind,
		  const struct vfs_caller *c, struct vfs_entry *e, int *fdp);

/* names */
int vfs_encode(struct vfs *v, struct node *dir, const char *name, struct bname *b);
/* Decode a backing name found in dir (reading a long form's sidecar). */
int vfs_decode(struct vfs *v, struct node *dir, const char *stored, char *out, size_t outlen);
int vfs_write_sidecar(struct node *dir, const struct bname *b);
void vfs_remove_sidecar(struct node *dir, const char *stored);

/* prune.c */
/* n (or a child of n) was just used: it is pruned last. */
void node_used(struct vfs *v, struct node *n);
/* A node took a descriptor: past the budget, wake the pruner. */
void prune_kick(struct vfs *v);
/* Nodes hold more descriptors than the budget: a listing hands out plain
 * entries (the kernel looks up what it uses) instead of adding more. */
bool prune_over_budget(struct vfs *v);
__attribute__((warn_unused_result)) int prune_start(struct vfs *v);
void prune_stop(struct vfs *v);

/* status.c */
bool vfs_is_virtual(struct vfs *v, struct node *n);
int vfs_status_text(struct vfs *v, char **text, size_t *len);

/* expire.c */
void vfs_schedule(struct vfs *v, struct node *dir, const char *bname, int64_t deadline);
void vfs_reap(void *ctx, struct reaper_item *item);
void vfs_reaper_release(void *ctx, void *dir);
/* dir just lost an entry: if its own deadline has passed, have the reaper
 * judge it again now (it vanishes when nothing live is left in it). */
void vfs_recheck_dir(struct vfs *v, struct node *dir, int64_t now);
/* Is the entry name (backing inode ino) of the directory dirfd of zone
 * live at now? Judged by the node the core holds, else by the stamp on
 * disk; a directory past its deadline is live while it holds a live
 * entry. *kind gets the entry's kind. */
bool vfs_entry_live(struct vfs *v, int dirfd, int zone, const char *name, uint64_t ino, int64_t now,
		    uint8_t *kind);
/* Is dir (a backing dir fd) holding any live entry at now? */
bool vfs_dir_has_live(struct vfs *v, int dirfd, int64_t now, int zone);
/* The same for the directory name inside dirfd. */
bool vfs_dir_has_live_at(struct vfs *v, int dirfd, const char *name, int64_t now, int zone);
/* Destroy what is left inside dir (entries that vanished). */
int vfs_purge_dir(struct vfs *v, struct node *dir);
/* Move a removed regular file (last name) to the trash and queue its
 * shredding, or defer it to the last close when open. */
int vfs_trash_file(struct vfs *v, struct node *dir, const char *bname, enum audit_event why);
void vfs_audit(struct vfs *v, enum audit_event ev, int zone, const struct stamp *s, bool valid,
	       int64_t bytes);
/* The backing file now named tname in the trash lost its last name: shred
 * it, or when node n (may be NULL) is open, at its last close. */
void vfs_dispose(struct vfs *v, struct node *n, const char *tname, int zone, const struct stamp *s,
		 bool valid);
/* n, removed while open, was shredded at its last close: it leaves the
 * list of such files (and the reference the list held). */
void vfs_deferred_done(struct vfs *v, struct node *n);
void vfs_submit_shred(struct vfs *v, const char *trash_name, int zone, const struct stamp *s,
		      bool valid);

#endif
