/* test_audit.c - Criterion suite for fs/audit.c: each line is one valid JSON
 * object with exactly the documented keys (times in UTC with milliseconds);
 * the log file's mode, appends and concurrent writers. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "audit.h"
#include "stamp.h"

#define NOW_NS (1764425138LL * NSEC_PER_SEC + 987654321) /* .987: truncated */
#define BORN_NS 1700000000123456789LL
#define DEADLINE_NS (BORN_NS + 7200LL * NSEC_PER_SEC)
#define ID "0123456789abcdef01234567"

/* ---- a strict JSON reader for one flat object of strings, integers and
 * null: enough to prove the lines parse, and to read them back ---- */

#define MAX_KEYS 16

struct jval {
	char key[32];
	enum { J_STR, J_NUM, J_NULL } type;
	char str[128];
	long long num;
};

struct jobj {
	size_t n;
	struct jval v[MAX_KEYS];
};

static void skip_ws(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == '\r' || **p == '\n')
		(*p)++;
}

static bool parse_string(const char **p, char *out, size_t cap)
{
	size_t n = 0;

	if (**p != '"')
		return false;
	for ((*p)++; **p != '"'; (*p)++) {
		unsigned char c = (unsigned char)**p;

		if (c < 0x20)
			return false; /* raw control characters (and the end) */
		if (c == '\\') {
			(*p)++;
			if (!strchr("\"\\/bfnrtu", **p) || **p == '\0')
				return false;
			if (**p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", (*p)[i]) || !(*p)[i])
						return false;
				*p += 4;
			}
		}
		if (n + 1 >= cap)
			return false;
		out[n++] = (char)c;
	}
	(*p)++;
	out[n] = '\0';
	return true;
}

static bool parse_number(const char **p, long long *out)
{
	const char *s = *p;
	char *end;

	if (**p == '-')
		(*p)++;
	if (**p == '0')
		(*p)++;
	else if (**p >= '1' && **p <= '9')
		while (**p >= '0' && **p <= '9')
			(*p)++;
	else
		return false;
	if (**p == '.' || **p == 'e' || **p == 'E')
		return false; /* valid JSON, but the log only writes integers */
	*out = strtoll(s, &end, 10);
	return end == *p;
}

/* Parse line as exactly one object followed by '\n' and nothing else. */
static bool parse_line(const char *line, struct jobj *o)
{
	const char *p = line;

	o->n = 0;
	if (*p++ != '{')
		return false;
	skip_ws(&p);
	if (*p == '}')
		goto end;
	for (;;) {
		struct jval *v;

		if (o->n == MAX_KEYS)
			return false;
		v = &o->v[o->n++];
		skip_ws(&p);
		if (!parse_string(&p, v->key, sizeof(v->key)))
			return false;
		skip_ws(&p);
		if (*p++ != ':')
			return false;
		skip_ws(&p);
		if (*p == '"') {
			v->type = J_STR;
			if (!parse_string(&p, v->str, sizeof(v->str)))
				return false;
		} else if (strncmp(p, "null", 4) == 0) {
			v->type = J_NULL;
			p += 4;
		} else {
			v->type = J_NUM;
			if (!parse_number(&p, &v->num))
				return false;
		}
		skip_ws(&p);
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p == '}')
			break;
		return false;
	}
end:
	p++;
	return p[0] == '\n' && p[1] == '\0';
}

static const struct jval *get(const struct jobj *o, const char *key)
{
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->v[i].key, key) == 0)
			return &o->v[i];
	return NULL;
}

/* Exactly the documented keys, each once. */
static void expect_keys(const struct jobj *o)
{
	static const char *const want[] = {"time", "event",    "zone", "id",
					   "born", "deadline", "bytes"};

	cr_expect_eq(o->n, 7, "got %zu keys", o->n);
	for (size_t i = 0; i < 7; i++) {
		size_t seen = 0;

		for (size_t j = 0; j < o->n; j++)
			seen += strcmp(o->v[j].key, want[i]) == 0;
		cr_expect_eq(seen, 1, "key %s seen %zu times", want[i], seen);
	}
}

