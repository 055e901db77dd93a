/* config.c - ekycfs settings: defaults, the INI config file and -o options.
 * The one module that knows inih; see include/config.h for the contract. */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"

#define DURATION_MAX (10LL * 366 * 24 * 3600) /* ten years, in seconds */
#define SHRED_PASSES_MAX 32
#define SHOWN_MAX 80 /* longest key or value echoed in an error message */

/* The keys of [ekycfs]; the ones with option set are also -o options. */
enum key_id {
	K_KEY_FILE,
	K_TTL,
	K_AUDIT_LOG,
	K_SHRED_PASSES,
	K_ALLOW_OTHER,
	K_FUSE_OPTIONS,
	K_UPGRADE,
	K_COUNT
};
enum key_type { T_STRING, T_DURATION, T_PASSES, T_BOOL };

static const struct {
	const char *name;
	enum key_type type;
	bool option;
} keys[K_COUNT] = {
	[K_KEY_FILE] = {"key_file", T_STRING, true},
	[K_TTL] = {"ttl", T_DURATION, true},
	[K_AUDIT_LOG] = {"audit_log", T_STRING, true},
	[K_SHRED_PASSES] = {"shred_passes", T_PASSES, true},
	[K_ALLOW_OTHER] = {"allow_other", T_BOOL, true},
	[K_FUSE_OPTIONS] = {"fuse_options", T_STRING, false},
	[K_UPGRADE] = {"upgrade", T_BOOL, true},
};

/* Why a value was refused, for "bad value 'V' for KEY: why". */
static const char *const type_why[] = {
	[T_STRING] = "expected a non-empty string",
	[T_DURATION] = "expected a duration such as 90, 30s, 5m or 2h (at most ten years)",
	[T_PASSES] = "expected a whole number from 0 to 32",
	[T_BOOL] = "expected true, false, yes, no, 1 or 0",
};

enum section { SEC_NONE, SEC_EKYCFS, SEC_ZONE };

/* State of one config_load_file() call, shared by the line reader and the
 * inih handler. inih reads a line, then calls the handler for it, so
 * lineno is always the line the handler is looking at. */
struct load_ctx {
	struct config *cfg;
	const char *path;
	FILE *fp;
	unsigned lineno;		      /* last line handed to inih */
	enum section section;		      /* section lineno is in */
	size_t zone;			      /* cfg->zones index in SEC_ZONE */
	unsigned ekycfs_line;		      /* where [ekycfs] began, 0: not seen */
	unsigned zone_line[CONFIG_MAX_ZONES]; /* where each [zone] began */
	unsigned key_line[K_COUNT];	      /* where each [ekycfs] key was set */
	unsigned zone_ttl_line;		      /* where this [zone]'s ttl was set */
	bool zones_seen;		      /* this file had a [zone] section */
	int read_errno;			      /* fgets failed with this */
	int rc;				      /* first error, 0 if none */
	unsigned err_line;		      /* line of the first error */
	char msg[CONFIG_ERR_LEN];	      /* first error, without FILE:LINE */
};

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
							  ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Record the first error of a load, at the current line. Returns rc. */
__attribute__((format(printf, 3, 4))) static int load_fail(struct load_ctx *ctx, int rc,
							   const char *fmt, ...)
{
	va_list ap;

	if (ctx->rc)
		return rc;
	ctx->rc = rc;
	ctx->err_line = ctx->lineno;
	va_start(ap, fmt);
	vsnprintf(ctx->msg, sizeof(ctx->msg), fmt, ap);
	va_end(ap);
	return rc;
}

int config_init(struct config *cfg)
{
	static const char *const defaults[] = {"rlc", "idocr"};
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	cfg->shred_passes = 1;
	cfg->ttl_override = -1;
	for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
		strcpy(cfg->zones[i].name, defaults[i]);
		cfg->zones[i].ttl = CONFIG_DEFAULT_TTL;
	}
	cfg->nzones = i;
	return 0;
}

int config_parse_duration(const char *s, int64_t *out)
{
	int64_t n = 0, unit = 1;
	const char *p;

	if (!s)
		return -EINVAL;
	for (p = s; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (*p - '0');
		if (n > DURATION_MAX)
			return -EINVAL; /* stops before int64_t could overflow */
	}
	if (p == s)
		return -EINVAL;
	if (*p == 's' || *p == 'm' || *p == 'h') {
		unit = *p == 'h' ? 3600 : *p == 'm' ? 60 : 1;
		p++;
	}
	if (*p != '\0' || n == 0 || n > DURATION_MAX / unit)
		return -EINVAL;
	*out = n * unit;
	return 0;
}

