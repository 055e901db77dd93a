/* cli.c - parsing ekycfs's command line. Kept apart from main so that tests
 * can check every option without mounting anything. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPTS 64

const char *cli_usage(void)
{
	return "usage: ekycfs [-f] [-d] [-s] [-o OPT[,OPT...]] STORE MOUNTPOINT\n"
	       "       ekycfs --sweep [-o OPT[,OPT...]] STORE\n"
	       "       ekycfs --genkey FILE\n"
	       "       ekycfs status [--json] MOUNTPOINT\n"
	       "       ekycfs --help | --version\n"
	       "\n"
	       "Mounts STORE at MOUNTPOINT: everything written under the zones (rlc, idocr\n"
	       "by default) is encrypted, and each entry vanishes and is shredded TTL after\n"
	       "its last change. Unmount with: fusermount3 -u MOUNTPOINT\n"
	       "\n"
	       "  -f                  stay in the foreground\n"
	       "  -d                  FUSE debug output (implies -f)\n"
	       "  -s                  single-threaded\n"
	       "  -o config=FILE      read settings from an INI file first\n"
	       "  -o key_file=FILE    persistent key (made with --genkey); default: an\n"
	       "                      ephemeral key held in locked memory only\n"
	       "  -o ttl=DURATION     override every zone's TTL (90, 3s, 5m, 2h)\n"
	       "  -o audit_log=FILE   JSON-lines audit log (default STORE/audit.log)\n"
	       "  -o shred_passes=N   random overwrites before unlink (default 1)\n"
	       "  -o allow_other      let other users in (default_permissions applies)\n"
	       "  -o upgrade          bind the zones of a store made by an older ekycfs\n"
	       "  -o OPT              any other option is passed to FUSE\n"
	       "  --sweep             shred what expired in STORE, without mounting\n"
	       "  --genkey FILE       write a new random key file (mode 0600)\n"
	       "  status [--json]     entries, bytes and next deadlines per zone, shreds,\n"
	       "                      invalid stamps, key mode and format of a mount\n";
}

/* Split every -o argument into single options in opts. */
static int collect_opts(char *arg, char **opts, size_t *n, char *err, size_t errlen)
{
	for (char *save = NULL, *o = strtok_r(arg, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		if (*n == MAX_OPTS) {
			snprintf(err, errlen, "too many -o options");
			return -EINVAL;
		}
		opts[(*n)++] = o;
	}
	return 0;
}

/* FUSE options ekycfs sets itself: one of them in opt (a comma list)? */
static const char *own_fuse_opt(const char *opt)
{
	static const char *const own[] = {"max_read"};
	const char *p = opt;

	for (;;) {
		size_t len = strcspn(p, ",="), end = strcspn(p, ",");

		for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
			if (strlen(own[i]) == len && strncmp(p, own[i], len) == 0)
				return own[i];
		if (p[end] == '\0')
			return NULL;
		p += end + 1;
	}
}

static int add_fuse_opt(struct cli *cli, const char *opt, char *err, size_t errlen)
{
	size_t used = strlen(cli->fuse_opts);
	const char *own = own_fuse_opt(opt);
	int n;

	if (own) {
		snprintf(err, errlen, "option %s is set by ekycfs itself; remove it", own);
		return -EINVAL;
	}
	n = snprintf(cli->fuse_opts + used, sizeof(cli->fuse_opts) - used, "%s%s", used ? "," : "",
		     opt);

	if (n < 0 || (size_t)n >= sizeof(cli->fuse_opts) - used) {
		snprintf(err, errlen, "FUSE options too long");
		return -EINVAL;
	}
	return 0;
}

/* Apply -o options: config= first, then ekycfs's own, the rest to FUSE. */
static int apply_opts(struct cli *cli, struct config *cfg, char **opts, size_t n, char *err,
		      size_t errlen)
{
	int rc;

	for (size_t i = 0; i < n; i++) {
		if (strncmp(opts[i], "config=", 7) == 0) {
			rc = config_load_file(cfg, opts[i] + 7, err, errlen);
			if (rc < 0)
				return -EINVAL;
		}
	}
	for (size_t i = 0; i < n; i++) {
		char key[64], *eq = strchr(opts[i], '=');
		size_t klen = eq ? (size_t)(eq - opts[i]) : strlen(opts[i]);

		if (strncmp(opts[i], "config=", 7) == 0)
			continue;
		if (strcmp(opts[i], "config") == 0) {
			snprintf(err, errlen, "option config needs a FILE (config=FILE)");
			return -EINVAL;
		}
		if (klen >= sizeof(key)) {
			rc = add_fuse_opt(cli, opts[i], err, errlen);
		} else {
			memcpy(key, opts[i], klen);
			key[klen] = '\0';
			rc = config_set_option(cfg, key, eq ? eq + 1 : NULL, err, errlen);
			if (rc == -ENOENT)
				rc = add_fuse_opt(cli, opts[i], err, errlen);
		}
		if (rc < 0)
			return -EINVAL;
	}
	if (cfg->allow_other && add_fuse_opt(cli, "allow_other", err, errlen) < 0)
		return -EINVAL;
	if (cfg->fuse_options && add_fuse_opt(cli, cfg->fuse_options, err, errlen) < 0)
		return -EINVAL;
	return 0;
}

/* Take one option argument from argv; returns 1 when it was an action or
 * flag, 0 when it is a positional argument, -EINVAL on error. */
static int parse_flag(int argc, char **argv, int *i, struct cli *cli, char **opts, size_t *n,
		      char *err, size_t errlen)
{
	const char *a = argv[*i];

	if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
		cli->action = CLI_HELP;
	else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0)
		cli->action = CLI_VERSION;
	else if (strcmp(a, "--json") == 0 && cli->action == CLI_STATUS)
		cli->json = true;
	else if (strcmp(a, "--sweep") == 0)
		cli->action = CLI_SWEEP;
	else if (strcmp(a, "--genkey") == 0) {
		if (*i + 1 >= argc) {
			snprintf(err, errlen, "--genkey needs a FILE");
			return -EINVAL;
		}
		cli->action = CLI_GENKEY;
		cli->keyfile = argv[++*i];
	} else if (strcmp(a, "-f") == 0)
		cli->foreground = true;
	else if (strcmp(a, "-d") == 0)
		cli->debug = cli->foreground = true;
	else if (strcmp(a, "-s") == 0)
		cli->single_thread = true;
	else if (strncmp(a, "-o", 2) == 0) {
		char *arg = a[2] ? argv[*i] + 2 : (*i + 1 < argc ? argv[++*i] : NULL);

		if (!arg) {
			snprintf(err, errlen, "-o needs options");
			return -EINVAL;
		}
		return collect_opts(arg, opts, n, err, errlen) < 0 ? -EINVAL : 1;
	} else if (a[0] == '-' && a[1]) {
		snprintf(err, errlen, "unknown option '%s' (see --help)", a);
		return -EINVAL;
	} else
		return 0;
	return 1;
}