static void expect_str(const struct jobj *o, const char *key, const char *want)
{
	const struct jval *v = get(o, key);

	cr_assert_not_null(v, "no key %s", key);
	cr_expect_eq(v->type, J_STR, "%s is not a string", key);
	cr_expect_str_eq(v->str, want, "key %s", key);
}

static void expect_null(const struct jobj *o, const char *key)
{
	const struct jval *v = get(o, key);

	cr_assert_not_null(v, "no key %s", key);
	cr_expect_eq(v->type, J_NULL, "%s is not null", key);
}

static void expect_num(const struct jobj *o, const char *key, long long want)
{
	const struct jval *v = get(o, key);

	cr_assert_not_null(v, "no key %s", key);
	cr_expect_eq(v->type, J_NUM, "%s is not a number", key);
	cr_expect_eq(v->num, want, "key %s", key);
}

/* Format rec and parse it back; checks the one-line shape. */
static void format_parse(const struct audit_rec *rec, int64_t now, struct jobj *o)
{
	char buf[512];
	int n = audit_format(rec, now, buf, sizeof(buf));

	cr_assert_gt(n, 0);
	cr_assert_eq((size_t)n, strlen(buf), "returned length");
	cr_assert_eq(buf[n - 1], '\n');
	cr_assert_eq(strchr(buf, '\n'), buf + n - 1, "more than one line: %s", buf);
	cr_assert(parse_line(buf, o), "not one valid JSON object: %s", buf);
	expect_keys(o);
}

Test(audit, format_full_record)
{
	struct audit_rec rec = {.event = AUDIT_SHREDDED,
				.zone = "rlc",
				.id = ID,
				.born = BORN_NS,
				.deadline = DEADLINE_NS,
				.bytes = 123456789012LL};
	struct jobj o;

	format_parse(&rec, NOW_NS, &o);
	expect_str(&o, "time", "2025-11-29T14:05:38.987Z");
	expect_str(&o, "event", "shredded");
	expect_str(&o, "zone", "rlc");
	expect_str(&o, "id", ID);
	expect_str(&o, "born", "2023-11-14T22:13:20.123Z");
	expect_str(&o, "deadline", "2023-11-15T00:13:20.123Z");
	expect_num(&o, "bytes", 123456789012LL);
}

Test(audit, unknown_times_are_null)
{
	struct audit_rec rec = {.event = AUDIT_INVALID_STAMP,
				.zone = "idocr",
				.id = "",
				.born = 0,
				.deadline = 0,
				.bytes = -1};
	struct jobj o;

	format_parse(&rec, NOW_NS, &o);
	expect_str(&o, "time", "2025-11-29T14:05:38.987Z");
	expect_null(&o, "born");
	expect_null(&o, "deadline");
	expect_str(&o, "id", "");
	expect_num(&o, "bytes", -1);

	format_parse(&rec, 0, &o);
	expect_null(&o, "time");
}

Test(audit, null_zone_is_empty_string)
{
	struct audit_rec rec = {.event = AUDIT_SHREDDED, .zone = NULL, .bytes = 0};
	struct jobj o;

	format_parse(&rec, NOW_NS, &o);
	expect_str(&o, "zone", "");
	expect_num(&o, "bytes", 0);
}

