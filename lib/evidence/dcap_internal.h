/*
 * dcap_internal: the pieces of the Intel DCAP verifier (lib/evidence/dcap*.c),
 * private to lib/evidence.
 *
 *   dcap_quote.c       strict cursor parser of SGX quote v3 and TDX quote v4/v5
 *   dcap_pki.c         PEM/DER certificates and CRLs, the PCK SGX extension,
 *                      chain checks against the pinned Intel SGX Root CA
 *   dcap_collateral.c  TCB Info and QE Identity (PCS bodies or the dcap-qvl
 *                      bundle) parsed into plain structures
 *   dcap_tcb.c         Intel's TCB status algorithm (QVL TcbLevelCheck,
 *                      TdxModuleCheck, TDRelaunchCheck, EnclaveReportVerifier)
 *   dcap_cache.c       content-addressed caches: decoded certificates, signature
 *                      results, parsed collateral
 *   dcap.c             cf_evidence_verify_dcap: every check, the claims
 *
 * Parsed structures borrow the bytes they were parsed from (the quote) or
 * own copies freed by their *_free function (collateral).
 */
#ifndef COFFER_DCAP_INTERNAL_H
#define COFFER_DCAP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "coffer/err.h"
#include "coffer/evidence.h"

/* --- quote --- */

#define DCAP_HEADER_LEN 48
#define DCAP_SGX_REPORT_LEN 384
#define DCAP_TD10_REPORT_LEN 584
#define DCAP_TD15_REPORT_LEN 648
#define DCAP_SIG_LEN 64
#define DCAP_KEY_LEN 64
#define DCAP_TEE_SGX 0x00000000u
#define DCAP_TEE_TDX 0x00000081u
#define DCAP_CERT_PCK_CHAIN 5
#define DCAP_CERT_QE_REPORT 6
#define DCAP_MAX_CERT_DATA (64u * 1024)

enum { DCAP_BODY_SGX = 1, DCAP_BODY_TD10 = 2, DCAP_BODY_TD15 = 3 };

/* SGX REPORT body (the enclave's in an SGX quote, the QE's in every quote). */
typedef struct dcap_sgx_report {
	const uint8_t *raw; /* DCAP_SGX_REPORT_LEN bytes */
	const uint8_t *cpu_svn;         /* 16 */
	uint32_t misc_select;
	const uint8_t *isv_ext_prod_id; /* 16 */
	const uint8_t *attributes;      /* 16: flags u64 LE (bit1 DEBUG), xfrm u64 */
	const uint8_t *mr_enclave;      /* 32 */
	const uint8_t *mr_signer;       /* 32 */
	const uint8_t *config_id;       /* 64 */
	uint16_t isv_prod_id, isv_svn, config_svn;
	const uint8_t *isv_family_id;   /* 16 */
	const uint8_t *report_data;     /* 64 */
} dcap_sgx_report;

/* TD report body 1.0 (584 bytes) or 1.5 (648). */
typedef struct dcap_td_report {
	const uint8_t *raw;
	size_t len;
	const uint8_t *tee_tcb_svn;     /* 16: [0] module ISVSVN, [1] module major version */
	const uint8_t *mr_seam;         /* 48 */
	const uint8_t *mr_signer_seam;  /* 48 */
	const uint8_t *seam_attributes; /* 8 */
	const uint8_t *td_attributes;   /* 8: bit0 DEBUG */
	const uint8_t *xfam;            /* 8 */
	const uint8_t *mr_td;           /* 48 */
	const uint8_t *mr_config_id;    /* 48 */
	const uint8_t *mr_owner;        /* 48 */
	const uint8_t *mr_owner_config; /* 48 */
	const uint8_t *rtmr[4];         /* 48 each */
	const uint8_t *report_data;     /* 64 */
	const uint8_t *tee_tcb_svn2;    /* 16, TD 1.5 only (else NULL) */
	const uint8_t *mr_service_td;   /* 48, TD 1.5 only (else NULL) */
} dcap_td_report;

