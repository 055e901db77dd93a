/* shred.c - the destruction sequence for backing entries and the background
 * worker that runs it, so deletion returns at once and shredding follows. */
#include "shred.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "layout.h"
#include "stamp.h"
#include "util.h"

#define SHRED_CHUNK (1 << 20)

const struct shred_sys shred_sys_default = {fdatasync, unlinkat};

void shred_random_name(char out[33])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t r[16];

	crypto_random(r, sizeof(r));
	for (int i = 0; i < 16; i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[32] = '\0';
}

static int overwrite(int fd, off_t from, off_t to, uint8_t *buf)
{
	while (from < to) {
		size_t n = to - from > SHRED_CHUNK ? SHRED_CHUNK : (size_t)(to - from);
		ssize_t w;

		crypto_random_bulk(buf, n);
		w = pwrite(fd, buf, n, from);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		from += w;
	}
	return 0;
}

static void strip_xattrs(int fd)
{
	char list[4096];
	ssize_t len = flistxattr(fd, list, sizeof(list));

	for (ssize_t i = 0; i < len; i += (ssize_t)strlen(list + i) + 1)
		fremovexattr(fd, list + i);
}

/* Rename name to a fresh random name in dirfd; returns the new name. */
static int rename_random(int dirfd, const char *name, char out[33])
{
	shred_random_name(out);
	if (renameat(dirfd, name, dirfd, out) < 0)
		return -errno;
	return 0;
}

/* Remove the name: renamed to a random one first, then unlinked (flags
 * for unlinkat: AT_REMOVEDIR for a folder). */
static int forget_name(const struct shred_sys *sys, int dirfd, const char *name, int flags)
{
	char tmp[33];
	int rc = rename_random(dirfd, name, tmp);

	if (rc == 0 && sys->unlinkat(dirfd, tmp, flags) < 0)
		rc = -errno;
	return rc;
}

