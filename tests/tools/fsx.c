/* fsx.c - random-operation data-integrity exerciser: drives DIR/fsx.<i> with
 * pwrite/pread/ftruncate/append/mmap and checks every byte against a model. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FSX_BLOCK 4096
#define FSX_MAX_FILE (1024 * 1024) /* files stay about this small */
#define FSX_DEFAULT_OPS 20000
#define FSX_DEFAULT_MAXLEN (64 * 1024)
#define FSX_MAXLEN_LIMIT (16 * 1024 * 1024)
#define FSX_MAX_THREADS 64
#define FSX_LOG_OPS 20		      /* ops shown in the failure report */
#define FSX_LOG_LEN (4 * FSX_LOG_OPS) /* log entries: up to 4 per op */
#define FSX_DUMP_BYTES 16	      /* bytes shown around a mismatch */

enum op_kind {
	OP_WRITE,
	OP_READ,
	OP_TRUNC,
	OP_APPEND,
	OP_REOPEN,
	OP_FSYNC,
	OP_VERIFY,
	OP_MAPREAD,
	OP_MAPWRITE,
	OP_PRECHECK, /* part of a write/truncate: read what it will destroy */
	OP_READBACK, /* part of a write/truncate: read the blocks around it */
	OP_INJECT,   /* -X only */
	OP_NKINDS
};

static const struct op_desc {
	const char *name;
	unsigned weight; /* relative frequency among the random picks */
	bool ranged;	 /* off and len mean something in the log */
	bool needs_mmap; /* picked only with -m */
} op_descs[OP_NKINDS] = {
	[OP_WRITE] = {"write", 30, true, false},      [OP_READ] = {"read", 30, true, false},
	[OP_TRUNC] = {"truncate", 6, true, false},    [OP_APPEND] = {"append", 8, true, false},
	[OP_REOPEN] = {"reopen", 2, false, false},    [OP_FSYNC] = {"fsync", 2, false, false},
	[OP_VERIFY] = {"verify", 2, true, false},     [OP_MAPREAD] = {"mapread", 12, true, true},
	[OP_MAPWRITE] = {"mapwrite", 12, true, true}, [OP_PRECHECK] = {"precheck", 0, true, false},
	[OP_READBACK] = {"readback", 0, true, false}, [OP_INJECT] = {"INJECT", 0, true, false},
};

/* Command line; filled by parse_args, read-only afterwards. */
struct opts {
	uint64_t nops;
	uint64_t seed;
	unsigned nthreads;
	size_t maxlen;	/* longest read or write */
	size_t maxfile; /* writes and truncates stay below this */
	bool use_mmap;
	bool quiet;
	bool inject;
	const char *dir;
};

/* Shared by every worker; owned by main. */
struct fsx {
	struct opts o;
	size_t pagesize;
	atomic_bool failed; /* set once, by the first worker to fail */
};

/* xorshift64*, seeded through splitmix64; state is never 0. */
struct rng {
	uint64_t s;
};

/* The file as it should be: bytes past size are stale and never compared. */
struct model {
	uint8_t *buf;
	size_t cap;
	size_t size;
};

struct logent {
	uint64_t opnum;
	enum op_kind op;
	uint64_t off;
	uint64_t len;
	uint64_t size_before;
	uint64_t size_after; /* valid once done */
	bool done;
};

