/* main.c - ekycfs's entry point: parse, load keys, open the store, sweep,
 * mount and serve; or sweep offline; or write a key file. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "cli.h"
#include "config.h"
#include "crypto.h"
#include "fuse_io.h"
#include "fuse_ops.h"
#include "statuscmd.h"
#include "store.h"
#include "vfs.h"

#define EXIT_USAGE 2

/* Everything one run owns, released in reverse by run_release(). */
struct run {
	struct cli cli;
	struct config cfg;
	struct keys *keys;
	struct store store;
	struct audit *audit;
	struct vfs *vfs;
	char mount_real[PATH_MAX]; /* the mountpoint, resolved before mounting */
	char err[CONFIG_ERR_LEN];
};

static int fail(const char *msg)
{
	fprintf(stderr, "ekycfs: %s\n", msg);
	return EXIT_FAILURE;
}

static int load_keys(struct run *r)
{
	if (!r->cfg.key_file) {
		r->keys = keys_generate();
		return r->keys ? 0 : -ENOMEM;
	}
	return keys_load_file(r->cfg.key_file, &r->keys, r->err, sizeof(r->err));
}

/* The mountpoint must be a directory nothing is mounted on yet. */
static int check_mountpoint(struct run *r)
{
	char parent[PATH_MAX];
	struct stat st, pst;
	const char *mp = r->cli.mountpoint;

	if (stat(mp, &st) < 0 || !realpath(mp, r->mount_real)) {
		snprintf(r->err, sizeof(r->err), "mountpoint %s: %s", mp, strerror(errno));
		return -ENOTDIR;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(r->err, sizeof(r->err), "mountpoint %s: not a directory", mp);
		return -ENOTDIR;
	}
	snprintf(parent, sizeof(parent), "%s/..", mp);
	if (stat(parent, &pst) == 0 && (pst.st_dev != st.st_dev || pst.st_ino == st.st_ino)) {
		snprintf(r->err, sizeof(r->err),
			 "mountpoint %s is busy (something is mounted there)", mp);
		return -EBUSY;
	}
	return 0;
}

/* Say why the audit log at path is refused (rc from audit_check or
 * audit_open); returns rc. */
static int audit_refused(struct run *r, const char *path, bool own, int rc)
{
	snprintf(r->err, sizeof(r->err), "audit log %.300s: %s", path,
		 rc == -EINVAL	 ? (own ? "not a regular file"
					: "neither a regular file nor a character device (a fifo's "
					  "reader could hold up the shredding; ship the file or use "
					  "syslog)")
		 : rc == -EMLINK ? "a file with other names (hard links); refusing to write there"
				 : strerror(-rc));
	return rc;
}

