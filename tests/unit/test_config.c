/* test_config.c - Criterion suite for fs/config.c: defaults, the INI file
 * (zones, keys, every error class with its FILE:LINE) and -o options. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

/* Write text to a fresh file under /tmp; its name goes to path. */
static void write_conf(const char *text, char path[64])
{
	size_t len = strlen(text);
	int fd;

	strcpy(path, "/tmp/ekycfs-test-config-XXXXXX");
	fd = mkstemp(path);
	cr_assert(fd >= 0, "mkstemp: %s", strerror(errno));
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
}

/* Load text as a config file over fresh defaults; returns the result. */
static int load_text(struct config *cfg, const char *text, char *err, size_t errlen)
{
	char path[64];
	int rc;

	write_conf(text, path);
	cr_assert_eq(config_init(cfg), 0);
	rc = config_load_file(cfg, path, err, errlen);
	unlink(path);
	return rc;
}

Test(config, defaults)
{
	struct config cfg;

	cr_assert_eq(config_init(&cfg), 0);
	cr_expect_null(cfg.key_file);
	cr_expect_null(cfg.audit_log);
	cr_expect_null(cfg.fuse_options);
	cr_expect_eq(cfg.shred_passes, 1);
	cr_expect_not(cfg.allow_other);
	cr_expect_eq(cfg.ttl_override, -1);
	cr_expect_not(cfg.zones_from_file);
	cr_assert_eq(cfg.nzones, 2);
	cr_expect_str_eq(cfg.zones[0].name, "rlc");
	cr_expect_str_eq(cfg.zones[1].name, "idocr");
	cr_expect_eq(config_zone_ttl(&cfg, 0), CONFIG_DEFAULT_TTL);
	cr_expect_eq(config_zone_ttl(&cfg, 1), CONFIG_DEFAULT_TTL);
	cr_expect_eq(config_zone_index(&cfg, "rlc"), 0);
	cr_expect_eq(config_zone_index(&cfg, "idocr"), 1);
	cr_expect_eq(config_zone_index(&cfg, "other"), -1);
	cr_expect_eq(config_zone_ttl(&cfg, 2), -1, "no zone 2");
	config_release(&cfg);
}

