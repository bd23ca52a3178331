/*
 * SM2/SM3 for the Hygon CSV verifier: SM2 signature verification with a
 * distinguishing ID, HMAC-SM3, and a small memo of certificate signature
 * outcomes so that a chain seen before costs no elliptic-curve work.
 */
#include <pthread.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "coffer/buf.h"
#include "coffer/crypto.h"

#include "csv_internal.h"

/* --- memo of certificate signature outcomes --- */

#define MEMO_SLOTS 32

struct memo_entry {
	uint8_t key[CF_SHA256_LEN];
	cf_err outcome;  /* CF_OK, CF_ERR_AUTH or CF_ERR_PARSE: deterministic outcomes only */
	bool used;
};

static struct {
	pthread_mutex_t lock;
	struct memo_entry e[MEMO_SLOTS];
	unsigned next;
} memo = { .lock = PTHREAD_MUTEX_INITIALIZER };

static bool memo_get(const uint8_t key[static CF_SHA256_LEN], cf_err *outcome)
{
	bool hit = false;
	pthread_mutex_lock(&memo.lock);
	for (unsigned i = 0; i < MEMO_SLOTS && !hit; i++) {
		if (memo.e[i].used && memcmp(memo.e[i].key, key, CF_SHA256_LEN) == 0) {
			*outcome = memo.e[i].outcome;
			hit = true;
		}
	}
	pthread_mutex_unlock(&memo.lock);
	return hit;
}

static void memo_put(const uint8_t key[static CF_SHA256_LEN], cf_err outcome)
{
	pthread_mutex_lock(&memo.lock);
	struct memo_entry *e = &memo.e[memo.next];
	memo.next = (memo.next + 1) % MEMO_SLOTS;
	memcpy(e->key, key, CF_SHA256_LEN);
	e->outcome = outcome;
	e->used = true;
	pthread_mutex_unlock(&memo.lock);
}

void csv_memo_clear(void)
{
	pthread_mutex_lock(&memo.lock);
	memset(memo.e, 0, sizeof(memo.e));
	memo.next = 0;
	pthread_mutex_unlock(&memo.lock);
}

/* SHA-256 over everything the outcome depends on, each part length-prefixed. */
static cf_err memo_key(const csv_pubkey *key, const uint8_t *uid, size_t uidlen, const uint8_t *msg,
		       size_t msglen, const csv_sig *sig, uint8_t out[static CF_SHA256_LEN])
{
	cf_hash_ctx *h = NULL;
	uint8_t lens[16];
	for (int i = 0; i < 8; i++) {
		lens[i] = (uint8_t)((uint64_t)uidlen >> (8 * i));
		lens[8 + i] = (uint8_t)((uint64_t)msglen >> (8 * i));
	}
	cf_err rc = cf_hash_new(CF_SHA256, &h);
	if (rc == CF_OK)
		rc = cf_hash_update(h, "coffer csv sm2 memo v1", 22);
	if (rc == CF_OK)
		rc = cf_hash_update(h, key, sizeof(*key));
	if (rc == CF_OK)
		rc = cf_hash_update(h, lens, sizeof(lens));
	if (rc == CF_OK)
		rc = cf_hash_update(h, uid, uidlen);
	if (rc == CF_OK)
		rc = cf_hash_update(h, msg, msglen);
	if (rc == CF_OK)
		rc = cf_hash_update(h, sig, sizeof(*sig));
	if (rc == CF_OK)
		rc = cf_hash_final(h, out);
	cf_hash_free(h);
	return rc;
}

/* --- SM2 --- */

static cf_err sm2_pubkey(const csv_pubkey *k, EVP_PKEY **out)
{
	/* Hygon stores the coordinates little-endian. */
	uint8_t xy[2 * CSV_SM2_LEN];
	memcpy(xy, k->x, CSV_SM2_LEN);
	memcpy(xy + CSV_SM2_LEN, k->y, CSV_SM2_LEN);
	return cf_ec_pubkey_from_xy(CF_SM2, xy, sizeof(xy), CF_LITTLE_ENDIAN, out);
}

/* r, s (32-byte little-endian) as a DER ECDSA-Sig-Value; the caller frees *der. */
static cf_err sig_der(const csv_sig *sig, uint8_t **der, int *derlen)
{
	cf_err rc = CF_ERR_CRYPTO;
	BIGNUM *r = BN_lebin2bn(sig->r, CSV_SM2_LEN, NULL);
	BIGNUM *s = BN_lebin2bn(sig->s, CSV_SM2_LEN, NULL);
	ECDSA_SIG *esig = ECDSA_SIG_new();
	if (!r || !s || !esig || ECDSA_SIG_set0(esig, r, s) != 1)
		goto out;
	r = s = NULL; /* owned by esig */
	*der = NULL;
	*derlen = i2d_ECDSA_SIG(esig, der);
	if (*derlen > 0)
		rc = CF_OK;
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(esig);
	return rc;
}

static cf_err sm2_verify_now(const csv_pubkey *key, const uint8_t *uid, size_t uidlen,
			     const uint8_t *msg, size_t msglen, const csv_sig *sig)
{
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL; /* owned by mctx */
	uint8_t *der = NULL;
	int derlen = 0;
	cf_err rc;

	if (uidlen == 0 || uidlen > CSV_UID_MAX)
		return CF_ERR_ARG;
	if ((rc = sm2_pubkey(key, &pkey)) != CF_OK)
		return rc;
	if ((rc = sig_der(sig, &der, &derlen)) != CF_OK)
		goto out;
	rc = CF_ERR_CRYPTO;
	if (!(mctx = EVP_MD_CTX_new()))
		goto out;
	if (EVP_DigestVerifyInit_ex(mctx, &pctx, "SM3", NULL, NULL, pkey, NULL) != 1 || !pctx)
		goto out;
	/* The distinguishing ID enters Z_A, computed at the first update: set it now. */
	if (EVP_PKEY_CTX_set1_id(pctx, uid, (int)uidlen) != 1)
		goto out;
	/* Range checks of r and s (1..n-1) are OpenSSL's; any failure is a bad signature. */
	rc = EVP_DigestVerify(mctx, der, (size_t)derlen, msg, msglen) == 1 ? CF_OK : CF_ERR_AUTH;
out:
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_free(pkey);
	OPENSSL_free(der);
	return rc;
}

cf_err csv_sm2_verify(const csv_pubkey *key, const uint8_t *uid, size_t uidlen, const uint8_t *msg,
		      size_t msglen, const csv_sig *sig, bool use_memo)
{
	uint8_t mk[CF_SHA256_LEN];
	cf_err rc;
	if (!use_memo)
		return sm2_verify_now(key, uid, uidlen, msg, msglen, sig);
	if ((rc = memo_key(key, uid, uidlen, msg, msglen, sig, mk)) != CF_OK)
		return rc;
	if (memo_get(mk, &rc))
		return rc;
	rc = sm2_verify_now(key, uid, uidlen, msg, msglen, sig);
	if (rc == CF_OK || rc == CF_ERR_AUTH || rc == CF_ERR_PARSE)
		memo_put(mk, rc);
	return rc;
}

/* --- HMAC-SM3 --- */

cf_err csv_hmac_sm3(const uint8_t *key, size_t keylen, const uint8_t *data, size_t len,
		    uint8_t out[static CSV_MAC_LEN])
{
	size_t outlen = 0;
	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SM3", NULL, key, keylen, data, len, out, CSV_MAC_LEN,
		       &outlen) ||
	    outlen != CSV_MAC_LEN)
		return CF_ERR_CRYPTO;
	return CF_OK;
}
