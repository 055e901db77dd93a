/* cryptospeed.c - how fast this machine's libsodium seals and opens the
 * 4 KiB blocks ekycfs stores, next to a plain memory copy, single-threaded;
 * then AES-256-GCM on two threads at once (the sum), which says whether the
 * CPUs ekycfs runs on can seal and open in parallel.
 * Built and run by bench.sh; alone:
 *   gcc -O2 -pthread -o cryptospeed scripts/bench/cryptospeed.c -lsodium && ./cryptospeed
 * Prints one "name MB/s" line per measurement (MB = 10^6 bytes). */
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define BLOCK 4096
#define AD_LEN 25 /* file id, type and block index, as ekycfs binds them */
#define ROUNDS 60000

static unsigned char plain[BLOCK], sealed[BLOCK], mac[16], key[32], nonce[24], ad[AD_LEN];
static crypto_aead_aes256gcm_state aes; /* key expanded once, used by every thread */

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* threads ran ROUNDS blocks each since t0. */
static void report(const char *name, int threads, double t0, int failures)
{
	double mbs = (double)threads * ROUNDS * BLOCK / (now() - t0) / 1e6;

	printf("%-28s %8.0f MB/s%s\n", name, mbs, failures ? "  (FAILED to open)" : "");
}

/* One thread's share of the two-thread run: ROUNDS seals (arg NULL) or
 * opens of its own block under the shared key. */
static void *aes_thread(void *open)
{
	unsigned char p[BLOCK], c[BLOCK], m[16];
	unsigned long long len;
	intptr_t bad = 0;

	memcpy(p, plain, BLOCK);
	memcpy(c, sealed, BLOCK);
	memcpy(m, mac, sizeof(m));
	for (int i = 0; i < ROUNDS; i++) {
		if (open)
			bad += crypto_aead_aes256gcm_decrypt_detached_afternm(
				       p, NULL, c, BLOCK, m, ad, AD_LEN, nonce, &aes) != 0;
		else
			crypto_aead_aes256gcm_encrypt_detached_afternm(c, m, &len, p, BLOCK, ad,
								       AD_LEN, NULL, nonce, &aes);
	}
	return (void *)bad;
}

/* Seal or open on two threads at once; reports their summed rate. */
static void two_threads(const char *name, void *open)
{
	pthread_t t[2];
	double t0 = now();
	int bad = 0;

	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, aes_thread, open);
	for (int i = 0; i < 2; i++) {
		void *r;

		pthread_join(t[i], &r);
		bad += (int)(intptr_t)r;
	}
	report(name, 2, t0, bad);
}

int main(void)
{
	unsigned long long len;
	int bad = 0;
	double t0;

	if (sodium_init() < 0)
		return 1;
	printf("libsodium %s, 4 KiB blocks\n", sodium_version_string());
	randombytes_buf(plain, sizeof(plain));
	randombytes_buf(key, sizeof(key));
	randombytes_buf(nonce, sizeof(nonce));

	t0 = now();
	for (int i = 0; i < ROUNDS; i++) {
		memcpy(sealed, plain, BLOCK);
		__asm__ volatile("" ::: "memory"); /* keep every copy */
	}
	report("memcpy", 1, t0, 0);

	if (crypto_aead_aes256gcm_is_available()) {
		crypto_aead_aes256gcm_beforenm(&aes, key);
		t0 = now();
		for (int i = 0; i < ROUNDS; i++)
			crypto_aead_aes256gcm_encrypt_detached_afternm(
				sealed, mac, &len, plain, BLOCK, ad, AD_LEN, NULL, nonce, &aes);
		report("aes256gcm seal", 1, t0, 0);
		t0 = now();
		for (int i = 0; i < ROUNDS; i++)
			bad += crypto_aead_aes256gcm_decrypt_detached_afternm(
				       plain, NULL, sealed, BLOCK, mac, ad, AD_LEN, nonce, &aes) !=
			       0;
		report("aes256gcm open", 1, t0, bad);
		two_threads("aes256gcm seal, 2 threads", NULL);
		two_threads("aes256gcm open, 2 threads", (void *)1);
	} else {
		printf("aes256gcm: not available on this CPU\n");
	}

	t0 = now();
	for (int i = 0; i < ROUNDS; i++)
		crypto_aead_xchacha20poly1305_ietf_encrypt_detached(sealed, mac, &len, plain, BLOCK,
								    ad, AD_LEN, NULL, nonce, key);
	report("xchacha20poly1305 seal", 1, t0, 0);
	bad = 0;
	t0 = now();
	for (int i = 0; i < ROUNDS; i++)
		bad += crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
			       plain, NULL, sealed, BLOCK, mac, ad, AD_LEN, nonce, key) != 0;
	report("xchacha20poly1305 open", 1, t0, bad);
	return 0;
}
