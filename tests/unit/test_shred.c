/* test_shred.c - Criterion suite for fs/shred.c: the destruction sequence
 * observed through the syscall seam (order, syncs, faults) and the queue. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "crypto.h"
#include "testutil.h"
#include "layout.h"
#include "shred.h"
#include "stamp.h"

#define VICTIM "victim"
#define VSIZE (3 * 4096 + 100)
#define MAX_SNAPS 8
#define MAX_NAMES 16

static char dir[64];
static int dfd = -1;

/* What the hooks saw; one test per process, so plain globals will do. */
static struct {
	int syncs;
	int fail_sync_at, fail_sync_errno; /* fail the Nth fdatasync */
	int fail_unlink_errno;
	int snap_fd; /* reader of the victim's inode */
	size_t snap_len;
	uint8_t *snaps[MAX_SNAPS];
	off_t snap_size[MAX_SNAPS];
	int unlinks;
	char unlink_name[64];
	int unlink_flags;
	off_t size_at_unlink;
	ssize_t xattrs_at_unlink; /* llistxattr size, -1 on error */
	bool victim_gone_at_unlink;
	char victim_name[64];
	char also_unlink[64]; /* another name that goes just before */
} h;

static int hook_fdatasync(int fd)
{
	int i = h.syncs++;

	if (h.snap_fd >= 0 && i < MAX_SNAPS) {
		struct stat st;

		h.snaps[i] = calloc(1, h.snap_len);
		cr_assert_not_null(h.snaps[i]);
		cr_assert_eq(fstat(h.snap_fd, &st), 0);
		h.snap_size[i] = st.st_size;
		cr_assert_geq(pread(h.snap_fd, h.snaps[i], h.snap_len, 0), 0);
	}
	if (h.fail_sync_at == h.syncs) {
		errno = h.fail_sync_errno;
		return -1;
	}
	return fdatasync(fd);
}

static int hook_unlinkat(int dirfd, const char *name, int flags)
{
	char p[PATH_MAX];
	struct stat st;

	h.unlinks++;
	snprintf(h.unlink_name, sizeof(h.unlink_name), "%s", name);
	h.unlink_flags = flags;
	h.size_at_unlink = fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? st.st_size : -1;
	snprintf(p, sizeof(p), "/proc/self/fd/%d/%s", dirfd, name);
	h.xattrs_at_unlink = llistxattr(p, NULL, 0);
	h.victim_gone_at_unlink =
		faccessat(dirfd, h.victim_name, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT;
	if (h.fail_unlink_errno) {
		errno = h.fail_unlink_errno;
		return -1;
	}
	if (h.also_unlink[0])
		cr_assert_eq(unlinkat(dirfd, h.also_unlink, 0), 0);
	return unlinkat(dirfd, name, flags);
}

static const struct shred_sys hooked = {hook_fdatasync, hook_unlinkat};

static void setup(void)
{
	cr_assert_eq(crypto_setup(), 0);
	memset(&h, 0, sizeof(h));
	h.snap_fd = -1;
	strcpy(h.victim_name, VICTIM);
	strcpy(dir, "/tmp/ekycfs-test-shred-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(dfd, 0);
}

static void teardown(void)
{
	for (int i = 0; i < MAX_SNAPS; i++)
		free(h.snaps[i]);
	if (h.snap_fd >= 0)
		close(h.snap_fd);
	close(dfd);
	rm_tree(dir);
}

TestSuite(shred, .init = setup, .fini = teardown);

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 7 + 3);
}

static void make_file_at(int at, const char *name, size_t len)
{
	uint8_t *buf = malloc(len + 1);
	int fd = openat(at, name, O_WRONLY | O_CREAT | O_EXCL, 0600);

	cr_assert_not_null(buf);
	cr_assert_geq(fd, 0, "%s: %s", name, strerror(errno));
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern(i);
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	cr_assert_eq(fsetxattr(fd, STAMP_XATTR, "0123456789", 10, 0), 0);
	cr_assert_eq(fsetxattr(fd, "user.other", "x", 1, 0), 0);
	close(fd);
	free(buf);
}

