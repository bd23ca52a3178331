/*
 * csv_internal: the Hygon CSV formats (private to lib/evidence/csv*.c).
 *
 * Hygon signs with SM2 over SM3 along HRK -> HSK -> CEK -> PEK -> report.
 * The HRK and HSK use an 832-byte "CA" certificate, the CEK and PEK a
 * 2084-byte "CSV" certificate; the PEK travels inside the 2548-byte V1
 * attestation report. All integers are little-endian; public keys and
 * signatures hold 256-bit values in 72-byte little-endian slots whose top
 * 40 bytes must be zero. Layouts: /work/shared/testdata/FORMATS.md section 4
 * (from wojiaohanliyang/csv-rs and the rats-tls hygoncert.h structures).
 *
 * The parsers are strict: exact sizes, known versions, usages and
 * algorithms, and zero in every reserved byte. On failure they return
 * CF_ERR_PARSE / CF_ERR_TRUNCATED / CF_ERR_TRAILING and write a short
 * reason naming the offset into why (never the bytes themselves).
 *
 * Signature verification (csv_sm.c) memoises certificate signatures: an
 * HRK/HSK/CEK/PEK signature is verified once per distinct (key, ID,
 * body, signature), so a verifier that sees the same chain again pays
 * only for the report's own signature.
 */
#ifndef COFFER_EVIDENCE_CSV_INTERNAL_H
#define COFFER_EVIDENCE_CSV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coffer/err.h"

#define CSV_CA_CERT_LEN 832       /* HRK, HSK */
#define CSV_CA_BODY_LEN 576       /* signed part of a CA certificate */
#define CSV_CERT_LEN 2084         /* CEK, PEK (and OCA, PDH) */
#define CSV_CERT_BODY_LEN 1044    /* signed part of a CSV certificate */
#define CSV_HSK_CEK_LEN (CSV_CA_CERT_LEN + CSV_CERT_LEN) /* as served by the Hygon KDS */
#define CSV_REPORT_V1_LEN 2548
#define CSV_TEE_INFO_LEN 0x150
#define CSV_XOR_LEN 0xBC          /* tee info bytes XORed with anonce */
#define CSV_REPORT_SIGNED_LEN 0xB4 /* user_pubkey_digest .. policy */
#define CSV_SIGNER_MAC_DATA_LEN (CSV_CERT_LEN + 64 + 32) /* PEK || SN || reserved */
#define CSV_SN_LEN 64
#define CSV_MAC_LEN 32
#define CSV_KEY_ID_LEN 16
#define CSV_UID_MAX 254
#define CSV_SM2_LEN 32            /* significant bytes of a coordinate or r/s */

/* Key usages (u32). */
#define CSV_USAGE_HRK 0x0000u
#define CSV_USAGE_HSK 0x0013u
#define CSV_USAGE_INVALID 0x1000u /* an empty signature slot */
#define CSV_USAGE_OCA 0x1001u
#define CSV_USAGE_PEK 0x1002u
#define CSV_USAGE_PDH 0x1003u
#define CSV_USAGE_CEK 0x1004u

/* Key algorithms (u32). */
#define CSV_ALGO_SM2_SIG 4u
#define CSV_ALGO_SM2_DH 5u

#define CSV_CURVE_SM2 3u

/* Guest policy bits (report policy field, after the anonce XOR). */
#define CSV_POLICY_NODBG (1u << 0)
#define CSV_POLICY_NOKS (1u << 1)
#define CSV_POLICY_ES (1u << 2)
#define CSV_POLICY_NOSEND (1u << 3)
#define CSV_POLICY_DOMAIN (1u << 4)
#define CSV_POLICY_CSV (1u << 5)
#define CSV_POLICY_CSV3 (1u << 6)
#define CSV_POLICY_ASID_REUSE (1u << 7)

#define CSV_WHY_LEN 160

/* An SM2 public key: x, y little-endian as stored (32 significant bytes). */
typedef struct csv_pubkey {
	uint8_t x[CSV_SM2_LEN];
	uint8_t y[CSV_SM2_LEN];
} csv_pubkey;

/* An SM2 signature: r, s little-endian as stored. */
typedef struct csv_sig {
	uint8_t r[CSV_SM2_LEN];
	uint8_t s[CSV_SM2_LEN];
} csv_sig;

