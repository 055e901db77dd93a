/* stamp.c - sealing and verifying trusted stamps, and the expiry decision.
 * Stamps are bound to the backing inode so they cannot be moved elsewhere. */
#include "stamp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define STAMP_LABEL "ekycfs stamp v1"
#define STAMP_BODY (STAMP_BYTES - STAMP_MAC_BYTES)

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* MAC input: label || ino || body, and || zone name when the body's
 * flags say the stamp is a zone folder's, bound to its name. */
static void stamp_mac(const struct keys *k, const uint8_t body[STAMP_BODY], uint64_t ino,
		      const char *zone, uint8_t mac[STAMP_MAC_BYTES])
{
	uint8_t msg[sizeof(STAMP_LABEL) - 1 + 8 + STAMP_BODY + STAMP_ZONE_NAME_MAX];
	size_t len = sizeof(STAMP_LABEL) - 1 + 8 + STAMP_BODY, zlen;

	memcpy(msg, STAMP_LABEL, sizeof(STAMP_LABEL) - 1);
	put64(msg + sizeof(STAMP_LABEL) - 1, ino);
	memcpy(msg + sizeof(STAMP_LABEL) - 1 + 8, body, STAMP_BODY);
	if (body[2] & STAMP_FLAG_ZONE) {
		zlen = strnlen(zone, STAMP_ZONE_NAME_MAX);
		memcpy(msg + len, zone, zlen);
		len += zlen;
	}
	crypto_stamp_mac(k, msg, len, mac);
}

static void seal(const struct keys *k, const struct stamp *s, uint64_t ino, const char *zone,
		 uint8_t out[STAMP_BYTES])
{
	memset(out, 0, STAMP_BYTES);
	out[0] = STAMP_VERSION;
	out[1] = s->kind;
	out[2] = zone ? STAMP_FLAG_ZONE : 0;
	memcpy(out + 4, s->id, FILE_ID_BYTES);
	put64(out + 20, (uint64_t)s->birth);
	put64(out + 28, (uint64_t)s->mtime);
	stamp_mac(k, out, ino, zone, out + STAMP_BODY);
}

void stamp_seal(const struct keys *k, const struct stamp *s, uint64_t ino, uint8_t out[STAMP_BYTES])
{
	seal(k, s, ino, NULL, out);
}

void stamp_seal_zone(const struct keys *k, const struct stamp *s, uint64_t ino, const char *zone,
		     uint8_t out[STAMP_BYTES])
{
	seal(k, s, ino, zone, out);
}

static int open_as(const struct keys *k, const uint8_t *in, size_t len, uint64_t ino,
		   const char *zone, struct stamp *s)
{
	uint8_t mac[STAMP_MAC_BYTES];

	if (len != STAMP_BYTES || in[0] != STAMP_VERSION)
		return -EBADMSG;
	stamp_mac(k, in, ino, zone, mac);
	if (!crypto_mac_equal(mac, in + STAMP_BODY))
		return -EBADMSG;
	if (in[1] < STAMP_REG || in[1] > STAMP_DIR)
		return -EBADMSG;
	s->kind = in[1];
	memcpy(s->id, in + 4, FILE_ID_BYTES);
	s->birth = (int64_t)get64(in + 20);
	s->mtime = (int64_t)get64(in + 28);
	return 0;
}

int stamp_open_zone(const struct keys *k, const uint8_t *in, size_t len, uint64_t ino,
		    const char *zone, struct stamp *s, bool *unbound)
{
	int rc;

	/* Only a zone stamp names a zone, and only its own. */
	if (len == STAMP_BYTES && !(in[2] & STAMP_FLAG_ZONE)) {
		rc = stamp_open(k, in, len, ino, s);
		*unbound = rc == 0;
		return rc;
	}
	*unbound = false;
	return open_as(k, in, len, ino, zone, s);
}

int stamp_open(const struct keys *k, const uint8_t *in, size_t len, uint64_t ino, struct stamp *s)
{
	/* An entry's stamp names no zone: a zone folder's is not one. */
	if (len == STAMP_BYTES && (in[2] & STAMP_FLAG_ZONE))
		return -EBADMSG;
	return open_as(k, in, len, ino, "", s);
}

int64_t expiry_deadline(int64_t mtime, int64_t ttl)
{
	return mtime + ttl * NSEC_PER_SEC;
}

bool expiry_passed(bool stamp_valid, int64_t mtime, int64_t ttl, int64_t now)
{
	if (!stamp_valid)
		return true;
	return now >= expiry_deadline(mtime, ttl);
}

int64_t clock_realtime(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

void format_rfc3339(int64_t ns, char *out, size_t len)
{
	time_t sec = (time_t)(ns / NSEC_PER_SEC);
	struct tm tm;

	gmtime_r(&sec, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void format_rfc3339_ms(int64_t ns, char *out, size_t len)
{
	time_t sec = (time_t)(ns / NSEC_PER_SEC);
	char base[24];
	struct tm tm;

	gmtime_r(&sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, len, "%s.%03dZ", base, (int)(ns % NSEC_PER_SEC / 1000000));
}