/* The original bytes of [from, to) still there in snap. */
static size_t same_as_original(const uint8_t *snap, size_t from, size_t to)
{
	size_t n = 0;

	for (size_t i = from; i < to; i++)
		n += snap[i] == pattern(i);
	return n;
}

/* Bytes of [from, to) equal in a and b. */
static size_t same_bytes(const uint8_t *a, const uint8_t *b, size_t from, size_t to)
{
	size_t n = 0;

	for (size_t i = from; i < to; i++)
		n += a[i] == b[i];
	return n;
}

/* Names in the directory at, except . and .. */
static size_t list_at(int at, char names[MAX_NAMES][256])
{
	int fd = openat(at, ".", O_RDONLY | O_DIRECTORY);
	DIR *dp = fdopendir(fd);
	struct dirent *d;
	size_t n = 0;

	cr_assert_not_null(dp);
	while ((d = readdir(dp))) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		cr_assert_lt(n, (size_t)MAX_NAMES);
		snprintf(names[n++], 256, "%s", d->d_name);
	}
	closedir(dp);
	return n;
}

static bool is_random_name(const char *s)
{
	return strlen(s) == 32 && strspn(s, "0123456789abcdef") == 32;
}

/* Open a reader on the victim's inode, for snapshots and after-the-fact reads. */
static void watch_victim(size_t len)
{
	h.snap_fd = openat(dfd, VICTIM, O_RDONLY);
	cr_assert_geq(h.snap_fd, 0);
	h.snap_len = len;
}

Test(shred, file_gone_nothing_left_bytes_reported)
{
	char names[MAX_NAMES][256];
	off_t bytes = -1;
	char buf[8];

	make_file_at(dfd, VICTIM, VSIZE);
	make_file_at(dfd, "keep", 5);
	cr_assert_eq(shred_file_at(&shred_sys_default, dfd, VICTIM, 1, &bytes), 0);
	cr_expect_eq(bytes, VSIZE);
	cr_assert_eq(list_at(dfd, names), 1, "a leftover remains");
	cr_expect_str_eq(names[0], "keep");
	{
		int fd = openat(dfd, "keep", O_RDONLY);

		cr_assert_geq(fd, 0);
		cr_expect_eq(read(fd, buf, sizeof(buf)), 5);
		close(fd);
		for (size_t i = 0; i < 5; i++)
			cr_expect_eq((uint8_t)buf[i], pattern(i), "sibling touched");
	}
}

Test(shred, header_first_then_each_pass_synced)
{
	off_t bytes = -1;
	char names[MAX_NAMES][256];

	make_file_at(dfd, VICTIM, VSIZE);
	watch_victim(VSIZE);
	cr_assert_eq(shred_file_at(&hooked, dfd, VICTIM, 2, &bytes), 0);
	cr_expect_eq(bytes, VSIZE);
	cr_assert_geq(h.syncs, 2 + 1, "fdatasync called %d times for 2 passes", h.syncs);

	/* First sync: the header (key material) is new, the rest untouched. */
	cr_assert_eq(h.snap_size[0], VSIZE, "truncated before the first sync");
	cr_expect_lt(same_as_original(h.snaps[0], 0, HEADER_SIZE), 4,
		     "header not overwritten before the first sync");
	cr_expect_eq(same_as_original(h.snaps[0], HEADER_SIZE, VSIZE), VSIZE - HEADER_SIZE,
		     "content overwritten before the header was synced");
	/* Each pass overwrote everything, with new random bytes. */
	for (int s = 1; s <= 2; s++) {
		cr_assert_eq(h.snap_size[s], VSIZE);
		cr_expect_lt(same_as_original(h.snaps[s], 0, VSIZE), VSIZE / 32,
			     "pass %d left original bytes", s);
		cr_expect_lt(same_bytes(h.snaps[s], h.snaps[s - 1], 0, HEADER_SIZE), 4,
			     "pass %d did not overwrite the header", s);
		cr_expect_lt(same_bytes(h.snaps[s], h.snaps[s - 1], 0, VSIZE), VSIZE / 32,
			     "pass %d did not overwrite everything", s);
	}
	cr_expect_eq(h.unlinks, 1);
	cr_expect(is_random_name(h.unlink_name), "unlinked %s", h.unlink_name);
	cr_expect_eq(list_at(dfd, names), 0);
}