static int parse_passes(const char *s, unsigned *out)
{
	unsigned n = 0;
	const char *p;

	for (p = s; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (unsigned)(*p - '0');
		if (n > SHRED_PASSES_MAX)
			return -EINVAL;
	}
	if (p == s || *p != '\0')
		return -EINVAL;
	*out = n;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "1"};
	static const char *const no[] = {"false", "no", "0"};
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int replace_string(char **slot, const char *value)
{
	char *copy = strdup(value);

	if (!copy)
		return -ENOMEM;
	free(*slot);
	*slot = copy;
	return 0;
}

static int key_lookup(const char *name)
{
	int k;

	for (k = 0; k < K_COUNT; k++)
		if (strcmp(keys[k].name, name) == 0)
			return k;
	return -1;
}

/* Set [ekycfs] key k from value (NULL: a bare -o key). Returns 0, -EINVAL
 * when the value does not fit the key's type, or -ENOMEM. */
static int config_apply(struct config *cfg, enum key_id k, const char *value)
{
	if (!value && keys[k].type == T_BOOL)
		value = "true";
	if (!value || *value == '\0')
		return -EINVAL;
	switch (k) {
	case K_KEY_FILE:
		return replace_string(&cfg->key_file, value);
	case K_AUDIT_LOG:
		return replace_string(&cfg->audit_log, value);
	case K_FUSE_OPTIONS:
		return replace_string(&cfg->fuse_options, value);
	case K_TTL:
		return config_parse_duration(value, &cfg->ttl_override);
	case K_SHRED_PASSES:
		return parse_passes(value, &cfg->shred_passes);
	case K_ALLOW_OTHER:
		return parse_bool(value, &cfg->allow_other);
	case K_UPGRADE:
		return parse_bool(value, &cfg->upgrade);
	case K_COUNT:
		break;
	}
	return -EINVAL;
}

/* Report a value config_apply() refused with rc, for key of type t in the
 * current section. Returns rc. */
static int load_bad_value(struct load_ctx *ctx, int rc, const char *key, enum key_type t,
			  const char *value)
{
	char sec[sizeof("zone ") + CONFIG_ZONE_NAME_MAX];

	if (ctx->section == SEC_ZONE)
		snprintf(sec, sizeof(sec), "zone %s", ctx->cfg->zones[ctx->zone].name);
	else
		strcpy(sec, "ekycfs");
	if (rc == -ENOMEM)
		return load_fail(ctx, rc, "out of memory");
	if (!value || *value == '\0')
		return load_fail(ctx, rc, "missing value for %s in [%s]", key, sec);
	return load_fail(ctx, rc, "bad value '%.*s' for %s in [%s]: %s", SHOWN_MAX, value, key, sec,
			 type_why[t]);
}

static int load_ekycfs_key(struct load_ctx *ctx, const char *name, const char *value)
{
	int k = key_lookup(name);
	int rc;

	if (k < 0)
		return load_fail(ctx, -EINVAL, "unknown key '%.*s' in [ekycfs]", SHOWN_MAX, name);
	/* A one-time step, asked for on the command line, never left on. */
	if (k == K_UPGRADE)
		return load_fail(ctx, -EINVAL, "upgrade is a one-time -o option, not a config key");
	if (ctx->key_line[k])
		return load_fail(ctx, -EINVAL, "duplicate key '%s' in [ekycfs] (first on line %u)",
				 name, ctx->key_line[k]);
	ctx->key_line[k] = ctx->lineno;
	rc = config_apply(ctx->cfg, (enum key_id)k, value);
	if (rc)
		return load_bad_value(ctx, rc, name, keys[k].type, value);
	return 0;
}

static int load_zone_key(struct load_ctx *ctx, const char *name, const char *value)
{
	struct zone_config *z = &ctx->cfg->zones[ctx->zone];
	int rc;

	if (strcmp(name, "ttl") != 0)
		return load_fail(ctx, -EINVAL, "unknown key '%.*s' in [zone %s]", SHOWN_MAX, name,
				 z->name);
	if (ctx->zone_ttl_line)
		return load_fail(ctx, -EINVAL,
				 "duplicate key 'ttl' in [zone %s] (first on line %u)", z->name,
				 ctx->zone_ttl_line);
	ctx->zone_ttl_line = ctx->lineno;
	rc = value && *value ? config_parse_duration(value, &z->ttl) : -EINVAL;
	if (rc)
		return load_bad_value(ctx, rc, "ttl", T_DURATION, value);
	return 0;
}

