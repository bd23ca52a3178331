/*
 * Content-addressed caches for the DCAP verifier. A verifier sees the same
 * Intel certificates (root, PCK CAs, TCB Signing) and the same collateral
 * for every quote of a platform family; OpenSSL 3.0 spends ~0.2 ms
 * decoding each certificate and ~0.1 ms on each ECDSA verification, so
 * without caching most of a verification is spent re-proving what was
 * already proven.
 *
 * Everything here is keyed by SHA-256 of every byte the cached result
 * depends on, so a hit is exactly as good as recomputing:
 *   - certificates: SHA-256(DER) -> decoded X509 (shared, reference counted);
 *   - signature results: SHA-256 over a domain tag and the hashes of the
 *     signed bytes, the signature and the signer's certificate -> bool;
 *   - collateral: SHA-256 over every collateral input -> parsed collateral
 *     (shared, read-only, reference counted).
 * Sizes are fixed (direct-mapped slots; a few LRU collateral entries), so
 * hostile input cannot make a cache grow. The quote's own signatures
 * (attestation key, QE report) are never cached: they are per quote.
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "coffer/crypto.h"
#include "dcap_internal.h"

#define CERT_SLOTS 128
#define MEMO_SLOTS 1024
#define COLLATERAL_SLOTS 4

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static struct {
	uint8_t key[32];
	X509 *cert; /* the cache's reference */
} certs[CERT_SLOTS];

static struct {
	uint8_t key[32];
	bool used, ok;
} memo[MEMO_SLOTS];

struct dcap_shared_collateral {
	dcap_collateral col;
	uint8_t key[32];
	unsigned refs;
	unsigned long long last_use;
};

static dcap_shared_collateral *collaterals[COLLATERAL_SLOTS];
static unsigned long long use_clock;

static size_t slot_of(const uint8_t key[32], size_t n)
{
	return ((size_t)key[0] | (size_t)key[1] << 8 | (size_t)key[2] << 16) % n;
}

/* --- certificates --- */

X509 *dcap_cache_cert(const uint8_t *der, size_t len)
{
	uint8_t key[32];
	X509 *x = NULL;
	if (cf_hash(CF_SHA256, der, len, key) != CF_OK)
		return NULL;
	size_t s = slot_of(key, CERT_SLOTS);
	pthread_mutex_lock(&cache_lock);
	if (certs[s].cert && memcmp(certs[s].key, key, 32) == 0 && X509_up_ref(certs[s].cert) == 1)
		x = certs[s].cert;
	pthread_mutex_unlock(&cache_lock);
	if (x)
		return x;

	const unsigned char *q = der;
	if (len > (size_t)LONG_MAX)
		return NULL;
	x = d2i_X509(NULL, &q, (long)len);
	if (!x || q != der + len) { /* trailing bytes inside the DER */
		X509_free(x);
		return NULL;
	}
	X509 *old = NULL;
	pthread_mutex_lock(&cache_lock);
	if (X509_up_ref(x) == 1) {
		old = certs[s].cert;
		certs[s].cert = x;
		memcpy(certs[s].key, key, 32);
	}
	pthread_mutex_unlock(&cache_lock);
	X509_free(old);
	return x;
}

/* --- signature results --- */

static bool memo_get(const uint8_t key[32], bool *ok)
{
	size_t s = slot_of(key, MEMO_SLOTS);
	bool hit;
	pthread_mutex_lock(&cache_lock);
	hit = memo[s].used && memcmp(memo[s].key, key, 32) == 0;
	if (hit)
		*ok = memo[s].ok;
	pthread_mutex_unlock(&cache_lock);
	return hit;
}

static void memo_put(const uint8_t key[32], bool ok)
{
	size_t s = slot_of(key, MEMO_SLOTS);
	pthread_mutex_lock(&cache_lock);
	memcpy(memo[s].key, key, 32);
	memo[s].used = true;
	memo[s].ok = ok;
	pthread_mutex_unlock(&cache_lock);
}

