/*
 * kms: the core of coffer-kms, independent of its transport.
 *
 * Each entry point takes a parsed JSON request and gives back an HTTP-like
 * status and a JSON answer: the result, or {"error": {"check", "message"}}
 * naming the check that refused it (docs/kms.md). The HTTPS server
 * (server.c) is one front end; a Confidential Containers KBS front end can
 * call the same functions. Thread-safe: the entry points take the KMS's
 * lock for what touches the state, and a release verifies its evidence
 * and wraps its keys outside it, so several threads serve in parallel.
 */
#ifndef COFFER_KMS_H
#define COFFER_KMS_H

#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "coffer/err.h"
#include "coffer/evidence.h"
#include "coffer/ratls.h"
#include "coffer/tee.h"

/* Lifetimes. */
#define KMS_NONCE_TTL 60           /* seconds a release/certify nonce stays usable */
#define KMS_REQUEST_SKEW 300       /* accepted clock difference of signed requests */
#define KMS_REQUEST_ID_TTL 600     /* seconds a request id is remembered */
#define KMS_CERT_LIFETIME (24 * 3600)

typedef struct kms_config {
	const char *state_dir;        /* sealed state and audit log */
	const uint8_t *admin_pub;     /* 32 bytes, first start only; NULL afterwards */
	/* Collateral the KMS trusts for enclaves' evidence (platform cert, ...). */
	cf_evidence_input collateral;
	const json_t *certify_policy; /* evidence policy for /v1/certify; NULL: verified, not debug */
	const char *const *names;     /* DNS names / IPs of the KMS's TLS certificate */
	size_t nnames;
} kms_config;

typedef struct kms kms;

/*
 * Opens (or creates) the sealed state in cfg->state_dir with seal_key,
 * opens the audit log, and makes the CA certificate carrying evidence from
 * evidence_fn (of kind tee_kind) and a TLS server certificate.
 */
cf_err kms_open(const kms_config *cfg, const uint8_t seal_key[static 32], cf_tee_kind tee_kind,
		const uint8_t measurement[48], cf_ratls_evidence_fn evidence_fn, void *evidence_arg,
		kms **out) CF_WUR;
void kms_close(kms *k);

/* The TLS context serving the KMS's leaf and CA certificates. Borrowed. */
SSL_CTX *kms_ssl_ctx(kms *k);
/* The CA certificate in PEM (borrowed, NUL-terminated). */
const char *kms_ca_pem(kms *k);

/* Entry points: return the status; *out is always set (caller frees). */
int kms_info(kms *k, json_t **out);
int kms_enroll(kms *k, const json_t *req, json_t **out);
int kms_request(kms *k, const json_t *req, json_t **out);
int kms_nonce(kms *k, json_t **out);
int kms_release(kms *k, const json_t *req, json_t **out);
int kms_certify(kms *k, const json_t *req, json_t **out);

/* Sets *out to {"error": {"check", "message"}} and returns status (front ends too). */
int kms_fail(json_t **out, int status, const char *check, const char *fmt, ...) CF_PRINTF(4, 5);

/* Clock, overridable by tests. */
void kms_set_clock(kms *k, time_t (*now)(void));

#endif
