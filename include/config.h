/* config.h - ekycfs settings: defaults, the INI config file (inih) and -o options.
 * Only config.c knows inih; everyone else reads a filled struct config. */
#ifndef EKYCFS_CONFIG_H
#define EKYCFS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_ZONES 16
#define CONFIG_ZONE_NAME_MAX 64
#define CONFIG_DEFAULT_TTL 7200 /* seconds: the two hours the terms promise */
#define CONFIG_ERR_LEN 512

struct zone_config {
	char name[CONFIG_ZONE_NAME_MAX + 1]; /* [a-z0-9_-], not "." or ".." */
	int64_t ttl;			     /* seconds, > 0 */
};

/* Owned by main; strings are heap copies freed by config_release(). */
struct config {
	char *key_file;	       /* NULL: ephemeral key */
	char *audit_log;       /* NULL: STORE/audit.log */
	char *fuse_options;    /* extra comma-separated FUSE -o options, or NULL */
	unsigned shred_passes; /* random overwrites before unlink, default 1 */
	bool allow_other;
	bool upgrade;	      /* bind an older store's zone stamps (store.h) */
	int64_t ttl_override; /* seconds; -1 when unset. Wins over every zone ttl */
	size_t nzones;
	struct zone_config zones[CONFIG_MAX_ZONES];
	bool zones_from_file; /* a [zone] section was read: defaults replaced */
};

/* Fill *cfg with defaults: zones rlc and idocr at 2 h, ephemeral key,
 * one shred pass. Returns 0. */
int config_init(struct config *cfg);

/* Read an INI file into *cfg, over what is there. Sections:
 *   [ekycfs]     key_file, ttl, audit_log, shred_passes, allow_other,
 *                fuse_options
 *   [zone NAME]  ttl
 * The first [zone] section replaces the default zones. Returns 0, or
 * -errno with err holding one line "FILE:LINE: what is wrong" (or
 * "FILE: why" when the file cannot be read). *cfg may be partly updated
 * on failure; the caller exits. */
__attribute__((warn_unused_result)) int config_load_file(struct config *cfg, const char *path,
							 char *err, size_t errlen);

/* Apply one -o KEY=VALUE (or a bare KEY for booleans) that ekycfs owns:
 * key_file, ttl, audit_log, shred_passes, allow_other, upgrade. Returns 0, -ENOENT
 * when the key is not ekycfs's (the caller passes it to FUSE), or -EINVAL
 * with err holding "option KEY: why". */
__attribute__((warn_unused_result)) int
config_set_option(struct config *cfg, const char *key, const char *value, char *err, size_t errlen);

/* Parse a duration: digits with an optional suffix s, m or h ("90",
 * "3s", "5m", "2h"). Returns 0 and stores seconds (> 0) in *out, or
 * -EINVAL for anything else (empty, zero, negative, overflow, junk). */
__attribute__((warn_unused_result)) int config_parse_duration(const char *s, int64_t *out);

/* TTL in seconds that applies to zone i (the override when set). */
int64_t config_zone_ttl(const struct config *cfg, size_t i);

/* Index of the zone called name, or -1. */
int config_zone_index(const struct config *cfg, const char *name);

/* Free what config_init/load/set_option allocated. Idempotent. */
void config_release(struct config *cfg);

#endif