/* One thread, one file. Touched only by its own thread until joined. */
struct worker {
	struct fsx *fsx;
	unsigned idx;
	char *path;
	int fd;	 /* O_RDWR */
	int afd; /* O_WRONLY | O_APPEND */
	struct rng rng;
	struct model m;
	uint8_t *wbuf; /* maxfile bytes */
	uint8_t *rbuf; /* maxfile + FSX_BLOCK bytes: a full read plus slack */
	size_t rbuf_len;
	uint64_t nops;	/* ops this worker runs */
	uint64_t opnum; /* current op, from 1; nops + 1 is the final verify */
	struct logent hist[FSX_LOG_LEN];
	uint64_t nhist;
	uint64_t counts[OP_NKINDS];
	bool inject_armed;    /* -X: corrupt the model at the next chance */
	int64_t poison;	      /* model offset corrupted by -X, or -1 */
	uint64_t poisoned_at; /* op number of the last injection */
	bool failed;
	pthread_t tid;
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_init(struct rng *r, uint64_t seed, unsigned idx)
{
	uint64_t x = seed + (uint64_t)idx * 0xd1b54a32d192ed03ULL;

	r->s = splitmix64(&x);
	if (!r->s)
		r->s = 1;
}

static uint64_t rng_next(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dULL;
}

/* Uniform enough in [0, n); n > 0. */
static uint64_t rng_below(struct rng *r, uint64_t n)
{
	return rng_next(r) % n;
}

static void rng_fill(struct rng *r, uint8_t *p, size_t len)
{
	uint64_t v;

	while (len >= sizeof(v)) {
		v = rng_next(r);
		memcpy(p, &v, sizeof(v));
		p += sizeof(v);
		len -= sizeof(v);
	}
	v = rng_next(r);
	memcpy(p, &v, len);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Make room for n bytes; returns 0 or -ENOMEM. */
static int model_reserve(struct model *m, size_t n)
{
	size_t cap = m->cap ? m->cap : FSX_BLOCK;
	uint8_t *p;

	if (n <= m->cap)
		return 0;
	while (cap < n)
		cap *= 2;
	p = realloc(m->buf, cap);
	if (!p)
		return -ENOMEM;
	m->buf = p;
	m->cap = cap;
	return 0;
}

/* Set the size as ftruncate does: growth reads as zeros. 0 or -ENOMEM. */
static int model_resize(struct model *m, size_t n)
{
	int rc = model_reserve(m, n);

	if (rc)
		return rc;
	if (n > m->size)
		memset(m->buf + m->size, 0, n - m->size);
	m->size = n;
	return 0;
}

/* Write as pwrite does: a gap past EOF becomes a hole of zeros. */
static int model_write(struct model *m, size_t off, const uint8_t *p, size_t len)
{
	int rc = model_reserve(m, off + len);

	if (rc)
		return rc;
	if (off > m->size)
		memset(m->buf + m->size, 0, off - m->size);
	memcpy(m->buf + off, p, len);
	if (off + len > m->size)
		m->size = off + len;
	return 0;
}

static struct logent *log_cur(struct worker *w)
{
	return &w->hist[(w->nhist - 1) % FSX_LOG_LEN];
}

/* Record the op about to run, so a failure report ends with it. */
static void log_op(struct worker *w, enum op_kind op, uint64_t off, uint64_t len)
{
	struct logent *e = &w->hist[w->nhist++ % FSX_LOG_LEN];

	e->opnum = w->opnum;
	e->op = op;
	e->off = off;
	e->len = len;
	e->size_before = w->m.size;
	e->done = false;
	w->counts[op]++;
}

static void log_done(struct worker *w)
{
	struct logent *e = log_cur(w);

	e->size_after = w->m.size;
	e->done = true;
}

static void log_print(const struct worker *w)
{
	uint64_t i = w->nhist > FSX_LOG_LEN ? w->nhist - FSX_LOG_LEN : 0;
	uint64_t last = w->hist[(w->nhist - 1) % FSX_LOG_LEN].opnum;

	fprintf(stderr, "fsx: last %d ops, oldest first:\n", FSX_LOG_OPS);
	for (; i < w->nhist; i++) {
		const struct logent *e = &w->hist[i % FSX_LOG_LEN];

		if (e->opnum + FSX_LOG_OPS <= last)
			continue;
		fprintf(stderr, "  %8" PRIu64 " %-8s", e->opnum, op_descs[e->op].name);
		if (op_descs[e->op].ranged)
			fprintf(stderr, " off 0x%06" PRIx64 " len 0x%06" PRIx64 " end 0x%06" PRIx64,
				e->off, e->len, e->off + e->len);
		else
			fprintf(stderr, "%39s", "");
		fprintf(stderr, "  size 0x%06" PRIx64, e->size_before);
		if (e->done)
			fprintf(stderr, " -> 0x%06" PRIx64 "\n", e->size_after);
		else
			fprintf(stderr, " <- FAILED HERE\n");
	}
}

/* Claim the report: only the first failing worker prints one. */
__attribute__((format(printf, 2, 3))) static bool fail_begin(struct worker *w, const char *fmt, ...)
{
	const struct logent *e = log_cur(w);
	va_list ap;

	w->failed = true;
	if (atomic_exchange(&w->fsx->failed, true))
		return false;
	fflush(stdout);
	fprintf(stderr, "fsx: FAILED in thread %u on %s\n", w->idx, w->path);
	fprintf(stderr, "fsx: op %" PRIu64 "%s: %s", e->opnum,
		e->opnum > w->nops ? " (final verify)" : "", op_descs[e->op].name);
	if (op_descs[e->op].ranged)
		fprintf(stderr, " off 0x%" PRIx64 " len 0x%" PRIx64, e->off, e->len);
	fprintf(stderr, ", model size 0x%" PRIx64 " before\nfsx: ", e->size_before);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return true;
}

/* The rest of a report: sizes, seed, how to reproduce, recent ops. */
static int fail_end(struct worker *w)
{
	const struct opts *o = &w->fsx->o;
	struct stat st;

	if (w->fd >= 0 && !fstat(w->fd, &st))
		fprintf(stderr, "fsx: file size now 0x%jx, model size 0x%zx\n",
			(intmax_t)st.st_size, w->m.size);
	if (w->poison >= 0)
		fprintf(stderr,
			"fsx: NOTE: -X corrupted model byte 0x%" PRIx64 " at op %" PRIu64
			" on purpose\n",
			(uint64_t)w->poison, w->poisoned_at);
	fprintf(stderr,
		"fsx: seed %" PRIu64 "; reproduce with: fsx -n %" PRIu64 " -s %" PRIu64
		" -t %u -b %zu%s%s %s\n",
		o->seed, o->nops, o->seed, o->nthreads, o->maxlen, o->use_mmap ? " -m" : "",
		o->inject ? " -X" : "", o->dir);
	log_print(w);
	fprintf(stderr, "fsx: files left in %s for inspection\n", o->dir);
	return -EIO;
}

static int fail_io(struct worker *w, const char *call, int err)
{
	if (fail_begin(w, "%s: %s (errno %d)", call, strerror(err), err))
		fail_end(w);
	return -EIO;
}

static void dump_bytes(const char *label, uint64_t off, const uint8_t *p, size_t n)
{
	size_t i;

	fprintf(stderr, "fsx:   %-8s @0x%06" PRIx64 ":", label, off);
	for (i = 0; i < n; i++)
		fprintf(stderr, " %02x", p[i]);
	fputc('\n', stderr);
}

/* got[0..len) was read from file offset off but differs from the model. */
static int fail_data(struct worker *w, uint64_t off, const uint8_t *got, size_t len)
{
	const uint8_t *want = w->m.buf + off;
	size_t first = 0, nbad = 0, i, from, n;

	while (want[first] == got[first])
		first++;
	for (i = first; i < len; i++)
		nbad += want[i] != got[i];
	if (!fail_begin(w,
			"DATA MISMATCH at file offset 0x%" PRIx64
			" (byte %zu of the range; %zu of %zu bytes differ)",
			off + first, first, nbad, len))
		return -EIO;
	from = first > FSX_DUMP_BYTES / 4 ? first - FSX_DUMP_BYTES / 4 : 0;
	n = min_u64(FSX_DUMP_BYTES, len - from);
	dump_bytes("expected", off + from, want + from, n);
	dump_bytes("got", off + from, got + from, n);
	return fail_end(w);
}

/* Compare n bytes read at off for a request of len against the model. */
static int check_read(struct worker *w, uint64_t off, size_t len, size_t n)
{
	size_t want = off >= w->m.size ? 0 : min_u64(len, w->m.size - off);

	if (n != want) {
		if (fail_begin(w, "SHORT/LONG READ: got 0x%zx bytes, model says 0x%zx", n, want))
			fail_end(w);
		return -EIO;
	}
	if (n && memcmp(w->m.buf + off, w->rbuf, n))
		return fail_data(w, off, w->rbuf, n);
	return 0;
}

static int check_size(struct worker *w)
{
	struct stat st;

	if (fstat(w->fd, &st))
		return fail_io(w, "fstat", errno);
	if ((uint64_t)st.st_size == w->m.size)
		return 0;
	if (fail_begin(w,
		       "SIZE MISMATCH after the op: fstat says 0x%jx, "
		       "model says 0x%zx",
		       (intmax_t)st.st_size, w->m.size))
		fail_end(w);
	return -EIO;
}

static int full_pwrite(int fd, const uint8_t *p, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int full_write(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read until len bytes or EOF; returns the count or -errno. */
static ssize_t full_pread(int fd, uint8_t *p, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/*
 * The extent offsets are drawn from: mostly the file plus a little, so writes
 * overwrite data (where misplaced bytes show) rather than leave the file
 * mostly holes; sometimes anywhere below maxfile, to punch big holes.
 */
static uint64_t pick_span(struct worker *w)
{
	size_t maxfile = w->fsx->o.maxfile;

	if (!rng_below(&w->rng, 4))
		return maxfile;
	return min_u64(w->m.size + 2 * FSX_BLOCK, maxfile);
}

/* Half the time near a block boundary (+-3), sometimes at or past EOF. */
static uint64_t pick_off(struct worker *w)
{
	uint64_t r = rng_below(&w->rng, 8), span = pick_span(w), off;

	if (r < 4) {
		off = rng_below(&w->rng, span / FSX_BLOCK + 1) * FSX_BLOCK;
		off += rng_below(&w->rng, 7);
		off = off < 3 ? 0 : off - 3;
	} else if (r == 4) {
		off = w->m.size + rng_below(&w->rng, 2 * FSX_BLOCK);
	} else if (r == 5) {
		off = w->m.size - min_u64(w->m.size, rng_below(&w->rng, FSX_BLOCK));
	} else {
		off = rng_below(&w->rng, span);
	}
	return min_u64(off, w->fsx->o.maxfile - 1);
}

/* 1..maxlen: often tiny, often a block multiple +-3, else uniform. */
static size_t pick_len(struct worker *w)
{
	size_t maxlen = w->fsx->o.maxlen;
	uint64_t r = rng_below(&w->rng, 4), len;

	if (r == 0) {
		len = 1 + rng_below(&w->rng, min_u64(16, maxlen));
	} else if (r == 1) {
		len = (1 + rng_below(&w->rng, maxlen / FSX_BLOCK + 1)) * FSX_BLOCK;
		len = len + rng_below(&w->rng, 7) - 3;
	} else {
		len = 1 + rng_below(&w->rng, maxlen);
	}
	return (size_t)(len > maxlen ? maxlen : len);
}

/* New size for ftruncate: 0, a block boundary +-1, near EOF, or anywhere. */
static uint64_t pick_trunc(struct worker *w)
{
	uint64_t r = rng_below(&w->rng, 16), span = pick_span(w), n;

	if (r == 0)
		return 0;
	if (r < 7) {
		n = rng_below(&w->rng, span / FSX_BLOCK + 1) * FSX_BLOCK;
		n += rng_below(&w->rng, 3);
		n = n < 1 ? 0 : n - 1;
	} else if (r < 13) {
		n = w->m.size + rng_below(&w->rng, 4 * FSX_BLOCK);
		n -= min_u64(n, rng_below(&w->rng, 4 * FSX_BLOCK));
	} else {
		n = rng_below(&w->rng, span + 1);
	}
	return min_u64(n, w->fsx->o.maxfile);
}

/* Update the model after a write the file took; -X's poison may be healed. */
static int model_apply(struct worker *w, uint64_t off, const uint8_t *p, size_t len)
{
	if (w->poison >= 0 && (uint64_t)w->poison >= off && (uint64_t)w->poison < off + len) {
		w->poison = -1;
		w->inject_armed = true;
	}
	if (model_write(&w->m, off, p, len))
		return fail_io(w, "model", ENOMEM);
	return 0;
}

/* Read [off, off+len) as its own log entry, sharing the op number. */
static int check_range(struct worker *w, enum op_kind kind, uint64_t off, uint64_t len)
{
	ssize_t n;

	len = min_u64(len, w->rbuf_len);
	log_op(w, kind, off, len);
	n = full_pread(w->fd, w->rbuf, len, off);
	if (n < 0)
		return fail_io(w, "pread", (int)-n);
	if (check_read(w, off, len, (size_t)n))
		return -EIO;
	log_done(w);
	return 0;
}

/*
 * Half the time, check the bytes an op is about to overwrite or cut off:
 * otherwise a corruption there would vanish unseen.
 */
static int maybe_precheck(struct worker *w, uint64_t off, uint64_t len)
{
	if (off >= w->m.size || rng_below(&w->rng, 2))
		return 0;
	return check_range(w, OP_PRECHECK, off, min_u64(len, w->m.size - off));
}

/*
 * Half the time, once an op changed [off, off+len), read back the blocks it
 * touched and one on either side, past EOF included: read-modify-write bugs
 * in a block-based filesystem show up here, at the op that caused them.
 */
static int maybe_readback(struct worker *w, uint64_t off, uint64_t len)
{
	uint64_t start = off - off % FSX_BLOCK, end = off + len;

	if (rng_below(&w->rng, 2))
		return 0;
	log_done(w);
	start = start < FSX_BLOCK ? 0 : start - FSX_BLOCK;
	end = end - end % FSX_BLOCK + 2 * FSX_BLOCK;
	return check_range(w, OP_READBACK, start, end - start);
}

static int do_write(struct worker *w)
{
	uint64_t off = pick_off(w);
	size_t len = min_u64(pick_len(w), w->fsx->o.maxfile - off);
	int rc;

	rc = maybe_precheck(w, off, len);
	if (rc)
		return rc;
	log_op(w, OP_WRITE, off, len);
	rng_fill(&w->rng, w->wbuf, len);
	rc = full_pwrite(w->fd, w->wbuf, len, off);
	if (rc)
		return fail_io(w, "pwrite", -rc);
	rc = model_apply(w, off, w->wbuf, len);
	return rc ? rc : maybe_readback(w, off, len);
}

static int do_read(struct worker *w)
{
	uint64_t off = pick_off(w);
	size_t len = pick_len(w);
	ssize_t n;

	log_op(w, OP_READ, off, len);
	n = full_pread(w->fd, w->rbuf, len, off);
	if (n < 0)
		return fail_io(w, "pread", (int)-n);
	return check_read(w, off, len, (size_t)n);
}

/* Read the whole file, asking for a block more to catch a file too long. */
static int do_verify(struct worker *w)
{
	size_t len = min_u64(w->m.size + FSX_BLOCK, w->rbuf_len);
	ssize_t n;

	log_op(w, OP_VERIFY, 0, w->m.size);
	n = full_pread(w->fd, w->rbuf, len, 0);
	if (n < 0)
		return fail_io(w, "pread", (int)-n);
	return check_read(w, 0, len, (size_t)n);
}

static int do_trunc(struct worker *w)
{
	uint64_t n = pick_trunc(w);
	int rc;

	rc = maybe_precheck(w, n, w->m.size - min_u64(n, w->m.size));
	if (rc)
		return rc;
	log_op(w, OP_TRUNC, n, 0);
	if (ftruncate(w->fd, (off_t)n))
		return fail_io(w, "ftruncate", errno);
	if (w->poison >= 0 && (uint64_t)w->poison >= n) {
		w->poison = -1;
		w->inject_armed = true;
	}
	if (model_resize(&w->m, n))
		return fail_io(w, "model", ENOMEM);
	return maybe_readback(w, n, 0);
}

static int do_append(struct worker *w)
{
	size_t maxfile = w->fsx->o.maxfile, len;
	uint64_t off = w->m.size;
	off_t pos;
	int rc;

	if (off >= maxfile)
		return do_trunc(w);
	len = min_u64(pick_len(w), maxfile - off);
	log_op(w, OP_APPEND, off, len);
	rng_fill(&w->rng, w->wbuf, len);
	rc = full_write(w->afd, w->wbuf, len);
	if (rc)
		return fail_io(w, "write(O_APPEND)", -rc);
	pos = lseek(w->afd, 0, SEEK_CUR);
	if (pos < 0)
		return fail_io(w, "lseek", errno);
	if ((uint64_t)pos != off + len) {
		if (fail_begin(w, "O_APPEND fd at 0x%jx after the append, expected 0x%" PRIx64,
			       (intmax_t)pos, off + len))
			fail_end(w);
		return -EIO;
	}
	rc = model_apply(w, off, w->wbuf, len);
	return rc ? rc : maybe_readback(w, off, len);
}

static int open_files(struct worker *w, int flags)
{
	w->fd = open(w->path, O_RDWR | flags, 0600);
	if (w->fd < 0)
		return -errno;
	w->afd = open(w->path, O_WRONLY | O_APPEND);
	if (w->afd < 0) {
		int rc = -errno;

		close(w->fd);
		w->fd = -1;
		return rc;
	}
	return 0;
}

static int close_files(struct worker *w)
{
	int rc = 0;

	if (w->afd >= 0 && close(w->afd))
		rc = -errno;
	if (w->fd >= 0 && close(w->fd) && !rc)
		rc = -errno;
	w->fd = -1;
	w->afd = -1;
	return rc;
}

static int do_reopen(struct worker *w)
{
	int rc;

	log_op(w, OP_REOPEN, 0, 0);
	rc = close_files(w);
	if (rc)
		return fail_io(w, "close", -rc);
	rc = open_files(w, 0);
	if (rc)
		return fail_io(w, "open", -rc);
	return 0;
}

static int do_fsync(struct worker *w)
{
	bool data_only = rng_below(&w->rng, 2);

	log_op(w, OP_FSYNC, 0, 0);
	if (data_only ? fdatasync(w->fd) : fsync(w->fd))
		return fail_io(w, data_only ? "fdatasync" : "fsync", errno);
	return 0;
}

/* An offset and length inside the file, for mmap. Needs a non-empty file. */
static void pick_inside(struct worker *w, uint64_t *off, size_t *len)
{
	*off = pick_off(w);
	if (*off >= w->m.size)
		*off = rng_below(&w->rng, w->m.size);
	*len = min_u64(pick_len(w), w->m.size - *off);
}

/* Map [off, off+len) of the file; *delta is where off lands in the map. */
static uint8_t *map_range(struct worker *w, uint64_t off, size_t len, int prot, size_t *delta,
			  size_t *maplen)
{
	uint64_t pgoff = off & ~(uint64_t)(w->fsx->pagesize - 1);
	void *p;

	*delta = (size_t)(off - pgoff);
	*maplen = *delta + len;
	p = mmap(NULL, *maplen, prot, MAP_SHARED, w->fd, (off_t)pgoff);
	return p == MAP_FAILED ? NULL : p;
}

static int do_mapread(struct worker *w)
{
	size_t len, delta, maplen;
	uint64_t off;
	uint8_t *p;

	if (!w->m.size)
		return do_read(w);
	pick_inside(w, &off, &len);
	log_op(w, OP_MAPREAD, off, len);
	p = map_range(w, off, len, PROT_READ, &delta, &maplen);
	if (!p)
		return fail_io(w, "mmap(PROT_READ)", errno);
	memcpy(w->rbuf, p + delta, len);
	if (munmap(p, maplen))
		return fail_io(w, "munmap", errno);
	return check_read(w, off, len, len);
}

static int do_mapwrite(struct worker *w)
{
	size_t len, delta, maplen;
	uint64_t off;
	uint8_t *p;
	int rc;

	if (!w->m.size)
		return do_write(w);
	pick_inside(w, &off, &len);
	rc = maybe_precheck(w, off, len);
	if (rc)
		return rc;
	log_op(w, OP_MAPWRITE, off, len);
	rng_fill(&w->rng, w->wbuf, len);
	p = map_range(w, off, len, PROT_READ | PROT_WRITE, &delta, &maplen);
	if (!p)
		return fail_io(w, "mmap(PROT_WRITE)", errno);
	memcpy(p + delta, w->wbuf, len);
	if (msync(p, maplen, MS_SYNC)) {
		int err = errno;

		munmap(p, maplen);
		return fail_io(w, "msync", err);
	}
	if (munmap(p, maplen))
		return fail_io(w, "munmap", errno);
	rc = model_apply(w, off, w->wbuf, len);
	return rc ? rc : maybe_readback(w, off, len);
}

static enum op_kind pick_op(struct worker *w)
{
	bool use_mmap = w->fsx->o.use_mmap;
	unsigned total = 0, r;
	int k;

	for (k = 0; k < OP_NKINDS; k++)
		if (use_mmap || !op_descs[k].needs_mmap)
			total += op_descs[k].weight;
	r = (unsigned)rng_below(&w->rng, total);
	for (k = 0; k < OP_NKINDS; k++) {
		if (!use_mmap && op_descs[k].needs_mmap)
			continue;
		if (r < op_descs[k].weight)
			break;
		r -= op_descs[k].weight;
	}
	return (enum op_kind)k;
}

static int do_op(struct worker *w, enum op_kind op)
{
	switch (op) {
	case OP_WRITE:
		return do_write(w);
	case OP_READ:
		return do_read(w);
	case OP_TRUNC:
		return do_trunc(w);
	case OP_APPEND:
		return do_append(w);
	case OP_REOPEN:
		return do_reopen(w);
	case OP_FSYNC:
		return do_fsync(w);
	case OP_VERIFY:
		return do_verify(w);
	case OP_MAPREAD:
		return do_mapread(w);
	case OP_MAPWRITE:
		return do_mapwrite(w);
	default:
		return -EINVAL;
	}
}

/*
 * -X: flip one model byte once half the ops are done. The file is right and
 * the model wrong, so a working checker must report it. Offsets come from the
 * op number, not the PRNG, so the op sequence matches a run without -X.
 */
static void maybe_inject(struct worker *w)
{
	uint64_t x = w->opnum;

	if (!w->inject_armed || w->opnum < w->nops / 2 || !w->m.size)
		return;
	x = splitmix64(&x) % w->m.size;
	log_op(w, OP_INJECT, x, 1);
	w->m.buf[x] ^= 0x5a;
	w->poison = (int64_t)x;
	w->poisoned_at = w->opnum;
	w->inject_armed = false;
	log_done(w);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int rc = 0;

	for (w->opnum = 1; w->opnum <= w->nops; w->opnum++) {
		if (atomic_load(&w->fsx->failed))
			return NULL;
		maybe_inject(w);
		rc = do_op(w, pick_op(w));
		if (!rc)
			rc = check_size(w);
		if (rc)
			return NULL;
		log_done(w);
	}
	maybe_inject(w);
	if (!do_verify(w) && !check_size(w))
		log_done(w);
	return NULL;
}

/* Open DIR/fsx.<idx> empty and set up buffers. Prints its own errors. */
static int worker_init(struct worker *w, struct fsx *fsx, unsigned idx)
{
	const struct opts *o = &fsx->o;
	size_t plen = strlen(o->dir) + 32;
	int rc;

	w->fsx = fsx;
	w->idx = idx;
	w->fd = w->afd = -1;
	w->poison = -1;
	w->inject_armed = o->inject && idx == 0;
	w->nops = o->nops / o->nthreads + (idx < o->nops % o->nthreads);
	rng_init(&w->rng, o->seed, idx);
	w->rbuf_len = o->maxfile + FSX_BLOCK;
	w->path = malloc(plen);
	w->wbuf = malloc(o->maxfile);
	w->rbuf = malloc(w->rbuf_len);
	if (!w->path || !w->wbuf || !w->rbuf) {
		fprintf(stderr, "fsx: out of memory\n");
		return -ENOMEM;
	}
	snprintf(w->path, plen, "%s/fsx.%u", o->dir, idx);
	rc = open_files(w, O_CREAT | O_TRUNC);
	if (rc)
		fprintf(stderr, "fsx: open %s: %s (errno %d)\n", w->path, strerror(-rc), -rc);
	return rc;
}

/* Free a worker; the file goes too unless keep. */
static void worker_release(struct worker *w, bool keep)
{
	close_files(w);
	if (!keep && w->path && unlink(w->path) && errno != ENOENT)
		fprintf(stderr, "fsx: unlink %s: %s\n", w->path, strerror(errno));
	free(w->path);
	free(w->wbuf);
	free(w->rbuf);
	free(w->m.buf);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fsx [-n OPS] [-s SEED] [-m] [-t THREADS] [-b MAXLEN] [-q] DIR\n"
		"Random-operation data-integrity exerciser: works on DIR/fsx.<i> and\n"
		"checks every read and the file size against an in-memory model.\n"
		"  -n OPS      total operations, split among threads (default %d)\n"
		"  -s SEED     PRNG seed (default: from the clock); always printed\n"
		"  -m          also use mmap: MAP_SHARED reads and writes within EOF\n"
		"  -t THREADS  threads, each on its own file (default 1, max %d)\n"
		"  -b MAXLEN   longest read/write in bytes, k/m suffix ok (default 64k)\n"
		"  -q          quiet: print only the seed and the result\n"
		"  -X          inject a model error to self-test the checker (must exit 1)\n"
		"  -h, --help  this text\n"
		"Exit status: 0 ok; 1 mismatch or I/O error (files kept); 2 usage;\n"
		"3 -X found nothing to corrupt or its error went unnoticed.\n",
		FSX_DEFAULT_OPS, FSX_MAX_THREADS);
}

/* Parse a number with an optional k/m suffix (when scaled); 0 or -EINVAL. */
static int parse_num(const char *s, bool scaled, uint64_t *out)
{
	char *end;
	uint64_t v;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno)
		return -EINVAL;
	if (scaled && *end && v > UINT64_MAX / (1024 * 1024))
		return -EINVAL;
	if (scaled && (*end == 'k' || *end == 'K')) {
		v *= 1024;
		end++;
	} else if (scaled && (*end == 'm' || *end == 'M')) {
		v *= 1024 * 1024;
		end++;
	}
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

static uint64_t clock_seed(void)
{
	struct timespec ts;
	uint64_t x;

	clock_gettime(CLOCK_REALTIME, &ts);
	x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	x ^= (uint64_t)getpid() << 32;
	return splitmix64(&x) >> 1; /* positive in any signed printing too */
}

/* Returns 0 to run, 1 after --help, -EINVAL on a usage error. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	bool have_seed = false;
	uint64_t v;
	int c;

	o->nops = FSX_DEFAULT_OPS;
	o->nthreads = 1;
	o->maxlen = FSX_DEFAULT_MAXLEN;
	if (argc > 1 && !strcmp(argv[1], "--help"))
		return 1;
	while ((c = getopt(argc, argv, "n:s:mt:b:qXh")) != -1) {
		switch (c) {
		case 'n':
			if (parse_num(optarg, true, &o->nops))
				goto bad;
			break;
		case 's':
			if (parse_num(optarg, false, &o->seed))
				goto bad;
			have_seed = true;
			break;
		case 't':
			if (parse_num(optarg, false, &v) || !v || v > FSX_MAX_THREADS)
				goto bad;
			o->nthreads = (unsigned)v;
			break;
		case 'b':
			if (parse_num(optarg, true, &v) || !v || v > FSX_MAXLEN_LIMIT)
				goto bad;
			o->maxlen = (size_t)v;
			break;
		case 'm':
			o->use_mmap = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'X':
			o->inject = true;
			break;
		case 'h':
			return 1;
		default:
			return -EINVAL;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "fsx: need exactly one DIR\n");
		return -EINVAL;
	}
	o->dir = argv[optind];
	o->maxfile = o->maxlen > FSX_MAX_FILE ? o->maxlen : FSX_MAX_FILE;
	if (!have_seed)
		o->seed = clock_seed();
	return 0;
bad:
	fprintf(stderr, "fsx: bad value for -%c: %s\n", c, optarg);
	return -EINVAL;
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_summary(const struct fsx *fsx, const struct worker *ws, double secs)
{
	uint64_t sum;
	unsigned i;
	int k;

	printf("fsx: %.2f s;", secs);
	for (k = 0; k < OP_NKINDS; k++) {
		for (sum = 0, i = 0; i < fsx->o.nthreads; i++)
			sum += ws[i].counts[k];
		if (sum)
			printf(" %s %" PRIu64, op_descs[k].name, sum);
	}
	printf("\n");
}

/* Start every worker and wait for them; false if any failed. */
static bool run_workers(struct fsx *fsx, struct worker *ws)
{
	unsigned i, started;
	bool ok = true;
	int rc;

	for (started = 0; started < fsx->o.nthreads; started++) {
		rc = pthread_create(&ws[started].tid, NULL, worker_main, &ws[started]);
		if (rc) {
			fprintf(stderr, "fsx: pthread_create: %s\n", strerror(rc));
			atomic_store(&fsx->failed, true);
			ok = false;
			break;
		}
	}
	for (i = 0; i < started; i++) {
		pthread_join(ws[i].tid, NULL);
		ok = ok && !ws[i].failed;
	}
	return ok && !atomic_load(&fsx->failed);
}

int main(int argc, char **argv)
{
	struct fsx fsx = {0};
	struct worker *ws;
	unsigned i, ninit = 0;
	double t0;
	bool ok = false, inject_seen = false;
	int rc;

	rc = parse_args(argc, argv, &fsx.o);
	if (rc) {
		usage(rc > 0 ? stdout : stderr);
		return rc > 0 ? 0 : 2;
	}
	atomic_init(&fsx.failed, false);
	fsx.pagesize = (size_t)sysconf(_SC_PAGESIZE);
	printf("fsx: seed %" PRIu64 "\n", fsx.o.seed);
	if (!fsx.o.quiet)
		printf("fsx: %" PRIu64 " ops, %u thread(s), maxlen %zu, "
		       "mmap %s%s, dir %s\n",
		       fsx.o.nops, fsx.o.nthreads, fsx.o.maxlen, fsx.o.use_mmap ? "on" : "off",
		       fsx.o.inject ? ", -X self-test" : "", fsx.o.dir);
	fflush(stdout);
	ws = calloc(fsx.o.nthreads, sizeof(*ws));
	if (!ws) {
		fprintf(stderr, "fsx: out of memory\n");
		return 1;
	}
	for (; ninit < fsx.o.nthreads; ninit++)
		if (worker_init(&ws[ninit], &fsx, ninit))
			goto out_release;
	t0 = now_sec();
	ok = run_workers(&fsx, ws);
	inject_seen = ws[0].poisoned_at != 0;
	if (ok && !fsx.o.quiet)
		print_summary(&fsx, ws, now_sec() - t0);
out_release:
	for (i = 0; i < fsx.o.nthreads && i <= ninit; i++)
		worker_release(&ws[i], !ok && ninit == fsx.o.nthreads);
	free(ws);
	if (!ok)
		return 1;
	if (fsx.o.inject) {
		fprintf(stderr, "fsx: -X self-test FAILED: %s\n",
			inject_seen ? "the corrupted model byte went unnoticed"
				    : "the file stayed empty, nothing to corrupt");
		return 3;
	}
	printf("fsx: %" PRIu64 " ops, seed %" PRIu64 ", ok\n", fsx.o.nops, fsx.o.seed);
	return 0;
}
