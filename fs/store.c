/* store.c - recognising, initialising and locking a STORE. Everything that
 * could destroy data checks first that the directory is ours. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "layout.h"
#include "util.h"

#define MARKER_MAX 1024

struct marker {
	int version;
	bool ephemeral;
	int cipher;
	uint8_t check[KEY_CHECK_BYTES];
};

static int marker_parse(const char *text, struct marker *m)
{
	char mode[32] = "", cipher[32] = "", check[2 * KEY_CHECK_BYTES + 1] = "";
	size_t len = 0;

	if (sscanf(text,
		   "ekycfs-store\nversion=%d\nkey_mode=%31[a-z]\ncipher=%31[a-z0-9]\n"
		   "key_check=%64[0-9a-f]\n",
		   &m->version, mode, cipher, check) != 4)
		return -EINVAL;
	m->ephemeral = strcmp(mode, "ephemeral") == 0;
	if (!m->ephemeral && strcmp(mode, "keyfile") != 0)
		return -EINVAL;
	m->cipher = crypto_cipher_from_name(cipher);
	if (m->cipher < 0)
		return -EINVAL;
	if (sodium_hex2bin(m->check, KEY_CHECK_BYTES, check, strlen(check), NULL, &len, NULL) ||
	    len != KEY_CHECK_BYTES)
		return -EINVAL;
	return 0;
}

static int marker_read(int dirfd, struct marker *m)
{
	char text[MARKER_MAX];
	ssize_t n;
	int fd = openat(dirfd, STORE_MARKER, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	text[n] = '\0';
	return marker_parse(text, m);
}

static int marker_write(int dirfd, const struct marker *m)
{
	char text[MARKER_MAX], hex[2 * KEY_CHECK_BYTES + 1];
	int fd, n, rc = 0;

	sodium_bin2hex(hex, sizeof(hex), m->check, KEY_CHECK_BYTES);
	n = snprintf(text, sizeof(text),
		     "ekycfs-store\nversion=%d\nkey_mode=%s\ncipher=%s\nkey_check=%s\n", m->version,
		     m->ephemeral ? "ephemeral" : "keyfile", crypto_cipher_name(m->cipher), hex);
	/* A fresh file: whatever stood at that name (a link to something
	 * else) loses the name, never its data. */
	if (unlinkat(dirfd, STORE_MARKER ".new", 0) < 0 && errno != ENOENT)
		return -errno;
	fd = openat(dirfd, STORE_MARKER ".new",
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, text, (size_t)n) != n || fsync(fd) < 0)
		rc = -EIO;
	close(fd);
	if (rc == 0 && renameat(dirfd, STORE_MARKER ".new", dirfd, STORE_MARKER) < 0)
		rc = -errno;
	if (rc == 0 && fsync(dirfd) < 0) /* the marker's name must be durable too */
		rc = -errno;
	if (rc < 0)
		unlinkat(dirfd, STORE_MARKER ".new", 0);
	return rc;
}

/* Read and verify the stamp of name in dirfd; zone, when not NULL, names
 * the zone whose folder it is (*unbound as for stamp_open_zone). */
static int stat_stamp(const struct keys *k, int dirfd, const char *name, const char *zone,
		      struct stamp *st, struct stat *sb, bool *unbound)
{
	char path[64];
	uint8_t raw[STAMP_BYTES + 1];
	ssize_t n;
	int fd, rc;

	/* One open, so that the inode and the xattr come from the same entry
	 * even when the name is renamed over meanwhile. */
	fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, sb) < 0) {
		rc = -errno;
		goto out_close;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = getxattr(path, STAMP_XATTR, raw, sizeof(raw));
	if (n < 0) /* missing, oversized, unreadable: a bad stamp (fail closed) */
		rc = errno == ENOMEM ? -ENOMEM : -EBADMSG;
	else if (zone)
		rc = stamp_open_zone(k, raw, (size_t)n, sb->st_ino, zone, st, unbound);
	else
		rc = stamp_open(k, raw, (size_t)n, sb->st_ino, st);
out_close:
	close(fd);
	return rc;
}

int store_stat_stamp(const struct keys *k, int dirfd, const char *name, struct stamp *st,
		     struct stat *sb)
{
	return stat_stamp(k, dirfd, name, NULL, st, sb, NULL);
}

int store_read_zone_stamp(const struct keys *k, int dirfd, const char *zone, struct stamp *st,
			  bool *unbound)
{
	struct stat sb;

	return stat_stamp(k, dirfd, zone, zone, st, &sb, unbound);
}