/* SHA-256(tag || parts...), each part hashed with its length. */
static bool memo_key(uint8_t key[32], const char *tag, const void *const *parts,
		     const size_t *lens, size_t n)
{
	cf_hash_ctx *h = NULL;
	bool ok = cf_hash_new(CF_SHA256, &h) == CF_OK &&
		  cf_hash_update(h, tag, strlen(tag) + 1) == CF_OK;
	for (size_t i = 0; ok && i < n; i++) {
		uint64_t l = lens[i];
		ok = cf_hash_update(h, &l, sizeof(l)) == CF_OK &&
		     cf_hash_update(h, parts[i], lens[i]) == CF_OK;
	}
	ok = ok && cf_hash_final(h, key) == CF_OK;
	cf_hash_free(h);
	return ok;
}

bool dcap_memo_link(const char *tag, X509 *child, X509 *parent, bool (*check)(X509 *, X509 *))
{
	uint8_t a[32], b[32], key[32];
	bool ok;
	const void *parts[] = { a, b };
	const size_t lens[] = { 32, 32 };
	if (dcap_cert_fingerprint(child, a) != CF_OK || dcap_cert_fingerprint(parent, b) != CF_OK ||
	    !memo_key(key, tag, parts, lens, 2))
		return check(child, parent);
	if (memo_get(key, &ok))
		return ok;
	ok = check(child, parent);
	memo_put(key, ok);
	return ok;
}

bool dcap_memo_raw(X509 *signer, const uint8_t *msg, size_t len, const uint8_t sig[64])
{
	uint8_t fp[32], key[32];
	bool ok;
	const void *parts[] = { fp, msg, sig };
	const size_t lens[] = { 32, len, 64 };
	if (dcap_cert_fingerprint(signer, fp) != CF_OK || !memo_key(key, "dcap raw", parts, lens, 3))
		return dcap_cert_verify_raw(signer, msg, len, sig);
	if (memo_get(key, &ok))
		return ok;
	ok = dcap_cert_verify_raw(signer, msg, len, sig);
	memo_put(key, ok);
	return ok;
}

bool dcap_memo_crl(X509_CRL *crl, X509 *issuer)
{
	uint8_t fp[32], key[32];
	unsigned char *der = NULL;
	bool ok;
	EVP_PKEY *k = X509_get0_pubkey(issuer);
	if (!k)
		return false;
	int n = i2d_X509_CRL(crl, &der);
	const void *parts[] = { fp, der };
	const size_t lens[] = { 32, n > 0 ? (size_t)n : 0 };
	if (n <= 0 || dcap_cert_fingerprint(issuer, fp) != CF_OK ||
	    !memo_key(key, "dcap crl", parts, lens, 2)) {
		OPENSSL_free(der);
		return X509_CRL_verify(crl, k) == 1;
	}
	OPENSSL_free(der);
	if (memo_get(key, &ok))
		return ok;
	ok = X509_CRL_verify(crl, k) == 1;
	memo_put(key, ok);
	return ok;
}

/* --- collateral --- */

static bool collateral_key(const cf_evidence_input *in, uint8_t key[32])
{
	const cf_blob *b[] = { &in->root_ca,  &in->tcb_info, &in->qe_identity, &in->tcb_chain,
			       &in->pck_crl,  &in->root_crl, &in->collateral };
	const void *parts[7];
	size_t lens[7];
	uint8_t present[7];
	for (size_t i = 0; i < 7; i++) {
		parts[i] = b[i]->data ? (const void *)b[i]->data : (const void *)"";
		lens[i] = b[i]->data ? b[i]->len : 0;
		present[i] = b[i]->data != NULL;
	}
	uint8_t body[32];
	const void *outer[] = { present, body };
	const size_t outer_lens[] = { sizeof(present), 32 };
	return memo_key(body, "dcap collateral parts", parts, lens, 7) &&
	       memo_key(key, "dcap collateral", outer, outer_lens, 2);
}

