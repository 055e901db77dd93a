/* nocipher.c - a measuring device for scripts/bench.sh's ekycfs_nocipher
 * target, never part of ekycfs: preloaded (LD_PRELOAD) into an ekycfs
 * daemon, it replaces libsodium's AES-256-GCM block seal and open with a
 * plain copy and an all-zero tag. The daemon then does everything it
 * always does (requests, names, stamps, headers, shredding) except the
 * block cipher, which shows what the cipher costs a workload and what
 * ekycfs could reach if it cost nothing.
 *
 * The store of such a daemon holds its files' content in the clear: the
 * benchmark writes random bytes into it and deletes it at the end. Only
 * AES-256-GCM stores are affected (bench.sh checks the cipher).
 *
 * Build: gcc -O2 -Wall -shared -fPIC -o nocipher.so nocipher.c */
#include <sodium.h>
#include <string.h>

int crypto_aead_aes256gcm_encrypt_detached_afternm(
	unsigned char *c, unsigned char *mac, unsigned long long *maclen_p, const unsigned char *m,
	unsigned long long mlen, const unsigned char *ad, unsigned long long adlen,
	const unsigned char *nsec, const unsigned char *npub,
	const crypto_aead_aes256gcm_state *ctx)
{
	(void)ad, (void)adlen, (void)nsec, (void)npub, (void)ctx;
	memmove(c, m, (size_t)mlen);
	memset(mac, 0, crypto_aead_aes256gcm_ABYTES);
	if (maclen_p)
		*maclen_p = crypto_aead_aes256gcm_ABYTES;
	return 0;
}

int crypto_aead_aes256gcm_decrypt_detached_afternm(
	unsigned char *m, unsigned char *nsec, const unsigned char *c, unsigned long long clen,
	const unsigned char *mac, const unsigned char *ad, unsigned long long adlen,
	const unsigned char *npub, const crypto_aead_aes256gcm_state *ctx)
{
	(void)nsec, (void)mac, (void)ad, (void)adlen, (void)npub, (void)ctx;
	if (m)
		memmove(m, c, (size_t)clen);
	return 0;
}
