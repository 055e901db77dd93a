/* test_prune.c - Criterion suite for the core without a mount: the
 * descriptor budget (fs/prune.c), and expiry verdicts when the process is
 * out of descriptors (fs/expire.c must keep, never destroy). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "config.h"
#include "crypto.h"
#include "store.h"
#include "testutil.h"
#include "util.h"
#include "vfs_internal.h"

#define NFILES 12
#define MAX_ASKED 64

static char base[64];
static struct config cfg;
static struct keys *keys;
static struct store store;
static struct vfs *vfs;
static struct node *zone; /* rlc, with a lookup reference */
static int64_t fake_now;

/* What the pruner asked the kernel to drop: entry_gone(parent, NULL, name). */
static pthread_mutex_t asked_mu = PTHREAD_MUTEX_INITIALIZER;
static char asked[MAX_ASKED][NAME_MAX + 1];
static size_t nasked;

static int64_t test_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

static void on_entry_gone(void *arg, struct node *parent, struct node *child, const char *name)
{
	(void)arg;
	(void)parent;
	pthread_mutex_lock(&asked_mu);
	if (!child && nasked < MAX_ASKED)
		snprintf(asked[nasked++], sizeof(asked[0]), "%s", name);
	pthread_mutex_unlock(&asked_mu);
}

static void on_inode(void *arg, struct node *n)
{
	(void)arg;
	(void)n;
}

static bool was_asked(const char *name)
{
	bool found = false;

	pthread_mutex_lock(&asked_mu);
	for (size_t i = 0; i < nasked; i++)
		found = found || strcmp(asked[i], name) == 0;
	pthread_mutex_unlock(&asked_mu);
	return found;
}

static void setup(void)
{
	uint8_t master[KEY_BYTES] = {1, 2, 3};
	struct vfs_notify notify = {on_entry_gone, on_inode, on_inode, NULL};
	struct vfs_entry e;
	char err[256], spath[128];
	int rc;

	cr_assert_eq(crypto_setup(), 0);
	keys = keys_from_master(master);
	cr_assert_not_null(keys);
	cr_assert_eq(config_init(&cfg), 0);
	strcpy(base, "/tmp/ekycfs-test-prune-XXXXXX");
	cr_assert_not_null(mkdtemp(base));
	snprintf(spath, sizeof(spath), "%s/store", base);
	cr_assert_eq(store_open(&store, spath, &cfg, keys, false, STORE_MOUNT, err, sizeof(err)), 0,
		     "%s", err);
	fake_now = clock_realtime(NULL);
	vfs = vfs_new(&cfg, &store, keys, NULL, test_clock, NULL, &rc);
	cr_assert_not_null(vfs, "vfs_new: %d", rc);
	vfs_set_fd_budget(vfs, 1u << 20); /* the thread stays idle; tests call vfs_prune */
	cr_assert_eq(vfs_start(vfs, &notify), 0);
	cr_assert_eq(vfs_lookup(vfs, vfs_root(vfs), "rlc", &e), 0);
	zone = e.node;
	nasked = 0;
}

static void teardown(void)
{
	vfs_free(vfs);
	store_close(&store);
	keys_free(keys);
	config_release(&cfg);
	rm_tree(base);
}

TestSuite(prune, .init = setup, .fini = teardown);

static const struct vfs_caller caller = {0, 0, 022};

/* Create name in dir and close it; the kernel's lookup reference stays. */
static struct node *make_file(struct node *dir, const char *name)
{
	struct vfs_entry e;
	struct handle *h;

	cr_assert_eq(vfs_create(vfs, dir, name, 0644, O_RDWR, &caller, &e, &h), 0, "%s", name);
	cr_assert_eq(vfs_write(vfs, h, name, strlen(name), 0), (ssize_t)strlen(name));
	cr_assert_eq(vfs_release(vfs, h), 0);
	return e.node;
}

