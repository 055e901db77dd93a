/* test_reaper.c - Criterion suite for fs/reaper.c: the deadline heap driven by
 * hand through reaper_pop_due (no sleeping), reference release, the thread. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "reaper.h"

/* Counts release callbacks, per dir token (tokens are 1..n cast to void *). */
struct counter {
	size_t releases;
	unsigned *per_dir; /* may be NULL */
	size_t ndirs;
};

static int64_t fake_now;

static int64_t fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

static void never_called(void *ctx, struct reaper_item *item)
{
	(void)ctx;
	(void)item;
	cr_assert_fail("the thread is not started in this test");
}

static void count_release(void *ctx, void *dir)
{
	struct counter *c = ctx;
	uintptr_t d = (uintptr_t)dir;

	c->releases++;
	if (c->per_dir) {
		cr_assert(d >= 1 && d <= c->ndirs, "unknown dir %zu", (size_t)d);
		c->per_dir[d - 1]++;
	}
}

static void *tok(size_t i)
{
	return (void *)(uintptr_t)i;
}

static struct reaper *new_reaper(struct counter *c)
{
	struct reaper *r = reaper_new(fake_clock, NULL, never_called, count_release, c);

	cr_assert_not_null(r);
	return r;
}

static void push(struct reaper *r, int64_t deadline, size_t dir, const char *name)
{
	cr_assert_eq(reaper_push(r, deadline, tok(dir), name), 0);
}

Test(reaper, empty)
{
	struct counter c = {0};
	struct reaper *r = new_reaper(&c);
	struct reaper_item out[4];

	cr_expect_eq(reaper_next_deadline(r), INT64_MAX);
	cr_expect_eq(reaper_pending(r), 0);
	cr_expect_eq(reaper_pop_due(r, INT64_MAX, out, 4), 0);
	reaper_free(r);
	cr_expect_eq(c.releases, 0);
	reaper_free(NULL);
}

Test(reaper, pops_in_deadline_order)
{
	static const int64_t deadlines[] = {300, 100, 500, 200, 400};
	static const char *const names[] = {"c", "a", "e", "b", "d"};
	struct counter c = {0};
	struct reaper *r = new_reaper(&c);
	struct reaper_item out[8];
	size_t n;

	for (size_t i = 0; i < 5; i++)
		push(r, deadlines[i], i + 1, names[i]);
	cr_expect_eq(reaper_pending(r), 5);
	cr_expect_eq(reaper_next_deadline(r), 100);
	n = reaper_pop_due(r, 1000, out, 8);
	cr_assert_eq(n, 5);
	for (size_t i = 0; i < n; i++) {
		char want[2] = {(char)('a' + i), '\0'};

		cr_expect_eq(out[i].deadline, 100 * (int64_t)(i + 1));
		cr_expect_str_eq(out[i].name, want);
		reaper_item_release(r, &out[i]);
		cr_expect_null(out[i].name);
		cr_expect_null(out[i].dir);
	}
	cr_expect_eq(c.releases, 5);
	cr_expect_eq(reaper_pending(r), 0);
	reaper_free(r);
	cr_expect_eq(c.releases, 5, "popped items are not released twice");
}

Test(reaper, nothing_before_its_deadline)
{
	struct counter c = {0};
	struct reaper *r = new_reaper(&c);
	struct reaper_item out[2];

	push(r, 1000, 1, "x");
	cr_expect_eq(reaper_pop_due(r, INT64_MIN, out, 2), 0);
	cr_expect_eq(reaper_pop_due(r, 0, out, 2), 0);
	cr_expect_eq(reaper_pop_due(r, 999, out, 2), 0, "deadline - 1 ns: not due");
	cr_expect_eq(reaper_pending(r), 1);
	cr_assert_eq(reaper_pop_due(r, 1000, out, 2), 1, "at the deadline: due");
	cr_expect_eq(out[0].deadline, 1000);
	cr_expect_eq(out[0].dir, tok(1));
	cr_expect_str_eq(out[0].name, "x");
	reaper_item_release(r, &out[0]);
	cr_expect_eq(reaper_pop_due(r, INT64_MAX, out, 2), 0);
	reaper_free(r);
	cr_expect_eq(c.releases, 1);
}

Test(reaper, max_is_respected)
{
	struct counter c = {0};
	struct reaper *r = new_reaper(&c);
	struct reaper_item out[3];

	for (size_t i = 0; i < 5; i++)
		push(r, 50 - (int64_t)i, i + 1, "n");
	cr_assert_eq(reaper_pop_due(r, 100, out, 2), 2);
	cr_expect_eq(out[0].deadline, 46);
	cr_expect_eq(out[1].deadline, 47);
	cr_expect_eq(reaper_pending(r), 3);
	cr_expect_eq(reaper_next_deadline(r), 48);
	cr_expect_eq(reaper_pop_due(r, 100, out + 2, 0), 0, "max 0");
	reaper_item_release(r, &out[0]);
	reaper_item_release(r, &out[1]);
	reaper_free(r);
	cr_expect_eq(c.releases, 5);
}

