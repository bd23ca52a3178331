/*
 * Soft TEE reports: encoding, signing, strict parsing and verification.
 * Layout in include/coffer/soft.h.
 */
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "coffer/buf.h"
#include "coffer/crypto.h"
#include "coffer/enc.h"
#include "coffer/soft.h"

static const uint8_t report_magic[4] = { 'C', 'F', 'S', 'R' };

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void cf_soft_report_encode(const cf_soft_report *r, uint8_t out[static CF_SOFT_SIGNED_LEN])
{
	memset(out, 0, CF_SOFT_SIGNED_LEN);
	memcpy(out, report_magic, 4);
	put_le(out + 4, r->version, 2);
	put_le(out + 6, CF_TEE_SOFT, 2);
	put_le(out + 8, r->flags, 4);
	put_le(out + 16, r->launch_time, 8);
	memcpy(out + 24, r->instance_id, 16);
	memcpy(out + 40, r->measurement, 48);
	memcpy(out + 88, r->report_data, 64);
	memcpy(out + 152, r->platform_id, 32);
	memcpy(out + 184, r->launcher_version, strnlen(r->launcher_version, 16));
}

cf_err cf_soft_report_sign(cf_pkey *key, const cf_soft_report *r,
			   uint8_t out[static CF_SOFT_REPORT_LEN])
{
	cf_err rc = CF_ERR_CRYPTO;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[160];
	size_t derlen = sizeof(der);
	ECDSA_SIG *sig = NULL;
	cf_soft_report_encode(r, out);
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, key) != 1 ||
	    EVP_DigestSign(md, der, &derlen, out, CF_SOFT_SIGNED_LEN) != 1)
		goto out;
	const unsigned char *p = der;
	sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	if (!sig)
		goto out;
	const BIGNUM *sr, *ss;
	ECDSA_SIG_get0(sig, &sr, &ss);
	if (BN_bn2binpad(sr, out + CF_SOFT_SIGNED_LEN, 48) != 48 ||
	    BN_bn2binpad(ss, out + CF_SOFT_SIGNED_LEN + 48, 48) != 48)
		goto out;
	rc = CF_OK;
out:
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(md);
	return rc;
}

cf_err cf_soft_report_parse(const uint8_t *data, size_t len, cf_soft_report *out)
{
	cf_cursor c;
	uint8_t magic[4];
	uint16_t tee;
	uint8_t version_str[16];
	cf_err rc;
	if (len != CF_SOFT_REPORT_LEN)
		return len < CF_SOFT_REPORT_LEN ? CF_ERR_TRUNCATED : CF_ERR_TRAILING;
	memset(out, 0, sizeof(*out));
	cf_cursor_init(&c, data, len);
	if ((rc = cf_cursor_read(&c, magic, 4)) != CF_OK)
		return rc;
	if (memcmp(magic, report_magic, 4) != 0)
		return CF_ERR_PARSE;
	if ((rc = cf_cursor_u16le(&c, &out->version)) != CF_OK)
		return rc;
	if (out->version != CF_SOFT_REPORT_VERSION)
		return CF_ERR_UNSUPPORTED;
	if ((rc = cf_cursor_u16le(&c, &tee)) != CF_OK)
		return rc;
	if (tee != CF_TEE_SOFT)
		return CF_ERR_PARSE;
	if ((rc = cf_cursor_u32le(&c, &out->flags)) != CF_OK)
		return rc;
	if (out->flags & ~CF_SOFT_FLAG_DEBUG)
		return CF_ERR_PARSE;
	if ((rc = cf_cursor_zeros(&c, 4)) != CF_OK)
		return rc;
	if ((rc = cf_cursor_u64le(&c, &out->launch_time)) != CF_OK ||
	    (rc = cf_cursor_read(&c, out->instance_id, 16)) != CF_OK ||
	    (rc = cf_cursor_read(&c, out->measurement, 48)) != CF_OK ||
	    (rc = cf_cursor_read(&c, out->report_data, 64)) != CF_OK ||
	    (rc = cf_cursor_read(&c, out->platform_id, 32)) != CF_OK ||
	    (rc = cf_cursor_read(&c, version_str, 16)) != CF_OK)
		return rc;
	/* Printable ASCII, then only NUL padding. */
	size_t vlen = strnlen((const char *)version_str, 16);
	for (size_t i = 0; i < 16; i++) {
		if (i < vlen && (version_str[i] < 0x20 || version_str[i] > 0x7e))
			return CF_ERR_PARSE;
		if (i >= vlen && version_str[i] != 0)
			return CF_ERR_PARSE;
	}
	memcpy(out->launcher_version, version_str, vlen);
	out->launcher_version[vlen] = 0;
	if ((rc = cf_cursor_zeros(&c, 56)) != CF_OK)
		return rc;
	return cf_cursor_skip(&c, CF_SOFT_SIG_LEN);
}

