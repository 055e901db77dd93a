/* fuse_io.c - the session's own reads and writes of /dev/fuse.
 *
 * libfuse 3.14 cannot ask the kernel for FUSE_HANDLE_KILLPRIV_V2. Without
 * it the kernel asks for the security.capability xattr before every write
 * (one extra round trip per write); with it, the kernel trusts the file
 * system to drop set-user-ID and set-group-ID bits itself and stops asking.
 * So the INIT reply gets that flag when the kernel offers it, and the
 * requests that carry "drop the bits" (write or truncate by a caller
 * without CAP_FSETID, a chown) are noted for the thread that serves them:
 * fuse_io_kill_suidgid(). An open with O_TRUNC carries it only with atomic
 * O_TRUNC, which ekycfs turns off (fuse_ops.c); its truncation comes as a
 * SETATTR. A SETATTR that sets nothing is what chown(f, -1, -1) sends
 * (the kernel keeps the "drop" to itself): ext4 drops the bits then, also
 * for root, so it is noted the same. */
#include "fuse_io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/fuse.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "crypto.h"

/* Kernel 6.6+: shared mmap of a file opened with FOPEN_DIRECT_IO (the
 * header installed with Debian 12 predates it). A flags2 bit. */
#ifndef FUSE_DIRECT_IO_ALLOW_MMAP
#define FUSE_DIRECT_IO_ALLOW_MMAP (1ULL << 36)
#endif
#define ALLOW_MMAP_BIT2 ((uint32_t)(FUSE_DIRECT_IO_ALLOW_MMAP >> 32))

static _Atomic uint64_t init_unique;   /* the INIT request, until answered */
static _Atomic uint32_t init_offered;  /* its flags */
static _Atomic uint32_t init_offered2; /* and flags2 (with FUSE_INIT_EXT) */
static _Atomic bool direct_mmap;       /* FUSE_DIRECT_IO_ALLOW_MMAP granted */
static __thread bool kill_suidgid;     /* the request this thread serves */
static __thread void *last_buf;	       /* the request this thread served last */
static __thread size_t last_len;       /* its length, 0 when nothing to wipe */

bool fuse_io_direct_mmap(void)
{
	return atomic_load(&direct_mmap);
}

bool fuse_io_kill_suidgid(void)
{
	return kill_suidgid;
}

/* What the request in buf (n bytes) asks of suid/sgid bits or the INIT. */
static void inspect(const uint8_t *buf, size_t n)
{
	const struct fuse_in_header *h = (const void *)buf;
	const uint8_t *arg = buf + sizeof(*h);
	size_t alen = n - sizeof(*h);

	switch (h->opcode) {
	case FUSE_INIT:
		if (alen >= offsetof(struct fuse_init_in, flags) + sizeof(uint32_t)) {
			const struct fuse_init_in *in = (const void *)arg;

			atomic_store(&init_offered, in->flags);
			if ((in->flags & FUSE_INIT_EXT) &&
			    alen >= offsetof(struct fuse_init_in, flags2) + sizeof(uint32_t))
				atomic_store(&init_offered2, in->flags2);
			atomic_store(&init_unique, h->unique);
		}
		break;
	case FUSE_WRITE:
		if (alen >= sizeof(struct fuse_write_in))
			kill_suidgid = ((const struct fuse_write_in *)arg)->write_flags &
				       FUSE_WRITE_KILL_SUIDGID;
		break;
	case FUSE_SETATTR:
		if (alen >= sizeof(struct fuse_setattr_in)) {
			uint32_t valid = ((const struct fuse_setattr_in *)arg)->valid;

			kill_suidgid = (valid & FATTR_KILL_SUIDGID) ||
				       !(valid & ~(FATTR_FH | FATTR_LOCKOWNER | FATTR_CTIME));
		}
		break;
	default:
		break;
	}
}

/* A worker calls this for its next request only when its last one is
 * done (libfuse's loops serve one request at a time per thread, and main.c
 * keeps workers alive, so no buffer is freed with a request in it). Before
 * waiting, wipe what the last request brought into the buffer (written
 * data, names, xattr values; also when libfuse answered it itself, as it
 * does under allow_root) and what serving it left on the stack. */
static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n;

	(void)userdata;
	if (buf == last_buf && last_len > 0)
		crypto_wipe(buf, last_len);
	crypto_wipe_stack();
	n = read(fd, buf, len);
	last_buf = buf;
	last_len = n > 0 ? (size_t)n : 0;
	kill_suidgid = false;
	if (n >= (ssize_t)sizeof(struct fuse_in_header))
		inspect(buf, (size_t)n);
	return n;
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	const struct fuse_out_header *h = iov[0].iov_base;
	uint64_t want = atomic_load(&init_unique);
	struct iovec fixed[2];
	struct fuse_init_out out;

	(void)userdata;
	/* The INIT reply: out header, then struct fuse_init_out (maybe cut
	 * short for old kernels); anything else passes untouched. */
	if (want == 0 || count != 2 || iov[0].iov_len < sizeof(*h) || h->unique != want ||
	    h->error != 0 || iov[1].iov_len < offsetof(struct fuse_init_out, flags) + 4 ||
	    iov[1].iov_len > sizeof(out))
		return writev(fd, iov, count);
	atomic_store(&init_unique, 0);
	memcpy(&out, iov[1].iov_base, iov[1].iov_len);
	if (atomic_load(&init_offered) & FUSE_HANDLE_KILLPRIV_V2)
		out.flags |= FUSE_HANDLE_KILLPRIV_V2;
	/* flags2 is read only with FUSE_INIT_EXT, and must fit the reply. */
	if ((atomic_load(&init_offered2) & ALLOW_MMAP_BIT2) &&
	    iov[1].iov_len >= offsetof(struct fuse_init_out, flags2) + sizeof(uint32_t)) {
		out.flags |= FUSE_INIT_EXT;
		out.flags2 |= ALLOW_MMAP_BIT2;
		/* The kernel does not acknowledge; 6.6+ takes it from any
		 * reply with FUSE_INIT_EXT (checked: shared mmap of a direct
		 * handle works, tests/mount fsx -m). */
		atomic_store(&direct_mmap, true);
	}
	fixed[0] = iov[0];
	fixed[1] = (struct iovec){&out, iov[1].iov_len};
	return writev(fd, fixed, 2);
}

/* Undo mountinfo's octal escapes (\040 for a space, ...) in place. */
static void unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

void fuse_io_readahead(const char *mountpoint)
{
	char line[2 * PATH_MAX], dev[32] = "", path[96];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int fd;

	if (!f)
		return;
	/* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS ... - FSTYPE SOURCE ...":
	 * the last FUSE line for this mount point is the mount just made. */
	while (fgets(line, sizeof(line), f)) {
		char majmin[32], mnt[PATH_MAX], *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%*s %*s %31s %*s %4095s", majmin, mnt) != 2 ||
		    strncmp(sep + 3, "fuse", 4) != 0)
			continue;
		unescape(mnt);
		if (strcmp(mnt, mountpoint) == 0)
			snprintf(dev, sizeof(dev), "%s", majmin);
	}
	fclose(f);
	if (!dev[0])
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		dprintf(fd, "%d\n", FUSE_IO_READAHEAD_KB);
		close(fd);
	}
}

int fuse_io_attach(struct fuse_session *se)
{
	static const struct fuse_custom_io io = {.read = io_read, .writev = io_writev};

	return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}
