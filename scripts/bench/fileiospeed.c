/* fileiospeed.c - time of ekycfs's own fileio_write and fileio_read of one
 * request on a file in /dev/shm (no FUSE, no disk); reads done alone and
 * halved over the calling thread's helper ("spread"), to judge that lever
 * apart from the machine's disk. From the project root, after make:
 *   gcc -O2 -Iinclude -o build/fileiospeed scripts/bench/fileiospeed.c \
 *       build/libekycfs.a -lsodium -lpthread && build/fileiospeed 100
 * The argument is the request in KiB (default 100, at most 1024). Prints
 * µs per write (a new file: truncated before each), per overwrite and per
 * read, three rounds for each mode of the reads. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "fileio.h"
#include "layout.h"

#define CALLS 2000

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int round_of(int fd, const struct filekey *fk, uint8_t *buf, size_t len, bool spread)
{
	double t0, t1, t2, t3;
	off_t size = 0;

	t0 = now();
	for (int i = 0; i < CALLS; i++) {
		size = 0;
		if (ftruncate(fd, HEADER_SIZE) < 0 ||
		    fileio_write(fd, fk, &size, buf, len, 0) != (ssize_t)len)
			return -1;
	}
	t1 = now();
	for (int i = 0; i < CALLS; i++)
		if (fileio_write(fd, fk, &size, buf, len, 0) != (ssize_t)len)
			return -1;
	t2 = now();
	for (int i = 0; i < CALLS; i++)
		if (fileio_read(fd, fk, size, buf, len, 0, spread) != (ssize_t)len)
			return -1;
	t3 = now();
	printf("%-12s write %6.1f  overwrite %6.1f  read %6.1f  (us per call)\n",
	       spread ? "reads halved" : "alone", (t1 - t0) / CALLS * 1e6, (t2 - t1) / CALLS * 1e6,
	       (t3 - t2) / CALLS * 1e6);
	return 0;
}

int main(int argc, char **argv)
{
	static const char path[] = "/dev/shm/ekycfs-fileiospeed";
	size_t kib = argc > 1 ? strtoul(argv[1], NULL, 10) : 100;
	uint8_t master[KEY_BYTES] = {1};
	struct file_header h = {.version = FORMAT_VERSION, .type = ENTRY_REG};
	struct filekey *fk;
	struct keys *keys;
	uint8_t *buf;
	int fd, rc = 0;

	if (kib == 0 || kib > FILEIO_MAX_IO / 1024 || crypto_setup() < 0)
		return 2;
	h.cipher = crypto_cipher_usable(CIPHER_AES256GCM) ? CIPHER_AES256GCM
							  : CIPHER_XCHACHA20POLY1305;
	keys = keys_from_master(master);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	buf = malloc(kib * 1024);
	if (!keys || fd < 0 || !buf || fileio_init(fd, &h) < 0)
		return 1;
	fk = filekey_new(keys, h.file_id, ENTRY_REG, h.cipher);
	memset(buf, 7, kib * 1024);
	for (int spread = 0; spread < 2 && rc == 0; spread++)
		for (int r = 0; r < 3 && rc == 0; r++)
			rc = round_of(fd, fk, buf, kib * 1024, spread);
	filekey_free(fk);
	keys_free(keys);
	close(fd);
	unlink(path);
	free(buf);
	return rc == 0 ? 0 : 1;
}