Test(prune, asks_for_least_recently_used_by_plain_name)
{
	struct node *files[NFILES];
	struct handle *h;
	char name[32];
	struct stat st;
	double timeout;
	size_t before;

	for (int i = 0; i < NFILES; i++) {
		snprintf(name, sizeof(name), "face-%02d.jpg", i);
		files[i] = make_file(zone, name);
	}
	before = vfs_node_fds(vfs);
	cr_assert_geq(before, NFILES);
	/* Use files 0 and 1 again; keep 2 open: none of them may be asked for. */
	cr_assert_eq(vfs_getattr(vfs, files[0], &st, &timeout), 0);
	cr_assert_eq(vfs_open(vfs, files[1], O_RDONLY, &h), 0);
	cr_assert_eq(vfs_release(vfs, h), 0);
	cr_assert_eq(vfs_open(vfs, files[2], O_RDONLY, &h), 0);

	cr_assert_eq(vfs_prune(vfs, before - 4), 4);
	for (int i = 3; i < 7; i++) {
		snprintf(name, sizeof(name), "face-%02d.jpg", i);
		cr_expect(was_asked(name), "%s, the least recently used, not asked for", name);
	}
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "face-%02d.jpg", i);
		cr_expect_not(was_asked(name), "%s was used or is open", name);
	}
	cr_expect_not(was_asked("rlc"), "zone roots are never asked for");

	/* Asked once until looked up again: the next pass takes the next ones. */
	nasked = 0;
	cr_assert_eq(vfs_prune(vfs, before - 2), 2);
	cr_expect(was_asked("face-07.jpg"));
	cr_expect(was_asked("face-08.jpg"));

	/* The kernel forgets them: their descriptors close. */
	for (int i = 3; i < 9; i++)
		vfs_forget(vfs, files[i], 1);
	cr_expect_eq(vfs_node_fds(vfs), before - 6);
	cr_assert_eq(vfs_release(vfs, h), 0);
}

Test(prune, follows_renames_and_nothing_when_under_budget)
{
	size_t have;

	make_file(zone, "old-name.png");
	cr_assert_eq(vfs_rename(vfs, zone, "old-name.png", zone, "new-name.png", 0), 0);
	have = vfs_node_fds(vfs);
	cr_expect_eq(vfs_prune(vfs, have), 0, "under budget: nothing asked");
	cr_assert_eq(vfs_prune(vfs, have - 1), 1);
	cr_expect(was_asked("new-name.png"), "asked by the name it has now");
	cr_expect_not(was_asked("old-name.png"));
}

