/* util.c - whole-buffer pread/pwrite and a directory emptiness test, shared
 * by the crypto, content, store and shred modules. */
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ssize_t pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + got, len - got, off + (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const uint8_t *)buf + done, len - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

DIR *dir_listing(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *dp = fd < 0 ? NULL : fdopendir(fd);
	int err = errno;

	if (!dp && fd >= 0) {
		close(fd);
		errno = err; /* why fdopendir failed */
	}
	return dp;
}

int dir_is_empty(int dirfd)
{
	DIR *dp = dir_listing(dirfd, ".");
	struct dirent *d;
	int empty = 1;

	if (!dp)
		return -errno;
	while ((d = readdir(dp))) {
		if (strcmp(d->d_name, ".") && strcmp(d->d_name, "..")) {
			empty = 0;
			break;
		}
	}
	closedir(dp);
	return empty;
}

/* Where name in dirfd (or dirfd itself, name "") lies: device and, when
 * the kernel tells it (Linux 5.8 on), mount id. */
static int where(int dirfd, const char *name, struct statx *sx)
{
	int flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (name[0] ? 0 : AT_EMPTY_PATH);

	return statx(dirfd, name, flags, STATX_MNT_ID, sx);
}

static bool same_place(const struct statx *a, const struct statx *b)
{
	/* The mount id when the kernel gives it: a bind mount of the same
	 * file system differs only there, and on some file systems (overlayfs
	 * over layers on different ones) files and folders of one mount
	 * report different devices. Without it, the device. */
	if (a->stx_mask & b->stx_mask & STATX_MNT_ID)
		return a->stx_mnt_id == b->stx_mnt_id;
	return a->stx_dev_major == b->stx_dev_major && a->stx_dev_minor == b->stx_dev_minor;
}

int mount_of(int fd, struct statx *place)
{
	return where(fd, "", place) < 0 ? -errno : 0;
}

bool on_mount(int dirfd, const char *name, const struct statx *place)
{
	struct statx sx;

	return where(dirfd, name, &sx) == 0 && same_place(place, &sx);
}

bool same_mount(int dirfd, const char *name)
{
	struct statx a;

	return mount_of(dirfd, &a) == 0 && on_mount(dirfd, name, &a);
}

bool same_mount_fd(int a, int b)
{
	struct statx x;

	return mount_of(a, &x) == 0 && on_mount(b, "", &x);
}

int reopen_fd(int pfd, int flags)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", pfd);
	fd = open(path, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int open_regular_at(int dirfd, const char *name, int flags, nlink_t max_links, struct stat *st)
{
	int pfd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC), fd;

	if (pfd < 0)
		return -errno;
	if (fstat(pfd, st) < 0) {
		fd = -errno;
		close(pfd);
		return fd;
	}
	if (!S_ISREG(st->st_mode) || (max_links && st->st_nlink > max_links) ||
	    !same_mount_fd(dirfd, pfd)) {
		close(pfd);
		return -EINVAL;
	}
	fd = reopen_fd(pfd, flags | O_NONBLOCK);
	close(pfd);
	return fd;
}
