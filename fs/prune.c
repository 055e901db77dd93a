/* prune.c - the descriptor budget: past a high-water mark of descriptors
 * held for cached entries, ask the kernel to drop the ones used longest ago
 * (it then forgets their inodes and the core closes their descriptors). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <sodium.h>

#include "vfs_internal.h"

#define PRUNE_PAUSE_NS (2 * 1000 * 1000) /* let FORGETs arrive between passes */
#define PRUNE_MIN_HIGH 32

struct victim {
	uint64_t used, ino;
	struct node *n; /* only compared until found in the table again */
};

struct asked {
	struct node *parent; /* counted reference */
	char *bname;
};

void node_used(struct vfs *v, struct node *n)
{
	uint64_t t = __atomic_add_fetch(&v->tick, 1, __ATOMIC_RELAXED);

	__atomic_store_n(&n->used, t, __ATOMIC_RELAXED);
}

size_t vfs_node_fds(struct vfs *v)
{
	return __atomic_load_n(&v->node_fds, __ATOMIC_RELAXED);
}

void vfs_set_fd_budget(struct vfs *v, size_t high)
{
	v->fd_high = high;
}

static int by_use(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;

	return x->used < y->used ? -1 : x->used > y->used;
}

/* A file the kernel holds by a name the core knows. */
static bool candidate_locked(struct vfs *v, struct node *n)
{
	/* Not folders: dropping one that is a process's working directory
	 * makes its getcwd() fail until the path is looked up again. */
	return !n->zone_root && n != &v->root && n->kind != STAMP_DIR && !n->dead &&
	       n->nlookup > 0 && n->parent && n->bname &&
	       !__atomic_load_n(&n->pruned, __ATOMIC_RELAXED);
}

static bool in_use(struct node *n)
{
	bool open;

	if (pthread_rwlock_tryrdlock(&n->io) != 0)
		return true; /* being opened, closed or written right now */
	open = n->opens > 0;
	pthread_rwlock_unlock(&n->io);
	return open;
}

/* Every candidate with its use, in *out; how many. */
static size_t collect(struct vfs *v, struct victim **out)
{
	struct victim *c;
	size_t nc = 0;

	pthread_mutex_lock(&v->lock);
	c = malloc((v->nnodes + 1) * sizeof(*c));
	for (size_t i = 0; c && i < v->nbuckets; i++)
		for (struct node *n = v->buckets[i]; n; n = n->hnext)
			if (nc < v->nnodes && candidate_locked(v, n))
				c[nc++] = (struct victim){
					__atomic_load_n(&n->used, __ATOMIC_RELAXED), n->ino, n};
	pthread_mutex_unlock(&v->lock);
	*out = c;
	return nc;
}

/* Up to want of the sorted candidates c that are still in the table, still
 * candidates and not open, into out (parent reference, backing name). */
static size_t take(struct vfs *v, const struct victim *c, size_t nc, size_t want, struct asked *out)
{
	size_t taken = 0;

	pthread_mutex_lock(&v->lock);
	for (size_t i = 0; i < nc && taken < want; i++) {
		struct node *n = node_find_locked(v, c[i].ino);
		char *copy;

		if (n != c[i].n || !candidate_locked(v, n) || in_use(n))
			continue;
		copy = strdup(n->bname);
		if (!copy)
			break;
		__atomic_store_n(&n->pruned, true, __ATOMIC_RELAXED);
		n->parent->refs++;
		out[taken++] = (struct asked){n->parent, copy};
	}
	pthread_mutex_unlock(&v->lock);
	return taken;
}

size_t vfs_prune(struct vfs *v, size_t keep)
{
	size_t have = vfs_node_fds(v), want, n, nc, asked = 0;
	struct victim *c;
	struct asked *a;
	char name[NAMES_PLAIN_MAX + 1];

	if (have <= keep || !v->notify.entry_gone)
		return 0;
	want = have - keep;
	a = calloc(want, sizeof(*a));
	if (!a)
		return 0;
	/* Sorted without the lock: lookups go on meanwhile. */
	nc = collect(v, &c);
	if (!c) {
		free(a);
		return 0;
	}
	qsort(c, nc, sizeof(*c), by_use);
	n = take(v, c, nc, want, a);
	free(c);
	for (size_t i = 0; i < n; i++) {
		/* The kernel knows the entry by its plain name. */
		if (vfs_decode(v, a[i].parent, a[i].bname, name, sizeof(name)) >= 0) {
			v->notify.entry_gone(v->notify.arg, a[i].parent, NULL, name);
			asked++;
		}
		sodium_memzero(name, sizeof(name));
		free(a[i].bname);
		node_put(v, a[i].parent);
	}
	free(a);
	return asked;
}

bool prune_over_budget(struct vfs *v)
{
	return __atomic_load_n(&v->prune_running, __ATOMIC_ACQUIRE) && vfs_node_fds(v) > v->fd_high;
}

void prune_kick(struct vfs *v)
{
	if (!prune_over_budget(v))
		return;
	pthread_mutex_lock(&v->prune_mu);
	v->prune_kicked = true;
	pthread_cond_signal(&v->prune_cv);
	pthread_mutex_unlock(&v->prune_mu);
}

static void *prune_main(void *arg)
{
	struct vfs *v = arg;
	struct timespec pause = {0, PRUNE_PAUSE_NS};
	size_t keep = v->fd_high - v->fd_high / 4;

	pthread_mutex_lock(&v->prune_mu);
	while (!v->prune_stop) {
		if (!v->prune_kicked) {
			pthread_cond_wait(&v->prune_cv, &v->prune_mu);
			continue;
		}
		v->prune_kicked = false;
		pthread_mutex_unlock(&v->prune_mu);
		if (vfs_node_fds(v) > keep)
			vfs_prune(v, keep);
		crypto_wipe_stack(); /* plain names decoded to tell the kernel */
		nanosleep(&pause, NULL);
		pthread_mutex_lock(&v->prune_mu);
	}
	pthread_mutex_unlock(&v->prune_mu);
	return NULL;
}

/* A quarter of the open-file limit: the rest is for open files, folders
 * being listed, stamp reads, the store, the log, FUSE itself, and for the
 * lookups that come faster than the kernel forgets (an `ls -l` of a big
 * folder looks up hundreds of entries while one pruning pass runs). */
static size_t default_high(void)
{
	struct rlimit rl;
	rlim_t cur = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;

	if (cur == RLIM_INFINITY || cur > (rlim_t)1 << 30)
		cur = (rlim_t)1 << 30;
	return (size_t)cur / 4;
}

int prune_start(struct vfs *v)
{
	int rc;

	if (v->fd_high == 0)
		v->fd_high = default_high();
	if (v->fd_high < PRUNE_MIN_HIGH)
		v->fd_high = PRUNE_MIN_HIGH;
	v->prune_stop = false;
	rc = pthread_create(&v->pruner, NULL, prune_main, v);
	if (rc != 0)
		return -rc;
	__atomic_store_n(&v->prune_running, true, __ATOMIC_RELEASE);
	return 0;
}

void prune_stop(struct vfs *v)
{
	if (!v->prune_running)
		return;
	pthread_mutex_lock(&v->prune_mu);
	v->prune_stop = true;
	pthread_cond_signal(&v->prune_cv);
	pthread_mutex_unlock(&v->prune_mu);
	pthread_join(v->pruner, NULL);
	__atomic_store_n(&v->prune_running, false, __ATOMIC_RELEASE);
}
