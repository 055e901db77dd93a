/* iohelper.c - one background pread, pwrite or call at a time per calling
 * thread, handed over through a mutex and a condition variable. */
#include "iohelper.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "crypto.h"
#include "util.h"

enum io_op { IO_NONE, IO_PREAD, IO_PWRITE, IO_CALL, IO_QUIT };

struct iohelper {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	enum io_op op; /* mu; IO_NONE when done */
	int fd;
	void *buf;
	size_t len;
	off_t off;
	void (*fn)(void *);
	ssize_t result; /* mu */
};

static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void *helper_main(void *arg)
{
	struct iohelper *h = arg;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (h->op == IO_NONE)
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->op == IO_QUIT)
			break;
		pthread_mutex_unlock(&h->mu);
		ssize_t r = 0;

		if (h->op == IO_PREAD) {
			r = pread_full(h->fd, h->buf, h->len, h->off);
		} else if (h->op == IO_PWRITE) {
			r = pwrite_full(h->fd, h->buf, h->len, h->off);
		} else {
			h->fn(h->buf);
			crypto_wipe_stack(); /* fn opened blocks here */
		}
		pthread_mutex_lock(&h->mu);
		h->result = r;
		h->op = IO_NONE;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/* Runs when the owning thread exits. */
static void helper_stop(void *arg)
{
	struct iohelper *h = arg;

	pthread_mutex_lock(&h->mu);
	h->op = IO_QUIT;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->thread, NULL);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

static void make_key(void)
{
	pthread_key_create(&key, helper_stop);
}

struct iohelper *iohelper_self(void)
{
	struct iohelper *h;

	pthread_once(&key_once, make_key);
	h = pthread_getspecific(key);
	if (h)
		return h;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	if (pthread_create(&h->thread, NULL, helper_main, h) != 0) {
		pthread_cond_destroy(&h->cv);
		pthread_mutex_destroy(&h->mu);
		free(h);
		return NULL;
	}
	pthread_setspecific(key, h);
	return h;
}

static void start(struct iohelper *h, enum io_op op, int fd, void *buf, size_t len, off_t off,
		  void (*fn)(void *))
{
	pthread_mutex_lock(&h->mu);
	h->fn = fn;
	h->fd = fd;
	h->buf = buf;
	h->len = len;
	h->off = off;
	h->op = op;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

void iohelper_pwrite(struct iohelper *h, int fd, const void *buf, size_t len, off_t off)
{
	start(h, IO_PWRITE, fd, (void *)buf, len, off, NULL);
}

void iohelper_pread(struct iohelper *h, int fd, void *buf, size_t len, off_t off)
{
	start(h, IO_PREAD, fd, buf, len, off, NULL);
}

void iohelper_call(struct iohelper *h, void (*fn)(void *), void *arg)
{
	start(h, IO_CALL, -1, arg, 0, 0, fn);
}

ssize_t iohelper_wait(struct iohelper *h)
{
	ssize_t r;

	pthread_mutex_lock(&h->mu);
	while (h->op != IO_NONE)
		pthread_cond_wait(&h->cv, &h->mu);
	r = h->result;
	pthread_mutex_unlock(&h->mu);
	return r;
}