int cli_parse(int argc, char **argv, struct cli *cli, struct config *cfg, char *err, size_t errlen)
{
	char *opts[MAX_OPTS];
	const char *pos[2];
	size_t nopts = 0, npos = 0, want;
	int rc;

	memset(cli, 0, sizeof(*cli));
	if (argc > 1 && strcmp(argv[1], "status") == 0) {
		cli->action = CLI_STATUS;
		argv++;
		argc--;
	}
	for (int i = 1; i < argc; i++) {
		rc = parse_flag(argc, argv, &i, cli, opts, &nopts, err, errlen);
		if (rc < 0)
			return rc;
		if (rc == 1)
			continue;
		if (npos == 2) {
			snprintf(err, errlen, "too many arguments (see --help)");
			return -EINVAL;
		}
		pos[npos++] = argv[i];
	}
	if (cli->action == CLI_HELP || cli->action == CLI_VERSION)
		return 0;
	want = cli->action == CLI_MOUNT ? 2 : cli->action == CLI_GENKEY ? 0 : 1;
	if (npos != want) {
		snprintf(err, errlen, "%s (see --help)",
			 want == 2		     ? "need STORE and MOUNTPOINT"
			 : cli->action == CLI_SWEEP  ? "--sweep needs exactly one STORE"
			 : cli->action == CLI_STATUS ? "status needs exactly one MOUNTPOINT"
						     : "--genkey takes no other argument");
		return -EINVAL;
	}
	if (cli->action == CLI_STATUS) {
		cli->mountpoint = pos[0];
		return 0;
	}
	cli->store = want ? pos[0] : NULL;
	cli->mountpoint = want == 2 ? pos[1] : NULL;
	return apply_opts(cli, cfg, opts, nopts, err, errlen);
}