Test(shred, zero_passes_still_destroys_the_header)
{
	off_t bytes = -1;
	char names[MAX_NAMES][256];

	make_file_at(dfd, VICTIM, VSIZE);
	watch_victim(VSIZE);
	cr_assert_eq(shred_file_at(&hooked, dfd, VICTIM, 0, &bytes), 0);
	cr_assert_geq(h.syncs, 1);
	cr_expect_lt(same_as_original(h.snaps[0], 0, HEADER_SIZE), 4);
	cr_expect_eq(list_at(dfd, names), 0);
}

Test(shred, tiny_and_empty_files)
{
	char names[MAX_NAMES][256];
	off_t bytes = -1;

	make_file_at(dfd, "tiny", 10);
	make_file_at(dfd, "empty", 0);
	cr_assert_eq(shred_file_at(&shred_sys_default, dfd, "tiny", 1, &bytes), 0);
	cr_expect_eq(bytes, 10);
	cr_assert_eq(shred_file_at(&shred_sys_default, dfd, "empty", 1, &bytes), 0);
	cr_expect_eq(bytes, 0);
	cr_expect_eq(list_at(dfd, names), 0);
}

/* unlinkat fails: the error comes back, and what is left is an empty,
 * xattr-less file under a random name whose data was overwritten first. */