/* The backing name in dir of the entry with inode ino. */
static void backing_name(struct node *dir, uint64_t ino, char out[NAME_MAX + 1])
{
	DIR *dp = dir_listing(dir->fd, ".");
	struct dirent *d;
	struct stat sb;

	cr_assert_not_null(dp);
	out[0] = '\0';
	while ((d = readdir(dp)))
		if (fstatat(dir->fd, d->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && sb.st_ino == ino)
			snprintf(out, NAME_MAX + 1, "%s", d->d_name);
	closedir(dp);
	cr_assert(out[0], "no backing entry with inode %llu", (unsigned long long)ino);
}

/* Leave only a few descriptors free: the next opens fail with EMFILE. */
static rlim_t squeeze(int spare)
{
	struct rlimit rl;
	int fd = open("/dev/null", O_RDONLY);

	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rlim_t old = rl.rlim_cur;
	rl.rlim_cur = (rlim_t)(fd + spare);
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	return old;
}

static void unsqueeze(rlim_t old)
{
	struct rlimit rl;

	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = old;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/* Out of descriptors, a stamp cannot be read: that says nothing about the
 * entry, so it must stay live, not count as invalid, and never vanish. */
Test(prune, out_of_descriptors_keeps_entries)
{
	struct node *f = make_file(zone, "id-front.jpg");
	uint64_t ino = f->ino;
	struct vfs_entry e;
	char bname[NAME_MAX + 1];
	uint8_t kind = 99;
	bool live, dir_live;
	rlim_t old;

	cr_assert_eq(vfs_mkdir(vfs, zone, "session", 0755, &caller, &e), 0);
	make_file(e.node, "frame.jpg");
	backing_name(zone, ino, bname); /* while descriptors are plenty */
	vfs_forget(vfs, f, 1);		/* not held: judged from disk */

	old = squeeze(0);
	live = vfs_entry_live(vfs, zone->fd, zone->zone, bname, ino, fake_now, &kind);
	dir_live = vfs_dir_has_live(vfs, zone->fd, fake_now, zone->zone);
	unsqueeze(old);

	cr_expect(live, "an unreadable stamp is not an expired one");
	cr_expect(dir_live, "a folder that cannot be listed is not judged empty");
	cr_expect_eq(vfs_stats(vfs)->invalid_stamps, 0);

	/* A sweep while out of descriptors destroys nothing. (A new store's
	 * zones come marked for reset; a sweep of its next mount keeps.) */
	for (size_t i = 0; i < store.nzones; i++)
		store.zone_reset[i] = false;
	store.destroy_all = false;
	old = squeeze(1);
	cr_expect_eq(vfs_sweep(vfs, false), 0);
	unsqueeze(old);
	cr_expect_eq(vfs_stats(vfs)->invalid_stamps, 0);
	cr_expect_eq(vfs_stats(vfs)->vanished, 0);
	cr_expect_eq(fstatat(zone->fd, bname, &(struct stat){0}, AT_SYMLINK_NOFOLLOW), 0,
		     "the file is still there");
	cr_expect(vfs_entry_live(vfs, zone->fd, zone->zone, bname, ino, fake_now, &kind));
	cr_expect_eq(kind, STAMP_REG);
}

/* A stamp that cannot be read because of what is on disk (here one too big
 * for the buffer: getxattr says ERANGE) is a verdict, not a failure to
 * look: an edit of the backing store must not keep a folder, or what it
 * holds, past its deadline. */
Test(prune, unreadable_stamp_on_disk_still_expires)
{
	uint8_t junk[200] = {0};
	char dname[NAME_MAX + 1];
	struct vfs_entry e;
	struct node *f;
	struct stat sb;
	int dfd;

	cr_assert_eq(vfs_mkdir(vfs, zone, "session", 0755, &caller, &e), 0);
	f = make_file(e.node, "selfie.jpg");
	backing_name(zone, e.node->ino, dname);
	cr_assert_eq(fstatat(zone->fd, dname, &sb, AT_SYMLINK_NOFOLLOW), 0);
	dfd = openat(zone->fd, dname, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(dfd, 0);
	cr_assert_eq(fsetxattr(dfd, "user.ekycfs.stamp", junk, sizeof(junk), 0), 0);
	close(dfd);
	for (size_t i = 0; i < store.nzones; i++)
		store.zone_reset[i] = false;
	store.destroy_all = false;
	fake_now += 2 * 3600 * NSEC_PER_SEC + NSEC_PER_SEC; /* past the 2 h TTL */
	cr_assert_eq(vfs_sweep(vfs, false), 0);
	cr_expect_geq(vfs_stats(vfs)->invalid_stamps, 1);
	cr_expect_neq(fstatat(zone->fd, dname, &sb, AT_SYMLINK_NOFOLLOW), 0,
		      "the folder with an unreadable stamp is still there");
	vfs_forget(vfs, f, 1); /* as the kernel would: the nodes are gone from the table */
	vfs_forget(vfs, e.node, 1);
}

/* A file is asked for by a name it still has (after "ln a b; rm a" and
 * after "ln c d; rm d" the kernel holds b and c), and folders never:
 * dropping one that is a process's working directory would make its
 * getcwd() fail. */
Test(prune, name_it_still_has_and_no_folders)
{
	struct node *f = make_file(zone, "scan-a.png"), *g = make_file(zone, "scan-c.png");
	struct vfs_entry e, d;
	size_t have;

	cr_assert_eq(vfs_link(vfs, f, zone, "scan-b.png", &e), 0);
	cr_assert_eq(vfs_unlink(vfs, zone, "scan-a.png"), 0);
	cr_assert_eq(vfs_link(vfs, g, zone, "scan-d.png", &e), 0);
	cr_assert_eq(vfs_unlink(vfs, zone, "scan-d.png"), 0);
	cr_assert_eq(vfs_mkdir(vfs, zone, "case-0042", 0755, &caller, &d), 0);
	have = vfs_node_fds(vfs);
	cr_assert_eq(vfs_prune(vfs, 0), 2, "only the files are candidates (%zu held)", have);
	cr_expect(was_asked("scan-b.png"));
	cr_expect(was_asked("scan-c.png"));
	cr_expect_not(was_asked("scan-a.png"));
	cr_expect_not(was_asked("scan-d.png"));
	cr_expect_not(was_asked("case-0042"));
}
