/* cryptospeed.c - how fast this machine's libsodium seals and opens the
 * 4 KiB blocks ekycfs stores, next to a plain memory copy, single-threaded.
 * Built and run by bench.sh; alone:
 *   gcc -O2 -o cryptospeed scripts/bench/cryptospeed.c -lsodium && ./cryptospeed
 * Prints one "name MB/s" line per measurement (MB = 10^6 bytes). */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define BLOCK 4096
#define AD_LEN 25 /* file id, type and block index, as ekycfs binds them */
#define ROUNDS 60000

static unsigned char plain[BLOCK], sealed[BLOCK], mac[16], key[32], nonce[24], ad[AD_LEN];

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void report(const char *name, double t0, int failures)
{
	double mbs = (double)ROUNDS * BLOCK / (now() - t0) / 1e6;

	printf("%-28s %8.0f MB/s%s\n", name, mbs, failures ? "  (FAILED to open)" : "");
}

int main(void)
{
	crypto_aead_aes256gcm_state st;
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
	report("memcpy", t0, 0);

	if (crypto_aead_aes256gcm_is_available()) {
		crypto_aead_aes256gcm_beforenm(&st, key);
		t0 = now();
		for (int i = 0; i < ROUNDS; i++)
			crypto_aead_aes256gcm_encrypt_detached_afternm(sealed, mac, &len, plain, BLOCK,
								       ad, AD_LEN, NULL, nonce, &st);
		report("aes256gcm seal", t0, 0);
		t0 = now();
		for (int i = 0; i < ROUNDS; i++)
			bad += crypto_aead_aes256gcm_decrypt_detached_afternm(
				       plain, NULL, sealed, BLOCK, mac, ad, AD_LEN, nonce, &st) != 0;
		report("aes256gcm open", t0, bad);
	} else {
		printf("aes256gcm: not available on this CPU\n");
	}

	t0 = now();
	for (int i = 0; i < ROUNDS; i++)
		crypto_aead_xchacha20poly1305_ietf_encrypt_detached(sealed, mac, &len, plain, BLOCK, ad,
								    AD_LEN, NULL, nonce, key);
	report("xchacha20poly1305 seal", t0, 0);
	bad = 0;
	t0 = now();
	for (int i = 0; i < ROUNDS; i++)
		bad += crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
			       plain, NULL, sealed, BLOCK, mac, ad, AD_LEN, nonce, key) != 0;
	report("xchacha20poly1305 open", t0, bad);
	return 0;
}