int shred_file_at(const struct shred_sys *sys, int dirfd, const char *name, unsigned passes,
		  off_t *bytes)
{
	uint8_t *buf = NULL;
	struct stat st;
	bool named = true;
	int fd, rc = 0;

	*bytes = 0;
	/* Anything but a regular file (a symlink, a fifo, a device node) only
	 * loses its name: it is never opened. Nor is anything on another mount
	 * written (-EINVAL, left as it is). */
	fd = open_regular_at(dirfd, name, O_WRONLY, 0, &st);
	if (fd == -EINVAL && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return forget_name(sys, dirfd, name, 0);
	if (fd < 0)
		return fd == -EINVAL && S_ISDIR(st.st_mode) ? -EISDIR : fd;
	/* Only the data of a file with no other name is destroyed: another
	 * name (anywhere, inside the store or not) keeps it, and only this
	 * one goes. If the others went meanwhile, the data is the store's
	 * alone again and is destroyed through the descriptor. */
	if (st.st_nlink > 1) {
		rc = forget_name(sys, dirfd, name, 0);
		if (rc < 0 || fstat(fd, &st) < 0 || st.st_nlink > 0)
			goto out_close;
		named = false;
	}
	*bytes = st.st_size;
	buf = malloc(SHRED_CHUNK);
	if (!buf) {
		rc = -ENOMEM;
		goto out_close;
	}
	/* Key material first: without the header's file id nothing decrypts. */
	rc = overwrite(fd, 0, st.st_size < HEADER_SIZE ? st.st_size : HEADER_SIZE, buf);
	if (rc == 0 && sys->fdatasync(fd) < 0)
		rc = -errno;
	for (unsigned p = 0; rc == 0 && p < passes; p++) {
		rc = overwrite(fd, 0, st.st_size, buf);
		if (rc == 0 && sys->fdatasync(fd) < 0)
			rc = -errno;
	}
	if (rc < 0)
		goto out_free;
	if (ftruncate(fd, 0) < 0) {
		rc = -errno;
		goto out_free;
	}
	strip_xattrs(fd);
	if (named)
		rc = forget_name(sys, dirfd, name, 0);
out_free:
	free(buf);
out_close:
	close(fd);
	return rc;
}

int shred_dir_at(const struct shred_sys *sys, int dirfd, const char *name)
{
	int fd, rc;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* A directory that still holds something, or is another mount, is
	 * left exactly as it was. */
	rc = same_mount_fd(dirfd, fd) ? dir_is_empty(fd) : -EXDEV;
	if (rc == 1)
		strip_xattrs(fd);
	close(fd);
	if (rc < 1)
		return rc < 0 ? rc : -ENOTEMPTY;
	return forget_name(sys, dirfd, name, AT_REMOVEDIR);
}

/* ---- background queue ---- */

/* Shredding yields to a burst of deletions (rm -rf): a job waits while
 * deletions keep arriving less than QUIET_NS apart, but never longer than
 * MAX_DELAY_NS. The data is out of sight already; only the overwriting
 * waits, so it does not compete with the burst for the disk. */
#define QUIET_NS (100 * 1000 * 1000LL)
#define MAX_DELAY_NS (2 * NSEC_PER_SEC)

static int64_t mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

struct job {
	struct job *next;
	int64_t queued; /* CLOCK_MONOTONIC ns */
	struct audit_rec rec;
	char zone[65];
	char name[33];
};

struct shredder {
	pthread_mutex_t lock;
	pthread_cond_t work, idle;
	struct job *head, *tail; /* protected by lock */
	bool busy, stopping;	 /* protected by lock */
	bool hurry;		 /* drain or stop asked: no more yielding; lock */
	int64_t last_submit;	 /* CLOCK_MONOTONIC ns; lock */
	pthread_t thread;
	int trash_fd;
	unsigned passes;
	struct audit *audit;
	uint64_t *count, *bytes;
};

static void run_job(struct shredder *s, struct job *j)
{
	off_t bytes = 0;
	int rc = shred_file_at(&shred_sys_default, s->trash_fd, j->name, s->passes, &bytes);

	if (rc == -EISDIR || rc == -EINVAL) /* a directory moved to the trash */
		rc = shred_dir_at(&shred_sys_default, s->trash_fd, j->name);
	if (rc < 0)
		return; /* left in the trash; the next sweep retries */
	if (s->count)
		__atomic_add_fetch(s->count, 1, __ATOMIC_RELAXED);
	if (s->bytes)
		__atomic_add_fetch(s->bytes, (uint64_t)bytes, __ATOMIC_RELAXED);
	j->rec.event = AUDIT_SHREDDED;
	j->rec.bytes = bytes;
	j->rec.zone = j->zone;
	audit_log(s->audit, &j->rec, clock_realtime(NULL));
}

static void *shredder_main(void *arg)
{
	struct shredder *s = arg;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct job *j = s->head;

		if (!j) {
			s->busy = false;
			pthread_cond_broadcast(&s->idle);
			if (s->stopping)
				break;
			pthread_cond_wait(&s->work, &s->lock);
			continue;
		}
		s->busy = true;
		int64_t now = mono_now(), wait = s->last_submit + QUIET_NS - now;

		if (!s->hurry && wait > 0 && now - j->queued < MAX_DELAY_NS) {
			int64_t until = now + (wait < MAX_DELAY_NS ? wait : MAX_DELAY_NS);
			struct timespec ts = {(time_t)(until / NSEC_PER_SEC),
					      (long)(until % NSEC_PER_SEC)};

			pthread_cond_timedwait(&s->work, &s->lock, &ts);
			continue;
		}
		s->head = j->next;
		if (!s->head)
			s->tail = NULL;
		pthread_mutex_unlock(&s->lock);
		run_job(s, j);
		free(j);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

struct shredder *shredder_start(int trash_fd, unsigned passes, struct audit *audit,
				uint64_t *stats_count, uint64_t *stats_bytes)
{
	struct shredder *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	pthread_condattr_t ca;

	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->work, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&s->idle, NULL);
	s->trash_fd = trash_fd;
	s->passes = passes;
	s->audit = audit;
	s->count = stats_count;
	s->bytes = stats_bytes;
	if (pthread_create(&s->thread, NULL, shredder_main, s) != 0) {
		free(s);
		return NULL;
	}
	return s;
}

int shredder_submit(struct shredder *s, const char *name, const struct audit_rec *rec)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->rec = *rec;
	if (rec->zone)
		strncpy(j->zone, rec->zone, sizeof(j->zone) - 1);
	strncpy(j->name, name, sizeof(j->name) - 1);
	j->queued = mono_now();
	pthread_mutex_lock(&s->lock);
	s->last_submit = j->queued;
	if (s->tail)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
	s->busy = true;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void shredder_drain(struct shredder *s)
{
	pthread_mutex_lock(&s->lock);
	s->hurry = true;
	pthread_cond_signal(&s->work);
	while (s->head || s->busy)
		pthread_cond_wait(&s->idle, &s->lock);
	s->hurry = false;
	pthread_mutex_unlock(&s->lock);
}

void shredder_stop(struct shredder *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = s->hurry = true;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	pthread_cond_destroy(&s->work);
	pthread_cond_destroy(&s->idle);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
