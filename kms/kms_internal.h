/*
 * Shared by the KMS's modules (core.c, registry.c, release.c); not a
 * contract for anyone else.
 */
#ifndef COFFER_KMS_INTERNAL_H
#define COFFER_KMS_INTERNAL_H

#include <sqlite3.h>

#include "ca.h"
#include "coffer/age.h"
#include "coffer/audit.h"
#include "coffer/crypto.h"
#include "coffer/kms_client.h"
#include "coffer/sealdb.h"
#include "kms.h"

struct kms {
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

/* registry.c: the state's schema. */
cf_err kms_schema(sqlite3 *db) CF_WUR;

/* The claim holding a kind's principal measurement (soft: "measurement"). */
const char *kms_measurement_claim(cf_tee_kind kind);

#endif
