/*
 * Shared by the KMS's modules (core.c, registry.c, release.c); not a
 * contract for anyone else.
 */
#ifndef COFFER_KMS_INTERNAL_H
#define COFFER_KMS_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "ca.h"
#include "coffer/age.h"
#include "coffer/audit.h"
#include "coffer/crypto.h"
#include "coffer/kms_client.h"
#include "coffer/sealdb.h"
#include "kms.h"

/*
 * Memory of work already done, so a task released to many enclaves (or
 * retried) does not pay for it again. Both live in the KMS's heap, which
 * the TEE keeps private: verified approvals (a hash of public key,
 * digest and signature: a fact, not a secret), and unwrapped file keys by
 * header hash, wiped when their key is disabled or destroyed.
 */
#define KMS_CACHE_SLOTS 256
typedef struct kms_fk_slot {
	bool used;
	uint8_t header_sha256[32];
	char key_id[24];
	uint8_t file_key[CF_AGE_FILE_KEY_LEN];
} kms_fk_slot;

struct kms {
	pthread_mutex_t lock; /* the state, nonces and caches; not the audit log */
	uint8_t approvals_seen[KMS_CACHE_SLOTS][32];
	size_t approvals_next;
	kms_fk_slot file_keys[KMS_CACHE_SLOTS];
	size_t file_keys_next;
	cf_sealdb *state;
	sqlite3 *db;           /* the sealed database (cf_sealdb_handle) */
	sqlite3 *nonces;       /* in memory only: outstanding nonces */
	cf_audit_log *audit;
	kms_ca *ca;
	EVP_PKEY *tls_key;
	X509 *tls_cert;
	SSL_CTX *ssl;
	char *ca_pem;
	uint8_t ca_sha256[32];
	uint8_t sign_seed[CF_ED25519_SEED_LEN];
	uint8_t sign_pub[CF_ED25519_PUB_LEN];
	cf_age_identity transport; /* X25519: key.import arrives wrapped to it */
	char transport_recipient[CF_AGE_RECIPIENT_STRLEN + 1];
	cf_tee_kind tee_kind;
	uint8_t measurement[48];
	cf_evidence_input collateral;
	const json_t *certify_policy;
	time_t (*now)(void);
};

/* Audits a refusal ("denied: CHECK"), logs it, and builds the answer. */
int kms_refuse(kms *k, json_t **out, int status, const char *actor, const char *op,
	       const char *object, const char *check, const char *fmt, ...) CF_PRINTF(8, 9);
/* Appends to the audit log; a failure is logged (the operation already ran). */
cf_err kms_audit(kms *k, const char *actor, const char *op, const char *object,
		 const char *result) CF_WUR;
/* Seals the database after a change; callers answer only after it. */
cf_err kms_commit(kms *k) CF_WUR;

/* Reads "name" as base64 of exactly n bytes (n == 0: any length into buf). */
cf_err kms_get_b64(const json_t *obj, const char *name, uint8_t *out, size_t n) CF_WUR;
cf_err kms_get_hex(const json_t *obj, const char *name, uint8_t *out, size_t n) CF_WUR;
/* Looks up an organisation's signing key. CF_ERR_NOT_FOUND if unknown. */
cf_err kms_org_pub(kms *k, const char *org, uint8_t pub[32], char *recipient, size_t rcap) CF_WUR;

/* Wipes the cached file keys of key_id (disable, destroy). */
void kms_forget_key(kms *k, const char *key_id);

/* registry.c: the state's schema. */
cf_err kms_schema(sqlite3 *db) CF_WUR;

/* The claim holding a kind's principal measurement (soft: "measurement"). */
const char *kms_measurement_claim(cf_tee_kind kind);

#endif
