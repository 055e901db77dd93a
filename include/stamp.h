/* stamp.h - the trusted stamp: an entry's identity, type, birth and last
 * content change, MAC'ed and kept in one xattr of its backing entry, and
 * the one function that decides expiry from it. */
#ifndef EKYCFS_STAMP_H
#define EKYCFS_STAMP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "crypto.h"

#define STAMP_XATTR "user.ekycfs.stamp"
#define STAMP_VERSION 1
#define STAMP_BYTES 52
/* Flags (byte 2): the stamp of a zone folder, MAC'd with the zone's name. */
#define STAMP_FLAG_ZONE 1
#define STAMP_ZONE_NAME_MAX 64 /* CONFIG_ZONE_NAME_MAX */
#define NSEC_PER_SEC 1000000000LL

/* Kinds of entry a stamp may describe (a superset of layout's types). */
enum stamp_kind {
	STAMP_REG = 1,
	STAMP_SYMLINK = 2,
	STAMP_FIFO = 3,
	STAMP_DIR = 4,
};

struct stamp {
	uint8_t kind;		   /* enum stamp_kind */
	uint8_t id[FILE_ID_BYTES]; /* file id (content key) or directory id (names) */
	int64_t birth;		   /* ns since the epoch, CLOCK_REALTIME */
	int64_t mtime;		   /* ns; last content change, >= birth */
};

/* Serialise and MAC s for the backing inode number ino. */
void stamp_seal(const struct keys *k, const struct stamp *s, uint64_t ino,
		uint8_t out[STAMP_BYTES]);

/* Parse and verify a stamp read from the backing inode ino. Returns 0, or
 * -EBADMSG when it is short, of another version, or its MAC fails (it was
 * edited, or copied from another inode), or it is a zone folder's. */
__attribute__((warn_unused_result)) int stamp_open(const struct keys *k, const uint8_t *in,
						   size_t len, uint64_t ino, struct stamp *s);

/* The same for the folder of zone zone: its stamp is bound to the zone's
 * name too, so that swapping zone folders in the backing store (and with
 * them their TTLs) makes both invalid. A stamp of a store made before
 * that binding verifies as an entry's would; *unbound says so, and the
 * caller seals it again with stamp_seal_zone. */
__attribute__((warn_unused_result)) int stamp_open_zone(const struct keys *k, const uint8_t *in,
							size_t len, uint64_t ino, const char *zone,
							struct stamp *s, bool *unbound);
void stamp_seal_zone(const struct keys *k, const struct stamp *s, uint64_t ino, const char *zone,
		     uint8_t out[STAMP_BYTES]);

/* THE expiry decision. An entry whose stamp is valid expires at
 * mtime + ttl seconds; one without a valid stamp is expired already
 * (fail closed). Returns true when now >= the deadline. */
bool expiry_passed(bool stamp_valid, int64_t mtime, int64_t ttl, int64_t now);

/* Deadline in ns of a valid stamp's mtime under ttl seconds. */
int64_t expiry_deadline(int64_t mtime, int64_t ttl);

/* A clock: ns since the epoch. Tests pass their own. */
typedef int64_t (*clock_fn)(void *arg);
int64_t clock_realtime(void *arg);

/* RFC 3339 UTC ("2026-11-29T14:05:38Z") of a ns time into out (>= 21). */
void format_rfc3339(int64_t ns, char *out, size_t len);

/* The same with milliseconds ("2026-11-29T14:05:38.123Z"), out >= 25. */
void format_rfc3339_ms(int64_t ns, char *out, size_t len);

#endif
