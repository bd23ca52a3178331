#include "coffer/crypto.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include "coffer/buf.h"

static const EVP_MD *hash_md(cf_hash_alg alg)
{
	switch (alg) {
	case CF_SHA256:
		return EVP_sha256();
	case CF_SHA384:
		return EVP_sha384();
	case CF_SHA512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

size_t cf_hash_len(cf_hash_alg alg)
{
	switch (alg) {
	case CF_SHA256:
		return CF_SHA256_LEN;
	case CF_SHA384:
		return CF_SHA384_LEN;
	case CF_SHA512:
		return CF_SHA512_LEN;
	default:
		return 0;
	}
}

cf_err cf_hash(cf_hash_alg alg, const void *data, size_t len, uint8_t *out)
{
	const EVP_MD *md = hash_md(alg);
	if (!md)
		return CF_ERR_ARG;
	return EVP_Digest(data, len, out, NULL, md, NULL) == 1 ? CF_OK : CF_ERR_CRYPTO;
}

struct cf_hash_ctx {
	EVP_MD_CTX *md;
};

cf_err cf_hash_new(cf_hash_alg alg, cf_hash_ctx **out)
{
	const EVP_MD *md = hash_md(alg);
	if (!md)
		return CF_ERR_ARG;
	cf_hash_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return CF_ERR_NOMEM;
	ctx->md = EVP_MD_CTX_new();
	if (!ctx->md || EVP_DigestInit_ex(ctx->md, md, NULL) != 1) {
		cf_hash_free(ctx);
		return CF_ERR_CRYPTO;
	}
	*out = ctx;
	return CF_OK;
}

cf_err cf_hash_update(cf_hash_ctx *ctx, const void *data, size_t len)
{
	return EVP_DigestUpdate(ctx->md, data, len) == 1 ? CF_OK : CF_ERR_CRYPTO;
}

cf_err cf_hash_final(cf_hash_ctx *ctx, uint8_t *out)
{
	return EVP_DigestFinal_ex(ctx->md, out, NULL) == 1 ? CF_OK : CF_ERR_CRYPTO;
}

void cf_hash_free(cf_hash_ctx *ctx)
{
	if (!ctx)
		return;
	EVP_MD_CTX_free(ctx->md);
	free(ctx);
}

cf_err cf_hmac(cf_hash_alg alg, const void *key, size_t keylen, const void *data, size_t len,
	       uint8_t *out)
{
	const EVP_MD *md = hash_md(alg);
	if (!md || keylen > INT32_MAX)
		return CF_ERR_ARG;
	unsigned outlen = 0;
	if (!HMAC(md, key, (int)keylen, data, len, out, &outlen))
		return CF_ERR_CRYPTO;
	return CF_OK;
}

cf_err cf_hkdf_sha256(const void *ikm, size_t ikmlen, const void *salt, size_t saltlen,
		      const void *info, size_t infolen, uint8_t *out, size_t outlen)
{
	cf_err rc = CF_ERR_CRYPTO;
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	if (!kctx)
		goto out;
	/* OpenSSL rejects a NULL salt; an empty salt is the RFC's default. */
	static const uint8_t empty[1];
	OSSL_PARAM params[] = {
		OSSL_PARAM_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
		OSSL_PARAM_octet_string(OSSL_KDF_PARAM_KEY, (void *)(ikmlen ? ikm : empty), ikmlen),
		OSSL_PARAM_octet_string(OSSL_KDF_PARAM_SALT, (void *)(saltlen ? salt : empty), saltlen),
		OSSL_PARAM_octet_string(OSSL_KDF_PARAM_INFO, (void *)(infolen ? info : empty), infolen),
		OSSL_PARAM_END,
	};
	if (EVP_KDF_derive(kctx, out, outlen, params) == 1)
		rc = CF_OK;
out:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return rc;
}

struct cf_aead {
	const EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
	uint8_t key[CF_AEAD_KEY_LEN];
};

cf_err cf_aead_new(cf_aead_alg alg, const uint8_t key[static CF_AEAD_KEY_LEN], cf_aead **out)
{
	cf_aead *a = calloc(1, sizeof(*a));
	if (!a)
		return CF_ERR_NOMEM;
	a->cipher = alg == CF_CHACHA20_POLY1305 ? EVP_chacha20_poly1305()
		  : alg == CF_AES_256_GCM	 ? EVP_aes_256_gcm()
						 : NULL;
	if (!a->cipher) {
		free(a);
		return CF_ERR_ARG;
	}
	memcpy(a->key, key, CF_AEAD_KEY_LEN);
	*out = a;
	return CF_OK;
}

/* Keys the context once; later calls only change the nonce. */
static EVP_CIPHER_CTX *aead_ctx(cf_aead *a, bool encrypt, const uint8_t *nonce)
{
	EVP_CIPHER_CTX **slot = encrypt ? &a->enc : &a->dec;
	if (!*slot) {
		EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
		if (!c)
			return NULL;
		if (EVP_CipherInit_ex(c, a->cipher, NULL, a->key, nonce, encrypt) != 1) {
			EVP_CIPHER_CTX_free(c);
			return NULL;
		}
		*slot = c;
		return c;
	}
	if (EVP_CipherInit_ex(*slot, NULL, NULL, NULL, nonce, encrypt) != 1)
		return NULL;
	return *slot;
}

cf_err cf_aead_seal(cf_aead *a, const uint8_t nonce[static CF_AEAD_NONCE_LEN], const void *aad,
		    size_t aadlen, const uint8_t *in, size_t len, uint8_t *out,
		    uint8_t tag[static CF_AEAD_TAG_LEN])
{
	int n = 0;
	if (len > INT32_MAX || aadlen > INT32_MAX)
		return CF_ERR_TOO_BIG;
	EVP_CIPHER_CTX *c = aead_ctx(a, true, nonce);
	if (!c)
		return CF_ERR_CRYPTO;
	if (aadlen && EVP_EncryptUpdate(c, NULL, &n, aad, (int)aadlen) != 1)
		return CF_ERR_CRYPTO;
	if (len && EVP_EncryptUpdate(c, out, &n, in, (int)len) != 1)
		return CF_ERR_CRYPTO;
	/* AEAD finals write nothing; out may be NULL for an empty message. */
	uint8_t fin[1];
	if (EVP_EncryptFinal_ex(c, fin, &n) != 1)
		return CF_ERR_CRYPTO;
	if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, CF_AEAD_TAG_LEN, tag) != 1)
		return CF_ERR_CRYPTO;
	return CF_OK;
}

