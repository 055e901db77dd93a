/* test_cli.c - Criterion suite for fs/cli.c: every action, the split of -o
 * options between ekycfs and FUSE, config= precedence and each error. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cli.h"
#include "config.h"

#define MAX_ARGS 32

/* A writable argv (cli_parse splits -o arguments in place) that lives as
 * long as the test, since struct cli points into it. */
struct args {
	int argc;
	char *argv[MAX_ARGS + 1];
};

static struct args args;
static struct config cfg;
static struct cli cli;
static char err[512];
static char conf[64]; /* a temp config file, when a test writes one */

static void setup(void)
{
	memset(&args, 0, sizeof(args));
	cr_assert_eq(config_init(&cfg), 0);
	err[0] = '\0';
	conf[0] = '\0';
}

static void teardown(void)
{
	for (int i = 0; i < args.argc; i++)
		free(args.argv[i]);
	config_release(&cfg);
	if (conf[0])
		unlink(conf);
}

TestSuite(cli, .init = setup, .fini = teardown);

/* Parse "ekycfs" followed by the NULL-terminated arguments. */
static int parse(const char *first, ...)
{
	va_list ap;
	const char *a;

	args.argv[args.argc++] = strdup("ekycfs");
	va_start(ap, first);
	for (a = first; a; a = va_arg(ap, const char *)) {
		cr_assert_lt(args.argc, MAX_ARGS);
		args.argv[args.argc++] = strdup(a);
	}
	va_end(ap);
	memset(&cli, 0x5a, sizeof(cli)); /* cli_parse must set every field */
	return cli_parse(args.argc, args.argv, &cli, &cfg, err, sizeof(err));
}

static void write_conf(const char *text)
{
	int fd;

	strcpy(conf, "/tmp/ekycfs-test-cli-XXXXXX");
	fd = mkstemp(conf);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Whether opt is one of the comma-separated options in list. */
static int count_opt(const char *list, const char *opt)
{
	char copy[sizeof(cli.fuse_opts)];
	int n = 0;

	snprintf(copy, sizeof(copy), "%s", list);
	for (char *save = NULL, *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save))
		n += strcmp(o, opt) == 0;
	return n;
}

static int count_all(const char *list)
{
	int n = list[0] != '\0';

	for (const char *p = list; *p; p++)
		n += *p == ',';
	return n;
}

Test(cli, mount_with_options)
{
	int rc = parse("-f", "-d", "-o", "key_file=X,ttl=3s,allow_other,noatime", "/srv/store",
		       "/mnt/ekyc", NULL);

	cr_assert_eq(rc, 0, "%s", err);
	cr_expect_eq(cli.action, CLI_MOUNT);
	cr_expect_str_eq(cli.store, "/srv/store");
	cr_expect_str_eq(cli.mountpoint, "/mnt/ekyc");
	cr_expect_null(cli.keyfile);
	cr_expect(cli.foreground);
	cr_expect(cli.debug);
	cr_expect_not(cli.single_thread);
	cr_expect_not(cli.json);
	/* ekycfs's own options land in the config ... */
	cr_assert_not_null(cfg.key_file);
	cr_expect_str_eq(cfg.key_file, "X");
	cr_expect_eq(cfg.ttl_override, 3);
	cr_expect_eq(config_zone_ttl(&cfg, 0), 3);
	cr_expect(cfg.allow_other);
	/* ... FUSE's go on, and allow_other goes to both. */
	cr_expect_eq(count_opt(cli.fuse_opts, "noatime"), 1, "fuse_opts: %s", cli.fuse_opts);
	cr_expect_eq(count_opt(cli.fuse_opts, "allow_other"), 1, "fuse_opts: %s", cli.fuse_opts);
	cr_expect_eq(count_all(cli.fuse_opts), 2, "fuse_opts: %s", cli.fuse_opts);
	cr_expect_null(strstr(cli.fuse_opts, "key_file"), "key path leaked to FUSE");
	cr_expect_null(strstr(cli.fuse_opts, "ttl"));
}

Test(cli, mount_plain_defaults)
{
	cr_assert_eq(parse("store", "mnt", NULL), 0, "%s", err);
	cr_expect_eq(cli.action, CLI_MOUNT);
	cr_expect_not(cli.foreground);
	cr_expect_not(cli.debug);
	cr_expect_str_eq(cli.fuse_opts, "");
	cr_expect_null(cfg.key_file, "ephemeral by default");
	cr_expect_eq(cfg.ttl_override, -1);
	cr_expect_eq(config_zone_ttl(&cfg, 0), CONFIG_DEFAULT_TTL);
}

Test(cli, debug_implies_foreground)
{
	cr_assert_eq(parse("-d", "store", "mnt", NULL), 0, "%s", err);
	cr_expect(cli.debug);
	cr_expect(cli.foreground, "-d must keep the daemon in the foreground");
	teardown();
	setup();
	cr_assert_eq(parse("-f", "store", "mnt", NULL), 0, "%s", err);
	cr_expect(cli.foreground);
	cr_expect_not(cli.debug);
}