typedef struct dcap_quote {
	uint16_t version;
	uint16_t key_type;
	uint32_t tee_type;
	uint16_t qe_svn, pce_svn;       /* header bytes 8..11 */
	const uint8_t *qe_vendor_id;    /* 16 */
	const uint8_t *user_data;       /* 20 */
	int body_type;                  /* DCAP_BODY_* */
	dcap_sgx_report sgx;            /* body_type SGX */
	dcap_td_report td;              /* body_type TD10 / TD15 */
	const uint8_t *signed_data;     /* header + body: what the attestation key signs */
	size_t signed_len;
	uint32_t sig_data_len;
	const uint8_t *signature;       /* 64: r||s BE */
	const uint8_t *attest_key;      /* 64: x||y BE */
	dcap_sgx_report qe_report;
	const uint8_t *qe_report_sig;   /* 64: r||s BE, by the PCK key */
	const uint8_t *qe_auth;
	size_t qe_auth_len;
	const uint8_t *pck_pem;         /* certification data type 5 */
	size_t pck_pem_len;
	size_t trailing;                /* bytes after the signature data */
	bool trailing_zero;             /* ... all of them zero */
} dcap_quote;

/*
 * Parses a quote of any supported version. On failure returns
 * CF_ERR_TRUNCATED or CF_ERR_PARSE and says why (never echoing input).
 * Trailing bytes after the signature data are not an error here: they
 * are counted in q->trailing for the caller to judge.
 */
cf_err dcap_quote_parse(const uint8_t *data, size_t len, dcap_quote *q, char *why,
			size_t whylen) CF_WUR;

/* --- PKI --- */

#define DCAP_MAX_CHAIN 4

typedef struct dcap_chain {
	X509 *cert[DCAP_MAX_CHAIN];
	size_t n;
} dcap_chain;

/* The PCK certificate's SGX extension (OID 1.2.840.113741.1.13.1). */
typedef struct dcap_pck_ext {
	uint8_t tcb_comp[16];   /* SGX TCB component SVNs (.2.1 .. .2.16) */
	uint16_t pce_svn;       /* .2.17 */
	uint8_t cpu_svn[16];    /* .2.18 */
	uint8_t ppid[16];
	uint8_t pce_id[2];
	uint8_t fmspc[6];
	int sgx_type;           /* 0 Standard, 1 Scalable, ...; -1 absent */
} dcap_pck_ext;

/* Exactly one or more PEM certificates ("CERTIFICATE"), nothing but
 * whitespace between them; trailing NUL bytes allowed if allow_nul. */
cf_err dcap_pem_chain(const uint8_t *p, size_t n, bool allow_nul, dcap_chain *out, char *why,
		      size_t whylen) CF_WUR;
void dcap_chain_free(dcap_chain *c);
/* One certificate, DER or PEM. */
cf_err dcap_cert_load(const uint8_t *p, size_t n, X509 **out) CF_WUR;
/* One CRL, DER or PEM ("X509 CRL"). */
cf_err dcap_crl_load(const uint8_t *p, size_t n, X509_CRL **out) CF_WUR;
cf_err dcap_pck_ext_parse(X509 *leaf, dcap_pck_ext *out, char *why, size_t whylen) CF_WUR;
/* SHA-256 of the DER encoding. */
cf_err dcap_cert_fingerprint(X509 *c, uint8_t out[32]) CF_WUR;
/* True if c's DER hashes to the pinned Intel SGX Root CA. */
bool dcap_is_intel_root(X509 *c);
/* child's issuer name, AKID and signature match parent, which is a CA. */
bool dcap_issued_by(X509 *child, X509 *parent);
/*
 * Chain c->cert[0] -> ... -> anchor: each certificate issued by the next;
 * a self-issued last certificate must be the anchor itself; the anchor's
 * self-signature holds. Validity periods are not looked at (see
 * dcap_cert_valid_at).
 */
bool dcap_chain_to_anchor(const dcap_chain *c, X509 *anchor, char *why, size_t whylen);
/* notBefore <= at <= notAfter. */
bool dcap_cert_valid_at(X509 *c, time_t at);
/* Common name (or "?"), into out. */
void dcap_cert_cn(X509 *c, char *out, size_t outlen);
/* The certificate's validity period as "YYYY-MM-DD..YYYY-MM-DD". */
void dcap_cert_period(X509 *c, char *out, size_t outlen);
/* ECDSA P-256 raw r||s (big-endian) over msg with the certificate's key. */
bool dcap_cert_verify_raw(X509 *c, const uint8_t *msg, size_t len, const uint8_t sig[64]);
bool dcap_crl_revokes(X509_CRL *crl, X509 *c);
/* Compare an ASN1_TIME with t: <0 before, 0 equal, >0 after; -2 on error. */
int dcap_asn1_time_cmp(const ASN1_TIME *a, time_t t);
void dcap_asn1_time_str(const ASN1_TIME *a, char *out, size_t outlen);

