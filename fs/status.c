/* status.c - the control file behind `ekycfs status`: per-zone entries and
 * bytes, the next deadlines, shred counters, key mode and format. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"
#include "util.h"
#include "vfs_internal.h"

#define NEXT_DEADLINES 5

struct tally {
	uint64_t entries, bytes;
	int64_t next[NEXT_DEADLINES]; /* smallest deadlines, ascending */
	int zone_of_next[NEXT_DEADLINES];
};

bool vfs_is_virtual(struct vfs *v, struct node *n)
{
	return n == &v->root || n == &v->status;
}

bool vfs_handle_direct(const struct handle *h)
{
	return h->text != NULL;
}

static void note_deadline(struct tally *t, int64_t d, int zone)
{
	for (int i = 0; i < NEXT_DEADLINES; i++) {
		if (d < t->next[i]) {
			memmove(&t->next[i + 1], &t->next[i],
				(NEXT_DEADLINES - 1 - i) * sizeof(t->next[0]));
			memmove(&t->zone_of_next[i + 1], &t->zone_of_next[i],
				(NEXT_DEADLINES - 1 - i) * sizeof(t->zone_of_next[0]));
			t->next[i] = d;
			t->zone_of_next[i] = zone;
			return;
		}
	}
}

/* Count the live entries under dirfd (recursively) into t; returns how
 * many there were. A directory past its own deadline still counts while
 * it holds a live entry, as it is still visible then. Names count, so a
 * hard-linked file counts once per name; bytes are regular files' only. */
static uint64_t tally_dir(struct vfs *v, int dirfd, int zone, int64_t now, struct tally *t)
{
	DIR *dp = dir_listing(dirfd, ".");
	uint64_t before = t->entries;
	struct dirent *d;

	if (!dp)
		return 0;
	while ((d = readdir(dp))) {
		struct stamp s;
		struct stat sb;
		uint64_t below = 0;
		int64_t deadline;

		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, "..") ||
		    names_is_sidecar(d->d_name) ||
		    store_stat_stamp(v->keys, dirfd, d->d_name, &s, &sb) < 0)
			continue;
		deadline = expiry_deadline(s.mtime, vfs_ttl(v, zone));
		if (S_ISDIR(sb.st_mode)) {
			int sub = openat(dirfd, d->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

			if (sub >= 0) {
				below = tally_dir(v, sub, zone, now, t);
				close(sub);
			}
		} else if (now < deadline && s.kind == STAMP_REG) {
			off_t plain = layout_plain_size(sb.st_size);

			t->bytes += plain > 0 ? (uint64_t)plain : 0;
		}
		if (now < deadline || below > 0) {
			t->entries++;
			if (now < deadline)
				note_deadline(t, deadline, zone);
		}
	}
	closedir(dp);
	return t->entries - before;
}

int vfs_status_text(struct vfs *v, char **text, size_t *len)
{
	struct tally all = {0};
	int64_t now = vfs_now(v);
	char when[32];
	size_t cap = 0;
	FILE *f = open_memstream(text, &cap);

	if (!f)
		return -ENOMEM;
	for (int i = 0; i < NEXT_DEADLINES; i++)
		all.next[i] = INT64_MAX;
	fprintf(f, "format_version %d\n", FORMAT_VERSION);
	fprintf(f, "key_mode %s\n", v->store->ephemeral ? "ephemeral" : "keyfile");
	fprintf(f, "cipher %s\n", crypto_cipher_name(v->store->cipher));
	for (size_t i = 0; i < v->store->nzones; i++) {
		struct tally z = {0};

		for (int k = 0; k < NEXT_DEADLINES; k++)
			z.next[k] = INT64_MAX;
		tally_dir(v, v->zones[i]->fd, (int)i, now, &z);
		fprintf(f, "zone %s %lld %llu %llu\n", v->cfg->zones[i].name,
			(long long)vfs_ttl(v, (int)i), (unsigned long long)z.entries,
			(unsigned long long)z.bytes);
		for (int k = 0; k < NEXT_DEADLINES && z.next[k] != INT64_MAX; k++)
			note_deadline(&all, z.next[k], (int)i);
	}
	for (int k = 0; k < NEXT_DEADLINES && all.next[k] != INT64_MAX; k++) {
		format_rfc3339(all.next[k], when, sizeof(when));
		fprintf(f, "next_deadline %s %s\n", when, v->cfg->zones[all.zone_of_next[k]].name);
	}
	fprintf(f, "shreds %llu\n", (unsigned long long)v->stats.shreds);
	fprintf(f, "shred_bytes %llu\n", (unsigned long long)v->stats.shred_bytes);
	fprintf(f, "invalid_stamps %llu\n", (unsigned long long)v->stats.invalid_stamps);
	fprintf(f, "vanished %llu\n", (unsigned long long)v->stats.vanished);
	fprintf(f, "scheduled %zu\n", vfs_pending(v));
	if (fclose(f) != 0)
		return -ENOMEM;
	*len = cap;
	return 0;
}