Test(audit, every_event_name)
{
	static const struct {
		enum audit_event ev;
		const char *name;
	} cases[] = {
		{AUDIT_VANISHED, "vanished"},	{AUDIT_SHREDDED, "shredded"},
		{AUDIT_DELETED, "deleted"},	{AUDIT_INVALID_STAMP, "invalid_stamp"},
		{AUDIT_DESTROYED, "destroyed"}, {AUDIT_BAD_NAME, "bad_name"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct audit_rec rec = {.event = cases[i].ev,
					.zone = "rlc",
					.id = ID,
					.born = BORN_NS,
					.deadline = DEADLINE_NS,
					.bytes = 7};
		struct jobj o;

		format_parse(&rec, NOW_NS, &o);
		expect_str(&o, "event", cases[i].name);
	}
}

Test(audit, longest_zone_fits)
{
	static const char zone[] =
		"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij0123";
	struct audit_rec rec = {.event = AUDIT_DESTROYED,
				.zone = zone,
				.id = ID,
				.born = BORN_NS,
				.deadline = DEADLINE_NS,
				.bytes = INT64_MAX};
	struct jobj o;

	cr_assert_eq(strlen(zone), 64);
	format_parse(&rec, NOW_NS, &o);
	expect_str(&o, "zone", zone);
	expect_num(&o, "bytes", INT64_MAX);
}

/* ---- the log file ---- */

static char dir[64];
static char path[128];

static void file_setup(void)
{
	strcpy(dir, "/tmp/ekycfs-test-audit-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/audit.log", dir);
}

static void file_teardown(void)
{
	char p[160];

	unlink(path);
	snprintf(p, sizeof(p), "%s/link", dir);
	unlink(p);
	rmdir(dir);
}

/* Read the whole file into a NUL-terminated heap buffer. */
static char *slurp(const char *p, size_t *len)
{
	FILE *f = fopen(p, "r");
	char *buf;
	long n;

	cr_assert_not_null(f, "%s: %s", p, strerror(errno));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

Test(audit_file, creates_0600_and_appends, .init = file_setup, .fini = file_teardown)
{
	struct audit_rec rec = {.event = AUDIT_VANISHED,
				.zone = "rlc",
				.id = ID,
				.born = BORN_NS,
				.deadline = DEADLINE_NS,
				.bytes = 10};
	struct audit *a;
	struct stat st;
	struct jobj o;
	char *text, *nl;
	size_t len;
	int err = 0;

	umask(0); /* the mode must come from audit_open, not the umask */
	a = audit_open(path, true, &err);
	cr_assert_not_null(a, "audit_open: %d", err);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
	audit_log(a, &rec, NOW_NS);
	audit_close(a);

	rec.event = AUDIT_SHREDDED;
	a = audit_open(path, true, &err);
	cr_assert_not_null(a, "reopen: %d", err);
	audit_log(a, &rec, NOW_NS + NSEC_PER_SEC);
	audit_close(a);

	text = slurp(path, &len);
	nl = strchr(text, '\n');
	cr_assert_not_null(nl);
	nl[0] = '\0';
	{
		char first[512];

		snprintf(first, sizeof(first), "%s\n", text);
		cr_assert(parse_line(first, &o), "%s", first);
		expect_str(&o, "event", "vanished");
		cr_assert(parse_line(nl + 1, &o), "%s", nl + 1);
		expect_str(&o, "event", "shredded");
		expect_str(&o, "time", "2025-11-29T14:05:39.987Z");
	}
	free(text);
}

Test(audit_file, keeps_existing_content, .init = file_setup, .fini = file_teardown)
{
	static const char before[] = "{\"earlier\":1}\n";
	struct audit_rec rec = {.event = AUDIT_DELETED, .zone = "idocr", .bytes = -1};
	struct audit *a;
	char *text;
	size_t len;
	int fd, err = 0;
	struct jobj o;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, before, sizeof(before) - 1), (ssize_t)sizeof(before) - 1);
	close(fd);
	a = audit_open(path, true, &err);
	cr_assert_not_null(a);
	audit_log(a, &rec, NOW_NS);
	audit_close(a);
	text = slurp(path, &len);
	cr_expect_eq(strncmp(text, before, sizeof(before) - 1), 0, "old line overwritten");
	cr_expect(parse_line(text + sizeof(before) - 1, &o), "%s", text);
	free(text);
}