Test(cli, attached_o_and_single_thread)
{
	cr_assert_eq(parse("-s", "-oshred_passes=3,noatime", "-o", "audit_log=/var/a.log", "store",
			   "mnt", NULL),
		     0, "%s", err);
	cr_expect(cli.single_thread);
	cr_expect_eq(cfg.shred_passes, 3);
	cr_expect_str_eq(cfg.audit_log, "/var/a.log");
	cr_expect_str_eq(cli.fuse_opts, "noatime");
}

Test(cli, sweep)
{
	cr_assert_eq(parse("--sweep", "-o", "key_file=/k", "/srv/store", NULL), 0, "%s", err);
	cr_expect_eq(cli.action, CLI_SWEEP);
	cr_expect_str_eq(cli.store, "/srv/store");
	cr_expect_null(cli.mountpoint);
	cr_expect_str_eq(cfg.key_file, "/k");
}

Test(cli, genkey)
{
	cr_assert_eq(parse("--genkey", "/etc/ekycfs/key", NULL), 0, "%s", err);
	cr_expect_eq(cli.action, CLI_GENKEY);
	cr_expect_str_eq(cli.keyfile, "/etc/ekycfs/key");
	cr_expect_null(cli.store);
	cr_expect_null(cli.mountpoint);
}

Test(cli, help_and_version)
{
	cr_assert_eq(parse("--help", NULL), 0);
	cr_expect_eq(cli.action, CLI_HELP);
	teardown();
	setup();
	cr_assert_eq(parse("-h", NULL), 0);
	cr_expect_eq(cli.action, CLI_HELP);
	teardown();
	setup();
	cr_assert_eq(parse("--version", NULL), 0);
	cr_expect_eq(cli.action, CLI_VERSION);
	teardown();
	setup();
	cr_assert_eq(parse("-V", NULL), 0);
	cr_expect_eq(cli.action, CLI_VERSION);
	cr_expect_not_null(strstr(cli_usage(), "usage: ekycfs"));
	cr_expect_not_null(strstr(cli_usage(), "--sweep"));
	cr_expect_not_null(strstr(cli_usage(), "--genkey"));
}

Test(cli, status)
{
	cr_assert_eq(parse("status", "/mnt/ekyc", NULL), 0, "%s", err);
	cr_expect_eq(cli.action, CLI_STATUS);
	cr_expect_str_eq(cli.mountpoint, "/mnt/ekyc");
	cr_expect_not(cli.json);
	teardown();
	setup();
	cr_assert_eq(parse("status", "--json", "/mnt/ekyc", NULL), 0, "%s", err);
	cr_expect_eq(cli.action, CLI_STATUS);
	cr_expect(cli.json);
	cr_expect_str_eq(cli.mountpoint, "/mnt/ekyc");
	teardown();
	setup();
	cr_expect_eq(parse("status", NULL), -EINVAL);
	cr_expect_not_null(strstr(err, "MOUNTPOINT"), "got: %s", err);
	teardown();
	setup();
	cr_expect_eq(parse("--json", "store", "mnt", NULL), -EINVAL, "--json outside status");
	cr_expect_not_null(strstr(err, "--json"), "got: %s", err);
}

/* ---- errors: -EINVAL and one line naming the problem ---- */

static void expect_error(int rc, const char *needle)
{
	cr_expect_eq(rc, -EINVAL);
	cr_expect_neq(err[0], '\0', "no message");
	cr_expect_null(strchr(err, '\n'), "more than one line: %s", err);
	cr_expect_not_null(strstr(err, needle), "'%s' not in: %s", needle, err);
}

Test(cli, error_no_args)
{
	expect_error(parse(NULL), "STORE and MOUNTPOINT");
}

Test(cli, error_one_arg_for_mount)
{
	expect_error(parse("store", NULL), "STORE and MOUNTPOINT");
}

Test(cli, error_three_args)
{
	expect_error(parse("store", "mnt", "extra", NULL), "too many arguments");
}

Test(cli, error_sweep_arity)
{
	expect_error(parse("--sweep", NULL), "--sweep");
	teardown();
	setup();
	expect_error(parse("--sweep", "a", "b", NULL), "--sweep");
}

Test(cli, error_genkey)
{
	expect_error(parse("--genkey", NULL), "--genkey");
	teardown();
	setup();
	expect_error(parse("--genkey", "f", "extra", NULL), "--genkey");
}

Test(cli, error_unknown_flag)
{
	expect_error(parse("--frobnicate", "store", "mnt", NULL), "--frobnicate");
	teardown();
	setup();
	expect_error(parse("-x", "store", "mnt", NULL), "-x");
}

/* ekycfs sets FUSE's read size itself (and libfuse's low-level API ends
 * the session when init and the mount option disagree). */