Test(config, ekycfs_section)
{
	struct config cfg;
	char err[CONFIG_ERR_LEN] = "";
	int rc;

	rc = load_text(&cfg,
		       "; all of [ekycfs]\n"
		       "[ekycfs]\n"
		       "key_file = /etc/ekycfs/key\n"
		       "ttl = 5m\n"
		       "audit_log = /var/log/ekycfs/audit.log\n"
		       "shred_passes = 3\n"
		       "allow_other = yes\n"
		       "fuse_options = max_read=131072,noatime\n",
		       err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_expect_str_eq(cfg.key_file, "/etc/ekycfs/key");
	cr_expect_eq(cfg.ttl_override, 300);
	cr_expect_str_eq(cfg.audit_log, "/var/log/ekycfs/audit.log");
	cr_expect_eq(cfg.shred_passes, 3);
	cr_expect(cfg.allow_other);
	cr_expect_str_eq(cfg.fuse_options, "max_read=131072,noatime");
	cr_expect_not(cfg.zones_from_file, "no [zone]: defaults kept");
	cr_expect_eq(cfg.nzones, 2);
	cr_expect_eq(config_zone_ttl(&cfg, 0), 300, "override wins");
	cr_expect_eq(config_zone_ttl(&cfg, 1), 300, "override wins");
	config_release(&cfg);
}

Test(config, zones_replace_defaults)
{
	struct config cfg;
	char err[CONFIG_ERR_LEN] = "";
	int rc;

	rc = load_text(&cfg,
		       "[zone alpha]\n"
		       "ttl = 90\n"
		       "\n"
		       "[zone beta-2_x]\n"
		       "ttl = 1h ; inline comment\n"
		       "[zone gamma]\n"
		       "# no ttl: the default\n",
		       err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_expect(cfg.zones_from_file);
	cr_assert_eq(cfg.nzones, 3);
	cr_expect_str_eq(cfg.zones[0].name, "alpha");
	cr_expect_str_eq(cfg.zones[1].name, "beta-2_x");
	cr_expect_str_eq(cfg.zones[2].name, "gamma");
	cr_expect_eq(config_zone_ttl(&cfg, 0), 90);
	cr_expect_eq(config_zone_ttl(&cfg, 1), 3600);
	cr_expect_eq(config_zone_ttl(&cfg, 2), CONFIG_DEFAULT_TTL, "slot 2 was never a default");
	cr_expect_eq(config_zone_index(&cfg, "rlc"), -1, "defaults replaced");
	cr_expect_eq(config_zone_index(&cfg, "gamma"), 2);
	config_release(&cfg);
}

/* upgrade is a one-time -o option: a config file that kept it on would
 * take an older store's marker put back without a word. */
Test(config, upgrade_not_a_file_key)
{
	struct config cfg;
	char err[CONFIG_ERR_LEN];

	config_init(&cfg);
	cr_expect_eq(load_text(&cfg, "[ekycfs]\nupgrade = yes\n", err, sizeof(err)), -EINVAL);
	cr_expect_not_null(strstr(err, "one-time -o option"), "%s", err);
	cr_expect_not(cfg.upgrade);
	config_release(&cfg);
}

Test(config, override_beats_zone_ttl)
{
	struct config cfg;
	char err[CONFIG_ERR_LEN] = "";
	int rc;

	rc = load_text(&cfg, "[zone rlc]\nttl = 3h\n[ekycfs]\nttl = 30s\n", err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_expect_eq(cfg.zones[0].ttl, 3 * 3600, "zone keeps its own ttl");
	cr_expect_eq(config_zone_ttl(&cfg, 0), 30);
	cfg.ttl_override = -1;
	cr_expect_eq(config_zone_ttl(&cfg, 0), 3 * 3600);
	config_release(&cfg);
}

/* Layout inih would misread without help: BOM, CRLF, indented keys (taken
 * as multi-line values), zone names past inih's 49-byte section limit. */
Test(config, layout)
{
	static const char name64[] =
		"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij0123";
	struct config cfg;
	char err[CONFIG_ERR_LEN] = "";
	char text[512];
	int rc;

	snprintf(text, sizeof(text),
		 "\xef\xbb\xbf[ekycfs]\r\n"
		 "  shred_passes = 0\r\n"
		 "  allow_other = TRUE\r\n"
		 "[zone %s]\n"
		 "\tttl = 3h\n",
		 name64);
	rc = load_text(&cfg, text, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_expect_eq(cfg.shred_passes, 0);
	cr_expect(cfg.allow_other);
	cr_assert_eq(cfg.nzones, 1);
	cr_expect_str_eq(cfg.zones[0].name, name64);
	cr_expect_eq(cfg.zones[0].ttl, 3 * 3600);
	config_release(&cfg);
}

Test(config, max_zones)
{
	struct config cfg;
	char err[CONFIG_ERR_LEN] = "";
	char text[1024] = "";
	int i, rc;

	for (i = 0; i < CONFIG_MAX_ZONES; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "[zone z%d]\n", i);
	rc = load_text(&cfg, text, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_expect_eq(cfg.nzones, CONFIG_MAX_ZONES);
	config_release(&cfg);

	/* Line 17 holds the 17th zone. */
	snprintf(text + strlen(text), sizeof(text) - strlen(text), "[zone one-too-many]\n");
	rc = load_text(&cfg, text, err, sizeof(err));
	cr_expect_eq(rc, -EINVAL);
	cr_expect(strstr(err, ":17: too many zones") != NULL, "got: %s", err);
	config_release(&cfg);
}

struct bad_case {
	const char *text;
	unsigned line;
	const char *what;
};

/* Every error class: a negative return and "FILE:LINE: what". */
Test(config, errors_name_file_and_line)
{
	static const struct bad_case cases[] = {
		{"[zone rlc]\n\ntl = 1h\n", 3, "unknown key 'tl' in [zone rlc]"},
		{"[ekycfs]\nkeyfile = /k\n", 2, "unknown key 'keyfile' in [ekycfs]"},
		{"[ekycfs]\n[fuse]\nx = 1\n", 2, "unknown section [fuse]"},
		{"[ekycfs]\n[fuse]\n", 2, "unknown section [fuse]"},
		{"ttl = 1h\n", 1, "key 'ttl' outside any section"},
		{"[zone rlc]\nttl = 3x\n", 2, "bad value '3x' for ttl in [zone rlc]"},
		{"[zone rlc]\nttl = 0\n", 2, "bad value '0' for ttl in [zone rlc]"},
		{"[zone rlc]\nttl =\n", 2, "missing value for ttl in [zone rlc]"},
		{"[ekycfs]\nttl = -1\n", 2, "bad value '-1' for ttl in [ekycfs]"},
		{"[ekycfs]\nshred_passes = 33\n", 2, "bad value '33' for shred_passes"},
		{"[ekycfs]\nshred_passes = two\n", 2, "bad value 'two' for shred_passes"},
		{"[ekycfs]\nallow_other = maybe\n", 2, "bad value 'maybe' for allow_other"},
		{"[ekycfs]\n\nkey_file =\n", 3, "missing value for key_file in [ekycfs]"},
		{"[ekycfs]\nttl = 1h\nttl = 2h\n", 3,
		 "duplicate key 'ttl' in [ekycfs] (first on line 2)"},
		{"[zone a]\nttl = 1h\n ttl = 2h\n", 3, "duplicate key 'ttl' in [zone a]"},
		{"[ekycfs]\n[zone a]\n[ekycfs]\n", 3,
		 "duplicate section [ekycfs] (first on line 1)"},
		{"[zone a]\n[zone b]\n[zone a]\n", 3,
		 "duplicate section [zone a] (first on line 1)"},
		{"[zone Rlc]\n", 1, "bad zone name 'Rlc'"},
		{"[zone ..]\n", 1, "bad zone name '..'"},
		{"[zone a/b]\n", 1, "bad zone name 'a/b'"},
		{"[zone  a]\n", 1, "bad zone name ' a'"},
		{"[zone "
		 "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij01234]\n",
		 1, "bad zone name"},
		{"[zone]\nttl = 1h\n", 1, "zone section without a name"},
		{"\n[ekycfs\n", 2, "section header without ']'"},
		{"[ekycfs] junk\n", 1, "text after section header [ekycfs]"},
		{"[ekycfs]\nallow_other\n", 2, "syntax error"},
		/* inih's syntax error on line 2 comes before the bad key on line 4. */
		{"[ekycfs]\noops\n\nbogus = 1\n", 2, "syntax error"},
	};
	char err[CONFIG_ERR_LEN], want[CONFIG_ERR_LEN], path[64];
	struct config cfg;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_conf(cases[i].text, path);
		config_init(&cfg);
		strcpy(err, "untouched");
		rc = config_load_file(&cfg, path, err, sizeof(err));
		unlink(path);
		config_release(&cfg);
		snprintf(want, sizeof(want), "%s:%u: ", path, cases[i].line);
		cr_expect_eq(rc, -EINVAL, "case %zu: rc %d", i, rc);
		cr_expect_eq(strncmp(err, want, strlen(want)), 0,
			     "case %zu: want prefix '%s', got '%s'", i, want, err);
		cr_expect(strstr(err, cases[i].what) != NULL, "case %zu: want '%s', got '%s'", i,
			  cases[i].what, err);
	}
}

Test(config, long_line)
{
	struct config cfg;
	char err[CONFIG_ERR_LEN] = "";
	char text[1024];
	int rc;

	snprintf(text, sizeof(text), "[ekycfs]\nkey_file = /%0300d\n", 0);
	rc = load_text(&cfg, text, err, sizeof(err));
	cr_expect_eq(rc, -EINVAL);
	cr_expect(strstr(err, ":2: line too long") != NULL, "got: %s", err);
	cr_expect_null(cfg.key_file, "no truncated path kept");
	config_release(&cfg);
}

Test(config, missing_file)
{
	struct config cfg;
	char err[CONFIG_ERR_LEN] = "";
	const char *path = "/tmp/ekycfs-test-config-does-not-exist.conf";

	config_init(&cfg);
	cr_expect_eq(config_load_file(&cfg, path, err, sizeof(err)), -ENOENT);
	cr_expect_str_eq(err, "/tmp/ekycfs-test-config-does-not-exist.conf: cannot read: "
			      "No such file or directory");
	config_release(&cfg);
}

Test(config, unreadable_file)
{
	struct config cfg;
	char err[CONFIG_ERR_LEN] = "";
	int rc;

	/* A directory opens but cannot be read, even by root. */
	config_init(&cfg);
	rc = config_load_file(&cfg, "/tmp", err, sizeof(err));
	cr_expect(rc < 0, "rc %d", rc);
	cr_expect(strstr(err, "/tmp: cannot read: ") == err, "got: %s", err);
	config_release(&cfg);
}

struct duration_case {
	const char *text;
	int64_t seconds; /* 0: must be refused */
};

Test(config, parse_duration)
{
	static const struct duration_case cases[] = {
		{"90", 90},
		{"3s", 3},
		{"5m", 300},
		{"2h", 7200},
		{"007", 7},
		{"87840h", 316224000},
		{"", 0},
		{"0", 0},
		{"0h", 0},
		{"-1", 0},
		{"+1", 0},
		{"3x", 0},
		{"3 s", 0},
		{" 3", 0},
		{"3 ", 0},
		{"s", 0},
		{"3ss", 0},
		{"3S", 0},
		{"1.5h", 0},
		{"87841h", 0},
		{"99999999999999999999", 0},
		{"9223372036854775807s", 0},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t out = -42;
		int rc = config_parse_duration(cases[i].text, &out);

		if (cases[i].seconds) {
			cr_expect_eq(rc, 0, "'%s' refused", cases[i].text);
			cr_expect_eq(out, cases[i].seconds, "'%s' gave %lld", cases[i].text,
				     (long long)out);
		} else {
			cr_expect_eq(rc, -EINVAL, "'%s' accepted", cases[i].text);
			cr_expect_eq(out, -42, "'%s' wrote *out", cases[i].text);
		}
	}
}

Test(config, set_option)
{
	struct config cfg;
	char err[CONFIG_ERR_LEN];

	config_init(&cfg);
	cr_expect_eq(config_set_option(&cfg, "default_permissions", NULL, err, sizeof(err)),
		     -ENOENT);
	cr_expect_eq(config_set_option(&cfg, "max_read", "131072", err, sizeof(err)), -ENOENT);
	cr_expect_eq(config_set_option(&cfg, "fuse_options", "ro", err, sizeof(err)), -ENOENT,
		     "fuse_options is a file key only");

	cr_expect_eq(config_set_option(&cfg, "key_file", "/a", err, sizeof(err)), 0);
	cr_expect_eq(config_set_option(&cfg, "key_file", "/b", err, sizeof(err)), 0);
	cr_expect_str_eq(cfg.key_file, "/b");
	cr_expect_eq(config_set_option(&cfg, "audit_log", "/log", err, sizeof(err)), 0);
	cr_expect_str_eq(cfg.audit_log, "/log");
	cr_expect_not(cfg.upgrade);
	cr_expect_eq(config_set_option(&cfg, "upgrade", NULL, err, sizeof(err)), 0);
	cr_expect(cfg.upgrade, "a bare -o upgrade");
	cr_expect_eq(config_set_option(&cfg, "ttl", "2h", err, sizeof(err)), 0);
	cr_expect_eq(cfg.ttl_override, 7200);
	cr_expect_eq(config_zone_ttl(&cfg, 1), 7200);
	cr_expect_eq(config_set_option(&cfg, "shred_passes", "32", err, sizeof(err)), 0);
	cr_expect_eq(cfg.shred_passes, 32);

	cr_expect_eq(config_set_option(&cfg, "shred_passes", "33", err, sizeof(err)), -EINVAL);
	cr_expect_eq(cfg.shred_passes, 32, "bad value leaves the old one");
	cr_expect(strstr(err, "option shred_passes: bad value '33'") == err, "got: %s", err);
	cr_expect_eq(config_set_option(&cfg, "ttl", "soon", err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "option ttl: ") == err, "got: %s", err);
	cr_expect_eq(config_set_option(&cfg, "key_file", NULL, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "option key_file: ") == err, "got: %s", err);
	cr_expect_eq(config_set_option(&cfg, "audit_log", "", err, sizeof(err)), -EINVAL);
	cr_expect_str_eq(cfg.audit_log, "/log");

	config_release(&cfg);
	cr_expect_null(cfg.key_file);
	cr_expect_null(cfg.audit_log);
	config_release(&cfg); /* idempotent */
	cr_expect_null(cfg.fuse_options);
}

struct bool_case {
	const char *text; /* NULL: a bare -o allow_other */
	int want;	  /* 1 true, 0 false, -1 refused */
};

Test(config, bools)
{
	static const struct bool_case cases[] = {
		{NULL, 1},    {"true", 1}, {"yes", 1}, {"1", 1},      {"Yes", 1},
		{"false", 0}, {"no", 0},   {"0", 0},   {"FALSE", 0},  {"", -1},
		{"2", -1},    {"on", -1},  {"y", -1},  {"true ", -1},
	};
	char err[CONFIG_ERR_LEN];
	struct config cfg;
	size_t i;

	config_init(&cfg);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool before = !cases[i].want;
		int rc;

		cfg.allow_other = before;
		rc = config_set_option(&cfg, "allow_other", cases[i].text, err, sizeof(err));
		if (cases[i].want < 0) {
			cr_expect_eq(rc, -EINVAL, "case %zu accepted", i);
			cr_expect_eq(cfg.allow_other, before, "case %zu changed the value", i);
		} else {
			cr_expect_eq(rc, 0, "case %zu: %s", i, err);
			cr_expect_eq(cfg.allow_other, cases[i].want == 1, "case %zu", i);
		}
	}
	config_release(&cfg);
}

/* A second file with zones lists all zones again; keys it sets replace. */
Test(config, load_twice)
{
	struct config cfg;
	char err[CONFIG_ERR_LEN] = "";
	char path[64];
	int rc;

	rc = load_text(&cfg, "[ekycfs]\nkey_file = /one\n[zone a]\n[zone b]\n", err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	write_conf("[ekycfs]\nkey_file = /two\n[zone c]\nttl = 5\n", path);
	rc = config_load_file(&cfg, path, err, sizeof(err));
	unlink(path);
	cr_assert_eq(rc, 0, "%s", err);
	cr_expect_str_eq(cfg.key_file, "/two");
	cr_assert_eq(cfg.nzones, 1);
	cr_expect_str_eq(cfg.zones[0].name, "c");
	cr_expect_eq(config_zone_ttl(&cfg, 0), 5);
	config_release(&cfg);
}

/* The shipped example parses as is, and with every example key turned on.
 * Run from the top of the tree, as make unit-test does. */
Test(config, example_file)
{
	static const char example[] = "etc/ekycfs.conf";
	char err[CONFIG_ERR_LEN] = "", line[256], path[64];
	struct config cfg;
	FILE *in, *out;
	int fd;

	in = fopen(example, "r");
	if (!in)
		cr_skip_test("%s: %s (not run from the top of the tree)", example, strerror(errno));
	config_init(&cfg);
	cr_expect_eq(config_load_file(&cfg, example, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(cfg.nzones, 2);
	config_release(&cfg);

	strcpy(path, "/tmp/ekycfs-test-config-XXXXXX");
	fd = mkstemp(path);
	cr_assert(fd >= 0, "mkstemp: %s", strerror(errno));
	out = fdopen(fd, "w");
	cr_assert_not_null(out);
	while (fgets(line, sizeof(line), in))
		fputs(line[0] == ';' && line[1] >= 'a' && line[1] <= 'z' ? line + 1 : line, out);
	fclose(in);
	fclose(out);
	config_init(&cfg);
	cr_expect_eq(config_load_file(&cfg, path, err, sizeof(err)), 0, "%s", err);
	unlink(path);
	cr_expect_not_null(cfg.key_file);
	cr_expect_not_null(cfg.audit_log);
	cr_expect_not_null(cfg.fuse_options);
	cr_expect_eq(cfg.ttl_override, 7200);
	config_release(&cfg);
}