Test(reaper, next_deadline_and_pending_track_the_heap)
{
	struct counter c = {0};
	struct reaper *r = new_reaper(&c);
	struct reaper_item out[1];

	push(r, 70, 1, "a");
	cr_expect_eq(reaper_next_deadline(r), 70);
	push(r, 90, 2, "b");
	cr_expect_eq(reaper_next_deadline(r), 70);
	push(r, 10, 3, "c");
	cr_expect_eq(reaper_next_deadline(r), 10);
	push(r, INT64_MIN, 4, "d");
	cr_expect_eq(reaper_next_deadline(r), INT64_MIN, "an already expired entry");
	cr_expect_eq(reaper_pending(r), 4);
	cr_assert_eq(reaper_pop_due(r, 10, out, 1), 1);
	cr_expect_eq(out[0].deadline, INT64_MIN);
	reaper_item_release(r, &out[0]);
	cr_expect_eq(reaper_next_deadline(r), 10);
	cr_expect_eq(reaper_pending(r), 3);
	reaper_free(r);
	cr_expect_eq(c.releases, 4);
}

Test(reaper, names_are_copied)
{
	struct counter c = {0};
	struct reaper *r = new_reaper(&c);
	struct reaper_item out[1];
	char name[] = "backing-name";

	push(r, 1, 1, name);
	memset(name, 'Z', sizeof(name) - 1);
	cr_assert_eq(reaper_pop_due(r, 1, out, 1), 1);
	cr_expect_neq(out[0].name, name);
	cr_expect_str_eq(out[0].name, "backing-name");
	reaper_item_release(r, &out[0]);
	reaper_free(r);
}

Test(reaper, free_releases_every_pending_item)
{
	enum { N = 50 };
	unsigned per_dir[N] = {0};
	struct counter c = {0, per_dir, N};
	struct reaper *r = new_reaper(&c);
	struct reaper_item out[10];
	char name[16];

	for (size_t i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "f%zu", i);
		push(r, (int64_t)(i * 7 % N), i + 1, name);
	}
	cr_assert_eq(reaper_pop_due(r, 9, out, 10), 10);
	for (size_t i = 0; i < 10; i++)
		reaper_item_release(r, &out[i]);
	cr_expect_eq(c.releases, 10);
	reaper_free(r); /* LeakSanitizer checks the 40 name copies go too */
	cr_expect_eq(c.releases, N);
	for (size_t i = 0; i < N; i++)
		cr_expect_eq(per_dir[i], 1, "dir %zu released %u times", i + 1, per_dir[i]);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* 100,000 random deadlines (many equal) come out in non-decreasing order,
 * never early, each exactly once, while time advances in uneven steps. */
Test(reaper, hundred_thousand_random)
{
	enum { N = 100000, RANGE = 1000000, BATCH = 997 };
	unsigned *per_dir = calloc(N, sizeof(*per_dir));
	unsigned *popped = calloc(N, sizeof(*popped));
	int64_t *deadline = calloc(N, sizeof(*deadline));
	struct reaper_item *out = calloc(BATCH, sizeof(*out));
	struct counter c = {0, per_dir, N};
	struct reaper *r = new_reaper(&c);
	int64_t now = -1, last = INT64_MIN;
	size_t total = 0;
	char name[16];

	cr_assert(per_dir && popped && deadline && out);
	for (size_t i = 0; i < N; i++) {
		deadline[i] = (int64_t)(rng() % RANGE);
		snprintf(name, sizeof(name), "%zu", i);
		push(r, deadline[i], i + 1, name);
	}
	cr_assert_eq(reaper_pending(r), N);
	while (total < N) {
		size_t n;

		now += (int64_t)(rng() % 5000);
		do {
			n = reaper_pop_due(r, now, out, BATCH);
			for (size_t j = 0; j < n; j++) {
				size_t i = (size_t)(uintptr_t)out[j].dir - 1;

				cr_assert_lt(i, (size_t)N);
				cr_assert_leq(out[j].deadline, now, "popped before its deadline");
				cr_assert_geq(out[j].deadline, last, "out of order");
				cr_assert_eq(out[j].deadline, deadline[i]);
				snprintf(name, sizeof(name), "%zu", i);
				cr_assert_str_eq(out[j].name, name);
				last = out[j].deadline;
				popped[i]++;
				reaper_item_release(r, &out[j]);
			}
			total += n;
		} while (n == BATCH);
		cr_assert_gt(reaper_next_deadline(r), now, "a due item was left behind");
		cr_assert_eq(reaper_pending(r), N - total);
	}
	cr_expect_eq(reaper_next_deadline(r), INT64_MAX);
	for (size_t i = 0; i < N; i++) {
		cr_assert_eq(popped[i], 1, "item %zu popped %u times", i, popped[i]);
		cr_assert_eq(per_dir[i], 1);
	}
	reaper_free(r);
	cr_expect_eq(c.releases, N);
	free(out);
	free(deadline);
	free(popped);
	free(per_dir);
}

