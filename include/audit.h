/* audit.h - the audit trail: one JSON line per retention event, with times,
 * sizes and an opaque keyed id, never a name or content. */
#ifndef EKYCFS_AUDIT_H
#define EKYCFS_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto.h"

enum audit_event {
	AUDIT_VANISHED,	     /* deadline passed; entry hidden */
	AUDIT_SHREDDED,	     /* backing file destroyed */
	AUDIT_DELETED,	     /* removed by a user (rm, rename over, rmdir) */
	AUDIT_INVALID_STAMP, /* stamp missing or failed its MAC */
	AUDIT_DESTROYED,     /* ephemeral store's previous contents destroyed */
	AUDIT_BAD_NAME,	     /* a backing name that does not decrypt here (moved, altered) */
};

/* What an audit line says about one entry. Times in ns since the epoch;
 * 0 means unknown and is written as null. */
struct audit_rec {
	enum audit_event event;
	const char *zone;
	char id[2 * AUDIT_ID_BYTES + 1]; /* opaque keyed hash, or "" */
	int64_t born;
	int64_t deadline;
	int64_t bytes; /* plain or backing bytes, -1 if unknown */
};

struct audit;

/* Open (create, mode 0600, append) the log at path. own: the store's own
 * log, which must be a regular file with no other name; otherwise (a
 * path the user gave) a character device will do too. Never a symlink,
 * never a fifo (a stalled reader would hold up the file system). NULL
 * with *err: -EMLINK (another name), -EINVAL (not such a file), -ELOOP (a
 * symlink) or -errno. Writes never wait (O_NONBLOCK). */
struct audit *audit_open(const char *path, bool own, int *err);

/* What audit_open would refuse in the file now at path (0 when there is
 * none, or it would do), without opening or making anything. */
int audit_check(const char *path, bool own);

/* Append one line for rec at time now (ns); also to syslog when enabled.
 * Thread-safe; each line is one write(2) on an O_APPEND file. */
void audit_log(struct audit *a, const struct audit_rec *rec, int64_t now);

/* Also send each line to syslog (LOG_DAEMON, ident "ekycfs"). */
void audit_use_syslog(struct audit *a, int enable);

/* Format rec as a JSON line (with '\n') into buf. Returns its length. */
int audit_format(const struct audit_rec *rec, int64_t now, char *buf, size_t len);

void audit_close(struct audit *a);

#endif