/* HRK or HSK (832 bytes). */
typedef struct csv_ca_cert {
	uint32_t version;
	uint8_t key_id[CSV_KEY_ID_LEN];
	uint8_t sig_id[CSV_KEY_ID_LEN];  /* the certifying key's key_id */
	uint32_t usage;
	csv_pubkey key;
	uint16_t uid_len;
	uint8_t uid[CSV_UID_MAX];
	csv_sig sig;
	uint8_t body[CSV_CA_BODY_LEN];   /* the signed bytes */
} csv_ca_cert;

typedef struct csv_sig_slot {
	uint32_t usage;                  /* the signer's usage; CSV_USAGE_INVALID if empty */
	uint32_t algo;
	csv_sig sig;
} csv_sig_slot;

/* CEK or PEK (2084 bytes). */
typedef struct csv_cert {
	uint32_t version;
	uint8_t fw_major, fw_minor;      /* firmware API version that made the key */
	uint32_t usage;
	uint32_t algo;
	csv_pubkey key;
	uint16_t uid_len;
	uint8_t uid[CSV_UID_MAX];
	uint8_t sid[CSV_KEY_ID_LEN];
	csv_sig_slot slots[2];
	uint8_t body[CSV_CERT_BODY_LEN]; /* the signed bytes */
} csv_cert;

/* The V1 attestation report, decoded (anonce XOR undone). */
typedef struct csv_report {
	uint8_t user_pubkey_digest[32];
	uint8_t vm_id[16];
	uint8_t vm_version[16];
	uint8_t report_data[64];
	uint8_t mnonce[16];
	uint8_t measure[32];
	uint32_t policy;
	uint32_t sig_usage;
	uint32_t sig_algo;
	uint32_t anonce;                 /* as stored (not XORed) */
	csv_sig sig;
	const uint8_t *signed_data;      /* borrowed: raw [0, CSV_REPORT_SIGNED_LEN) */
	csv_cert pek;                    /* decoded from the signer */
	uint8_t sn[CSV_SN_LEN];          /* chip serial number, decoded */
	const uint8_t *mac_data;         /* borrowed: raw PEK || SN || reserved */
	uint8_t mac[CSV_MAC_LEN];
} csv_report;

/*
 * Parses an HRK (want_usage CSV_USAGE_HRK) or HSK (CSV_USAGE_HSK)
 * certificate of exactly CSV_CA_CERT_LEN bytes.
 */
cf_err csv_ca_cert_parse(const uint8_t *p, size_t len, uint32_t want_usage, csv_ca_cert *out,
			 char why[static CSV_WHY_LEN]) CF_WUR;

/* Parses a CEK (CSV_USAGE_CEK) or PEK (CSV_USAGE_PEK) of exactly CSV_CERT_LEN bytes. */
cf_err csv_cert_parse(const uint8_t *p, size_t len, uint32_t want_usage, csv_cert *out,
		      char why[static CSV_WHY_LEN]) CF_WUR;

/*
 * The slot signed by a key of the given usage: NULL if none. The parser
 * guarantees at most one slot per usage.
 */
const csv_sig_slot *csv_cert_slot(const csv_cert *c, uint32_t signer_usage);

/* Parses a V1 report in raw firmware form (exactly CSV_REPORT_V1_LEN bytes). */
cf_err csv_report_parse(const uint8_t *p, size_t len, csv_report *out,
			char why[static CSV_WHY_LEN]) CF_WUR;

/*
 * The serial number as a C string if it is printable ASCII followed only
 * by NUL padding; false otherwise (out then holds a hex rendering).
 */
bool csv_sn_string(const uint8_t sn[static CSV_SN_LEN], char out[static 2 * CSV_SN_LEN + 1]);

/*
 * SM2 signature over msg with SM3 and the signer's distinguishing ID (its
 * user_id). CF_OK if valid, CF_ERR_AUTH if not, CF_ERR_PARSE if the key
 * is not a point on the SM2 curve, CF_ERR_CRYPTO / CF_ERR_NOMEM otherwise.
 * With memo, the outcome (valid or not) is remembered per
 * SHA-256(key, ID, msg, signature); use it for certificates, not reports.
 */
cf_err csv_sm2_verify(const csv_pubkey *key, const uint8_t *uid, size_t uidlen, const uint8_t *msg,
		      size_t msglen, const csv_sig *sig, bool memo) CF_WUR;

/* HMAC-SM3. */
cf_err csv_hmac_sm3(const uint8_t *key, size_t keylen, const uint8_t *data, size_t len,
		    uint8_t out[static CSV_MAC_LEN]) CF_WUR;

/* Forgets every remembered certificate signature outcome (benchmarks). */
void csv_memo_clear(void);

#endif
