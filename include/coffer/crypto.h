/*
 * crypto: thin wrappers over OpenSSL 3 EVP. No primitive is written here.
 *
 * Sizes are in the types where they are fixed. Every function that can
 * fail returns cf_err; an authentication failure (tag, MAC, signature) is
 * CF_ERR_AUTH and nothing else, so callers can tell "forged" from
 * "broken". Decryption verifies before it releases a byte: on CF_ERR_AUTH
 * the output buffer is wiped.
 */
#ifndef COFFER_CRYPTO_H
#define COFFER_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coffer/err.h"

#define CF_SHA256_LEN 32
#define CF_SHA384_LEN 48
#define CF_SHA512_LEN 64
#define CF_AEAD_KEY_LEN 32
#define CF_AEAD_NONCE_LEN 12
#define CF_AEAD_TAG_LEN 16
#define CF_X25519_LEN 32
#define CF_ED25519_PUB_LEN 32
#define CF_ED25519_SEED_LEN 32
#define CF_ED25519_SIG_LEN 64

typedef enum cf_hash_alg { CF_SHA256, CF_SHA384, CF_SHA512 } cf_hash_alg;
typedef enum cf_aead_alg { CF_CHACHA20_POLY1305, CF_AES_256_GCM } cf_aead_alg;
typedef enum cf_curve { CF_P256, CF_P384, CF_SM2 } cf_curve;
typedef enum cf_endian { CF_BIG_ENDIAN, CF_LITTLE_ENDIAN } cf_endian;

size_t cf_hash_len(cf_hash_alg alg);

/* One-shot digests. */
cf_err cf_hash(cf_hash_alg alg, const void *data, size_t len, uint8_t *out) CF_WUR;

/* Streaming digest. */
typedef struct cf_hash_ctx cf_hash_ctx;
cf_err cf_hash_new(cf_hash_alg alg, cf_hash_ctx **out) CF_WUR;
cf_err cf_hash_update(cf_hash_ctx *ctx, const void *data, size_t len) CF_WUR;
/* Writes cf_hash_len() bytes; the context may not be updated afterwards. */
cf_err cf_hash_final(cf_hash_ctx *ctx, uint8_t *out) CF_WUR;
void cf_hash_free(cf_hash_ctx *ctx);

cf_err cf_hmac(cf_hash_alg alg, const void *key, size_t keylen, const void *data, size_t len,
	       uint8_t *out) CF_WUR;

/* HKDF-SHA-256 extract-and-expand (RFC 5869). */
cf_err cf_hkdf_sha256(const void *ikm, size_t ikmlen, const void *salt, size_t saltlen,
		      const void *info, size_t infolen, uint8_t *out, size_t outlen) CF_WUR;

/*
 * AEAD with a context keyed once and used for many nonces (age STREAM
 * seals thousands of chunks under one key). In-place operation is allowed.
 */
typedef struct cf_aead cf_aead;
cf_err cf_aead_new(cf_aead_alg alg, const uint8_t key[static CF_AEAD_KEY_LEN], cf_aead **out) CF_WUR;
cf_err cf_aead_seal(cf_aead *a, const uint8_t nonce[static CF_AEAD_NONCE_LEN],
		    const void *aad, size_t aadlen, const uint8_t *in, size_t len, uint8_t *out,
		    uint8_t tag[static CF_AEAD_TAG_LEN]) CF_WUR;
cf_err cf_aead_open(cf_aead *a, const uint8_t nonce[static CF_AEAD_NONCE_LEN],
		    const void *aad, size_t aadlen, const uint8_t *in, size_t len,
		    const uint8_t tag[static CF_AEAD_TAG_LEN], uint8_t *out) CF_WUR;
void cf_aead_free(cf_aead *a);

/* X25519 (RFC 7748). cf_x25519 fails with CF_ERR_WEAK_KEY on an all-zero result. */
cf_err cf_x25519_keygen(uint8_t secret[static CF_X25519_LEN], uint8_t pub[static CF_X25519_LEN]) CF_WUR;
cf_err cf_x25519_public(const uint8_t secret[static CF_X25519_LEN], uint8_t pub[static CF_X25519_LEN]) CF_WUR;
cf_err cf_x25519(const uint8_t secret[static CF_X25519_LEN], const uint8_t peer[static CF_X25519_LEN],
		 uint8_t shared[static CF_X25519_LEN]) CF_WUR;

/* Ed25519 (RFC 8032), keys as 32-byte seeds. */
cf_err cf_ed25519_keygen(uint8_t seed[static CF_ED25519_SEED_LEN],
			 uint8_t pub[static CF_ED25519_PUB_LEN]) CF_WUR;
cf_err cf_ed25519_public(const uint8_t seed[static CF_ED25519_SEED_LEN],
			 uint8_t pub[static CF_ED25519_PUB_LEN]) CF_WUR;
cf_err cf_ed25519_sign(const uint8_t seed[static CF_ED25519_SEED_LEN], const void *msg, size_t len,
		       uint8_t sig[static CF_ED25519_SIG_LEN]) CF_WUR;
cf_err cf_ed25519_verify(const uint8_t pub[static CF_ED25519_PUB_LEN], const void *msg, size_t len,
			 const uint8_t sig[static CF_ED25519_SIG_LEN]) CF_WUR;

/*
 * ECDSA verification with the signature as raw r||s (each the curve's
 * size) in either byte order: DCAP quotes are big-endian, SEV-SNP reports
 * little-endian (and SNP pads r and s to 72 bytes: pass component_len).
 * The message is hashed with SHA-256 (P-256) or SHA-384 (P-384).
 * cf_ec_pubkey_from_xy also builds SM2 keys (CF_SM2; verify those with
 * EVP and the signer's distinguishing ID, as lib/evidence/csv_sm.c does).
 */
typedef struct evp_pkey_st cf_pkey; /* an OpenSSL EVP_PKEY */
cf_err cf_ec_pubkey_from_xy(cf_curve curve, const uint8_t *xy, size_t len, cf_endian endian,
			    cf_pkey **out) CF_WUR;
cf_err cf_ecdsa_verify_raw(cf_pkey *key, const void *msg, size_t msglen, const uint8_t *sig,
			   size_t component_len, cf_endian endian) CF_WUR;
void cf_pkey_free(cf_pkey *key);

/* scrypt (RFC 7914); maxmem bounds the memory OpenSSL may use. */
cf_err cf_scrypt(const void *pass, size_t passlen, const void *salt, size_t saltlen,
		 uint64_t n, uint32_t r, uint32_t p, uint8_t *out, size_t outlen) CF_WUR;

cf_err cf_random(void *out, size_t len) CF_WUR;

#endif