Test(reaper, ten_thousand_same_deadline)
{
	enum { N = 10000 };
	const int64_t d = 1764425138LL * NSEC_PER_SEC;
	struct reaper_item *out = calloc(N + 1, sizeof(*out));
	unsigned *seen = calloc(N, sizeof(*seen));
	struct counter c = {0};
	struct reaper *r = new_reaper(&c);

	cr_assert(out && seen);
	for (size_t i = 0; i < N; i++)
		push(r, d, i + 1, "same");
	cr_expect_eq(reaper_pop_due(r, d - 1, out, N + 1), 0);
	cr_assert_eq(reaper_pop_due(r, d, out, N + 1), N, "all due at one instant");
	for (size_t i = 0; i < N; i++) {
		size_t k = (size_t)(uintptr_t)out[i].dir - 1;

		cr_assert_lt(k, (size_t)N);
		cr_assert_eq(out[i].deadline, d);
		seen[k]++;
		reaper_item_release(r, &out[i]);
	}
	for (size_t i = 0; i < N; i++)
		cr_assert_eq(seen[i], 1);
	cr_expect_eq(reaper_pending(r), 0);
	reaper_free(r);
	cr_expect_eq(c.releases, N);
	free(seen);
	free(out);
}

/* ---- the thread, on the real clock ---- */

struct fired {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct reaper *r;
	int calls;	  /* protected by lock */
	int64_t at;	  /* protected by lock: clock when the callback ran */
	int64_t deadline; /* protected by lock */
	char name[16];	  /* protected by lock */
	size_t releases;  /* protected by lock */
	int clock_calls;  /* atomic */
};

/* The real clock, counting calls: the thread reads it with its lock held,
 * right before it sleeps. */
static int64_t counting_clock(void *arg)
{
	struct fired *f = arg;

	__atomic_add_fetch(&f->clock_calls, 1, __ATOMIC_SEQ_CST);
	return clock_realtime(NULL);
}

static void on_due(void *ctx, struct reaper_item *item)
{
	struct fired *f = ctx;
	int64_t now = clock_realtime(NULL);

	pthread_mutex_lock(&f->lock);
	f->calls++;
	f->at = now;
	f->deadline = item->deadline;
	snprintf(f->name, sizeof(f->name), "%s", item->name);
	pthread_mutex_unlock(&f->lock);
	reaper_item_release(f->r, item);
	pthread_mutex_lock(&f->lock);
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static void on_release(void *ctx, void *dir)
{
	struct fired *f = ctx;

	(void)dir;
	pthread_mutex_lock(&f->lock);
	f->releases++;
	pthread_mutex_unlock(&f->lock);
}

/* The thread sleeps on a far deadline; an earlier push wakes it, and the
 * callback runs after (never before) that deadline. Loose bound: 2 s. */
Test(reaper, thread_fires_at_deadline, .timeout = 30)
{
	struct fired f = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
	int64_t deadline, start;
	struct timespec limit;
	int64_t at, got_deadline;
	char name[16];
	int calls;

	f.r = reaper_new(counting_clock, &f, on_due, on_release, &f);
	cr_assert_not_null(f.r);
	start = clock_realtime(NULL);
	cr_assert_eq(reaper_push(f.r, start + 3600 * NSEC_PER_SEC, tok(1), "far"), 0);
	cr_assert_eq(reaper_start(f.r), 0);
	/* Once the thread has read the clock, the next push (which takes its
	 * lock) can only happen while it sleeps on the far deadline. */
	for (int i = 0; i < 2000 && !__atomic_load_n(&f.clock_calls, __ATOMIC_SEQ_CST); i++)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	cr_assert_gt(__atomic_load_n(&f.clock_calls, __ATOMIC_SEQ_CST), 0, "thread never ran");
	deadline = clock_realtime(NULL) + 50 * 1000000LL;
	cr_assert_eq(reaper_push(f.r, deadline, tok(2), "soon"), 0);

	clock_gettime(CLOCK_REALTIME, &limit);
	limit.tv_sec += 2;
	pthread_mutex_lock(&f.lock);
	while (f.calls == 0 && pthread_cond_timedwait(&f.cond, &f.lock, &limit) == 0)
		;
	calls = f.calls;
	at = f.at;
	got_deadline = f.deadline;
	memcpy(name, f.name, sizeof(name));
	pthread_mutex_unlock(&f.lock);
	cr_assert_eq(calls, 1, "callback did not run within 2 s of a 50 ms deadline");
	cr_expect_geq(at, deadline, "ran %lld ns early", (long long)(deadline - at));
	cr_expect_eq(got_deadline, deadline);
	cr_expect_str_eq(name, "soon");
	cr_expect_eq(reaper_pending(f.r), 1, "the far item waits");

	reaper_free(f.r); /* stops the thread, releases "far" */
	cr_expect_eq(f.calls, 1);
	cr_expect_eq(f.releases, 2);
}
