/* reaper.c - a deadline min-heap and the thread that sleeps until its top is
 * due: no periodic scans, no CPU while nothing is due. */
#include "reaper.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"

#define POP_BATCH 64

struct reaper {
	pthread_mutex_t lock;
	pthread_cond_t wake;	  /* CLOCK_REALTIME: deadlines are wall times */
	struct reaper_item *heap; /* protected by lock */
	size_t len, cap;	  /* protected by lock */
	bool running, stopping;	  /* protected by lock */
	pthread_t thread;
	clock_fn clock;
	void *clock_arg;
	reaper_fn fn;
	reaper_release_fn release;
	void *ctx;
};

struct reaper *reaper_new(clock_fn clock, void *clock_arg, reaper_fn fn, reaper_release_fn release,
			  void *ctx)
{
	struct reaper *r = calloc(1, sizeof(*r));
	pthread_condattr_t ca;

	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_REALTIME);
	pthread_cond_init(&r->wake, &ca);
	pthread_condattr_destroy(&ca);
	r->clock = clock;
	r->clock_arg = clock_arg;
	r->fn = fn;
	r->release = release;
	r->ctx = ctx;
	return r;
}

static void swap_items(struct reaper_item *a, struct reaper_item *b)
{
	struct reaper_item t = *a;

	*a = *b;
	*b = t;
}

static void sift_up(struct reaper_item *h, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (h[p].deadline <= h[i].deadline)
			break;
		swap_items(&h[p], &h[i]);
		i = p;
	}
}

static void sift_down(struct reaper_item *h, size_t len, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < len && h[l].deadline < h[m].deadline)
			m = l;
		if (r < len && h[r].deadline < h[m].deadline)
			m = r;
		if (m == i)
			return;
		swap_items(&h[m], &h[i]);
		i = m;
	}
}

int reaper_push(struct reaper *r, int64_t deadline, void *dir, const char *name)
{
	char *copy = strdup(name);
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	if (copy && r->len == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 256;
		struct reaper_item *h = realloc(r->heap, cap * sizeof(*h));

		if (h) {
			r->heap = h;
			r->cap = cap;
		}
	}
	if (!copy || r->len == r->cap) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	r->heap[r->len] = (struct reaper_item){deadline, dir, copy};
	sift_up(r->heap, r->len++);
	if (r->heap[0].deadline == deadline)
		pthread_cond_signal(&r->wake);
out_unlock:
	pthread_mutex_unlock(&r->lock);
	if (rc < 0) {
		free(copy);
		r->release(r->ctx, dir);
	}
	return rc;
}

static size_t pop_due_locked(struct reaper *r, int64_t now, struct reaper_item *out, size_t max)
{
	size_t n = 0;

	while (n < max && r->len > 0 && r->heap[0].deadline <= now) {
		out[n++] = r->heap[0];
		r->heap[0] = r->heap[--r->len];
		sift_down(r->heap, r->len, 0);
	}
	return n;
}

size_t reaper_pop_due(struct reaper *r, int64_t now, struct reaper_item *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = pop_due_locked(r, now, out, max);
	pthread_mutex_unlock(&r->lock);
	return n;
}

int64_t reaper_next_deadline(struct reaper *r)
{
	int64_t d;

	pthread_mutex_lock(&r->lock);
	d = r->len ? r->heap[0].deadline : INT64_MAX;
	pthread_mutex_unlock(&r->lock);
	return d;
}

size_t reaper_pending(struct reaper *r)
{
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = r->len;
	pthread_mutex_unlock(&r->lock);
	return n;
}

void reaper_item_release(struct reaper *r, struct reaper_item *item)
{
	free(item->name);
	item->name = NULL;
	r->release(r->ctx, item->dir);
	item->dir = NULL;
}

static void *reaper_main(void *arg)
{
	struct reaper *r = arg;
	struct reaper_item due[POP_BATCH];

	pthread_mutex_lock(&r->lock);
	while (!r->stopping) {
		int64_t now = r->clock(r->clock_arg);
		size_t n = pop_due_locked(r, now, due, POP_BATCH);

		if (n > 0) {
			pthread_mutex_unlock(&r->lock);
			for (size_t i = 0; i < n; i++)
				r->fn(r->ctx, &due[i]);
			crypto_wipe_stack(); /* plain names decoded to tell the kernel */
			pthread_mutex_lock(&r->lock);
		} else if (r->len == 0) {
			pthread_cond_wait(&r->wake, &r->lock);
		} else {
			int64_t d = r->heap[0].deadline;
			struct timespec ts = {(time_t)(d / NSEC_PER_SEC), (long)(d % NSEC_PER_SEC)};

			pthread_cond_timedwait(&r->wake, &r->lock, &ts);
		}
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int reaper_start(struct reaper *r)
{
	int rc;

	pthread_mutex_lock(&r->lock);
	r->stopping = false;
	rc = -pthread_create(&r->thread, NULL, reaper_main, r);
	r->running = rc == 0;
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void reaper_stop(struct reaper *r)
{
	bool running;

	pthread_mutex_lock(&r->lock);
	running = r->running;
	r->stopping = true;
	r->running = false;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	if (running)
		pthread_join(r->thread, NULL);
}

void reaper_free(struct reaper *r)
{
	if (!r)
		return;
	reaper_stop(r);
	for (size_t i = 0; i < r->len; i++)
		reaper_item_release(r, &r->heap[i]);
	free(r->heap);
	pthread_cond_destroy(&r->wake);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
