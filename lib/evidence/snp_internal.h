/*
 * snp_internal: the AMD SEV-SNP verifier's pieces, shared by
 * lib/evidence/snp*.c and by the tests, the fuzzer and benchmarks.
 *
 * The public entry is cf_evidence_verify_snp (coffer/evidence.h), which
 * parses the certificates on every call. A verifier of many reports from
 * the same platform loads the VCEK/VLEK and its chain once
 * (cf_snp_certs_load: parsing, ARK pin and the three RSA-PSS signatures)
 * and then calls cf_snp_verify_report per report (strict parse, validity
 * at the given time, the report's ECDSA signature and the binding checks).
 * A loaded cf_snp_certs is immutable, so threads may share it.
 *
 * Layout and checks: /work/shared/testdata/FORMATS.md section 1; AMD pub.
 * 56860 (SNP firmware ABI, ATTESTATION_REPORT) and pub. 57230 (VCEK/KDS).
 */
#ifndef COFFER_EVIDENCE_SNP_INTERNAL_H
#define COFFER_EVIDENCE_SNP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "coffer/err.h"
#include "coffer/evidence.h"

#define CF_SNP_REPORT_LEN 0x4A0 /* 1184 */
#define CF_SNP_SIGNED_LEN 0x2A0 /* bytes 0x000..0x29F are signed */
#define CF_SNP_SIG_COMPONENT_LEN 72
#define CF_SNP_VERSION_MIN 2
#define CF_SNP_VERSION_MAX 5

/* POLICY bits (ABI 56860, GUEST_POLICY). */
#define CF_SNP_POLICY_SMT (1ull << 16)
#define CF_SNP_POLICY_RESERVED_ONE (1ull << 17)
#define CF_SNP_POLICY_MIGRATE_MA (1ull << 18)
#define CF_SNP_POLICY_DEBUG (1ull << 19)
#define CF_SNP_POLICY_SINGLE_SOCKET (1ull << 20)
#define CF_SNP_POLICY_CXL_ALLOW (1ull << 21)
#define CF_SNP_POLICY_MEM_AES_256_XTS (1ull << 22)
#define CF_SNP_POLICY_RAPL_DIS (1ull << 23)
#define CF_SNP_POLICY_CIPHERTEXT_HIDING (1ull << 24)
#define CF_SNP_POLICY_PAGE_SWAP_DISABLE (1ull << 25)
#define CF_SNP_POLICY_MBZ (~0ull << 26) /* bits 63:26 */

/* flags at 0x48 (KEY_INFO). */
#define CF_SNP_FLAG_AUTHOR_KEY_EN 0x1u
#define CF_SNP_FLAG_MASK_CHIP_KEY 0x2u
#define CF_SNP_FLAGS_MBZ (~0u << 5) /* bits 31:5 */
#define CF_SNP_SIGNING_KEY(flags) (((flags) >> 2) & 7u)
#define CF_SNP_SIGNING_KEY_VCEK 0u
#define CF_SNP_SIGNING_KEY_VLEK 1u
#define CF_SNP_SIGNING_KEY_NONE 7u

/* PLATFORM_INFO: bits 0..7 defined (go-sev-guest accepts these), 63:8 MBZ. */
#define CF_SNP_PLATFORM_INFO_MBZ (~0ull << 8)

typedef enum cf_snp_product {
	CF_SNP_PRODUCT_UNKNOWN = 0,
	CF_SNP_PRODUCT_MILAN,
	CF_SNP_PRODUCT_GENOA,
	CF_SNP_PRODUCT_TURIN,
} cf_snp_product;

/* "Milan", "Genoa", "Turin" or "unknown". */
const char *cf_snp_product_name(cf_snp_product p);
/* AMD 57230 product table: family 19h models 00h-0Fh Milan, 10h-1Fh and
 * A0h-AFh Genoa; family 1Ah models 00h-1Fh Turin. */
cf_snp_product cf_snp_product_from_cpuid(uint8_t family, uint8_t model);

/* A TCB_VERSION split into its parts; fmc only exists in Turin's layout. */
typedef struct cf_snp_tcb {
	uint64_t raw;
	bool turin;
	uint8_t fmc, bootloader, tee, snp, microcode;
} cf_snp_tcb;

cf_snp_tcb cf_snp_tcb_decode(uint64_t raw, bool turin_layout);