Test(audit_file, open_failures, .init = file_setup, .fini = file_teardown)
{
	char p[160];
	int err = 0;

	snprintf(p, sizeof(p), "%s/missing/audit.log", dir);
	cr_expect_null(audit_open(p, true, &err));
	cr_expect_eq(err, -ENOENT);

	/* A symlink planted at the log path is not followed. */
	snprintf(p, sizeof(p), "%s/link", dir);
	cr_assert_eq(symlink(path, p), 0);
	err = 0;
	cr_expect_null(audit_open(p, true, &err));
	cr_expect_eq(err, -ELOOP);
	cr_expect_neq(access(path, F_OK), 0, "symlink target created");

	/* The store's own log is a plain file of its own: not a second name
	 * of another file, not a fifo or a device (never opened). A log the
	 * user names may be a character device, never a fifo (its reader
	 * could hold up the file system). */
	snprintf(p, sizeof(p), "%s/other", dir);
	cr_assert_eq(close(open(p, O_WRONLY | O_CREAT, 0600)), 0);
	cr_assert_eq(link(p, path), 0);
	err = 0;
	cr_expect_null(audit_open(path, true, &err));
	cr_expect_eq(err, -EMLINK);
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(mkfifo(path, 0600), 0);
	err = 0;
	cr_expect_null(audit_open(path, true, &err));
	cr_expect_eq(err, -EINVAL);
	err = 0;
	cr_expect_null(audit_open(path, false, &err));
	cr_expect_eq(err, -EINVAL, "a fifo the user names");
	cr_assert_eq(unlink(path), 0);
	err = 0;
	cr_expect_null(audit_open("/dev/null", true, &err));
	cr_expect_eq(err, -EINVAL);
	{
		struct audit *a = audit_open("/dev/null", false, &err);

		cr_expect_not_null(a, "a character device the user names: %d", err);
		audit_close(a);
	}

	audit_log(NULL, &(struct audit_rec){.event = AUDIT_VANISHED}, NOW_NS); /* no-op */
	audit_close(NULL);
}

/* ---- concurrent writers ---- */

#define THREADS 4
#define LINES 500

struct writer {
	struct audit *a;
	int t;
};

static void *write_lines(void *arg)
{
	struct writer *w = arg;
	/* A long zone makes each line long enough to tear if writes split. */
	static const char zone[] =
		"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz";

	for (int i = 0; i < LINES; i++) {
		struct audit_rec rec = {.event = (enum audit_event)(i % 5),
					.zone = zone,
					.id = ID,
					.born = BORN_NS,
					.deadline = DEADLINE_NS,
					.bytes = (int64_t)w->t * 1000000 + i};

		audit_log(w->a, &rec, NOW_NS);
	}
	return NULL;
}

Test(audit_file, concurrent_lines_intact, .init = file_setup, .fini = file_teardown)
{
	pthread_t th[THREADS];
	struct writer w[THREADS];
	unsigned seen[THREADS][LINES] = {{0}};
	struct audit *a;
	char *text, *line;
	size_t len, lines = 0;
	int err = 0;

	a = audit_open(path, true, &err);
	cr_assert_not_null(a);
	for (int t = 0; t < THREADS; t++) {
		w[t] = (struct writer){a, t};
		cr_assert_eq(pthread_create(&th[t], NULL, write_lines, &w[t]), 0);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	audit_close(a);

	text = slurp(path, &len);
	cr_assert_gt(len, 0);
	cr_assert_eq(text[len - 1], '\n');
	for (line = text; *line; lines++) {
		char *nl = strchr(line, '\n'), saved;
		const struct jval *b;
		struct jobj o;
		long long t, i;

		cr_assert_not_null(nl);
		saved = nl[1];
		nl[1] = '\0';
		cr_assert(parse_line(line, &o), "torn line %zu: %s", lines + 1, line);
		nl[1] = saved;
		expect_keys(&o);
		b = get(&o, "bytes");
		cr_assert(b && b->type == J_NUM);
		t = b->num / 1000000;
		i = b->num % 1000000;
		cr_assert(t >= 0 && t < THREADS && i >= 0 && i < LINES, "bytes %lld", b->num);
		seen[t][i]++;
		line = nl + 1;
	}
	cr_expect_eq(lines, THREADS * LINES);
	for (int t = 0; t < THREADS; t++)
		for (int i = 0; i < LINES; i++)
			cr_assert_eq(seen[t][i], 1, "thread %d line %d seen %u times", t, i,
				     seen[t][i]);
	free(text);
}