static cf_err cert_load(const char *pem, size_t len, X509 **out)
{
	/* BIO lengths are int, and -1 means strlen(): never let a size_t wrap there. */
	if (len > INT_MAX)
		return CF_ERR_TOO_BIG;
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return CF_ERR_NOMEM;
	*out = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return *out ? CF_OK : CF_ERR_PARSE;
}

static cf_err spki_id(EVP_PKEY *key, uint8_t id[32])
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(key, &der);
	if (n <= 0)
		return CF_ERR_CRYPTO;
	cf_err rc = cf_hash(CF_SHA256, der, (size_t)n, id);
	OPENSSL_free(der);
	return rc;
}

/*
 * A verifier checks many reports against few platform certificates, and
 * decoding a PEM certificate costs more than the ECDSA verification. So
 * the decoded key and its platform id are kept per certificate, keyed
 * by the SHA-256 of the PEM bytes given (any other bytes miss).
 */
#define PLATFORM_CACHE_SLOTS 4
static struct platform_slot {
	bool used;
	uint8_t pem_hash[32];
	EVP_PKEY *key;
	uint8_t id[32];
	uint64_t last_use;
} platform_cache[PLATFORM_CACHE_SLOTS];
static pthread_mutex_t platform_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t platform_tick;

/* The certificate's key (a new reference) and platform id. */
static cf_err platform_load(const char *pem, size_t len, EVP_PKEY **key, uint8_t id[32])
{
	uint8_t h[32];
	if (len > INT_MAX) /* what cert_load accepts: never hash what it would refuse */
		return CF_ERR_TOO_BIG;
	cf_err rc = cf_hash(CF_SHA256, pem, len, h);
	if (rc != CF_OK)
		return rc;
	pthread_mutex_lock(&platform_lock);
	for (size_t i = 0; i < PLATFORM_CACHE_SLOTS; i++) {
		struct platform_slot *s = &platform_cache[i];
		if (s->used && memcmp(s->pem_hash, h, 32) == 0 && EVP_PKEY_up_ref(s->key)) {
			*key = s->key;
			memcpy(id, s->id, 32);
			s->last_use = ++platform_tick;
			pthread_mutex_unlock(&platform_lock);
			return CF_OK;
		}
	}
	pthread_mutex_unlock(&platform_lock);

	X509 *cert = NULL;
	if ((rc = cert_load(pem, len, &cert)) != CF_OK)
		return rc;
	EVP_PKEY *k = X509_get_pubkey(cert);
	X509_free(cert);
	if (!k)
		return CF_ERR_PARSE;
	if ((rc = spki_id(k, id)) != CF_OK) {
		EVP_PKEY_free(k);
		return rc;
	}
	pthread_mutex_lock(&platform_lock);
	struct platform_slot *victim = &platform_cache[0];
	for (size_t i = 0; i < PLATFORM_CACHE_SLOTS; i++) {
		if (!platform_cache[i].used || platform_cache[i].last_use < victim->last_use)
			victim = &platform_cache[i];
		if (!platform_cache[i].used)
			break;
	}
	if (EVP_PKEY_up_ref(k)) {
		EVP_PKEY_free(victim->key);
		victim->key = k;
		victim->used = true;
		memcpy(victim->pem_hash, h, 32);
		memcpy(victim->id, id, 32);
		victim->last_use = ++platform_tick;
	}
	pthread_mutex_unlock(&platform_lock);
	*key = k;
	return CF_OK;
}

cf_err cf_soft_cert_platform_id(const char *cert_pem, size_t len, uint8_t id[static 32])
{
	EVP_PKEY *key = NULL;
	cf_err rc = platform_load(cert_pem, len, &key, id);
	EVP_PKEY_free(key);
	return rc;
}

cf_err cf_soft_report_verify(const uint8_t *data, size_t len, const char *cert_pem,
			     size_t cert_len, cf_soft_report *out)
{
	EVP_PKEY *key = NULL;
	uint8_t id[32];
	cf_err rc = cf_soft_report_parse(data, len, out);
	if (rc != CF_OK)
		return rc;
	if ((rc = platform_load(cert_pem, cert_len, &key, id)) != CF_OK)
		return rc;
	if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC || EVP_PKEY_get_bits(key) != 384) {
		rc = CF_ERR_PARSE;
		goto out;
	}
	if (!cf_ct_equal(id, out->platform_id, 32)) {
		rc = CF_ERR_AUTH;
		goto out;
	}
	rc = cf_ecdsa_verify_raw(key, data, CF_SOFT_SIGNED_LEN, data + CF_SOFT_SIGNED_LEN, 48,
				 CF_BIG_ENDIAN);
out:
	EVP_PKEY_free(key);
	return rc;
}
