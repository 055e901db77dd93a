/* audit.c - JSON-lines audit log. Callers hand in zone names, opaque ids,
 * times and sizes only, so no line can carry personal data. */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "stamp.h"
#include "util.h"

struct audit {
	int fd;
	int syslog;
};

static const char *event_name(enum audit_event e)
{
	switch (e) {
	case AUDIT_VANISHED:
		return "vanished";
	case AUDIT_SHREDDED:
		return "shredded";
	case AUDIT_DELETED:
		return "deleted";
	case AUDIT_INVALID_STAMP:
		return "invalid_stamp";
	case AUDIT_DESTROYED:
		return "destroyed";
	case AUDIT_BAD_NAME:
		return "bad_name";
	}
	return "unknown";
}

/* What the log may be: in the store, a plain file with no other name
 * (a device node or a link planted there is not written to); one of the
 * user's choosing may also be a character device (/dev/null), never a
 * fifo: a reader that stalls would hold up every removal and shred. */
static int log_kind(const struct stat *st, bool own)
{
	if (S_ISLNK(st->st_mode))
		return -ELOOP;
	if (S_ISREG(st->st_mode))
		return own && st->st_nlink != 1 ? -EMLINK : 0;
	return !own && S_ISCHR(st->st_mode) ? 0 : -EINVAL;
}

int audit_check(const char *path, bool own)
{
	struct stat st;

	return lstat(path, &st) == 0 ? log_kind(&st, own) : 0;
}

struct audit *audit_open(const char *path, bool own, int *err)
{
	struct audit *a = calloc(1, sizeof(*a));
	struct stat st;
	int pfd, rc = 0;

	if (!a) {
		*err = -ENOMEM;
		return NULL;
	}
	a->fd = -1;
	/* Looked at through an O_PATH descriptor and opened through it, so
	 * that nothing else is ever opened (not even one swapped in); made
	 * anew (O_EXCL) when missing; writes never wait (O_NONBLOCK). */
	pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0 && errno == ENOENT) {
		a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			     0600);
		if (a->fd >= 0)
			goto out;
		if (errno != EEXIST) {
			rc = -errno;
			goto out;
		}
		/* Made meanwhile (another daemon sharing the log): look at it. */
		pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	}
	if (pfd >= 0) {
		rc = fstat(pfd, &st) < 0 ? -errno : log_kind(&st, own);
		if (rc == 0 && (a->fd = reopen_fd(pfd, O_WRONLY | O_APPEND | O_NONBLOCK)) < 0)
			rc = a->fd;
		close(pfd);
	} else {
		rc = -errno;
	}
out:
	if (rc < 0) {
		*err = rc;
		if (a->fd >= 0)
			close(a->fd);
		free(a);
		return NULL;
	}
	return a;
}

/* Is a syslog daemon (or journald) listening? Without one, glibc's
 * syslog() would try to connect again on every message. */
static bool syslog_listening(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX, .sun_path = _PATH_LOG};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

void audit_use_syslog(struct audit *a, int enable)
{
	a->syslog = enable && syslog_listening();
	if (a->syslog)
		openlog("ekycfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

static void put_time(char *buf, size_t len, int64_t ns)
{
	char t[32];

	if (ns == 0) {
		snprintf(buf, len, "null");
		return;
	}
	format_rfc3339_ms(ns, t, sizeof(t));
	snprintf(buf, len, "\"%s\"", t);
}

int audit_format(const struct audit_rec *rec, int64_t now, char *buf, size_t len)
{
	char at[40], born[40], deadline[40];
	int n;

	put_time(at, sizeof(at), now);
	put_time(born, sizeof(born), rec->born);
	put_time(deadline, sizeof(deadline), rec->deadline);
	/* zone names are [a-z0-9_-] and ids hex: nothing needs escaping. */
	n = snprintf(buf, len,
		     "{\"time\":%s,\"event\":\"%s\",\"zone\":\"%s\",\"id\":\"%s\","
		     "\"born\":%s,\"deadline\":%s,\"bytes\":%" PRId64 "}\n",
		     at, event_name(rec->event), rec->zone ? rec->zone : "", rec->id, born,
		     deadline, rec->bytes);
	return n < 0 || (size_t)n >= len ? -ERANGE : n;
}

void audit_log(struct audit *a, const struct audit_rec *rec, int64_t now)
{
	char line[512];
	int n;

	if (!a)
		return;
	n = audit_format(rec, now, line, sizeof(line));
	if (n <= 0)
		return;
	if (write(a->fd, line, (size_t)n) != n) {
		/* Nothing better to do than to note it; never block the fs. */
	}
	if (a->syslog)
		syslog(rec->event == AUDIT_INVALID_STAMP || rec->event == AUDIT_BAD_NAME
			       ? LOG_WARNING
			       : LOG_INFO,
		       "%.*s", n - 1, line);
}

void audit_close(struct audit *a)
{
	if (!a)
		return;
	close(a->fd);
	if (a->syslog)
		closelog();
	free(a);
}