/* A parsed ATTESTATION_REPORT (every field; the signature stays LE). */
typedef struct cf_snp_report {
	uint32_t version;
	uint32_t guest_svn;
	uint64_t policy;
	uint8_t family_id[16];
	uint8_t image_id[16];
	uint32_t vmpl;
	uint32_t signature_algo;
	uint64_t current_tcb;
	uint64_t platform_info;
	uint32_t flags;
	uint8_t report_data[64];
	uint8_t measurement[48];
	uint8_t host_data[32];
	uint8_t id_key_digest[48];
	uint8_t author_key_digest[48];
	uint8_t report_id[32];
	uint8_t report_id_ma[32];
	uint64_t reported_tcb;
	uint8_t cpuid_fam_id, cpuid_mod_id, cpuid_step; /* v3+; zero in v2 */
	uint8_t chip_id[64];
	uint64_t committed_tcb;
	uint8_t current_build, current_minor, current_major;
	uint8_t committed_build, committed_minor, committed_major;
	uint64_t launch_tcb;
	uint64_t launch_mit_vector;  /* v5+; zero before */
	uint64_t current_mit_vector; /* v5+; zero before */
	uint8_t sig_r[CF_SNP_SIG_COMPONENT_LEN]; /* little-endian, zero-extended */
	uint8_t sig_s[CF_SNP_SIG_COMPONENT_LEN];
} cf_snp_report;

/*
 * Strict parse of exactly CF_SNP_REPORT_LEN bytes. On failure (CF_ERR_TRUNCATED,
 * CF_ERR_TRAILING, CF_ERR_UNSUPPORTED for a version or algorithm, CF_ERR_PARSE
 * for a reserved field) `why` names the first violation and its offset.
 */
cf_err cf_snp_report_parse(const uint8_t *data, size_t len, cf_snp_report *out, char *why,
			   size_t whylen) CF_WUR;

/* True if the report's TCB fields use Turin's layout (v3+ with family 1Ah). */
bool cf_snp_report_turin_layout(const cf_snp_report *r);

/* Sets every claim the report carries (measurements, policy, TCBs, ...). */
void cf_snp_report_claims(const cf_snp_report *r, bool turin_layout, cf_verdict *v);

/* --- certificates --- */

typedef struct cf_snp_certs cf_snp_certs;

/*
 * Parses the VCEK or VLEK (DER or one PEM certificate) and the chain (PEM:
 * the ASK or ASVK and the ARK; a bundle with more AMD intermediates, such
 * as ASK+ARK+ASVK, is accepted and the intermediate that issued the leaf is
 * used), then pins the ARK and checks the chain's signatures once. Fails
 * only if a certificate cannot be parsed or the chain has no root (with
 * `why`) or on allocation failure; check outcomes are kept for
 * cf_snp_certs_check and cf_snp_verify_report.
 */
cf_err cf_snp_certs_load(const cf_blob *vek, const cf_blob *chain, cf_snp_certs **out, char *why,
			 size_t whylen) CF_WUR;
void cf_snp_certs_free(cf_snp_certs *c);

/* The chain's product (from the pinned ARK, else the ARK's CN). */
cf_snp_product cf_snp_certs_product(const cf_snp_certs *c);
/* True if the leaf is a VLEK (CN "SEV-VLEK"). */
bool cf_snp_certs_is_vlek(const cf_snp_certs *c);

/*
 * Records the chain checks: certificates, ark_pinned, ark_self_signature,
 * ask_signature, vcek_signature, cert_validity (at `at`). The chain-only
 * verification (a VCEK without a report) is these checks alone.
 */
void cf_snp_certs_check(const cf_snp_certs *c, time_t at, cf_verdict *v);

/*
 * Records the checks that bind a parsed report to the certificates:
 * signing_key, product, vcek_product, report_signature (over raw, the
 * report's bytes), vcek_tcb and chip_id.
 */
void cf_snp_check_binding(const cf_snp_certs *c, const cf_snp_report *r, const uint8_t *raw,
			  bool turin_layout, cf_verdict *v);

/*
 * Verifies one report against loaded certificates (c may be NULL when they
 * could not be loaded: cert_error then says why, and the checks that need
 * them fail or are not checked). Initialises v. Returns CF_OK when a
 * verdict was reached, CF_ERR_NOMEM if the claims could not be allocated.
 */
cf_err cf_snp_verify_report(const cf_snp_certs *c, const char *cert_error, const uint8_t *report,
			    size_t len, time_t at, cf_verdict *v) CF_WUR;

#endif