cf_err cf_aead_open(cf_aead *a, const uint8_t nonce[static CF_AEAD_NONCE_LEN], const void *aad,
		    size_t aadlen, const uint8_t *in, size_t len,
		    const uint8_t tag[static CF_AEAD_TAG_LEN], uint8_t *out)
{
	int n = 0;
	if (len > INT32_MAX || aadlen > INT32_MAX)
		return CF_ERR_TOO_BIG;
	EVP_CIPHER_CTX *c = aead_ctx(a, false, nonce);
	if (!c)
		return CF_ERR_CRYPTO;
	if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, CF_AEAD_TAG_LEN, (void *)tag) != 1)
		return CF_ERR_CRYPTO;
	if (aadlen && EVP_DecryptUpdate(c, NULL, &n, aad, (int)aadlen) != 1)
		return CF_ERR_CRYPTO;
	if (len && EVP_DecryptUpdate(c, out, &n, in, (int)len) != 1)
		return CF_ERR_CRYPTO;
	uint8_t fin[1];
	if (EVP_DecryptFinal_ex(c, fin, &n) != 1) {
		/* Unauthenticated plaintext must not survive. */
		cf_wipe(out, len);
		return CF_ERR_AUTH;
	}
	return CF_OK;
}

void cf_aead_free(cf_aead *a)
{
	if (!a)
		return;
	EVP_CIPHER_CTX_free(a->enc);
	EVP_CIPHER_CTX_free(a->dec);
	cf_wipe(a->key, sizeof(a->key));
	free(a);
}

cf_err cf_random(void *out, size_t len)
{
	if (len > INT32_MAX)
		return CF_ERR_ARG;
	return RAND_bytes(out, (int)len) == 1 ? CF_OK : CF_ERR_CRYPTO;
}

static cf_err raw_public(int type, const uint8_t *secret, size_t seclen, uint8_t *pub, size_t publen)
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(type, NULL, secret, seclen);
	size_t len = publen;
	cf_err rc = CF_ERR_CRYPTO;
	if (k && EVP_PKEY_get_raw_public_key(k, pub, &len) == 1 && len == publen)
		rc = CF_OK;
	EVP_PKEY_free(k);
	return rc;
}