/* inih handler: one "name = value" line of the current section. inih's own
 * section string is ignored: it truncates names past 49 bytes, and the
 * line reader has already parsed the header in full. */
static int load_handler(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;

	(void)section;
	if (ctx->rc)
		return 0;
	switch (ctx->section) {
	case SEC_EKYCFS:
		return load_ekycfs_key(ctx, name, value) == 0;
	case SEC_ZONE:
		return load_zone_key(ctx, name, value) == 0;
	case SEC_NONE:
		break;
	}
	load_fail(ctx, -EINVAL, "key '%.*s' outside any section", SHOWN_MAX, name);
	return 0;
}

static bool zone_name_valid(const char *name, size_t len)
{
	size_t i;

	/* The character set already rules out "." and "..". */
	if (len == 0 || len > CONFIG_ZONE_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Open a [zone NAME] section: the first one of the file drops the zones
 * there were before it, so a file that has zones lists all of them. */
static int load_begin_zone(struct load_ctx *ctx, const char *name, size_t len)
{
	struct config *cfg = ctx->cfg;
	char zname[CONFIG_ZONE_NAME_MAX + 1];
	int dup;

	if (!zone_name_valid(name, len))
		return load_fail(ctx, -EINVAL, "bad zone name '%.*s': use 1 to %d of a-z 0-9 _ -",
				 (int)(len < SHOWN_MAX ? len : SHOWN_MAX), name,
				 CONFIG_ZONE_NAME_MAX);
	memcpy(zname, name, len);
	zname[len] = '\0';
	if (!ctx->zones_seen) {
		ctx->zones_seen = true;
		cfg->nzones = 0;
		cfg->zones_from_file = true;
	}
	dup = config_zone_index(cfg, zname);
	if (dup >= 0)
		return load_fail(ctx, -EINVAL, "duplicate section [zone %s] (first on line %u)",
				 zname, ctx->zone_line[dup]);
	if (cfg->nzones == CONFIG_MAX_ZONES)
		return load_fail(ctx, -EINVAL, "too many zones: [zone %s] is past the limit of %d",
				 zname, CONFIG_MAX_ZONES);
	ctx->zone = cfg->nzones++;
	memcpy(cfg->zones[ctx->zone].name, zname, len + 1);
	cfg->zones[ctx->zone].ttl = CONFIG_DEFAULT_TTL;
	ctx->zone_line[ctx->zone] = ctx->lineno;
	ctx->zone_ttl_line = 0;
	ctx->section = SEC_ZONE;
	return 0;
}

/* Parse the "[...]" header at the start of line. inih parses it too, but
 * calls the handler only for keys: reading headers here lets empty and
 * repeated sections be seen, with their full names. */
static int load_begin_section(struct load_ctx *ctx, const char *line)
{
	const char *name = line + 1;
	const char *end = strchr(name, ']');
	const char *rest;
	size_t len;
	int shown;

	if (!end)
		return load_fail(ctx, -EINVAL, "section header without ']'");
	len = (size_t)(end - name);
	shown = (int)(len < SHOWN_MAX ? len : SHOWN_MAX);
	for (rest = end + 1; isspace((unsigned char)*rest); rest++)
		;
	if (*rest != '\0' && *rest != ';' && *rest != '#')
		return load_fail(ctx, -EINVAL, "text after section header [%.*s]", shown, name);
	if (len == 6 && strncmp(name, "ekycfs", 6) == 0) {
		if (ctx->ekycfs_line)
			return load_fail(ctx, -EINVAL,
					 "duplicate section [ekycfs] (first on line %u)",
					 ctx->ekycfs_line);
		ctx->ekycfs_line = ctx->lineno;
		ctx->section = SEC_EKYCFS;
		return 0;
	}
	if (len == 4 && strncmp(name, "zone", 4) == 0)
		return load_fail(ctx, -EINVAL, "zone section without a name: use [zone NAME]");
	if (len > 5 && strncmp(name, "zone ", 5) == 0)
		return load_begin_zone(ctx, name + 5, len - 5);
	return load_fail(ctx, -EINVAL, "unknown section [%.*s]", shown, name);
}

/* inih line reader: fgets that counts lines, refuses lines inih would
 * split, strips a BOM and indentation (so inih never takes an indented line
 * for a multi-line value), parses section headers, and stops at the first
 * error by reporting end of file. */
static char *load_read_line(char *buf, int num, void *stream)
{
	struct load_ctx *ctx = stream;
	char *p = buf;
	size_t len;

	if (ctx->rc)
		return NULL;
	errno = 0;
	if (!fgets(buf, num, ctx->fp)) {
		if (ferror(ctx->fp))
			ctx->read_errno = errno ? errno : EIO;
		return NULL;
	}
	ctx->lineno++;
	len = strlen(buf);
	if (len > 0 && len + 1 == (size_t)num && buf[len - 1] != '\n') {
		load_fail(ctx, -EINVAL, "line too long (at most %d characters)", num - 2);
		return NULL;
	}
	if (ctx->lineno == 1 && strncmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	while (isspace((unsigned char)*p))
		p++;
	memmove(buf, p, strlen(p) + 1);
	if (buf[0] == '[' && load_begin_section(ctx, buf) != 0)
		return NULL;
	return buf;
}

/* Turn what the parse left in ctx into the result of config_load_file. */
static int load_finish(struct load_ctx *ctx, int ret, char *err, size_t errlen)
{
	if (ret > 0 && (!ctx->rc || (unsigned)ret < ctx->err_line)) {
		set_err(err, errlen, "%s:%d: syntax error: expected [section] or key = value",
			ctx->path, ret);
		return -EINVAL;
	}
	if (ctx->rc) {
		set_err(err, errlen, "%s:%u: %s", ctx->path, ctx->err_line, ctx->msg);
		return ctx->rc;
	}
	if (ret == -2) {
		set_err(err, errlen, "%s: out of memory", ctx->path);
		return -ENOMEM;
	}
	if (ctx->read_errno) {
		set_err(err, errlen, "%s: cannot read: %s", ctx->path, strerror(ctx->read_errno));
		return -ctx->read_errno;
	}
	return 0;
}

int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct load_ctx ctx = {.cfg = cfg, .path = path, .section = SEC_NONE};
	int ret, rc;

	if (err && errlen)
		err[0] = '\0';
	ctx.fp = fopen(path, "re");
	if (!ctx.fp) {
		rc = -errno;
		set_err(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
		return rc;
	}
	ret = ini_parse_stream(load_read_line, &ctx, load_handler, &ctx);
	rc = load_finish(&ctx, ret, err, errlen);
	fclose(ctx.fp);
	return rc;
}

int config_set_option(struct config *cfg, const char *key, const char *value, char *err,
		      size_t errlen)
{
	int k = key ? key_lookup(key) : -1;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (k < 0 || !keys[k].option)
		return -ENOENT;
	rc = config_apply(cfg, (enum key_id)k, value);
	if (rc == -ENOMEM)
		set_err(err, errlen, "option %s: out of memory", key);
	else if (rc && !value)
		set_err(err, errlen, "option %s: needs a value (-o %s=...)", key, key);
	else if (rc && *value == '\0')
		set_err(err, errlen, "option %s: empty value", key);
	else if (rc)
		set_err(err, errlen, "option %s: bad value '%.*s': %s", key, SHOWN_MAX, value,
			type_why[keys[k].type]);
	return rc;
}

int64_t config_zone_ttl(const struct config *cfg, size_t i)
{
	if (i >= cfg->nzones)
		return -1; /* caller bug: there is no zone i */
	if (cfg->ttl_override >= 0)
		return cfg->ttl_override;
	return cfg->zones[i].ttl;
}

int config_zone_index(const struct config *cfg, const char *name)
{
	size_t i;

	if (!name)
		return -1;
	for (i = 0; i < cfg->nzones; i++)
		if (strcmp(cfg->zones[i].name, name) == 0)
			return (int)i;
	return -1;
}

void config_release(struct config *cfg)
{
	free(cfg->key_file);
	cfg->key_file = NULL;
	free(cfg->audit_log);
	cfg->audit_log = NULL;
	free(cfg->fuse_options);
	cfg->fuse_options = NULL;
}