Test(shred, unlink_failure_leaves_nothing_readable)
{
	char names[MAX_NAMES][256], p[PATH_MAX];
	struct stat st;
	off_t bytes = -1;
	uint8_t buf[64];
	int fd;

	make_file_at(dfd, VICTIM, VSIZE);
	watch_victim(VSIZE);
	h.fail_unlink_errno = EPERM;
	cr_expect_eq(shred_file_at(&hooked, dfd, VICTIM, 1, &bytes), -EPERM);
	cr_expect_eq(bytes, VSIZE);

	cr_assert_eq(list_at(dfd, names), 1);
	cr_expect_str_neq(names[0], VICTIM);
	cr_expect(is_random_name(names[0]), "leftover named %s", names[0]);
	cr_expect_str_eq(h.unlink_name, names[0]);
	cr_expect(h.victim_gone_at_unlink, "renamed before unlink");
	cr_expect_eq(h.size_at_unlink, 0, "truncated before unlink");
	cr_expect_eq(h.xattrs_at_unlink, 0, "xattrs still there at unlink");

	snprintf(p, sizeof(p), "%s/%s", dir, names[0]);
	cr_expect_eq(llistxattr(p, NULL, 0), 0, "leftover keeps xattrs");
	cr_expect_eq(lgetxattr(p, STAMP_XATTR, buf, sizeof(buf)), -1);
	fd = open(p, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_expect_eq(read(fd, buf, sizeof(buf)), 0, "leftover still has bytes");
	close(fd);
	cr_assert_eq(fstat(h.snap_fd, &st), 0);
	cr_expect_eq(st.st_size, 0);
	/* Before the truncate, the synced data was already overwritten. */
	cr_assert_geq(h.syncs, 2);
	cr_expect_lt(same_as_original(h.snaps[h.syncs - 1], 0, VSIZE), VSIZE / 32);
}

Test(shred, sync_failure_is_reported)
{
	off_t bytes = -1;

	make_file_at(dfd, VICTIM, VSIZE);
	watch_victim(VSIZE);
	h.fail_sync_at = 1;
	h.fail_sync_errno = EIO;
	cr_expect_eq(shred_file_at(&hooked, dfd, VICTIM, 1, &bytes), -EIO);
	cr_expect_eq(h.syncs, 1, "went on after a failed sync");
	cr_expect_lt(same_as_original(h.snaps[0], 0, HEADER_SIZE), 4, "header not destroyed");
	cr_expect_eq(h.unlinks, 0);
}

Test(shred, refuses_what_is_not_a_regular_file)
{
	char names[MAX_NAMES][256], target[PATH_MAX];
	off_t bytes = -1;
	int fd;

	cr_expect_eq(shred_file_at(&shred_sys_default, dfd, "missing", 1, &bytes), -ENOENT);
	cr_assert_eq(mkdirat(dfd, "sub", 0700), 0);
	cr_expect_lt(shred_file_at(&shred_sys_default, dfd, "sub", 1, &bytes), 0);

	/* A symlink, a fifo (whose open must not wait for a reader) and a
	 * second name of a file lose only their names: what they point at,
	 * or the data the other name keeps, is never overwritten. */
	make_file_at(dfd, "target", 100);
	snprintf(target, sizeof(target), "%s/target", dir);
	cr_assert_eq(symlinkat(target, dfd, "link"), 0);
	cr_expect_eq(shred_file_at(&shred_sys_default, dfd, "link", 1, &bytes), 0);
	cr_assert_eq(mkfifoat(dfd, "fifo", 0600), 0);
	cr_expect_eq(shred_file_at(&shred_sys_default, dfd, "fifo", 1, &bytes), 0);
	cr_assert_eq(linkat(dfd, "target", dfd, "hard", 0), 0);
	bytes = -1;
	cr_expect_eq(shred_file_at(&shred_sys_default, dfd, "hard", 1, &bytes), 0);
	cr_expect_eq(bytes, 0, "nothing overwritten for a second name");
	fd = openat(dfd, "target", O_RDONLY);
	cr_assert_geq(fd, 0);
	{
		uint8_t buf[100];
		struct stat st;

		cr_assert_eq(read(fd, buf, sizeof(buf)), 100);
		cr_expect_eq(same_as_original(buf, 0, 100), 100, "target overwritten");
		cr_assert_eq(fstat(fd, &st), 0);
		cr_expect_eq(st.st_nlink, 1, "the second name is gone");
	}
	close(fd);
	cr_expect_eq(list_at(dfd, names), 2, "sub and target stay, the three names go");
}

/* A second name whose other names go while it is removed: the data is
 * the store's alone again and is destroyed all the same. */
Test(shred, other_names_gone_meanwhile)
{
	uint8_t buf[100];
	off_t bytes = -1;
	int fd;

	make_file_at(dfd, "a", 100);
	cr_assert_eq(linkat(dfd, "a", dfd, "b", 0), 0);
	fd = openat(dfd, "a", O_RDONLY);
	cr_assert_geq(fd, 0);
	strcpy(h.also_unlink, "b");
	cr_expect_eq(shred_file_at(&hooked, dfd, "a", 1, &bytes), 0);
	cr_expect_eq(bytes, 100);
	cr_expect_eq(pread(fd, buf, sizeof(buf), 0), 0, "the data outlived its names");
	cr_expect_gt(h.syncs, 0, "nothing overwritten");
	close(fd);
}

/* ---- directories ---- */

Test(shred, dir_empty_removed_xattrs_first)
{
	char names[MAX_NAMES][256], p[PATH_MAX];

	cr_assert_eq(mkdirat(dfd, "d", 0700), 0);
	snprintf(p, sizeof(p), "%s/d", dir);
	cr_assert_eq(setxattr(p, STAMP_XATTR, "0123456789", 10, 0), 0);
	strcpy(h.victim_name, "d");
	cr_expect_eq(shred_dir_at(&hooked, dfd, "d"), 0);
	cr_expect_eq(h.unlinks, 1);
	cr_expect(h.unlink_flags & AT_REMOVEDIR);
	cr_expect(is_random_name(h.unlink_name), "rmdir of %s", h.unlink_name);
	cr_expect(h.victim_gone_at_unlink, "renamed before rmdir");
	cr_expect_eq(h.xattrs_at_unlink, 0, "xattrs still there at rmdir");
	cr_expect_eq(list_at(dfd, names), 0);
	cr_expect_eq(shred_dir_at(&shred_sys_default, dfd, "d"), -ENOENT);
}

/* Find the directory holding a file called inner: its name in *where. */
static bool find_inner(char where[256])
{
	char names[MAX_NAMES][256];
	size_t n = list_at(dfd, names);

	for (size_t i = 0; i < n; i++) {
		char p[PATH_MAX];

		snprintf(p, sizeof(p), "%s/inner", names[i]);
		if (faccessat(dfd, p, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
			snprintf(where, 256, "%s", names[i]);
			return true;
		}
	}
	return false;
}

Test(shred, dir_not_empty_keeps_contents)
{
	char where[256], p[PATH_MAX];
	uint8_t buf[64];
	int fd;

	cr_assert_eq(mkdirat(dfd, "d", 0700), 0);
	make_file_at(dfd, "d/inner", 50);
	cr_expect_eq(shred_dir_at(&shred_sys_default, dfd, "d"), -ENOTEMPTY);
	cr_assert(find_inner(where), "contents removed");
	snprintf(p, sizeof(p), "%s/inner", where);
	fd = openat(dfd, p, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_expect_eq(read(fd, buf, sizeof(buf)), 50);
	cr_expect_eq(same_as_original(buf, 0, 50), 50, "contents changed");
	close(fd);
}

/* A refused rmdir should leave the directory as it was: under its own name,
 * with its stamp (the directory id that its children's names need). */
Test(shred, dir_not_empty_left_as_it_was)
{
	char p[PATH_MAX];
	uint8_t buf[16];

	cr_assert_eq(mkdirat(dfd, "d", 0700), 0);
	make_file_at(dfd, "d/inner", 50);
	snprintf(p, sizeof(p), "%s/d", dir);
	cr_assert_eq(setxattr(p, STAMP_XATTR, "0123456789", 10, 0), 0);
	cr_expect_eq(shred_dir_at(&shred_sys_default, dfd, "d"), -ENOTEMPTY);
	cr_expect_eq(faccessat(dfd, "d/inner", F_OK, AT_SYMLINK_NOFOLLOW), 0,
		     "a directory that was not removed was renamed");
	cr_expect_eq(getxattr(p, STAMP_XATTR, buf, sizeof(buf)), 10,
		     "a directory that was not removed lost its stamp");
}

/* ---- the background queue ---- */

static size_t count_lines_with(const char *path, const char *needle)
{
	char line[1024];
	size_t n = 0;
	FILE *f = fopen(path, "r");

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

static int open_trash(void)
{
	int fd;

	cr_assert_eq(mkdirat(dfd, "trash", 0700), 0);
	fd = openat(dfd, "trash", O_RDONLY | O_DIRECTORY);
	cr_assert_geq(fd, 0);
	return fd;
}

Test(shred, shredder_drains_queue_and_counts)
{
	static const size_t sizes[] = {0, 1, 31, 4096, 100000};
	char names[MAX_NAMES][256], log[PATH_MAX], needle[64];
	uint64_t count = 0, bytes = 0, sum = 0;
	struct shredder *s;
	struct audit *a;
	int tfd = open_trash(), err = 0;

	snprintf(log, sizeof(log), "%s/audit.log", dir);
	a = audit_open(log, true, &err);
	cr_assert_not_null(a);
	s = shredder_start(tfd, 1, a, &count, &bytes);
	cr_assert_not_null(s);
	for (size_t i = 0; i < 5; i++) {
		char name[33];
		struct audit_rec rec = {.event = AUDIT_VANISHED,
					.zone = "idocr",
					.born = 1700000000LL * NSEC_PER_SEC,
					.bytes = -1};

		shred_random_name(name);
		make_file_at(tfd, name, sizes[i]);
		sum += sizes[i];
		cr_assert_eq(shredder_submit(s, name, &rec), 0);
	}
	shredder_drain(s);
	cr_expect_eq(list_at(tfd, names), 0, "trash not empty after drain");
	cr_expect_eq(__atomic_load_n(&count, __ATOMIC_RELAXED), 5);
	cr_expect_eq(__atomic_load_n(&bytes, __ATOMIC_RELAXED), sum);

	/* A name that is not there: nothing counted, the worker goes on. */
	{
		struct audit_rec rec = {.event = AUDIT_VANISHED, .zone = "rlc", .bytes = -1};
		char name[33];

		cr_assert_eq(shredder_submit(s, "00000000000000000000000000000000", &rec), 0);
		shred_random_name(name);
		make_file_at(tfd, name, 7);
		cr_assert_eq(shredder_submit(s, name, &rec), 0);
		shredder_drain(s);
	}
	cr_expect_eq(list_at(tfd, names), 0);
	cr_expect_eq(count, 6);
	cr_expect_eq(bytes, sum + 7);
	shredder_stop(s);
	audit_close(a);

	cr_expect_eq(count_lines_with(log, "\"event\":\"shredded\""), 6);
	cr_expect_eq(count_lines_with(log, "\"zone\":\"idocr\""), 5);
	cr_expect_eq(count_lines_with(log, "\"born\":\"2023-11-14T22:13:20.000Z\""), 5);
	for (size_t i = 0; i < 5; i++) {
		snprintf(needle, sizeof(needle), "\"bytes\":%zu}", sizes[i]);
		cr_expect_eq(count_lines_with(log, needle), 1, "no line with %s", needle);
	}
	close(tfd);
}

Test(shred, shredder_stop_finishes_queue)
{
	char names[MAX_NAMES][256];
	struct audit_rec rec = {.event = AUDIT_DELETED, .zone = "rlc", .bytes = -1};
	struct shredder *s;
	int tfd = open_trash();

	s = shredder_start(tfd, 1, NULL, NULL, NULL);
	cr_assert_not_null(s);
	for (int i = 0; i < 8; i++) {
		char name[33];

		shred_random_name(name);
		make_file_at(tfd, name, 5000);
		cr_assert_eq(shredder_submit(s, name, &rec), 0);
	}
	shredder_stop(s);
	cr_expect_eq(list_at(tfd, names), 0);
	shredder_stop(NULL);
	close(tfd);
}

/* run_job() means to remove a directory moved to the trash. */
Test(shred, shredder_removes_trashed_directory)
{
	char names[MAX_NAMES][256], name[33];
	struct audit_rec rec = {.event = AUDIT_DELETED, .zone = "rlc", .bytes = -1};
	uint64_t count = 0, bytes = 0;
	struct shredder *s;
	int tfd = open_trash();

	shred_random_name(name);
	cr_assert_eq(mkdirat(tfd, name, 0700), 0);
	s = shredder_start(tfd, 1, NULL, &count, &bytes);
	cr_assert_not_null(s);
	cr_assert_eq(shredder_submit(s, name, &rec), 0);
	shredder_drain(s);
	shredder_stop(s);
	cr_expect_eq(list_at(tfd, names), 0, "directory left in the trash");
	cr_expect_eq(count, 1);
	close(tfd);
}

Test(shred, random_names)
{
	char a[33], b[33];

	shred_random_name(a);
	shred_random_name(b);
	cr_expect(is_random_name(a));
	cr_expect(is_random_name(b));
	cr_expect_str_neq(a, b);
}
