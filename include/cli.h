/* cli.h - the command line: which action, which paths, and the -o options
 * split between ekycfs (into struct config) and FUSE (passed on). */
#ifndef EKYCFS_CLI_H
#define EKYCFS_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define EKYCFS_VERSION "0.1.0"

enum cli_action {
	CLI_MOUNT,
	CLI_SWEEP,
	CLI_GENKEY,
	CLI_HELP,
	CLI_VERSION,
	CLI_STATUS,
};

struct cli {
	enum cli_action action;
	const char *store;	/* STORE (mount, sweep) */
	const char *mountpoint; /* MOUNTPOINT (mount) */
	const char *keyfile;	/* FILE (genkey) */
	bool foreground, debug, single_thread;
	bool json;	      /* status --json */
	char fuse_opts[4096]; /* comma-separated options for FUSE */
};

/* Parse argv into *cli and *cfg (which the caller has config_init'ed).
 * The config file named by -o config=FILE is read first, then the other
 * options override it. Returns 0, or -EINVAL with err holding one line. */
__attribute__((warn_unused_result)) int cli_parse(int argc, char **argv, struct cli *cli,
						  struct config *cfg, char *err, size_t errlen);

/* The usage text. */
const char *cli_usage(void);

#endif