cf_err cf_x25519_public(const uint8_t secret[static CF_X25519_LEN], uint8_t pub[static CF_X25519_LEN])
{
	return raw_public(EVP_PKEY_X25519, secret, CF_X25519_LEN, pub, CF_X25519_LEN);
}

cf_err cf_x25519_keygen(uint8_t secret[static CF_X25519_LEN], uint8_t pub[static CF_X25519_LEN])
{
	cf_err rc = cf_random(secret, CF_X25519_LEN);
	if (rc == CF_OK)
		rc = cf_x25519_public(secret, pub);
	if (rc != CF_OK)
		cf_wipe(secret, CF_X25519_LEN);
	return rc;
}

cf_err cf_x25519(const uint8_t secret[static CF_X25519_LEN], const uint8_t peer[static CF_X25519_LEN],
		 uint8_t shared[static CF_X25519_LEN])
{
	cf_err rc = CF_ERR_CRYPTO;
	EVP_PKEY *priv = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, secret, CF_X25519_LEN);
	EVP_PKEY *pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, CF_X25519_LEN);
	EVP_PKEY_CTX *ctx = priv ? EVP_PKEY_CTX_new(priv, NULL) : NULL;
	size_t len = CF_X25519_LEN;
	if (!ctx || !pub || EVP_PKEY_derive_init(ctx) != 1)
		goto out;
	if (EVP_PKEY_derive_set_peer(ctx, pub) != 1)
		goto out;
	if (EVP_PKEY_derive(ctx, shared, &len) != 1) {
		/* OpenSSL refuses an all-zero result (a low-order peer point). */
		cf_wipe(shared, CF_X25519_LEN);
		rc = CF_ERR_WEAK_KEY;
		goto out;
	}
	static const uint8_t zero[CF_X25519_LEN];
	if (len != CF_X25519_LEN || CRYPTO_memcmp(shared, zero, CF_X25519_LEN) == 0) {
		cf_wipe(shared, CF_X25519_LEN);
		rc = CF_ERR_WEAK_KEY;
		goto out;
	}
	rc = CF_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(priv);
	EVP_PKEY_free(pub);
	return rc;
}

cf_err cf_ed25519_public(const uint8_t seed[static CF_ED25519_SEED_LEN],
			 uint8_t pub[static CF_ED25519_PUB_LEN])
{
	return raw_public(EVP_PKEY_ED25519, seed, CF_ED25519_SEED_LEN, pub, CF_ED25519_PUB_LEN);
}

cf_err cf_ed25519_keygen(uint8_t seed[static CF_ED25519_SEED_LEN],
			 uint8_t pub[static CF_ED25519_PUB_LEN])
{
	cf_err rc = cf_random(seed, CF_ED25519_SEED_LEN);
	if (rc == CF_OK)
		rc = cf_ed25519_public(seed, pub);
	if (rc != CF_OK)
		cf_wipe(seed, CF_ED25519_SEED_LEN);
	return rc;
}

cf_err cf_ed25519_sign(const uint8_t seed[static CF_ED25519_SEED_LEN], const void *msg, size_t len,
		       uint8_t sig[static CF_ED25519_SIG_LEN])
{
	cf_err rc = CF_ERR_CRYPTO;
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, CF_ED25519_SEED_LEN);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t siglen = CF_ED25519_SIG_LEN;
	if (k && md && EVP_DigestSignInit(md, NULL, NULL, NULL, k) == 1 &&
	    EVP_DigestSign(md, sig, &siglen, msg, len) == 1 && siglen == CF_ED25519_SIG_LEN)
		rc = CF_OK;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	return rc;
}

cf_err cf_ed25519_verify(const uint8_t pub[static CF_ED25519_PUB_LEN], const void *msg, size_t len,
			 const uint8_t sig[static CF_ED25519_SIG_LEN])
{
	cf_err rc = CF_ERR_CRYPTO;
	EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, CF_ED25519_PUB_LEN);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!k || !md || EVP_DigestVerifyInit(md, NULL, NULL, NULL, k) != 1)
		goto out;
	rc = EVP_DigestVerify(md, sig, CF_ED25519_SIG_LEN, msg, len) == 1 ? CF_OK : CF_ERR_AUTH;
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	return rc;
}