int store_read_stamp(const struct keys *k, int dirfd, const char *name, struct stamp *st,
		     uint64_t *ino)
{
	struct stat sb;
	int rc = store_stat_stamp(k, dirfd, name, st, &sb);

	if (rc == 0 || rc == -EBADMSG)
		*ino = sb.st_ino;
	return rc;
}

int store_write_stamp(const struct keys *k, int fd, uint64_t ino, const struct stamp *st)
{
	uint8_t raw[STAMP_BYTES];

	stamp_seal(k, st, ino, raw);
	if (fsetxattr(fd, STAMP_XATTR, raw, sizeof(raw), 0) < 0)
		return -errno;
	return 0;
}

_Static_assert(STAMP_ZONE_NAME_MAX >= CONFIG_ZONE_NAME_MAX, "a zone stamp holds any zone name");

static int write_zone_stamp(const struct keys *k, int fd, const char *zone, const struct stamp *st)
{
	uint8_t raw[STAMP_BYTES];
	struct stat sb;

	if (fstat(fd, &sb) < 0)
		return -errno;
	stamp_seal_zone(k, st, sb.st_ino, zone, raw);
	/* Synced: the marker may say next that the zones are bound. */
	if (fsetxattr(fd, STAMP_XATTR, raw, sizeof(raw), 0) < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

/* Open zone i's directory, creating it and its stamp when missing; a zone
 * whose stamp fails (also one that is another zone's folder) is reset: its
 * contents cannot be named any more. */
static int open_zone(struct store *s, const struct keys *k, const char *name, size_t i,
		     enum store_mode mode)
{
	struct stat sb;
	bool unbound = false;
	int rc;

	if (mode == STORE_MOUNT && mkdirat(s->fd, name, 0755) < 0 && errno != EEXIST)
		return -errno;
	s->zone_fd[i] = openat(s->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s->zone_fd[i] < 0)
		return errno == ENOENT && mode == STORE_SWEEP ? 0 : -errno;
	if (!on_mount(s->zone_fd[i], "", &s->place))
		return -EXDEV; /* mounted over since check_layout */
	rc = stat_stamp(k, s->fd, name, name, &s->zone_stamp[i], &sb, &unbound);
	/* An unbound stamp is taken only in a store made before zone stamps
	 * named their zone (any folder's stamp is unbound: in a bound store
	 * it is a folder moved into the zone's place). */
	if (rc == 0 && unbound && s->zones_bound)
		rc = -EBADMSG;
	if (rc == 0 && s->zone_stamp[i].kind == STAMP_DIR && !s->destroy_all) {
		/* Bound to its zone at the first mount by this version. */
		if (unbound && mode == STORE_MOUNT)
			return write_zone_stamp(k, s->zone_fd[i], name, &s->zone_stamp[i]);
		return 0;
	}
	if (rc < 0 && rc != -EBADMSG)
		return rc;
	s->zone_reset[i] = true;
	if (mode == STORE_SWEEP)
		return 0;
	s->zone_stamp[i].kind = STAMP_DIR;
	crypto_random(s->zone_stamp[i].id, FILE_ID_BYTES);
	s->zone_stamp[i].birth = s->zone_stamp[i].mtime = clock_realtime(NULL);
	return write_zone_stamp(k, s->zone_fd[i], name, &s->zone_stamp[i]);
}

/* The folders in the store's top level other than the trash and the
 * configured zones that carry a valid unbound zone stamp (zones of an
 * older store that this config leaves out): bound to their names too,
 * or they would be reset once the store says its zones are bound. */
static int bind_other_zones(struct store *s, const struct keys *k, const struct config *cfg,
			    char *err, size_t errlen, const char *path)
{
	DIR *dp = dir_listing(s->fd, ".");
	struct dirent *d;
	int rc = 0;

	if (!dp) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot list the store: %s", path, strerror(-rc));
		return rc;
	}
	while (rc == 0 && (d = readdir(dp))) {
		struct stamp st;
		struct stat sb;
		bool unbound = false, configured = false;
		int fd;

		for (size_t i = 0; i < cfg->nzones; i++)
			configured |= strcmp(d->d_name, cfg->zones[i].name) == 0;
		if (configured || d->d_name[0] == '.' || strlen(d->d_name) > CONFIG_ZONE_NAME_MAX ||
		    stat_stamp(k, s->fd, d->d_name, d->d_name, &st, &sb, &unbound) < 0 ||
		    !unbound || st.kind != STAMP_DIR || !S_ISDIR(sb.st_mode) ||
		    !on_mount(s->fd, d->d_name, &s->place))
			continue;
		fd = openat(s->fd, d->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		rc = fd < 0 ? -errno : write_zone_stamp(k, fd, d->d_name, &st);
		if (fd >= 0)
			close(fd);
		if (rc < 0)
			snprintf(err, errlen, "%s/%s: cannot bind this zone's stamp: %s", path,
				 d->d_name, strerror(-rc));
	}
	closedir(dp);
	return rc;
}

static void store_init_fds(struct store *s)
{
	memset(s, 0, sizeof(*s));
	s->fd = s->trash_fd = -1;
	for (size_t i = 0; i < CONFIG_MAX_ZONES; i++)
		s->zone_fd[i] = -1;
}

/* Decide from the marker (or its absence) what this open means. */
static int check_marker(struct store *s, const struct keys *k, bool ephemeral, enum store_mode mode,
			bool upgrade, const char *path, char *err, size_t errlen)
{
	struct marker m = {0};
	int rc = marker_read(s->fd, &m);

	if (rc == -ENOENT) {
		rc = dir_is_empty(s->fd);
		if (rc < 0 || rc == 0 || mode == STORE_SWEEP) {
			snprintf(err, errlen, "%s: not an ekycfs store (no %s marker)%s", path,
				 STORE_MARKER,
				 rc == 0 ? " and not empty; refusing to touch it" : "");
			return -EINVAL;
		}
		s->created = true;
		s->ephemeral = ephemeral;
		s->cipher = crypto_best_cipher();
		s->zones_bound = true;
		return 0;
	}
	if (rc < 0 || (m.version != STORE_MARKER_VERSION && m.version != STORE_MARKER_UNBOUND)) {
		snprintf(err, errlen, "%s: unreadable marker or unsupported format version", path);
		return -EINVAL;
	}
	if (!crypto_cipher_usable(m.cipher)) {
		snprintf(err, errlen, "%s: store cipher %s is not available on this CPU", path,
			 crypto_cipher_name(m.cipher));
		return -ENOTSUP;
	}
	s->cipher = m.cipher;
	s->ephemeral = m.ephemeral;
	if (m.ephemeral && !ephemeral) {
		snprintf(err, errlen,
			 "%s: store was made with an ephemeral key; it cannot take a key file "
			 "(use a new, empty store)",
			 path);
		return -EINVAL;
	}
	if (!m.ephemeral && ephemeral) {
		snprintf(err, errlen, "%s: store needs its key file (-o key_file=FILE)", path);
		return -EINVAL;
	}
	if (m.ephemeral) {
		s->destroy_all = true; /* the last mount's key is gone */
		s->zones_bound = true;
		return 0;
	}
	uint8_t check[KEY_CHECK_BYTES];
	bool match;

	s->zones_bound = m.version == STORE_MARKER_VERSION;
	keys_check_value_bound(k, check);
	match = keys_check_equal(check, m.check);
	/* Version 1 with either value: a few builds wrote the bound value
	 * before the marker said version 2; their stores are unbound too. */
	if (!s->zones_bound && !match) {
		keys_check_value(k, check);
		match = keys_check_equal(check, m.check);
	}
	if (!match) {
		snprintf(err, errlen, "%s: wrong key (the key file does not match this store)",
			 path);
		return -EKEYREJECTED;
	}
	/* Binding an older store's zones is asked for, not done on the quiet:
	 * a marker of an older store put in place of this one's must not
	 * make its zones take any folder's stamp unnoticed. */
	if (!s->zones_bound && mode == STORE_MOUNT && !upgrade) {
		snprintf(err, errlen,
			 "%s: store made by an older ekycfs: its zones are not yet bound to their "
			 "names; mount it once with -o upgrade (or use a new, empty store)",
			 path);
		return -EINVAL;
	}
	return 0;
}

static int open_dir(const char *path, enum store_mode mode, char *err, size_t errlen)
{
	struct stat sb;
	int fd;

	if (mode == STORE_MOUNT && mkdir(path, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: cannot create store: %s", path, strerror(errno));
		return -errno;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		if (e == ENOTDIR || (stat(path, &sb) == 0 && !S_ISDIR(sb.st_mode)))
			snprintf(err, errlen, "%s: not a directory", path);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errlen, "%s: store is in use by another ekycfs", path);
		close(fd);
		return -EBUSY;
	}
	return fd;
}

/* The trash and the zones, where they exist, are folders of the store
 * itself (not symlinks, nor another file system or bind mount over them:
 * what is there would be destroyed as the store's). The trash must exist
 * unless a mount is about to make it. Checked before anything is written. */
static int check_layout(struct store *s, const struct config *cfg, enum store_mode mode,
			const char *path, char *err, size_t errlen)
{
	for (size_t i = 0; i <= cfg->nzones; i++) {
		const char *name = i < cfg->nzones ? cfg->zones[i].name : STORE_TRASH;
		bool trash = i == cfg->nzones;
		struct stat sb;

		if (fstatat(s->fd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT && (mode == STORE_MOUNT || !trash))
				continue;
			snprintf(err, errlen, "%s/%s: %s", path, name, strerror(errno));
			return -errno;
		}
		if (!S_ISDIR(sb.st_mode)) {
			snprintf(err, errlen, "%s/%s: not a folder of the store", path, name);
			return -ENOTDIR;
		}
		if (!on_mount(s->fd, name, &s->place)) {
			snprintf(err, errlen,
				 "%s/%s: another file system or bind mount is there; refusing "
				 "to touch it",
				 path, name);
			return -EXDEV;
		}
	}
	return 0;
}

int store_open(struct store *s, const char *path, const struct config *cfg, const struct keys *k,
	       bool ephemeral, enum store_mode mode, char *err, size_t errlen)
{
	struct marker m = {0};
	int rc;

	store_init_fds(s);
	rc = open_dir(path, mode, err, errlen);
	if (rc < 0)
		return rc;
	s->fd = rc;
	rc = mount_of(s->fd, &s->place);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		goto out_close;
	}
	rc = check_marker(s, k, ephemeral, mode, cfg->upgrade, path, err, errlen);
	if (rc < 0)
		goto out_close;
	rc = check_layout(s, cfg, mode, path, err, errlen);
	if (rc < 0)
		goto out_close;
	if (mode == STORE_MOUNT) {
		m.version = STORE_MARKER_VERSION;
		m.ephemeral = s->ephemeral;
		m.cipher = s->cipher;
		keys_check_value_bound(k, m.check);
		if ((s->created || s->ephemeral) && (rc = marker_write(s->fd, &m)) < 0) {
			snprintf(err, errlen, "%s: cannot write marker: %s", path, strerror(-rc));
			goto out_close;
		}
		if (mkdirat(s->fd, STORE_TRASH, 0700) < 0 && errno != EEXIST) {
			rc = -errno;
			snprintf(err, errlen, "%s: cannot create trash: %s", path, strerror(errno));
			goto out_close;
		}
	}
	s->trash_fd = openat(s->fd, STORE_TRASH, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s->trash_fd < 0 || !on_mount(s->trash_fd, "", &s->place)) {
		rc = s->trash_fd < 0 ? -errno : -EXDEV;
		snprintf(err, errlen, "%s/%s: %s", path, STORE_TRASH, strerror(-rc));
		goto out_close;
	}
	s->nzones = cfg->nzones;
	for (size_t i = 0; i < cfg->nzones; i++) {
		rc = open_zone(s, k, cfg->zones[i].name, i, mode);
		if (rc < 0) {
			snprintf(err, errlen, "%s: zone %s: %s", path, cfg->zones[i].name,
				 strerror(-rc));
			goto out_close;
		}
	}
	/* A store made before (-o upgrade): its zone stamps are bound now, also
	 * those of zones this config does not name, and so its marker says. */
	if (mode == STORE_MOUNT && !s->zones_bound) {
		rc = bind_other_zones(s, k, cfg, err, errlen, path);
		if (rc < 0)
			goto out_close;
		rc = marker_write(s->fd, &m);
		if (rc < 0) {
			snprintf(err, errlen, "%s: cannot write marker: %s", path, strerror(-rc));
			goto out_close;
		}
		s->zones_bound = true;
	}
	return 0;
out_close:
	store_close(s);
	return rc;
}

void store_close(struct store *s)
{
	for (size_t i = 0; i < CONFIG_MAX_ZONES; i++) {
		if (s->zone_fd[i] >= 0)
			close(s->zone_fd[i]);
		s->zone_fd[i] = -1;
	}
	if (s->trash_fd >= 0)
		close(s->trash_fd);
	if (s->fd >= 0)
		close(s->fd); /* releases the flock */
	s->trash_fd = s->fd = -1;
}