/* --- time --- */

/* Strict "YYYY-MM-DDTHH:MM:SSZ". */
cf_err dcap_parse_iso_time(const char *s, time_t *out) CF_WUR;
void dcap_format_time(time_t t, char *out, size_t outlen);

/* --- collateral --- */

#define DCAP_MAX_LEVELS 256
#define DCAP_MAX_MODULES 32

typedef struct dcap_tcb_level {
	uint8_t sgx[16];
	uint16_t pce_svn;
	uint8_t tdx[16];
	cf_tcb_status status;
	const char *date;       /* borrowed from the JSON tree */
	json_t *advisories;     /* borrowed array of strings, or NULL */
	size_t listed;          /* position in the JSON (for a stable sort) */
} dcap_tcb_level;

typedef struct dcap_isv_level {
	uint16_t isv_svn;
	cf_tcb_status status;
	json_t *advisories;
	size_t listed;
} dcap_isv_level;

typedef struct dcap_module_identity {
	char id[16];            /* "TDX_01" */
	uint8_t mrsigner[48];
	uint8_t attributes[8], attributes_mask[8];
	dcap_isv_level *levels; /* sorted: highest ISVSVN first */
	size_t nlevels;
} dcap_module_identity;

typedef struct dcap_tcb_info {
	json_t *root;           /* the parsed tcbInfo object (owned) */
	bool tdx;               /* id "TDX" (else "SGX") */
	long long version;
	time_t issue_date, next_update;
	uint8_t fmspc[6];
	uint8_t pce_id[2];
	long long eval_number;
	bool has_module;
	uint8_t module_mrsigner[48], module_attributes[8], module_attributes_mask[8];
	bool has_identities;
	dcap_module_identity *modules;
	size_t nmodules;
	dcap_tcb_level *levels; /* sorted as Intel's QVL does: highest first */
	size_t nlevels;
} dcap_tcb_info;

typedef struct dcap_qe_identity {
	json_t *root;
	char id[16];            /* "QE", "TD_QE" */
	long long version;
	time_t issue_date, next_update;
	long long eval_number;
	uint32_t miscselect, miscselect_mask;
	uint8_t attributes[16], attributes_mask[16];
	uint8_t mrsigner[32];
	uint16_t isv_prod_id;
	dcap_isv_level *levels; /* sorted: highest ISVSVN first */
	size_t nlevels;
} dcap_qe_identity;

/* A signed collateral document: exact signed bytes, signature, signer chain. */
typedef enum { DCAP_ITEM_ABSENT = 0, DCAP_ITEM_OK, DCAP_ITEM_BAD } dcap_item_state;

typedef struct dcap_signed_doc {
	dcap_item_state state;
	char why[160];          /* when BAD */
	char *raw;              /* signed bytes (owned copy) */
	size_t raw_len;
	uint8_t sig[64];
	dcap_chain chain;       /* signer + root, as given */
	dcap_item_state chain_state;
	char chain_why[160];
} dcap_signed_doc;

typedef struct dcap_crl_item {
	dcap_item_state state;
	char why[160];
	X509_CRL *crl;
} dcap_crl_item;

typedef struct dcap_collateral {
	bool bundle_given;
	bool bundle_bad;
	char bundle_why[160];
	dcap_signed_doc tcb_doc;
	dcap_tcb_info tcb;          /* valid when tcb_doc.state == OK */
	dcap_signed_doc qe_doc;
	dcap_qe_identity qe;        /* valid when qe_doc.state == OK */
	dcap_crl_item pck_crl, root_crl;
	dcap_item_state root_state; /* in->root_ca */
	char root_why[160];
	X509 *root_ca;
} dcap_collateral;

/* Loads everything the input gives; only CF_ERR_NOMEM is an error, bad
 * items are recorded (state BAD, why) for the checks to report. */
cf_err dcap_collateral_load(const cf_evidence_input *in, dcap_collateral *c) CF_WUR;
void dcap_collateral_free(dcap_collateral *c);

/* Exposed for tests and the verifier. */
cf_err dcap_tcb_info_parse(const char *text, size_t len, dcap_tcb_info *out, char *why,
			   size_t whylen) CF_WUR;
