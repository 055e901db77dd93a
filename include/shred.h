/* shred.h - destroying backing entries: overwrite key material, then the
 * content, sync, truncate, strip xattrs, rename to a random name, unlink.
 * Also a background queue so that rm -rf does not wait for it. */
#ifndef EKYCFS_SHRED_H
#define EKYCFS_SHRED_H

#include <stdint.h>
#include <sys/types.h>

#include "audit.h"

/* Syscalls a test may replace to inject faults. */
struct shred_sys {
	int (*fdatasync)(int fd);
	int (*unlinkat)(int dirfd, const char *name, int flags);
};
extern const struct shred_sys shred_sys_default;

/* Destroy the regular file name in dirfd: the first HEADER_SIZE bytes are
 * overwritten and synced first, then passes full random overwrites (each
 * synced), then truncate, xattrs removed, renamed to a random name in
 * dirfd and unlinked. Stores the backing size in *bytes. Returns 0 or
 * -errno (the entry may then be partly destroyed, never more readable).
 * A file with another name (a hard link), a symlink or a fifo only loses
 * this name (*bytes 0); a file on another mount than dirfd is left alone
 * (-EINVAL): what is not only the store's is never overwritten. */
__attribute__((warn_unused_result)) int shred_file_at(const struct shred_sys *sys, int dirfd,
						      const char *name, unsigned passes,
						      off_t *bytes);

/* Remove the empty directory name in dirfd after stripping its xattrs and
 * renaming it to a random name. Returns 0 or -errno. */
__attribute__((warn_unused_result)) int shred_dir_at(const struct shred_sys *sys, int dirfd,
						     const char *name);

/* A random backing name (hex) for the trash or a shred rename. */
void shred_random_name(char out[33]);

/* ---- background queue ---- */

struct shredder;

/* A started worker that shreds names in trash_fd, logging each to audit
 * (which may be NULL). stats_bytes/stats_count, when not NULL, are
 * incremented atomically. NULL on failure. */
struct shredder *shredder_start(int trash_fd, unsigned passes, struct audit *audit,
				uint64_t *stats_count, uint64_t *stats_bytes);

/* Queue trash entry name for shredding; rec says what the audit line will
 * say (its bytes field is filled in by the worker). Returns 0 or -ENOMEM
 * (the entry then stays in the trash for the next sweep). */
__attribute__((warn_unused_result)) int shredder_submit(struct shredder *s, const char *name,
							const struct audit_rec *rec);

/* Wait until everything queued so far is shredded. */
void shredder_drain(struct shredder *s);

/* Drain, stop and free. NULL is fine. */
void shredder_stop(struct shredder *s);

#endif