static int open_all(struct run *r, enum store_mode mode)
{
	char path[PATH_MAX];
	int rc;

	/* A log of the user's choosing first: when it cannot be written, the
	 * store is not touched. */
	snprintf(path, sizeof(path), "%s/%s", r->cli.store, STORE_AUDIT);
	if (r->cfg.audit_log && !(r->audit = audit_open(r->cfg.audit_log, false, &rc)))
		return audit_refused(r, r->cfg.audit_log, false, rc);
	/* The store's own log is looked at before the store is opened (which
	 * may write to it), and opened after (the store may be made first). */
	if (!r->cfg.audit_log && (rc = audit_check(path, true)) < 0)
		return audit_refused(r, path, true, rc);
	rc = store_open(&r->store, r->cli.store, &r->cfg, r->keys, !r->cfg.key_file, mode, r->err,
			sizeof(r->err));
	if (rc < 0)
		return rc;
	if (!r->cfg.audit_log && !(r->audit = audit_open(path, true, &rc)))
		return audit_refused(r, path, true, rc);
	r->vfs = vfs_new(&r->cfg, &r->store, r->keys, r->audit, clock_realtime, NULL, &rc);
	if (!r->vfs) {
		snprintf(r->err, sizeof(r->err), "cannot set up: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

static void run_release(struct run *r)
{
	vfs_free(r->vfs);
	audit_close(r->audit);
	store_close(&r->store);
	keys_free(r->keys);
	config_release(&r->cfg);
}

static struct fuse_session *make_session(struct run *r)
{
	char opts[sizeof(r->cli.fuse_opts) + 128];
	char name[] = "ekycfs", dash_o[] = "-o", dash_d[] = "-d";
	char *argv[5];
	int argc = 0;
	struct fuse_args args;
	struct fuse_session *se;

	snprintf(opts, sizeof(opts),
		 "fsname=ekycfs,subtype=ekycfs,default_permissions,max_read=%d%s%s",
		 FUSE_IO_MAX_READ, r->cli.fuse_opts[0] ? "," : "", r->cli.fuse_opts);
	argv[argc++] = name;
	argv[argc++] = dash_o;
	argv[argc++] = opts;
	if (r->cli.debug)
		argv[argc++] = dash_d;
	argv[argc] = NULL;
	args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	se = fuse_session_new(&args, &ekycfs_ops, sizeof(ekycfs_ops), r->vfs);
	fuse_opt_free_args(&args);
	return se;
}

/* Stopping on a signal. The pruner and the reaper tell the kernel to drop
 * entries, and such a notification waits for the folder's lock, which a
 * request in flight may hold: stopping the loop first would leave that
 * request unanswered and the notification (and the unmount) hung for
 * good. So a thread takes TERM, INT and HUP from a signalfd, stops the
 * core's threads while requests are still served, then ends the loop. */
struct stopper {
	struct fuse_session *se;
	struct vfs *vfs;
	pthread_t loop_thread; /* woken with SIGUSR1 once se has exited */
	pthread_t thread;
	int sfd;
	bool loop_done; /* atomic */
};

/* A stop signal that came before the signalfd took over (it survives the
 * fork of daemonizing, which a blocked pending signal would not). */
static volatile sig_atomic_t early_stop;

static void note_stop(int sig)
{
	early_stop = sig;
}

static void wake_loop(int sig)
{
	(void)sig; /* only interrupts the loop's wait */
}

static void *stopper_main(void *arg)
{
	struct stopper *st = arg;
	struct signalfd_siginfo si;
	struct timespec again = {0, 50 * 1000 * 1000};

	while (!early_stop && read(st->sfd, &si, sizeof(si)) < 0 && errno == EINTR)
		;
	vfs_stop(st->vfs);
	fuse_session_exit(st->se);
	/* Until the loop has seen it: a wake-up just before its wait is lost. */
	while (!__atomic_load_n(&st->loop_done, __ATOMIC_ACQUIRE)) {
		pthread_kill(st->loop_thread, SIGUSR1);
		nanosleep(&again, NULL);
	}
	return NULL;
}

static void stop_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

/* Before mounting: stop signals are noted, SIGPIPE ignored (as libfuse's
 * own handlers would). */
static int stopper_init(struct stopper *st, struct fuse_session *se, struct vfs *v)
{
	struct sigaction note = {.sa_handler = note_stop}, wake = {.sa_handler = wake_loop},
			 ign = {.sa_handler = SIG_IGN};

	*st = (struct stopper){.se = se, .vfs = v, .sfd = -1};
	if (sigaction(SIGTERM, &note, NULL) < 0 || sigaction(SIGINT, &note, NULL) < 0 ||
	    sigaction(SIGHUP, &note, NULL) < 0 || sigaction(SIGUSR1, &wake, NULL) < 0 ||
	    sigaction(SIGPIPE, &ign, NULL) < 0)
		return -1;
	return 0;
}

/* In the daemon, before any thread: block the stop signals (threads made
 * later inherit that) and route them to a signalfd. */
static int stopper_arm(struct stopper *st)
{
	sigset_t set;

	stop_set(&set);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	st->loop_thread = pthread_self();
	st->sfd = signalfd(-1, &set, SFD_CLOEXEC);
	return st->sfd < 0 ? -1 : 0;
}

static int stopper_start(struct stopper *st)
{
	return pthread_create(&st->thread, NULL, stopper_main, st) == 0 ? 0 : -1;
}

/* After the loop: the thread ends (a signal of its own if none came). */
static void stopper_end(struct stopper *st)
{
	__atomic_store_n(&st->loop_done, true, __ATOMIC_RELEASE);
	pthread_kill(st->thread, SIGTERM);
	pthread_join(st->thread, NULL);
}

static int serve(struct run *r)
{
	struct fuse_notify_ctx nctx;
	struct vfs_notify notify;
	struct fuse_loop_config *lc;
	struct fuse_session *se = make_session(r);
	struct stopper st;
	int rc = EXIT_FAILURE;

	if (!se)
		return fail("bad FUSE options (see --help)");
	if (stopper_init(&st, se, r->vfs) != 0)
		goto out_destroy;
	/* The resolved path: libfuse resolves the parent of what it is given
	 * after mounting, and for "DIR/." that parent is the new mount, which
	 * cannot answer yet (the mount hung). */
	if (fuse_session_mount(se, r->mount_real) != 0) {
		fprintf(stderr, "ekycfs: cannot mount on %s\n", r->cli.mountpoint);
		goto out_signals;
	}
	if (fuse_io_attach(se) != 0) {
		fprintf(stderr, "ekycfs: cannot set up the FUSE session's I/O\n");
		goto out_unmount;
	}
	/* By the path resolved before mounting: resolving it now could ask
	 * the new mount, which cannot answer before the loop runs. */
	fuse_io_readahead(r->mount_real);
	/* Threads start after the fork of daemonizing. */
	if (fuse_daemonize(r->cli.foreground) != 0)
		goto out_unmount;
	if (stopper_arm(&st) != 0)
		goto out_unmount;
	nctx = (struct fuse_notify_ctx){se, r->vfs};
	fuse_ops_notify(&nctx, &notify);
	if (vfs_start(r->vfs, &notify) < 0)
		goto out_unmount;
	if (stopper_start(&st) != 0) {
		vfs_stop(r->vfs);
		goto out_unmount;
	}
	lc = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(lc, 16);
	/* No fuse_loop_cfg_set_idle_threads(): with libfuse's default (-1) a
	 * worker is never retired, and fuse_io.c relies on that (a retiring
	 * worker's buffer would be freed with its last request in it). 3.14
	 * ignores values above 100,000, so -1 cannot be asked for anyway. */
	rc = r->cli.single_thread ? fuse_session_loop(se) : fuse_session_loop_mt(se, lc);
	/* 0 after a signal (the stopper ended it) or an unmount. */
	rc = rc == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	fuse_loop_cfg_destroy(lc);
	stopper_end(&st);
	vfs_stop(r->vfs);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	if (st.sfd >= 0)
		close(st.sfd);
out_destroy:
	fuse_session_destroy(se);
	return rc;
}

static int do_genkey(const char *path)
{
	int rc = keys_write_file(path);

	if (rc == -EEXIST)
		fprintf(stderr, "ekycfs: %s exists; refusing to overwrite it\n", path);
	else if (rc < 0)
		fprintf(stderr, "ekycfs: %s: %s\n", path, strerror(-rc));
	return rc < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

static int do_sweep(struct run *r)
{
	const struct vfs_stats *s;

	if (open_all(r, STORE_SWEEP) < 0 || vfs_sweep(r->vfs, false) < 0)
		return fail(r->err);
	s = vfs_stats(r->vfs);
	printf("ekycfs: swept %s: %llu shredded (%llu bytes), %llu invalid stamps\n", r->cli.store,
	       (unsigned long long)s->shreds, (unsigned long long)s->shred_bytes,
	       (unsigned long long)s->invalid_stamps);
	return EXIT_SUCCESS;
}

/* One O_PATH fd per inode the kernel knows: allow as many as the
 * system does. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	FILE *f = fopen("/proc/sys/fs/nr_open", "r");
	unsigned long max = 0;

	if (f) {
		if (fscanf(f, "%lu", &max) != 1)
			max = 0;
		fclose(f);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (max > rl.rlim_max && geteuid() == 0)
		rl.rlim_max = max;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int do_mount(struct run *r)
{
	struct fuse_session *se;

	raise_fd_limit();
	/* The kernel applies the caller's umask; the daemon's must not add. */
	umask(0);
	if (check_mountpoint(r) < 0)
		return fail(r->err);
	/* Options libfuse refuses are refused before the store is touched:
	 * a session made and dropped here only parses them. */
	se = make_session(r);
	if (!se)
		return fail("bad FUSE options (see --help)");
	fuse_session_destroy(se);
	if (open_all(r, STORE_MOUNT) < 0)
		return fail(r->err);
	audit_use_syslog(r->audit, 1); /* events reach journald too */
	/* What expired while unmounted is shredded before anything is served. */
	if (vfs_sweep(r->vfs, true) < 0)
		return fail("sweep failed");
	return serve(r);
}

int main(int argc, char **argv)
{
	struct run r = {0};
	int rc;

	config_init(&r.cfg);
	if (cli_parse(argc, argv, &r.cli, &r.cfg, r.err, sizeof(r.err)) < 0) {
		fprintf(stderr, "ekycfs: %s\n", r.err);
		config_release(&r.cfg);
		return EXIT_USAGE;
	}
	if (r.cli.action == CLI_HELP || r.cli.action == CLI_VERSION) {
		fputs(r.cli.action == CLI_HELP ? cli_usage() : "ekycfs " EKYCFS_VERSION "\n",
		      stdout);
		config_release(&r.cfg);
		return EXIT_SUCCESS;
	}
	if (r.cli.action == CLI_STATUS) {
		config_release(&r.cfg);
		return status_command(r.cli.mountpoint, r.cli.json, stdout) < 0 ? EXIT_FAILURE
										: EXIT_SUCCESS;
	}
	if (crypto_setup() < 0) {
		config_release(&r.cfg);
		return fail("cannot initialise libsodium");
	}
	if (r.cli.action == CLI_GENKEY) {
		config_release(&r.cfg);
		return do_genkey(r.cli.keyfile);
	}
	if (load_keys(&r) < 0) {
		rc = fail(r.err[0] ? r.err : "cannot make a key");
	} else {
		rc = r.cli.action == CLI_SWEEP ? do_sweep(&r) : do_mount(&r);
	}
	run_release(&r);
	return rc;
}
