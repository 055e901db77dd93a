/* util.h - small I/O helpers the core modules share: whole reads and
 * writes that survive EINTR and short transfers, folder listings and an
 * emptiness test. */
#ifndef EKYCFS_UTIL_H
#define EKYCFS_UTIL_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Read up to len bytes at off; fewer only at end of file. Returns the
 * count or -errno. */
ssize_t pread_full(int fd, void *buf, size_t len, off_t off);

/* Write all len bytes at off. Returns 0 or -errno. */
__attribute__((warn_unused_result)) int pwrite_full(int fd, const void *buf, size_t len, off_t off);

/* A listing of the folder name in dirfd ("." for dirfd itself; a symlink
 * is not followed), with its own descriptor; NULL with errno set. */
DIR *dir_listing(int dirfd, const char *name);

/* 1 when the directory open as dirfd holds no entry, 0 when it holds one,
 * or -errno. dirfd may be O_PATH; its offset is not disturbed. */
int dir_is_empty(int dirfd);

/* Whether name in dirfd (not followed) lies on the same mount as dirfd
 * itself; whether the open files a and b do. ekycfs never descends into,
 * writes to or removes anything on another mount (a file system or bind
 * mount over a part of a store), as it would be outside the store. A
 * failure to tell counts as "not the same". */
bool same_mount(int dirfd, const char *name);
bool same_mount_fd(int a, int b);

/* The same against a mount looked at once (mount_of: 0 or -errno), for
 * checks that repeat, such as every new node against the store's. */
int mount_of(int fd, struct statx *place);
bool on_mount(int dirfd, const char *name, const struct statx *place);

/* Open the file an O_PATH descriptor stands for, with flags (O_CLOEXEC
 * added): the same file, whatever its name leads to now. Returns the fd
 * or -errno. */
int reopen_fd(int pfd, int flags);

/* Open name in dirfd with flags (O_RDONLY or O_WRONLY, no O_CREAT) only if
 * it is a regular file, on the same mount as dirfd, with at most
 * max_links names (0: any): looked at through an O_PATH descriptor first
 * and then opened through that same descriptor, so that nothing else (a
 * device node, a fifo, a symlink's target) is ever opened, not even one
 * swapped in meanwhile. *st gets what was looked at. Returns the fd,
 * -EINVAL when it is not such a file, or -errno. */
int open_regular_at(int dirfd, const char *name, int flags, nlink_t max_links, struct stat *st);

#endif
