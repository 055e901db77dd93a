/* reaper.h - the expiry schedule: a min-heap of (deadline, directory, name)
 * and a thread that sleeps until the earliest deadline, then hands due
 * items to a callback. Knows nothing of files; time comes from a clock. */
#ifndef EKYCFS_REAPER_H
#define EKYCFS_REAPER_H

#include <stddef.h>
#include <stdint.h>

#include "stamp.h"

struct reaper_item {
	int64_t deadline; /* ns since the epoch */
	void *dir;	  /* caller's directory reference, owned by the item */
	char *name;	  /* backing name, heap copy owned by the item */
};

/* Called on the reaper thread with each due item; takes ownership of it
 * (must call reaper_item_release or keep it). */
typedef void (*reaper_fn)(void *ctx, struct reaper_item *item);
/* Drops the caller's reference held by item->dir. */
typedef void (*reaper_release_fn)(void *ctx, void *dir);

struct reaper;

/* A stopped reaper with an empty schedule. NULL on ENOMEM. */
struct reaper *reaper_new(clock_fn clock, void *clock_arg, reaper_fn fn, reaper_release_fn release,
			  void *ctx);

/* Schedule name in dir for deadline; the item owns the dir reference the
 * caller took for it and a copy of name. Wakes the thread if this is now
 * the earliest deadline. Returns 0 or -ENOMEM (the reference is then
 * released). Thread-safe. */
__attribute__((warn_unused_result)) int reaper_push(struct reaper *r, int64_t deadline, void *dir,
						    const char *name);

/* Move up to max items due at now (deadline <= now) into out, earliest
 * first. Returns how many. The caller owns them. Thread-safe; used by the
 * thread and by tests that drive time by hand. */
size_t reaper_pop_due(struct reaper *r, int64_t now, struct reaper_item *out, size_t max);

/* Earliest deadline, or INT64_MAX when nothing is scheduled. */
int64_t reaper_next_deadline(struct reaper *r);

/* Number of scheduled items. */
size_t reaper_pending(struct reaper *r);

/* Release an item's dir reference and name. */
void reaper_item_release(struct reaper *r, struct reaper_item *item);

/* Start/stop the thread. Stop waits for a callback in progress. */
__attribute__((warn_unused_result)) int reaper_start(struct reaper *r);
void reaper_stop(struct reaper *r);

/* Stop, release every pending item, free. NULL is fine. */
void reaper_free(struct reaper *r);

#endif