Test(cli, error_own_fuse_option)
{
	char opt[96];

	expect_error(parse("-o", "max_read=4096", "store", "mnt", NULL), "max_read");
	teardown();
	setup();
	expect_error(parse("-o", "noatime,max_read", "store", "mnt", NULL), "max_read");
	teardown();
	setup();
	write_conf("[ekycfs]\nfuse_options = noatime,max_read=65536\n");
	snprintf(opt, sizeof(opt), "config=%s", conf);
	expect_error(parse("-o", opt, "store", "mnt", NULL), "max_read");
	teardown();
	setup();
	/* An option that merely starts the same is not it. */
	cr_expect_eq(parse("-o", "max_readx=1", "store", "mnt", NULL), 0, "%s", err);
}

Test(cli, error_o_without_value)
{
	expect_error(parse("store", "mnt", "-o", NULL), "-o");
}

Test(cli, error_ttl_zero)
{
	expect_error(parse("-o", "ttl=0", "store", "mnt", NULL), "ttl");
	teardown();
	setup();
	expect_error(parse("-o", "ttl=", "store", "mnt", NULL), "ttl");
	teardown();
	setup();
	expect_error(parse("-o", "ttl=5x", "store", "mnt", NULL), "ttl");
}

Test(cli, error_bad_shred_passes)
{
	expect_error(parse("-o", "shred_passes=many", "store", "mnt", NULL), "shred_passes");
	teardown();
	setup();
	expect_error(parse("-o", "shred_passes=33", "store", "mnt", NULL), "shred_passes");
	teardown();
	setup();
	expect_error(parse("-o", "shred_passes=-1", "store", "mnt", NULL), "shred_passes");
}

Test(cli, error_config_missing_file)
{
	expect_error(parse("-o", "config=/nonexistent/ekycfs-test.conf", "store", "mnt", NULL),
		     "/nonexistent/ekycfs-test.conf");
}

Test(cli, error_config_bad_file)
{
	write_conf("[ekycfs]\nttl = never\n");
	{
		char opt[96];

		snprintf(opt, sizeof(opt), "config=%s", conf);
		expect_error(parse("-o", opt, "store", "mnt", NULL), conf);
	}
	cr_expect_not_null(strstr(err, ":2:"), "line number missing: %s", err);
}

/* ---- config= is read first; other -o options win, in any order ---- */

static const char conf_text[] = "[ekycfs]\n"
				"ttl = 1h\n"
				"shred_passes = 3\n"
				"key_file = /from/file\n"
				"audit_log = /from/file.log\n";

Test(cli, config_then_overrides_after)
{
	char opt[160];

	write_conf(conf_text);
	snprintf(opt, sizeof(opt), "config=%s,ttl=5s,key_file=/from/cli", conf);
	cr_assert_eq(parse("-o", opt, "store", "mnt", NULL), 0, "%s", err);
	cr_expect_eq(cfg.ttl_override, 5);
	cr_expect_str_eq(cfg.key_file, "/from/cli");
	cr_expect_eq(cfg.shred_passes, 3, "file value kept");
	cr_expect_str_eq(cfg.audit_log, "/from/file.log");
	cr_expect_null(strstr(cli.fuse_opts, "config"), "config= passed to FUSE: %s",
		       cli.fuse_opts);
}

Test(cli, config_then_overrides_before)
{
	char opt[96];

	write_conf(conf_text);
	snprintf(opt, sizeof(opt), "config=%s", conf);
	cr_assert_eq(parse("-o", "ttl=5s", "-o", "shred_passes=0", "store", "mnt", "-o", opt, NULL),
		     0, "%s", err);
	cr_expect_eq(cfg.ttl_override, 5, "file overrode an earlier -o");
	cr_expect_eq(cfg.shred_passes, 0, "file overrode an earlier -o");
	cr_expect_str_eq(cfg.key_file, "/from/file");
	cr_expect_str_eq(cli.fuse_opts, "");
}

Test(cli, config_allow_other_and_fuse_options)
{
	char opt[96];

	write_conf("[ekycfs]\nallow_other = yes\nfuse_options = nodiratime,noatime\n");
	snprintf(opt, sizeof(opt), "config=%s", conf);
	cr_assert_eq(parse("-o", opt, "store", "mnt", NULL), 0, "%s", err);
	cr_expect(cfg.allow_other);
	cr_expect_eq(count_opt(cli.fuse_opts, "allow_other"), 1, "fuse_opts: %s", cli.fuse_opts);
	cr_expect_eq(count_opt(cli.fuse_opts, "nodiratime"), 1, "fuse_opts: %s", cli.fuse_opts);
	cr_expect_eq(count_opt(cli.fuse_opts, "noatime"), 1, "fuse_opts: %s", cli.fuse_opts);
	teardown();
	setup();
	/* -o allow_other=no on the command line beats the file. */
	write_conf("[ekycfs]\nallow_other = yes\n");
	snprintf(opt, sizeof(opt), "config=%s", conf);
	cr_assert_eq(parse("-o", "allow_other=no", "-o", opt, "store", "mnt", NULL), 0, "%s", err);
	cr_expect_not(cfg.allow_other);
	cr_expect_eq(count_opt(cli.fuse_opts, "allow_other"), 0, "fuse_opts: %s", cli.fuse_opts);
}
