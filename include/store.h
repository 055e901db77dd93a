/* store.h - the backing STORE directory: its marker (format version, key
 * mode, cipher, key check), its lock, its zone directories and its trash. */
#ifndef EKYCFS_STORE_H
#define EKYCFS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "config.h"
#include "crypto.h"
#include "stamp.h"

#define STORE_MARKER "ekycfs.store"
#define STORE_TRASH ".trash"
#define STORE_AUDIT "audit.log"
/* The marker's version: 2 since zone stamps are bound to their zones'
 * names (stamp_open_zone); a store of version 1 is bound by a mount with
 * the upgrade option (config.h), and refused by a mount without it. */
#define STORE_MARKER_VERSION 2
#define STORE_MARKER_UNBOUND 1

struct store {
	int fd;			       /* STORE, flock'ed while open */
	int trash_fd;		       /* STORE/.trash */
	struct statx place;	       /* STORE's mount: everything of the store is on it */
	int zone_fd[CONFIG_MAX_ZONES]; /* STORE/<zone>, O_RDONLY|O_DIRECTORY */
	struct stamp zone_stamp[CONFIG_MAX_ZONES];
	bool zone_reset[CONFIG_MAX_ZONES]; /* contents undecryptable: destroy */
	size_t nzones;
	int cipher;	  /* enum cipher_id recorded in the marker */
	bool ephemeral;	  /* the marker's key mode */
	bool created;	  /* initialised by this open */
	bool destroy_all; /* previous ephemeral contents: destroy them */
	bool zones_bound; /* zone stamps are bound to their names (the marker's
			   * check value says so): an unbound one is invalid */
};

enum store_mode {
	STORE_MOUNT, /* create if missing or empty; rewrite an ephemeral marker */
	STORE_SWEEP, /* must exist already; changes nothing but expired data */
};

/* Open (and for STORE_MOUNT, initialise) the store at path for keys k,
 * ephemeral when no key file was given. Refuses, changing nothing: a
 * non-directory; a non-empty directory without a marker; a marker of
 * another format version; a wrong key; a key-mode mismatch; a store
 * another ekycfs holds. Returns 0, or -errno with err holding one line
 * naming the problem. */
__attribute__((warn_unused_result)) int store_open(struct store *s, const char *path,
						   const struct config *cfg, const struct keys *k,
						   bool ephemeral, enum store_mode mode, char *err,
						   size_t errlen);

/* Close every fd and release the lock. Idempotent. */
void store_close(struct store *s);

/* Read and verify the stamp of the folder of zone zone in the store's
 * dirfd, which is bound to the zone's name (stamp_open_zone; *unbound:
 * made before that binding). Returns 0, -EBADMSG or -errno. */
__attribute__((warn_unused_result)) int store_read_zone_stamp(const struct keys *k, int dirfd,
							      const char *zone, struct stamp *st,
							      bool *unbound);

/* Read and verify the stamp of the entry name in dirfd (a backing file or
 * directory). Returns 0, -EBADMSG when missing or invalid, or -errno
 * (-ENOENT when the entry is gone). *ino receives its inode number. */
__attribute__((warn_unused_result)) int store_read_stamp(const struct keys *k, int dirfd,
							 const char *name, struct stamp *st,
							 uint64_t *ino);

/* The same, also returning the entry's stat in *sb (valid when the
 * return is 0 or -EBADMSG). */
__attribute__((warn_unused_result)) int store_stat_stamp(const struct keys *k, int dirfd,
							 const char *name, struct stamp *st,
							 struct stat *sb);

/* Seal and write a stamp onto the open backing entry fd with inode ino. */
__attribute__((warn_unused_result)) int store_write_stamp(const struct keys *k, int fd,
							  uint64_t ino, const struct stamp *st);

#endif