static void shared_free(dcap_shared_collateral *s)
{
	if (!s)
		return;
	dcap_collateral_free(&s->col);
	free(s);
}

cf_err dcap_collateral_acquire(const cf_evidence_input *in, dcap_shared_collateral **out)
{
	uint8_t key[32];
	dcap_shared_collateral *s = NULL, *evicted = NULL;
	bool keyed = collateral_key(in, key);
	*out = NULL;
	if (keyed) {
		pthread_mutex_lock(&cache_lock);
		for (size_t i = 0; i < COLLATERAL_SLOTS; i++) {
			if (collaterals[i] && memcmp(collaterals[i]->key, key, 32) == 0) {
				s = collaterals[i];
				s->refs++;
				s->last_use = ++use_clock;
				break;
			}
		}
		pthread_mutex_unlock(&cache_lock);
		if (s) {
			*out = s;
			return CF_OK;
		}
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return CF_ERR_NOMEM;
	cf_err rc = dcap_collateral_load(in, &s->col);
	if (rc != CF_OK) {
		shared_free(s);
		return rc;
	}
	s->refs = 1;
	if (keyed) {
		memcpy(s->key, key, 32);
		pthread_mutex_lock(&cache_lock);
		for (size_t i = 0; i < COLLATERAL_SLOTS; i++) {
			if (collaterals[i] && memcmp(collaterals[i]->key, key, 32) == 0) {
				/* another thread loaded the same meanwhile: use its copy */
				dcap_shared_collateral *mine = s;
				s = collaterals[i];
				s->refs++;
				s->last_use = ++use_clock;
				pthread_mutex_unlock(&cache_lock);
				shared_free(mine);
				*out = s;
				return CF_OK;
			}
		}
		size_t victim = 0;
		for (size_t i = 0; i < COLLATERAL_SLOTS; i++) {
			if (!collaterals[i]) {
				victim = i;
				break;
			}
			if (collaterals[i]->last_use < collaterals[victim]->last_use)
				victim = i;
		}
		if (collaterals[victim] && --collaterals[victim]->refs == 0)
			evicted = collaterals[victim];
		collaterals[victim] = s;
		s->refs++;
		s->last_use = ++use_clock;
		pthread_mutex_unlock(&cache_lock);
		shared_free(evicted);
	}
	*out = s;
	return CF_OK;
}

const dcap_collateral *dcap_collateral_of(const dcap_shared_collateral *s)
{
	return &s->col;
}

void dcap_collateral_release(dcap_shared_collateral *s)
{
	bool last;
	if (!s)
		return;
	pthread_mutex_lock(&cache_lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&cache_lock);
	if (last)
		shared_free(s);
}

void dcap_cache_flush_certs(void)
{
	X509 *old[CERT_SLOTS];
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < CERT_SLOTS; i++) {
		old[i] = certs[i].cert;
		certs[i].cert = NULL;
	}
	memset(memo, 0, sizeof(memo));
	pthread_mutex_unlock(&cache_lock);
	for (size_t i = 0; i < CERT_SLOTS; i++)
		X509_free(old[i]);
}

void dcap_cache_flush(void)
{
	X509 *old[CERT_SLOTS];
	dcap_shared_collateral *gone[COLLATERAL_SLOTS] = { 0 };
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < CERT_SLOTS; i++) {
		old[i] = certs[i].cert;
		certs[i].cert = NULL;
	}
	memset(memo, 0, sizeof(memo));
	for (size_t i = 0; i < COLLATERAL_SLOTS; i++) {
		if (collaterals[i] && --collaterals[i]->refs == 0)
			gone[i] = collaterals[i];
		collaterals[i] = NULL;
	}
	pthread_mutex_unlock(&cache_lock);
	for (size_t i = 0; i < CERT_SLOTS; i++)
		X509_free(old[i]);
	for (size_t i = 0; i < COLLATERAL_SLOTS; i++)
		shared_free(gone[i]);
}
