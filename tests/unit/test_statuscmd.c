/* test_statuscmd.c - Criterion suite for fs/statuscmd.c: control-file text
 * to JSON (valid JSON, every field and row, in order) and to the table;
 * text it does not understand is -EINVAL and prints nothing; an empty
 * deadline list; status_command on directories without and with a
 * control file. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "statuscmd.h"
#include "vfs.h"

static const char sample[] = "format_version 1\n"
			     "key_mode keyfile\n"
			     "cipher xchacha20poly1305\n"
			     "zone rlc 7200 3 8000\n"
			     "zone idocr 60 2 10\n"
			     "zone big_zone-9 86400 18446744073709551615 123456789012\n"
			     "next_deadline 2030-01-02T03:04:05Z rlc\n"
			     "next_deadline 2030-01-02T03:04:06Z idocr\n"
			     "next_deadline 2030-01-02T04:00:00Z rlc\n"
			     "shreds 7\n"
			     "shred_bytes 123456\n"
			     "invalid_stamps 2\n"
			     "vanished 11\n"
			     "scheduled 5\n";

static const char no_deadlines[] = "format_version 1\n"
				   "key_mode ephemeral\n"
				   "cipher aes256gcm\n"
				   "zone rlc 4 0 0\n"
				   "zone idocr 4 0 0\n"
				   "shreds 4\n"
				   "shred_bytes 8338\n"
				   "invalid_stamps 0\n"
				   "vanished 5\n"
				   "scheduled 0\n";

/* Run status_format on text into a string; *rc gets its result. The
 * caller frees the string. */
static char *format(const char *text, bool json, int *rc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	*rc = status_format(text, json, f);
	cr_assert_eq(fclose(f), 0);
	cr_assert_not_null(buf);
	return buf;
}

/* ---- a strict JSON syntax checker (RFC 8259, no duplicates check) ---- */

static void ws(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == '\r' || **p == '\n')
		(*p)++;
}

static bool jvalue(const char **p, int depth);

static bool jstring(const char **p)
{
	if (**p != '"')
		return false;
	for ((*p)++; **p != '"'; (*p)++) {
		unsigned char c = (unsigned char)**p;

		if (c < 0x20)
			return false;
		if (c == '\\') {
			(*p)++;
			if (**p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", (*p)[i]) || !(*p)[i])
						return false;
				*p += 4;
			} else if (!**p || !strchr("\"\\/bfnrt", **p)) {
				return false;
			}
		}
	}
	(*p)++;
	return true;
}

static bool jnumber(const char **p)
{
	const char *s = *p;

	if (**p == '-')
		(*p)++;
	if (**p == '0')
		(*p)++;
	else if (**p >= '1' && **p <= '9')
		while (**p >= '0' && **p <= '9')
			(*p)++;
	else
		return false;
	if (**p == '.') {
		(*p)++;
		if (!(**p >= '0' && **p <= '9'))
			return false;
		while (**p >= '0' && **p <= '9')
			(*p)++;
	}
	if (**p == 'e' || **p == 'E') {
		(*p)++;
		if (**p == '+' || **p == '-')
			(*p)++;
		if (!(**p >= '0' && **p <= '9'))
			return false;
		while (**p >= '0' && **p <= '9')
			(*p)++;
	}
	return *p > s;
}

static bool jliteral(const char **p, const char *lit)
{
	size_t n = strlen(lit);

	if (strncmp(*p, lit, n) != 0)
		return false;
	*p += n;
	return true;
}

static bool jcontainer(const char **p, int depth, char close, bool object)
{
	(*p)++;
	ws(p);
	if (**p == close) {
		(*p)++;
		return true;
	}
	for (;;) {
		ws(p);
		if (object) {
			if (!jstring(p))
				return false;
			ws(p);
			if (**p != ':')
				return false;
			(*p)++;
		}
		if (!jvalue(p, depth + 1))
			return false;
		ws(p);
		if (**p == ',') {
			(*p)++;
			continue;
		}
		if (**p != close)
			return false;
		(*p)++;
		return true;
	}
}

static bool jvalue(const char **p, int depth)
{
	if (depth > 32)
		return false;
	ws(p);
	switch (**p) {
	case '{':
		return jcontainer(p, depth, '}', true);
	case '[':
		return jcontainer(p, depth, ']', false);
	case '"':
		return jstring(p);
	case 't':
		return jliteral(p, "true");
	case 'f':
		return jliteral(p, "false");
	case 'n':
		return jliteral(p, "null");
	default:
		return jnumber(p);
	}
}

