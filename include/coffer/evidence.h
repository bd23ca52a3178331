/*
 * evidence: offline verification of attestation evidence of every kind
 * (soft, SGX DCAP quote v3, TDX quote v4/v5, SEV-SNP report, Hygon CSV
 * report) into one normalised claims object and an explainable verdict.
 *
 * A verifier never stops at the first failure: it records every check it
 * makes (name, pass/fail/not checked, expected, actual) so that a bad
 * signature, an expired certificate and a wrong measurement are told
 * apart at a glance. `verified` is true only if every performed check
 * passed and debug is off (or allowed by policy). Collateral that was not
 * given (a CRL, say) is reported as "not checked", never as a pass.
 *
 * Parsing of the evidence itself is strict and bounds-checked (cursors):
 * wrong sizes, trailing bytes, unknown versions and non-zero reserved
 * fields are failures of the "format" check.
 */
#ifndef COFFER_EVIDENCE_H
#define COFFER_EVIDENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "coffer/err.h"
#include "coffer/tee.h"

/* Intel's TCB status names (sgx/tdx); others use UP_TO_DATE or UNKNOWN. */
typedef enum cf_tcb_status {
	CF_TCB_UNKNOWN = 0,
	CF_TCB_UP_TO_DATE,
	CF_TCB_SW_HARDENING_NEEDED,
	CF_TCB_CONFIGURATION_NEEDED,
	CF_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
	CF_TCB_OUT_OF_DATE,
	CF_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED,
	CF_TCB_REVOKED,
} cf_tcb_status;

/* "UpToDate", "SWHardeningNeeded", ... ; "Unknown" for CF_TCB_UNKNOWN. */
const char *cf_tcb_status_name(cf_tcb_status s);
cf_err cf_tcb_status_parse(const char *name, cf_tcb_status *out) CF_WUR;
/* Rank for "at least": UpToDate best (0) ... Revoked worst; Unknown worst of all. */
int cf_tcb_status_rank(cf_tcb_status s);

typedef enum cf_check_state { CF_CHECK_PASS, CF_CHECK_FAIL, CF_CHECK_SKIPPED } cf_check_state;

typedef struct cf_check {
	char name[64];        /* stable id, e.g. "vcek_signature", "pck_chain", "tcb_level" */
	cf_check_state state;
	char expected[256];   /* what a pass needs */
	char actual[256];     /* what was found (or why it was not checked) */
} cf_check;

typedef struct cf_verdict {
	cf_tee_kind tee;
	cf_check *checks;
	size_t nchecks;
	size_t cap;
	json_t *claims;            /* normalised claims (object), owned */
	cf_tcb_status tcb_status;
	bool debug;
} cf_verdict;

void cf_verdict_init(cf_verdict *v, cf_tee_kind tee);
void cf_verdict_free(cf_verdict *v);
/* Records a check; expected/actual are printf formats (NULL for ""). */
void cf_verdict_pass(cf_verdict *v, const char *name, const char *expected_fmt, ...) CF_PRINTF(3, 4);
void cf_verdict_fail(cf_verdict *v, const char *name, const char *expected, const char *actual_fmt,
		     ...) CF_PRINTF(4, 5);
void cf_verdict_skip(cf_verdict *v, const char *name, const char *why_fmt, ...) CF_PRINTF(3, 4);
/* Passes iff cond; one call for both outcomes. */
void cf_verdict_expect(cf_verdict *v, const char *name, bool cond, const char *expected,
		       const char *actual_fmt, ...) CF_PRINTF(5, 6);
/* True if no check failed (skipped checks do not fail). */
bool cf_verdict_ok(const cf_verdict *v);
/* The first failed check, or NULL. */
const cf_check *cf_verdict_first_failure(const cf_verdict *v);
/* {"verified", "tee", "tcb_status", "claims", "checks": [...]} (new reference). */
json_t *cf_verdict_json(const cf_verdict *v, bool verified);

/* Claims helpers: set a key of v->claims (created on demand). */
void cf_claims_set(cf_verdict *v, const char *key, json_t *value); /* steals value */
void cf_claims_set_hex(cf_verdict *v, const char *key, const uint8_t *p, size_t n);
/* Sets claims.measurements.<name> = hex. */
void cf_claims_measurement(cf_verdict *v, const char *name, const uint8_t *p, size_t n);

/* --- inputs: the evidence and the collateral each kind needs (all borrowed) --- */

typedef struct cf_blob {
	const uint8_t *data;
	size_t len;
} cf_blob;

typedef struct cf_evidence_input {
	cf_tee_kind kind;
	cf_blob evidence;
	time_t at;               /* verification time (certificate/collateral validity) */
	/* soft */
	cf_blob platform_cert;   /* PEM */
	/* snp */
	cf_blob vcek;            /* DER or PEM: VCEK or VLEK */
	cf_blob snp_chain;       /* PEM: ASK or ASVK, then ARK */
	/* sgx / tdx (Intel DCAP) */
	cf_blob root_ca;         /* DER or PEM; default: the pinned Intel SGX Root CA */
	cf_blob tcb_info;        /* PCS body {"tcbInfo":...,"signature":"hex"} */
	cf_blob qe_identity;     /* PCS body {"enclaveIdentity":...,"signature":"hex"} */
	cf_blob tcb_chain;       /* PEM: TCB Signing cert + root (signs tcb_info, qe_identity) */
	cf_blob pck_crl;         /* DER or PEM */
	cf_blob root_crl;        /* DER or PEM */
	cf_blob collateral;      /* dcap-qvl QuoteCollateralV3 JSON: fills the six above */
	/* csv */
	cf_blob hrk;             /* Hygon Root Key certificate */
	cf_blob hsk_cek;         /* HSK || CEK as served by the Hygon KDS */
	cf_blob mnonce;          /* the 16-byte mnonce the relying party sent: pins the
				    report's unsigned anonce (without it, "not checked") */
} cf_evidence_input;

/*
 * Verifies in->evidence of in->kind into v (initialised here). Returns
 * CF_OK when verification ran to a verdict (read the checks), an error
 * only for internal failures (out of memory, bad arguments).
 */
cf_err cf_evidence_verify(const cf_evidence_input *in, cf_verdict *v) CF_WUR;

/* Per-kind verifiers (lib/evidence/<kind>.c), same contract. */
cf_err cf_evidence_verify_soft(const cf_evidence_input *in, cf_verdict *v) CF_WUR;
cf_err cf_evidence_verify_snp(const cf_evidence_input *in, cf_verdict *v) CF_WUR;
cf_err cf_evidence_verify_dcap(const cf_evidence_input *in, cf_verdict *v) CF_WUR; /* sgx, tdx */
cf_err cf_evidence_verify_csv(const cf_evidence_input *in, cf_verdict *v) CF_WUR;

/* --- policy --- */

/*
 * A JSON policy (docs/evidence.md):
 *   {"tee": ["snp","tdx"], "measurements": {"snp": ["hex",...], "tdx": {"mr_td": [...]}},
 *    "min_tcb_status": "SWHardeningNeeded", "allow_debug": false,
 *    "report_data": "hex", "max_age_seconds": 3600}
 * Adds policy checks to v. Without a policy, only debug is checked.
 */
cf_err cf_policy_apply(const json_t *policy, time_t now, cf_verdict *v) CF_WUR;

#endif