static size_t curve_len(cf_curve curve)
{
	return curve == CF_P256 || curve == CF_SM2 ? 32 : curve == CF_P384 ? 48 : 0;
}

static void copy_endian(uint8_t *dst, const uint8_t *src, size_t n, cf_endian endian)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = endian == CF_BIG_ENDIAN ? src[i] : src[n - 1 - i];
}

cf_err cf_ec_pubkey_from_xy(cf_curve curve, const uint8_t *xy, size_t len, cf_endian endian,
			    cf_pkey **out)
{
	size_t n = curve_len(curve);
	if (!n || len != 2 * n)
		return CF_ERR_ARG;
	uint8_t point[1 + 2 * 48];
	point[0] = 0x04; /* uncompressed */
	copy_endian(point + 1, xy, n, endian);
	copy_endian(point + 1 + n, xy + n, n, endian);

	cf_err rc = CF_ERR_CRYPTO;
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, curve == CF_SM2 ? "SM2" : "EC", NULL);
	OSSL_PARAM params[] = {
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
				       (char *)(curve == CF_P256 ? "P-256" : curve == CF_P384 ? "P-384" : "SM2"), 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * n),
		OSSL_PARAM_END,
	};
	if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1)
		goto out;
	/* fromdata checks that the point is on the curve. */
	if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		rc = CF_ERR_PARSE;
		goto out;
	}
	*out = pkey;
	rc = CF_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

cf_err cf_ecdsa_verify_raw(cf_pkey *key, const void *msg, size_t msglen, const uint8_t *sig,
			   size_t component_len, cf_endian endian)
{
	cf_err rc = CF_ERR_CRYPTO;
	int bits = EVP_PKEY_get_bits(key);
	const EVP_MD *md = bits == 256 ? EVP_sha256() : bits == 384 ? EVP_sha384() : NULL;
	if (!md || component_len == 0 || component_len > 72)
		return CF_ERR_ARG;
	BIGNUM *r = endian == CF_BIG_ENDIAN ? BN_bin2bn(sig, (int)component_len, NULL)
					    : BN_lebin2bn(sig, (int)component_len, NULL);
	BIGNUM *s = endian == CF_BIG_ENDIAN ? BN_bin2bn(sig + component_len, (int)component_len, NULL)
					    : BN_lebin2bn(sig + component_len, (int)component_len, NULL);
	ECDSA_SIG *esig = ECDSA_SIG_new();
	EVP_MD_CTX *mdctx = EVP_MD_CTX_new();
	uint8_t *der = NULL;
	if (!r || !s || !esig || !mdctx)
		goto out;
	if (ECDSA_SIG_set0(esig, r, s) != 1)
		goto out;
	r = s = NULL; /* owned by esig now */
	int derlen = i2d_ECDSA_SIG(esig, &der);
	if (derlen <= 0)
		goto out;
	if (EVP_DigestVerifyInit(mdctx, NULL, md, NULL, key) != 1)
		goto out;
	rc = EVP_DigestVerify(mdctx, der, (size_t)derlen, msg, msglen) == 1 ? CF_OK : CF_ERR_AUTH;
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(esig);
	EVP_MD_CTX_free(mdctx);
	OPENSSL_free(der);
	return rc;
}

void cf_pkey_free(cf_pkey *key)
{
	EVP_PKEY_free(key);
}

cf_err cf_scrypt(const void *pass, size_t passlen, const void *salt, size_t saltlen, uint64_t n,
		 uint32_t r, uint32_t p, uint8_t *out, size_t outlen)
{
	if (n < 2 || (n & (n - 1)) || r == 0 || p == 0)
		return CF_ERR_ARG;
	if (n > UINT64_MAX / 128 / r / 2)
		return CF_ERR_LIMIT;
	/* RFC 7914 (and OpenSSL) require p * r < 2^30; it also keeps maxmem from wrapping. */
	if ((uint64_t)r * p >= (1u << 30))
		return CF_ERR_LIMIT;
	/* scrypt needs 128*r*(N+p) bytes; give OpenSSL exactly that much plus slack. */
	uint64_t maxmem = 128ull * r * (n + p + 2) + (1u << 20);
	if (EVP_PBE_scrypt(pass, passlen, salt, saltlen, n, r, p, maxmem, out, outlen) != 1)
		return CF_ERR_CRYPTO;
	return CF_OK;
}