/* One JSON document (an object), then only whitespace. */
static bool json_valid_object(const char *s)
{
	const char *p = s;

	ws(&p);
	if (*p != '{' || !jvalue(&p, 0))
		return false;
	ws(&p);
	return *p == '\0';
}

/* The unsigned number right after "key": in s (first occurrence), or
 * fails the test. */
static unsigned long long json_num(const char *s, const char *key)
{
	char pat[64];
	const char *at;
	char *end;
	unsigned long long v;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	at = strstr(s, pat);
	cr_assert_not_null(at, "no %s in %s", pat, s);
	at += strlen(pat);
	cr_assert(*at >= '0' && *at <= '9', "%s is not a number in %s", key, s);
	errno = 0;
	v = strtoull(at, &end, 10);
	cr_assert_eq(errno, 0);
	cr_assert(*end == ',' || *end == '}', "%s is followed by '%c'", key, *end);
	return v;
}

static void assert_contains(const char *hay, const char *needle)
{
	cr_assert_not_null(strstr(hay, needle), "'%s' not in:\n%s", needle, hay);
}

/* s contains a, then b later on. */
static void assert_order(const char *s, const char *a, const char *b)
{
	const char *pa = strstr(s, a), *pb = pa ? strstr(pa + strlen(a), b) : NULL;

	cr_assert_not_null(pa, "'%s' not in:\n%s", a, s);
	cr_assert_not_null(pb, "'%s' not after '%s' in:\n%s", b, a, s);
}

/* ---- JSON ---- */

Test(status_format, json_sample)
{
	int rc;
	char *out = format(sample, true, &rc);

	cr_assert_eq(rc, 0);
	cr_assert(json_valid_object(out), "not valid JSON: %s", out);
	cr_assert_eq(out[strlen(out) - 1], '\n', "JSON ends with a newline");
	cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "JSON is one line: %s", out);
	cr_assert_eq(json_num(out, "format_version"), 1);
	assert_contains(out, "\"key_mode\":\"keyfile\"");
	assert_contains(out, "\"cipher\":\"xchacha20poly1305\"");
	assert_contains(out, "{\"name\":\"rlc\",\"ttl\":7200,\"entries\":3,\"bytes\":8000}");
	assert_contains(out, "{\"name\":\"idocr\",\"ttl\":60,\"entries\":2,\"bytes\":10}");
	assert_contains(out, "{\"name\":\"big_zone-9\",\"ttl\":86400,"
			     "\"entries\":18446744073709551615,\"bytes\":123456789012}");
	assert_order(out, "\"zones\":[{\"name\":\"rlc\"", "{\"name\":\"idocr\"");
	assert_order(out, "{\"name\":\"idocr\"", "{\"name\":\"big_zone-9\"");
	assert_contains(out, "\"next_deadlines\":[{\"time\":\"2030-01-02T03:04:05Z\","
			     "\"zone\":\"rlc\"},"
			     "{\"time\":\"2030-01-02T03:04:06Z\",\"zone\":\"idocr\"},"
			     "{\"time\":\"2030-01-02T04:00:00Z\",\"zone\":\"rlc\"}]");
	cr_assert_eq(json_num(out, "shreds"), 7);
	cr_assert_eq(json_num(out, "shred_bytes"), 123456);
	cr_assert_eq(json_num(out, "invalid_stamps"), 2);
	cr_assert_eq(json_num(out, "vanished"), 11);
	cr_assert_eq(json_num(out, "scheduled"), 5);
	free(out);
}

Test(status_format, json_empty_deadlines)
{
	int rc;
	char *out = format(no_deadlines, true, &rc);

	cr_assert_eq(rc, 0);
	cr_assert(json_valid_object(out), "not valid JSON: %s", out);
	assert_contains(out, "\"next_deadlines\":[]");
	assert_contains(out, "\"key_mode\":\"ephemeral\"");
	assert_contains(out, "\"cipher\":\"aes256gcm\"");
	assert_contains(out, "{\"name\":\"rlc\",\"ttl\":4,\"entries\":0,\"bytes\":0}");
	cr_assert_eq(json_num(out, "shreds"), 4);
	cr_assert_eq(json_num(out, "shred_bytes"), 8338);
	cr_assert_eq(json_num(out, "vanished"), 5);
	cr_assert_eq(json_num(out, "scheduled"), 0);
	free(out);
}