void dcap_tcb_info_free(dcap_tcb_info *t);
cf_err dcap_qe_identity_parse(const char *text, size_t len, dcap_qe_identity *out, char *why,
			      size_t whylen) CF_WUR;
void dcap_qe_identity_free(dcap_qe_identity *q);
/* The exact bytes of a top-level member's value in a JSON object text. */
cf_err dcap_json_member_span(const char *text, size_t len, const char *key, size_t *start,
			     size_t *end) CF_WUR;

/* --- TCB status (Intel QVL) --- */

/* Statuses beyond cf_tcb_status that end an evaluation. */
#define DCAP_ST_NOT_SUPPORTED 100   /* no matching level */
#define DCAP_ST_MODULE_MISMATCH 101 /* TDX module identity missing / wrong */
#define DCAP_ST_NONE (-1)           /* not evaluated (e.g. no QE identity) */

typedef struct dcap_tcb_eval {
	long sgx_level;         /* index into tcb levels, -1 if none */
	long tdx_level;         /* -1 if none or SGX */
	int sgx_status;         /* cf_tcb_status or DCAP_ST_* */
	int tdx_status;
	int module_status;      /* DCAP_ST_NONE for SGX */
	int qe_status;          /* DCAP_ST_NONE without QE identity */
	int final_status;
	bool relaunch_advised;  /* TD 1.5: QVL's TD_RELAUNCH_ADVISED[_CONFIGURATION_NEEDED] */
} dcap_tcb_eval;

/* First level (in sorted order) whose SGX components and PCESVN are <= the PCK's. */
bool dcap_sgx_level_ok(const dcap_tcb_level *l, const dcap_pck_ext *pck);
bool dcap_tdx_level_ok(const dcap_tcb_level *l, const uint8_t tee_tcb_svn[16]);
/* The module identity for a TDX module major version ("TDX_%02X"), or NULL. */
const dcap_module_identity *dcap_find_module(const dcap_tcb_info *t, uint8_t version);
/* Status of an ISV level list for an ISVSVN: DCAP_ST_NOT_SUPPORTED if none. */
int dcap_isv_status(const dcap_isv_level *levels, size_t n, uint16_t isv_svn, long *index);
/* QE identity status as QVL's EnclaveReportVerifier reports it
 * (UpToDate, OutOfDate, Revoked or DCAP_ST_NOT_SUPPORTED). */
int dcap_qe_tcb_status(const dcap_qe_identity *qe, uint16_t isv_svn, long *index);
/* TDX module TCB status (QVL checkTdxModuleTcbStatus). */
int dcap_module_tcb_status(const dcap_tcb_info *t, const dcap_quote *q, long *index);
/*
 * The whole of QVL checkTcbLevel: matched levels, module and QE
 * convergence, TD 1.5 relaunch. qe_status is DCAP_ST_NONE without QE
 * identity.
 */
void dcap_tcb_evaluate(const dcap_tcb_info *t, const dcap_pck_ext *pck, const dcap_quote *q,
		       int qe_status, dcap_tcb_eval *out);
const char *dcap_status_name(int st);

/* --- caches (dcap_cache.c) --- */

typedef struct dcap_shared_collateral dcap_shared_collateral;

/* A decoded certificate (new reference) for exactly these DER bytes, or NULL. */
X509 *dcap_cache_cert(const uint8_t *der, size_t len);
/* check(child, parent), remembered under tag by the two certificates' fingerprints. */
bool dcap_memo_link(const char *tag, X509 *child, X509 *parent, bool (*check)(X509 *, X509 *));
/* dcap_cert_verify_raw, remembered by signer, message and signature. */
bool dcap_memo_raw(X509 *signer, const uint8_t *msg, size_t len, const uint8_t sig[64]);
/* X509_CRL_verify with issuer's key, remembered by CRL and issuer. */
bool dcap_memo_crl(X509_CRL *crl, X509 *issuer);
/* The parsed collateral of in (shared, read-only); release when done. */
cf_err dcap_collateral_acquire(const cf_evidence_input *in, dcap_shared_collateral **out) CF_WUR;
const dcap_collateral *dcap_collateral_of(const dcap_shared_collateral *s);
void dcap_collateral_release(dcap_shared_collateral *s);
/* Empties every cache (tests, benchmarks). */
void dcap_cache_flush(void);
/* Empties the certificate cache and the signature results only. */
void dcap_cache_flush_certs(void);

#endif
