/* statuscmd.c - the operator's view of a mount: entries and bytes per zone,
 * next deadlines, shreds, invalid stamps, key mode and format version. */
#include "statuscmd.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vfs.h"

#define MAX_ROWS 32

struct status {
	int format;
	char key_mode[16], cipher[32];
	struct {
		char name[72];
		long long ttl;
		unsigned long long entries, bytes;
	} zone[MAX_ROWS];
	int nzones;
	struct {
		char when[32], zone[72];
	} next[MAX_ROWS];
	int nnext;
	unsigned long long shreds, shred_bytes, invalid, vanished, scheduled;
};

static int parse(const char *text, struct status *s)
{
	const char *line = text;

	memset(s, 0, sizeof(*s));
	while (*line) {
		const char *eol = strchr(line, '\n');
		char buf[256];
		size_t len = eol ? (size_t)(eol - line) : strlen(line);

		if (len >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, line, len);
		buf[len] = '\0';
		line += len + (eol ? 1 : 0);
		if (sscanf(buf, "format_version %d", &s->format) == 1 ||
		    sscanf(buf, "key_mode %15s", s->key_mode) == 1 ||
		    sscanf(buf, "cipher %31s", s->cipher) == 1 ||
		    sscanf(buf, "shreds %llu", &s->shreds) == 1 ||
		    sscanf(buf, "shred_bytes %llu", &s->shred_bytes) == 1 ||
		    sscanf(buf, "invalid_stamps %llu", &s->invalid) == 1 ||
		    sscanf(buf, "vanished %llu", &s->vanished) == 1 ||
		    sscanf(buf, "scheduled %llu", &s->scheduled) == 1)
			continue;
		if (s->nzones < MAX_ROWS &&
		    sscanf(buf, "zone %71s %lld %llu %llu", s->zone[s->nzones].name,
			   &s->zone[s->nzones].ttl, &s->zone[s->nzones].entries,
			   &s->zone[s->nzones].bytes) == 4) {
			s->nzones++;
			continue;
		}
		if (s->nnext < MAX_ROWS &&
		    sscanf(buf, "next_deadline %31s %71s", s->next[s->nnext].when,
			   s->next[s->nnext].zone) == 2) {
			s->nnext++;
			continue;
		}
		return -EINVAL;
	}
	return s->format > 0 ? 0 : -EINVAL;
}

static void print_json(const struct status *s, FILE *out)
{
	fprintf(out, "{\"format_version\":%d,\"key_mode\":\"%s\",\"cipher\":\"%s\",\"zones\":[",
		s->format, s->key_mode, s->cipher);
	for (int i = 0; i < s->nzones; i++)
		fprintf(out, "%s{\"name\":\"%s\",\"ttl\":%lld,\"entries\":%llu,\"bytes\":%llu}",
			i ? "," : "", s->zone[i].name, s->zone[i].ttl, s->zone[i].entries,
			s->zone[i].bytes);
	fprintf(out, "],\"next_deadlines\":[");
	for (int i = 0; i < s->nnext; i++)
		fprintf(out, "%s{\"time\":\"%s\",\"zone\":\"%s\"}", i ? "," : "", s->next[i].when,
			s->next[i].zone);
	fprintf(out,
		"],\"shreds\":%llu,\"shred_bytes\":%llu,\"invalid_stamps\":%llu,"
		"\"vanished\":%llu,\"scheduled\":%llu}\n",
		s->shreds, s->shred_bytes, s->invalid, s->vanished, s->scheduled);
}

static void print_human(const struct status *s, FILE *out)
{
	fprintf(out, "format version %d, %s key, cipher %s\n", s->format, s->key_mode, s->cipher);
	fprintf(out, "%-16s %10s %10s %14s\n", "zone", "ttl (s)", "entries", "bytes");
	for (int i = 0; i < s->nzones; i++)
		fprintf(out, "%-16s %10lld %10llu %14llu\n", s->zone[i].name, s->zone[i].ttl,
			s->zone[i].entries, s->zone[i].bytes);
	fprintf(out, "next deadlines:%s\n", s->nnext ? "" : " none");
	for (int i = 0; i < s->nnext; i++)
		fprintf(out, "  %s  %s\n", s->next[i].when, s->next[i].zone);
	fprintf(out, "shredded: %llu entries, %llu bytes\n", s->shreds, s->shred_bytes);
	fprintf(out, "vanished: %llu   invalid stamps: %llu\n", s->vanished, s->invalid);
}

int status_format(const char *text, bool json, FILE *out)
{
	struct status *s = malloc(sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	rc = parse(text, s);
	if (rc == 0) {
		if (json)
			print_json(s, out);
		else
			print_human(s, out);
	}
	free(s);
	return rc;
}

int status_command(const char *mnt, bool json, FILE *out)
{
	enum { TEXT_MAX = 16384 };
	char path[PATH_MAX], *text;
	size_t n;
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", mnt, VFS_STATUS_NAME);
	f = fopen(path, "r");
	if (!f) {
		rc = -errno;
		fprintf(stderr, "ekycfs: %s: not an ekycfs mount (%s)\n", mnt, strerror(errno));
		return rc;
	}
	/* On the heap: frames stay under -Wframe-larger-than (Makefile). */
	text = malloc(TEXT_MAX);
	if (!text) {
		fclose(f);
		fprintf(stderr, "ekycfs: out of memory\n");
		return -ENOMEM;
	}
	n = fread(text, 1, TEXT_MAX - 1, f);
	fclose(f);
	text[n] = '\0';
	rc = status_format(text, json, out);
	if (rc < 0)
		fprintf(stderr, "ekycfs: %s: unexpected status format\n", mnt);
	free(text);
	return rc;
}