/* Lines in any order, and a last line without a newline. */
Test(status_format, json_any_order_no_final_newline)
{
	const char text[] = "shreds 1\nzone rlc 10 1 5\nformat_version 1\nkey_mode keyfile\n"
			    "cipher aes256gcm\nnext_deadline 2030-01-01T00:00:00Z rlc\nscheduled 3";
	int rc;
	char *out = format(text, true, &rc);

	cr_assert_eq(rc, 0);
	cr_assert(json_valid_object(out), "not valid JSON: %s", out);
	cr_assert_eq(json_num(out, "shreds"), 1);
	cr_assert_eq(json_num(out, "scheduled"), 3);
	cr_assert_eq(json_num(out, "shred_bytes"), 0);
	assert_contains(out, "{\"name\":\"rlc\",\"ttl\":10,\"entries\":1,\"bytes\":5}");
	assert_contains(out, "[{\"time\":\"2030-01-01T00:00:00Z\",\"zone\":\"rlc\"}]");
	free(out);
}

/* ---- the table ---- */

/* The line of out that starts with "name " parses as a zone row. */
static void assert_row(const char *out, const char *name, long long ttl, unsigned long long entries,
		       unsigned long long bytes)
{
	const char *line = out;

	while (line && *line) {
		char n[80];
		long long t;
		unsigned long long e, b;
		char rest;

		if (sscanf(line, "%79s %lld %llu %llu%c", n, &t, &e, &b, &rest) == 5 &&
		    rest == '\n' && strcmp(n, name) == 0) {
			cr_assert_eq(t, ttl, "ttl of %s", name);
			cr_assert_eq(e, entries, "entries of %s", name);
			cr_assert_eq(b, bytes, "bytes of %s", name);
			return;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	cr_assert_fail("no row for zone %s in:\n%s", name, out);
}

Test(status_format, human_sample)
{
	int rc;
	char *out = format(sample, false, &rc);

	cr_assert_eq(rc, 0);
	assert_contains(out, "format version 1");
	assert_contains(out, "keyfile");
	assert_contains(out, "xchacha20poly1305");
	assert_row(out, "rlc", 7200, 3, 8000);
	assert_row(out, "idocr", 60, 2, 10);
	assert_row(out, "big_zone-9", 86400, 18446744073709551615ULL, 123456789012ULL);
	assert_order(out, "\nrlc ", "\nidocr ");
	assert_order(out, "\nidocr ", "\nbig_zone-9 ");
	cr_assert_null(strstr(out, "none"), "deadlines listed, yet 'none':\n%s", out);
	assert_order(out, "2030-01-02T03:04:05Z  rlc\n", "2030-01-02T03:04:06Z  idocr\n");
	assert_order(out, "2030-01-02T03:04:06Z  idocr\n", "2030-01-02T04:00:00Z  rlc\n");
	assert_contains(out, "shredded: 7 entries, 123456 bytes");
	assert_contains(out, "vanished: 11");
	assert_contains(out, "invalid stamps: 2");
	cr_assert_eq(out[strlen(out) - 1], '\n');
	free(out);
}

Test(status_format, human_empty_deadlines)
{
	int rc;
	char *out = format(no_deadlines, false, &rc);

	cr_assert_eq(rc, 0);
	assert_contains(out, "none");
	assert_contains(out, "next deadlines: none\n");
	assert_row(out, "rlc", 4, 0, 0);
	assert_row(out, "idocr", 4, 0, 0);
	assert_contains(out, "shredded: 4 entries, 8338 bytes");
	assert_contains(out, "ephemeral");
	free(out);
}

/* ---- text it does not understand ---- */

static void assert_einval(const char *text, const char *what)
{
	for (int json = 0; json <= 1; json++) {
		int rc;
		char *out = format(text, json, &rc);

		cr_assert_eq(rc, -EINVAL, "%s (%s): rc %d, want -EINVAL", what,
			     json ? "json" : "table", rc);
		cr_assert_str_empty(out, "%s: printed something: %s", what, out);
		free(out);
	}
}

/* text with line inserted after the first line of sample. */
static char *sample_with(const char *line)
{
	const char *nl = strchr(sample, '\n') + 1;
	size_t head = (size_t)(nl - sample);
	char *t = malloc(sizeof(sample) + strlen(line) + 2);

	cr_assert_not_null(t);
	memcpy(t, sample, head);
	strcpy(t + head, line);
	strcat(t, "\n");
	strcat(t, nl);
	return t;
}

Test(status_format, unknown_line)
{
	const char *bad[] = {
		"bogus 1", "zone rlc 10 1",  "zone rlc x 1 2", "next_deadline 2030-01-01T00:00:00Z",
		"shreds",  "format_version", "Shreds 1",       "zone"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *t = sample_with(bad[i]);

		assert_einval(t, bad[i]);
		free(t);
	}
}

Test(status_format, missing_format_version)
{
	const char *nl = strchr(sample, '\n') + 1; /* sample without its first line */

	cr_assert_eq(strncmp(sample, "format_version", 14), 0);
	assert_einval(nl, "no format_version");
	assert_einval("", "empty text");
	assert_einval("format_version 0\nkey_mode keyfile\n", "format_version 0");
	assert_einval("format_version -1\n", "format_version -1");
}

Test(status_format, overlong_line)
{
	char line[400];
	char *t;

	/* A zone row padded with spaces: valid but for its length. */
	memset(line, ' ', sizeof(line));
	memcpy(line, "zone xx 1 2 3", 13);
	line[sizeof(line) - 1] = '\0';
	t = sample_with(line);
	assert_einval(t, "overlong zone line");
	free(t);

	/* Just past the limit of a line the parser holds (255 characters). */
	for (size_t n = 256; n <= 258; n++) {
		char l3[300];

		memset(l3, ' ', n);
		memcpy(l3, "zone yy 1 2 3", 13);
		l3[n] = '\0';
		t = sample_with(l3);
		assert_einval(t, "zone line of 256+ characters");
		free(t);
	}

	/* Overlong last line, without a newline. */
	{
		size_t n = strlen(sample);
		char *u = malloc(n + 1000);

		cr_assert_not_null(u);
		memcpy(u, sample, n);
		memcpy(u + n, "shreds ", 7);
		memset(u + n + 7, '1', 900);
		u[n + 907] = '\0';
		assert_einval(u, "overlong last line");
		free(u);
	}

	/* A zone name longer than any zone can have. */
	{
		char name[200], l2[256];

		memset(name, 'a', sizeof(name) - 1);
		name[sizeof(name) - 1] = '\0';
		snprintf(l2, sizeof(l2), "zone %s 1 2 3", name);
		t = sample_with(l2);
		assert_einval(t, "overlong zone name");
		free(t);
	}
}

/* ---- status_command ---- */

static char dir[64];

static void dir_setup(void)
{
	strcpy(dir, "/tmp/ekycfs-statuscmd.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void dir_teardown(void)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/%s", dir, VFS_STATUS_NAME);
	unlink(p);
	rmdir(dir);
}

static void write_control(const char *text)
{
	char p[128];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, VFS_STATUS_NAME);
	f = fopen(p, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fputs(text, f) >= 0, true);
	cr_assert_eq(fclose(f), 0);
}

static char *command(bool json, int *rc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	*rc = status_command(dir, json, f);
	cr_assert_eq(fclose(f), 0);
	return buf;
}

/* Run status_command with fd 2 going to a temp file; the first line of
 * what it printed there goes to msg. */
static char *command_err(bool json, int *rc, char *msg, size_t cap)
{
	FILE *err = tmpfile();
	int saved;
	char *out;

	cr_assert_not_null(err);
	fflush(stderr);
	saved = dup(2);
	cr_assert_geq(saved, 0);
	cr_assert_geq(dup2(fileno(err), 2), 0);
	out = command(json, rc);
	fflush(stderr);
	cr_assert_geq(dup2(saved, 2), 0);
	close(saved);
	rewind(err);
	msg[0] = '\0';
	if (!fgets(msg, (int)cap, err))
		msg[0] = '\0';
	fclose(err);
	return out;
}

Test(status_command, not_a_mount, .init = dir_setup, .fini = dir_teardown)
{
	for (int json = 0; json <= 1; json++) {
		char msg[512];
		int rc;
		char *out = command_err(json, &rc, msg, sizeof(msg));

		cr_assert_eq(rc, -ENOENT);
		cr_assert_str_empty(out, "printed to out: %s", out);
		free(out);
		assert_contains(msg, "not an ekycfs mount");
		assert_contains(msg, dir);
	}
}

Test(status_command, reads_control_file, .init = dir_setup, .fini = dir_teardown)
{
	int rc;
	char *out;

	write_control(sample);
	out = command(true, &rc);
	cr_assert_eq(rc, 0);
	cr_assert(json_valid_object(out), "not valid JSON: %s", out);
	cr_assert_eq(json_num(out, "vanished"), 11);
	free(out);
	out = command(false, &rc);
	cr_assert_eq(rc, 0);
	assert_row(out, "idocr", 60, 2, 10);
	free(out);
}

Test(status_command, garbage_control_file, .init = dir_setup, .fini = dir_teardown)
{
	char msg[512];
	int rc;
	char *out;

	write_control("this is not a status\n");
	out = command_err(true, &rc, msg, sizeof(msg));
	cr_assert_eq(rc, -EINVAL);
	cr_assert_str_empty(out, "printed to out: %s", out);
	free(out);
	assert_contains(msg, "unexpected status format");
}
