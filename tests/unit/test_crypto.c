/* Unit tests for lib/crypto.c, against the standards' known answers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "coffer/crypto.h"
#include "coffer/enc.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Decodes a hex vector into out (test helper; aborts the test on bad input). */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	assert_int_equal(cf_hex_decode(hex, strlen(hex), out, cap, &n), CF_OK);
	return n;
}

static void assert_hex_equal(const uint8_t *got, size_t n, const char *want_hex)
{
	char *txt = malloc(2 * n + 1);
	assert_non_null(txt);
	cf_hex_encode(got, n, txt);
	assert_string_equal(txt, want_hex);
	free(txt);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* --- hashes (FIPS 180-4 examples) --- */

static const char sha256_abc[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char sha384_abc[] = "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded163"
				 "1a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7";
static const char sha512_abc[] = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
				 "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

static void test_hash_abc(void **state)
{
	(void)state;
	uint8_t out[64];
	assert_int_equal(cf_hash_len(CF_SHA256), 32);
	assert_int_equal(cf_hash_len(CF_SHA384), 48);
	assert_int_equal(cf_hash_len(CF_SHA512), 64);
	assert_int_equal(cf_hash_len((cf_hash_alg)99), 0);
	assert_int_equal(cf_hash(CF_SHA256, "abc", 3, out), CF_OK);
	assert_hex_equal(out, 32, sha256_abc);
	assert_int_equal(cf_hash(CF_SHA384, "abc", 3, out), CF_OK);
	assert_hex_equal(out, 48, sha384_abc);
	assert_int_equal(cf_hash(CF_SHA512, "abc", 3, out), CF_OK);
	assert_hex_equal(out, 64, sha512_abc);
	assert_int_equal(cf_hash(CF_SHA256, "", 0, out), CF_OK);
	assert_hex_equal(out, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(cf_hash((cf_hash_alg)99, "abc", 3, out), CF_ERR_ARG);
	cf_hash_ctx *ctx = NULL;
	assert_int_equal(cf_hash_new((cf_hash_alg)99, &ctx), CF_ERR_ARG);
	assert_null(ctx);
}

static void test_hash_streaming_equals_oneshot(void **state)
{
	(void)state;
	static const cf_hash_alg algs[] = { CF_SHA256, CF_SHA384, CF_SHA512 };
	uint8_t msg[300];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 31 + 7);
	for (size_t a = 0; a < ARRAY_LEN(algs); a++) {
		uint8_t one[64], two[64];
		size_t hl = cf_hash_len(algs[a]);
		assert_int_equal(cf_hash(algs[a], msg, sizeof(msg), one), CF_OK);
		/* Every split point, and byte-by-byte. */
		for (size_t split = 0; split <= sizeof(msg); split += 7) {
			cf_hash_ctx *ctx = NULL;
			assert_int_equal(cf_hash_new(algs[a], &ctx), CF_OK);
			assert_int_equal(cf_hash_update(ctx, msg, split), CF_OK);
			assert_int_equal(cf_hash_update(ctx, NULL, 0), CF_OK);
			assert_int_equal(cf_hash_update(ctx, msg + split, sizeof(msg) - split), CF_OK);
			assert_int_equal(cf_hash_final(ctx, two), CF_OK);
			cf_hash_free(ctx);
			assert_memory_equal(one, two, hl);
		}
		cf_hash_ctx *ctx = NULL;
		assert_int_equal(cf_hash_new(algs[a], &ctx), CF_OK);
		for (size_t i = 0; i < sizeof(msg); i++)
			assert_int_equal(cf_hash_update(ctx, msg + i, 1), CF_OK);
		assert_int_equal(cf_hash_final(ctx, two), CF_OK);
		cf_hash_free(ctx);
		assert_memory_equal(one, two, hl);
	}
	cf_hash_free(NULL);

	/* FIPS 180 long message: one million 'a', fed in odd-sized pieces. */
	static uint8_t block[1000];
	memset(block, 'a', sizeof(block));
	cf_hash_ctx *ctx = NULL;
	uint8_t out[32];
	assert_int_equal(cf_hash_new(CF_SHA256, &ctx), CF_OK);
	size_t left = 1000000;
	for (size_t piece = 1; left > 0; piece = piece % 997 + 1) {
		size_t n = piece < left ? piece : left;
		assert_int_equal(cf_hash_update(ctx, block, n), CF_OK);
		left -= n;
	}
	assert_int_equal(cf_hash_final(ctx, out), CF_OK);
	cf_hash_free(ctx);
	assert_hex_equal(out, 32, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* --- HMAC (RFC 4231) --- */

static void test_hmac_rfc4231(void **state)
{
	(void)state;
	uint8_t key[20], out[64];
	memset(key, 0x0b, sizeof(key));
	/* Test case 1 */
	assert_int_equal(cf_hmac(CF_SHA256, key, 20, "Hi There", 8, out), CF_OK);
	assert_hex_equal(out, 32, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	assert_int_equal(cf_hmac(CF_SHA384, key, 20, "Hi There", 8, out), CF_OK);
	assert_hex_equal(out, 48, "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec6"
				  "82aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6");
	assert_int_equal(cf_hmac(CF_SHA512, key, 20, "Hi There", 8, out), CF_OK);
	assert_hex_equal(out, 64, "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
				  "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854");
	/* Test case 2 */
	assert_int_equal(cf_hmac(CF_SHA256, "Jefe", 4, "what do ya want for nothing?", 28, out),
			 CF_OK);
	assert_hex_equal(out, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* An empty key is a valid HMAC key (zero-padded block). */
	assert_int_equal(cf_hmac(CF_SHA256, "", 0, "abc", 3, out), CF_OK);
	assert_hex_equal(out, 32, "fd7adb152c05ef80dccf50a1fa4c05d5a3ec6da95575fc312ae7c5d091836351");
	assert_int_equal(cf_hmac(CF_SHA256, NULL, 0, "abc", 3, out), CF_OK);
	assert_hex_equal(out, 32, "fd7adb152c05ef80dccf50a1fa4c05d5a3ec6da95575fc312ae7c5d091836351");
	assert_int_equal(cf_hmac((cf_hash_alg)99, key, 20, "x", 1, out), CF_ERR_ARG);
}

/* --- HKDF (RFC 5869) --- */

static void test_hkdf_rfc5869(void **state)
{
	(void)state;
	uint8_t ikm[22], salt[13], info[10], okm[64];
	memset(ikm, 0x0b, sizeof(ikm));
	for (size_t i = 0; i < sizeof(salt); i++)
		salt[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(info); i++)
		info[i] = (uint8_t)(0xf0 + i);
	/* Test case 1 */
	assert_int_equal(cf_hkdf_sha256(ikm, 22, salt, 13, info, 10, okm, 42), CF_OK);
	assert_hex_equal(okm, 42, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
				  "34007208d5b887185865");
	/* Test case 3: empty salt and info, given as NULL and as non-NULL. */
	assert_int_equal(cf_hkdf_sha256(ikm, 22, NULL, 0, NULL, 0, okm, 42), CF_OK);
	assert_hex_equal(okm, 42, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
				  "9d201395faa4b61a96c8");
	memset(okm, 0, sizeof(okm));
	assert_int_equal(cf_hkdf_sha256(ikm, 22, "", 0, "", 0, okm, 42), CF_OK);
	assert_hex_equal(okm, 42, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
				  "9d201395faa4b61a96c8");
	/* An empty IKM is legal HKDF input. */
	assert_int_equal(cf_hkdf_sha256(NULL, 0, "salt", 4, "info", 4, okm, 32), CF_OK);
	assert_hex_equal(okm, 32, "7aac7b8120501c2c8e1ee50e6cde135361e99ceb9d8d406ac528b9e9175614c0");
	/* A shorter output is a prefix of the longer one. */
	assert_int_equal(cf_hkdf_sha256(ikm, 22, salt, 13, info, 10, okm, 7), CF_OK);
	assert_hex_equal(okm, 7, "3cb25f25faacd5");
	/* Output beyond 255 * HashLen is refused. */
	uint8_t *big = malloc(255 * 32 + 1);
	assert_non_null(big);
	assert_int_equal(cf_hkdf_sha256(ikm, 22, salt, 13, info, 10, big, 255 * 32), CF_OK);
	assert_int_not_equal(cf_hkdf_sha256(ikm, 22, salt, 13, info, 10, big, 255 * 32 + 1), CF_OK);
	free(big);
}

/* --- AEAD --- */

/* RFC 8439 section 2.8.2 */
static const char rfc8439_pt[] =
	"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
	"future, sunscreen would be it.";
static const char rfc8439_ct[] =
	"d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
	"3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
	"92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
	"3ff4def08e4b7a9de576d26586cec64b6116";
static const char rfc8439_tag[] = "1ae10b594f09e26a7e902ecbd0600691";

static void rfc8439_inputs(uint8_t key[32], uint8_t nonce[12], uint8_t aad[12])
{
	for (size_t i = 0; i < 32; i++)
		key[i] = (uint8_t)(0x80 + i);
	unhex("070000004041424344454647", nonce, 12);
	unhex("50515253c0c1c2c3c4c5c6c7", aad, 12);
}

static void test_chacha20poly1305_rfc8439(void **state)
{
	(void)state;
	uint8_t key[32], nonce[12], aad[12], ct[114], tag[16], pt[114];
	const size_t n = sizeof(rfc8439_pt) - 1;
	assert_int_equal(n, 114);
	rfc8439_inputs(key, nonce, aad);
	cf_aead *a = NULL;
	assert_int_equal(cf_aead_new(CF_CHACHA20_POLY1305, key, &a), CF_OK);
	assert_int_equal(cf_aead_seal(a, nonce, aad, 12, (const uint8_t *)rfc8439_pt, n, ct, tag),
			 CF_OK);
	assert_hex_equal(ct, n, rfc8439_ct);
	assert_hex_equal(tag, 16, rfc8439_tag);
	assert_int_equal(cf_aead_open(a, nonce, aad, 12, ct, n, tag, pt), CF_OK);
	assert_memory_equal(pt, rfc8439_pt, n);

	/* Any flipped bit (tag, ciphertext, AAD, nonce) fails and wipes the output. */
	for (int what = 0; what < 4; what++) {
		for (size_t pos = 0; pos < 16; pos += 5) {
			uint8_t t2[16], c2[114], a2[12], n2[12];
			memcpy(t2, tag, 16);
			memcpy(c2, ct, n);
			memcpy(a2, aad, 12);
			memcpy(n2, nonce, 12);
			switch (what) {
			case 0: t2[pos] ^= 1; break;
			case 1: c2[pos * 7] ^= 0x80; break;
			case 2: a2[pos % 12] ^= 4; break;
			default: n2[pos % 12] ^= 2; break;
			}
			memset(pt, 0xAA, sizeof(pt));
			assert_int_equal(cf_aead_open(a, n2, a2, 12, c2, n, t2, pt), CF_ERR_AUTH);
			assert_true(all_zero(pt, n));
		}
	}
	/* Missing AAD, truncated ciphertext. */
	memset(pt, 0xAA, sizeof(pt));
	assert_int_equal(cf_aead_open(a, nonce, NULL, 0, ct, n, tag, pt), CF_ERR_AUTH);
	assert_true(all_zero(pt, n));
	memset(pt, 0xAA, sizeof(pt));
	assert_int_equal(cf_aead_open(a, nonce, aad, 12, ct, n - 1, tag, pt), CF_ERR_AUTH);
	assert_true(all_zero(pt, n - 1));
	/* The context still works after failures. */
	assert_int_equal(cf_aead_open(a, nonce, aad, 12, ct, n, tag, pt), CF_OK);
	assert_memory_equal(pt, rfc8439_pt, n);
	cf_aead_free(a);
	cf_aead_free(NULL);
}

static void test_aead_in_place_and_empty(void **state)
{
	(void)state;
	static const cf_aead_alg algs[] = { CF_CHACHA20_POLY1305, CF_AES_256_GCM };
	for (size_t i = 0; i < ARRAY_LEN(algs); i++) {
		uint8_t key[32], nonce[12] = { 1 }, tag[16], buf[100], orig[100];
		memset(key, (int)(0x42 + i), sizeof(key));
		for (size_t j = 0; j < sizeof(buf); j++)
			orig[j] = buf[j] = (uint8_t)j;
		cf_aead *a = NULL;
		assert_int_equal(cf_aead_new(algs[i], key, &a), CF_OK);
		assert_int_equal(cf_aead_seal(a, nonce, "hdr", 3, buf, sizeof(buf), buf, tag), CF_OK);
		assert_memory_not_equal(buf, orig, sizeof(buf));
		assert_int_equal(cf_aead_open(a, nonce, "hdr", 3, buf, sizeof(buf), tag, buf), CF_OK);
		assert_memory_equal(buf, orig, sizeof(buf));

		/* Empty plaintext, no output buffer at all (age's empty final chunk). */
		uint8_t tag0[16];
		assert_int_equal(cf_aead_seal(a, nonce, NULL, 0, NULL, 0, NULL, tag0), CF_OK);
		assert_int_equal(cf_aead_open(a, nonce, NULL, 0, NULL, 0, tag0, NULL), CF_OK);
		tag0[15] ^= 1;
		assert_int_equal(cf_aead_open(a, nonce, NULL, 0, NULL, 0, tag0, NULL), CF_ERR_AUTH);
		/* A tag of an empty message does not authenticate a non-empty one, or other AAD. */
		tag0[15] ^= 1;
		assert_int_equal(cf_aead_open(a, nonce, "x", 1, NULL, 0, tag0, NULL), CF_ERR_AUTH);
		cf_aead_free(a);
	}
	uint8_t key[32] = { 0 };
	cf_aead *a = NULL;
	assert_int_equal(cf_aead_new((cf_aead_alg)7, key, &a), CF_ERR_ARG);
	assert_null(a);
}

static void test_aes256gcm(void **state)
{
	(void)state;
	/* GCM specification test case 16 (AES-256, 96-bit IV, AAD). */
	uint8_t key[32], nonce[12], aad[20], pt[60], ct[60], tag[16], back[60];
	unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", key, 32);
	unhex("cafebabefacedbaddecaf888", nonce, 12);
	unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad, 20);
	unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
	      pt, 60);
	cf_aead *a = NULL;
	assert_int_equal(cf_aead_new(CF_AES_256_GCM, key, &a), CF_OK);
	assert_int_equal(cf_aead_seal(a, nonce, aad, 20, pt, 60, ct, tag), CF_OK);
	assert_hex_equal(ct, 60, "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
				 "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662");
	assert_hex_equal(tag, 16, "76fc6ece0f4e1768cddf8853bb2d551b");
	assert_int_equal(cf_aead_open(a, nonce, aad, 20, ct, 60, tag, back), CF_OK);
	assert_memory_equal(back, pt, 60);
	/* Tamper with each part in turn. */
	for (int what = 0; what < 3; what++) {
		uint8_t c2[60], t2[16], a2[20];
		memcpy(c2, ct, 60);
		memcpy(t2, tag, 16);
		memcpy(a2, aad, 20);
		if (what == 0)
			t2[0] ^= 1;
		else if (what == 1)
			c2[59] ^= 1;
		else
			a2[19] ^= 1;
		memset(back, 0x55, sizeof(back));
		assert_int_equal(cf_aead_open(a, nonce, a2, 20, c2, 60, t2, back), CF_ERR_AUTH);
		assert_true(all_zero(back, 60));
	}
	cf_aead_free(a);
}

static void test_aead_context_reuse(void **state)
{
	(void)state;
	static const cf_aead_alg algs[] = { CF_CHACHA20_POLY1305, CF_AES_256_GCM };
	for (size_t i = 0; i < ARRAY_LEN(algs); i++) {
		uint8_t key[32];
		for (size_t j = 0; j < 32; j++)
			key[j] = (uint8_t)(j * 3 + i);
		cf_aead *reused = NULL;
		assert_int_equal(cf_aead_new(algs[i], key, &reused), CF_OK);
		for (uint32_t ctr = 0; ctr < 300; ctr++) {
			/* age STREAM-style nonce: counter, last-chunk flag. */
			uint8_t nonce[12] = { 0 };
			nonce[7] = (uint8_t)(ctr >> 24);
			nonce[8] = (uint8_t)(ctr >> 16);
			nonce[9] = (uint8_t)(ctr >> 8);
			nonce[10] = (uint8_t)ctr;
			nonce[11] = ctr == 299;
			uint8_t pt[64], ct1[64], ct2[64], tag1[16], tag2[16], back[64];
			size_t len = ctr % 65;
			memset(pt, (int)ctr, sizeof(pt));
			assert_int_equal(cf_aead_seal(reused, nonce, NULL, 0, pt, len, ct1, tag1), CF_OK);
			/* A fresh context per nonce gives the same answer. */
			cf_aead *fresh = NULL;
			assert_int_equal(cf_aead_new(algs[i], key, &fresh), CF_OK);
			assert_int_equal(cf_aead_seal(fresh, nonce, NULL, 0, pt, len, ct2, tag2), CF_OK);
			cf_aead_free(fresh);
			assert_memory_equal(ct1, ct2, len);
			assert_memory_equal(tag1, tag2, 16);
			assert_int_equal(cf_aead_open(reused, nonce, NULL, 0, ct1, len, tag1, back), CF_OK);
			assert_memory_equal(back, pt, len);
			if (ctr % 10 == 3) {
				/* A forgery in between does not poison the next chunk. */
				tag1[ctr % 16] ^= 0x40;
				assert_int_equal(
					cf_aead_open(reused, nonce, NULL, 0, ct1, len, tag1, back),
					CF_ERR_AUTH);
			}
			/* The wrong nonce (previous counter) fails. */
			if (ctr > 0) {
				nonce[10] = (uint8_t)(ctr - 1);
				nonce[9] = (uint8_t)((ctr - 1) >> 8);
				tag1[ctr % 16] = tag2[ctr % 16];
				assert_int_equal(
					cf_aead_open(reused, nonce, NULL, 0, ct1, len, tag1, back),
					CF_ERR_AUTH);
			}
		}
		cf_aead_free(reused);
	}
}

/* --- X25519 (RFC 7748 section 6.1) --- */

static void test_x25519_rfc7748(void **state)
{
	(void)state;
	uint8_t a_priv[32], b_priv[32], pub[32], s1[32], s2[32];
	unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a_priv, 32);
	unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", b_priv, 32);
	assert_int_equal(cf_x25519_public(a_priv, pub), CF_OK);
	assert_hex_equal(pub, 32, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
	assert_int_equal(cf_x25519(b_priv, pub, s1), CF_OK);
	assert_int_equal(cf_x25519_public(b_priv, pub), CF_OK);
	assert_hex_equal(pub, 32, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
	assert_int_equal(cf_x25519(a_priv, pub, s2), CF_OK);
	assert_hex_equal(s1, 32, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
	assert_memory_equal(s1, s2, 32);

	/* age's documented identity gives its documented recipient. */
	char hrp[32], out[128];
	uint8_t secret[32];
	size_t n = 0;
	assert_int_equal(cf_bech32_decode("AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYK"
					  "LMGR48UAWX40Q2P2LM0",
					  hrp, sizeof(hrp), secret, sizeof(secret), &n),
			 CF_OK);
	assert_int_equal(n, 32);
	assert_int_equal(cf_x25519_public(secret, pub), CF_OK);
	assert_int_equal(cf_bech32_encode("age", pub, 32, false, out, sizeof(out)), CF_OK);
	assert_string_equal(out, "age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef");
}

static void test_x25519_low_order(void **state)
{
	(void)state;
	/* Points whose shared secret is all zero for every scalar. */
	static const char *const low[] = {
		"0000000000000000000000000000000000000000000000000000000000000000", /* u = 0 */
		"0100000000000000000000000000000000000000000000000000000000000000", /* u = 1 */
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", /* order 8 */
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", /* order 8 */
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p - 1 */
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p (= 0) */
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p + 1 (= 1) */
	};
	uint8_t secret[32], pub[32], peer[32], shared[32];
	assert_int_equal(cf_x25519_keygen(secret, pub), CF_OK);
	assert_false(all_zero(secret, 32));
	for (size_t i = 0; i < ARRAY_LEN(low); i++) {
		unhex(low[i], peer, 32);
		memset(shared, 0xAA, sizeof(shared));
		cf_err rc = cf_x25519(secret, peer, shared);
		if (rc != CF_ERR_WEAK_KEY)
			fail_msg("low-order point %zu gave %d", i, rc);
		assert_true(all_zero(shared, 32));
	}
	/* Keygen + DH agrees both ways. */
	uint8_t s2[32], p2[32], k1[32], k2[32];
	assert_int_equal(cf_x25519_keygen(s2, p2), CF_OK);
	assert_memory_not_equal(secret, s2, 32);
	assert_int_equal(cf_x25519(secret, p2, k1), CF_OK);
	assert_int_equal(cf_x25519(s2, pub, k2), CF_OK);
	assert_memory_equal(k1, k2, 32);
}

/* --- Ed25519 (RFC 8032 section 7.1) --- */

static void test_ed25519_rfc8032(void **state)
{
	(void)state;
	uint8_t seed[32], pub[32], sig[64];
	unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed, 32);
	assert_int_equal(cf_ed25519_public(seed, pub), CF_OK);
	assert_hex_equal(pub, 32, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
	/* TEST 1: the empty message. */
	assert_int_equal(cf_ed25519_sign(seed, "", 0, sig), CF_OK);
	assert_hex_equal(sig, 64, "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
				  "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
	assert_int_equal(cf_ed25519_verify(pub, "", 0, sig), CF_OK);
	/* Tampered message, signature, or key. */
	assert_int_equal(cf_ed25519_verify(pub, "x", 1, sig), CF_ERR_AUTH);
	uint8_t bad[64];
	for (size_t pos = 0; pos < 64; pos += 9) {
		memcpy(bad, sig, 64);
		bad[pos] ^= 0x01;
		assert_int_equal(cf_ed25519_verify(pub, "", 0, bad), CF_ERR_AUTH);
	}
	/* S + L (non-canonical S) must be refused (RFC 8032 5.1.7). */
	memcpy(bad, sig, 64);
	static const uint8_t L[32] = { 0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58,
				       0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
				       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 };
	unsigned carry = 0;
	for (size_t i = 0; i < 32; i++) {
		unsigned v = bad[32 + i] + L[i] + carry;
		bad[32 + i] = (uint8_t)v;
		carry = v >> 8;
	}
	assert_int_equal(cf_ed25519_verify(pub, "", 0, bad), CF_ERR_AUTH);
	uint8_t pub2[32];
	memcpy(pub2, pub, 32);
	pub2[0] ^= 1;
	assert_int_equal(cf_ed25519_verify(pub2, "", 0, sig), CF_ERR_AUTH);

	/* TEST 2: one byte 0x72, its own key. */
	unhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", seed, 32);
	assert_int_equal(cf_ed25519_public(seed, pub), CF_OK);
	assert_hex_equal(pub, 32, "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
	assert_int_equal(cf_ed25519_sign(seed, "\x72", 1, sig), CF_OK);
	assert_hex_equal(sig, 64, "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
				  "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00");
	assert_int_equal(cf_ed25519_verify(pub, "\x72", 1, sig), CF_OK);
	assert_int_equal(cf_ed25519_verify(pub, "\x73", 1, sig), CF_ERR_AUTH);
	assert_int_equal(cf_ed25519_verify(pub, "", 0, sig), CF_ERR_AUTH);

	/* keygen round trip */
	uint8_t s3[32], p3[32], p4[32];
	assert_int_equal(cf_ed25519_keygen(s3, p3), CF_OK);
	assert_int_equal(cf_ed25519_public(s3, p4), CF_OK);
	assert_memory_equal(p3, p4, 32);
	assert_int_equal(cf_ed25519_sign(s3, "hello", 5, sig), CF_OK);
	assert_int_equal(cf_ed25519_verify(p3, "hello", 5, sig), CF_OK);
	assert_int_equal(cf_ed25519_verify(p3, "hellO", 5, sig), CF_ERR_AUTH);
}

/* --- ECDSA over raw r||s and x||y --- */

static void reverse(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n / 2; i++) {
		uint8_t t = p[i];
		p[i] = p[n - 1 - i];
		p[n - 1 - i] = t;
	}
}

/* Signs msg with an OpenSSL key and returns r||s big-endian, each comp bytes. */
static void openssl_sign_raw(EVP_PKEY *k, const EVP_MD *md, const void *msg, size_t len,
			     uint8_t *rs, size_t comp)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	assert_non_null(ctx);
	uint8_t der[160];
	size_t derlen = sizeof(der);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, k), 1);
	assert_int_equal(EVP_DigestSign(ctx, der, &derlen, msg, len), 1);
	EVP_MD_CTX_free(ctx);
	const uint8_t *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	assert_non_null(sig);
	assert_true(BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, (int)comp) == (int)comp);
	assert_true(BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + comp, (int)comp) == (int)comp);
	ECDSA_SIG_free(sig);
}

static void export_xy(EVP_PKEY *k, uint8_t *xy, size_t n)
{
	BIGNUM *x = NULL, *y = NULL;
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
	assert_true(BN_bn2binpad(x, xy, (int)n) == (int)n);
	assert_true(BN_bn2binpad(y, xy + n, (int)n) == (int)n);
	BN_free(x);
	BN_free(y);
}

static void ecdsa_case(cf_curve curve, const char *group, const EVP_MD *md, size_t n)
{
	EVP_PKEY *k = EVP_EC_gen(group);
	assert_non_null(k);
	static const char msg[] = "attestation report body";
	uint8_t rs_be[2 * 48], rs_le[2 * 48], xy_be[2 * 48], xy_le[2 * 48];
	openssl_sign_raw(k, md, msg, sizeof(msg) - 1, rs_be, n);
	memcpy(rs_le, rs_be, 2 * n);
	reverse(rs_le, n);
	reverse(rs_le + n, n);
	export_xy(k, xy_be, n);
	memcpy(xy_le, xy_be, 2 * n);
	reverse(xy_le, n);
	reverse(xy_le + n, n);
	EVP_PKEY_free(k);

	cf_pkey *be = NULL, *le = NULL;
	assert_int_equal(cf_ec_pubkey_from_xy(curve, xy_be, 2 * n, CF_BIG_ENDIAN, &be), CF_OK);
	assert_int_equal(cf_ec_pubkey_from_xy(curve, xy_le, 2 * n, CF_LITTLE_ENDIAN, &le), CF_OK);
	cf_pkey *keys[2] = { be, le };
	for (int ki = 0; ki < 2; ki++) {
		cf_pkey *key = keys[ki];
		assert_int_equal(cf_ecdsa_verify_raw(key, msg, sizeof(msg) - 1, rs_be, n, CF_BIG_ENDIAN),
				 CF_OK);
		assert_int_equal(
			cf_ecdsa_verify_raw(key, msg, sizeof(msg) - 1, rs_le, n, CF_LITTLE_ENDIAN), CF_OK);
		/* The wrong byte order does not verify. */
		assert_int_equal(
			cf_ecdsa_verify_raw(key, msg, sizeof(msg) - 1, rs_be, n, CF_LITTLE_ENDIAN),
			CF_ERR_AUTH);
		/* SEV-SNP pads each component to 72 bytes (little-endian, zero high bytes). */
		uint8_t pad_le[144] = { 0 }, pad_be[144] = { 0 };
		memcpy(pad_le, rs_le, n);
		memcpy(pad_le + 72, rs_le + n, n);
		memcpy(pad_be + 72 - n, rs_be, n);
		memcpy(pad_be + 144 - n, rs_be + n, n);
		assert_int_equal(
			cf_ecdsa_verify_raw(key, msg, sizeof(msg) - 1, pad_le, 72, CF_LITTLE_ENDIAN),
			CF_OK);
		assert_int_equal(cf_ecdsa_verify_raw(key, msg, sizeof(msg) - 1, pad_be, 72, CF_BIG_ENDIAN),
				 CF_OK);
		/* A flipped bit anywhere in r, in s, or in the message. */
		for (size_t pos = 0; pos < 2 * n; pos += 11) {
			uint8_t bad[2 * 48];
			memcpy(bad, rs_be, 2 * n);
			bad[pos] ^= 0x10;
			assert_int_equal(
				cf_ecdsa_verify_raw(key, msg, sizeof(msg) - 1, bad, n, CF_BIG_ENDIAN),
				CF_ERR_AUTH);
			memcpy(bad, rs_le, 2 * n);
			bad[pos] ^= 0x01;
			assert_int_equal(
				cf_ecdsa_verify_raw(key, msg, sizeof(msg) - 1, bad, n, CF_LITTLE_ENDIAN),
				CF_ERR_AUTH);
		}
		assert_int_equal(cf_ecdsa_verify_raw(key, "attestation report bodY", sizeof(msg) - 1,
						     rs_be, n, CF_BIG_ENDIAN),
				 CF_ERR_AUTH);
		/* r = s = 0, and all-ones (>= the group order). */
		uint8_t zero[2 * 48] = { 0 }, ones[2 * 48];
		memset(ones, 0xff, sizeof(ones));
		assert_int_equal(cf_ecdsa_verify_raw(key, msg, sizeof(msg) - 1, zero, n, CF_BIG_ENDIAN),
				 CF_ERR_AUTH);
		assert_int_equal(cf_ecdsa_verify_raw(key, msg, sizeof(msg) - 1, ones, n, CF_BIG_ENDIAN),
				 CF_ERR_AUTH);
		/* Nonsense component lengths. */
		assert_int_equal(cf_ecdsa_verify_raw(key, msg, sizeof(msg) - 1, pad_be, 0, CF_BIG_ENDIAN),
				 CF_ERR_ARG);
		assert_int_equal(cf_ecdsa_verify_raw(key, msg, sizeof(msg) - 1, pad_be, 73, CF_BIG_ENDIAN),
				 CF_ERR_ARG);
	}
	cf_pkey_free(be);
	cf_pkey_free(le);

	/* A point not on the curve: y + 1. */
	uint8_t off[2 * 48];
	memcpy(off, xy_be, 2 * n);
	off[2 * n - 1] ^= 1;
	cf_pkey *bad = NULL;
	assert_int_not_equal(cf_ec_pubkey_from_xy(curve, off, 2 * n, CF_BIG_ENDIAN, &bad), CF_OK);
	assert_null(bad);
	/* The right point read in the wrong byte order is (almost surely) off the curve. */
	assert_int_not_equal(cf_ec_pubkey_from_xy(curve, xy_be, 2 * n, CF_LITTLE_ENDIAN, &bad), CF_OK);
	assert_null(bad);
	/* (0, 0) and wrong lengths. */
	memset(off, 0, sizeof(off));
	assert_int_not_equal(cf_ec_pubkey_from_xy(curve, off, 2 * n, CF_BIG_ENDIAN, &bad), CF_OK);
	assert_int_equal(cf_ec_pubkey_from_xy(curve, xy_be, 2 * n - 1, CF_BIG_ENDIAN, &bad), CF_ERR_ARG);
	assert_int_equal(cf_ec_pubkey_from_xy(curve, xy_be, 2 * n + 1, CF_BIG_ENDIAN, &bad), CF_ERR_ARG);
	assert_null(bad);
}

static void test_ecdsa_p256(void **state)
{
	(void)state;
	for (int i = 0; i < 4; i++)
		ecdsa_case(CF_P256, "P-256", EVP_sha256(), 32);
}

static void test_ecdsa_p384(void **state)
{
	(void)state;
	for (int i = 0; i < 4; i++)
		ecdsa_case(CF_P384, "P-384", EVP_sha384(), 48);
}

static void test_ecdsa_curve_mismatch(void **state)
{
	(void)state;
	/* A P-256 signature checked against a P-384 key (and vice versa) fails. */
	EVP_PKEY *k256 = EVP_EC_gen("P-256"), *k384 = EVP_EC_gen("P-384");
	assert_non_null(k256);
	assert_non_null(k384);
	uint8_t rs[96], xy[96];
	openssl_sign_raw(k256, EVP_sha256(), "m", 1, rs, 32);
	export_xy(k384, xy, 48);
	cf_pkey *key = NULL;
	assert_int_equal(cf_ec_pubkey_from_xy(CF_P384, xy, 96, CF_BIG_ENDIAN, &key), CF_OK);
	uint8_t pad[96] = { 0 };
	memcpy(pad + 16, rs, 32);
	memcpy(pad + 64, rs + 32, 32);
	assert_int_equal(cf_ecdsa_verify_raw(key, "m", 1, pad, 48, CF_BIG_ENDIAN), CF_ERR_AUTH);
	cf_pkey_free(key);
	/* The 384 public key's bytes are the wrong size for P-256. */
	assert_int_equal(cf_ec_pubkey_from_xy(CF_P256, xy, 96, CF_BIG_ENDIAN, &key), CF_ERR_ARG);
	assert_int_equal(cf_ec_pubkey_from_xy((cf_curve)9, xy, 64, CF_BIG_ENDIAN, &key), CF_ERR_ARG);
	EVP_PKEY_free(k256);
	EVP_PKEY_free(k384);
	cf_pkey_free(NULL);
}

/* --- scrypt (RFC 7914 section 12) --- */

static void test_scrypt_rfc7914(void **state)
{
	(void)state;
	uint8_t out[64];
	assert_int_equal(cf_scrypt("password", 8, "NaCl", 4, 1024, 8, 16, out, 64), CF_OK);
	assert_hex_equal(out, 64, "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
				  "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
	/* Invalid parameters are argument errors, not crypto failures. */
	assert_int_equal(cf_scrypt("p", 1, "s", 1, 0, 8, 1, out, 32), CF_ERR_ARG);
	assert_int_equal(cf_scrypt("p", 1, "s", 1, 1, 8, 1, out, 32), CF_ERR_ARG);
	assert_int_equal(cf_scrypt("p", 1, "s", 1, 1000, 8, 1, out, 32), CF_ERR_ARG);
	assert_int_equal(cf_scrypt("p", 1, "s", 1, 1024, 0, 1, out, 32), CF_ERR_ARG);
	assert_int_equal(cf_scrypt("p", 1, "s", 1, 1024, 8, 0, out, 32), CF_ERR_ARG);
	/* Absurd cost is refused without allocating. */
	assert_int_equal(cf_scrypt("p", 1, "s", 1, 1ull << 62, 8, 1, out, 32), CF_ERR_LIMIT);
	assert_int_equal(cf_scrypt("p", 1, "s", 1, 1024, UINT32_MAX, UINT32_MAX, out, 32),
			 CF_ERR_LIMIT);
	assert_int_equal(cf_scrypt("p", 1, "s", 1, 1024, 1u << 15, 1u << 15, out, 32), CF_ERR_LIMIT);
}

static void test_random(void **state)
{
	(void)state;
	uint8_t a[64] = { 0 }, b[64] = { 0 };
	assert_int_equal(cf_random(a, sizeof(a)), CF_OK);
	assert_int_equal(cf_random(b, sizeof(b)), CF_OK);
	assert_false(all_zero(a, sizeof(a)));
	assert_false(all_zero(b, sizeof(b)));
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(cf_random(a, 0), CF_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_abc),
		cmocka_unit_test(test_hash_streaming_equals_oneshot),
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_hkdf_rfc5869),
		cmocka_unit_test(test_chacha20poly1305_rfc8439),
		cmocka_unit_test(test_aead_in_place_and_empty),
		cmocka_unit_test(test_aes256gcm),
		cmocka_unit_test(test_aead_context_reuse),
		cmocka_unit_test(test_x25519_rfc7748),
		cmocka_unit_test(test_x25519_low_order),
		cmocka_unit_test(test_ed25519_rfc8032),
		cmocka_unit_test(test_ecdsa_p256),
		cmocka_unit_test(test_ecdsa_p384),
		cmocka_unit_test(test_ecdsa_curve_mismatch),
		cmocka_unit_test(test_scrypt_rfc7914),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
