/*
 * soft: the software TEE's report, platform identity and sealing.
 *
 * coffer-launch (the soft TEE's "hardware") signs reports with the host's
 * platform key, an ECDSA P-384 key whose self-signed certificate is what a
 * verifier trusts, as it trusts AMD's ARK or Intel's root. A report is a
 * fixed 352-byte little-endian structure (docs/soft-tee.md):
 *
 *   0  magic "CFSR"      4    16 launch_time u64    8   88 report_data 64
 *   4  version u16 = 1   2    24 instance_id       16  152 platform_id 32
 *   6  tee u16 = 1       2    40 measurement       48  184 launcher_version 16
 *   8  flags u32         4                              200 reserved (zero) 56
 *  12  reserved u32 = 0  4   256 signature: ECDSA P-384 r||s, big-endian, 96
 *
 * flags bit 0 is "debug". platform_id is SHA-256 of the platform key's
 * SubjectPublicKeyInfo (DER). Parsing is strict: exact size, known
 * version, tee and flags, zero reserved bytes, NUL-padded version string.
 */
#ifndef COFFER_SOFT_H
#define COFFER_SOFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coffer/crypto.h"
#include "coffer/err.h"
#include "coffer/tee.h"

#define CF_SOFT_REPORT_VERSION 1
#define CF_SOFT_SIGNED_LEN 256
#define CF_SOFT_SIG_LEN 96
#define CF_SOFT_REPORT_LEN (CF_SOFT_SIGNED_LEN + CF_SOFT_SIG_LEN)
#define CF_SOFT_FLAG_DEBUG 1u

typedef struct cf_soft_report {
	uint16_t version;
	uint32_t flags;
	uint64_t launch_time; /* Unix seconds */
	uint8_t instance_id[16];
	uint8_t measurement[48];
	uint8_t report_data[CF_REPORT_DATA_LEN];
	uint8_t platform_id[32];
	char launcher_version[17]; /* NUL-terminated */
} cf_soft_report;

/* Serialises the signed part (CF_SOFT_SIGNED_LEN bytes). */
void cf_soft_report_encode(const cf_soft_report *r, uint8_t out[static CF_SOFT_SIGNED_LEN]);
/* Encodes and signs with the platform key: CF_SOFT_REPORT_LEN bytes. */
cf_err cf_soft_report_sign(cf_pkey *platform_key, const cf_soft_report *r,
			   uint8_t out[static CF_SOFT_REPORT_LEN]) CF_WUR;
/* Strict structural parse; does not check the signature. */
cf_err cf_soft_report_parse(const uint8_t *data, size_t len, cf_soft_report *out) CF_WUR;
/*
 * Parses, then verifies the signature with the certificate's key and that
 * platform_id names that key. CF_ERR_AUTH for a bad signature or a report
 * from another platform.
 */
cf_err cf_soft_report_verify(const uint8_t *data, size_t len, const char *cert_pem,
			     size_t cert_len, cf_soft_report *out) CF_WUR;

/* --- the platform (used by coffer-launch, which runs as root) --- */

#define CF_SOFT_DEFAULT_PLATFORM_DIR "/var/lib/coffer/platform"

typedef struct cf_soft_platform {
	cf_pkey *key;
	uint8_t platform_id[32];
	uint8_t seal_secret[32];
} cf_soft_platform;

/*
 * Creates dir (0700) with key.pem (0600), seal.secret (0600) and cert.pem
 * (0644). Refuses to overwrite an existing platform unless force.
 */
cf_err cf_soft_platform_init(const char *dir, const char *hostname, bool force) CF_WUR;
/* Loads key and seal secret; refuses group/world-readable secret files. */
cf_err cf_soft_platform_load(const char *dir, cf_soft_platform *p) CF_WUR;
void cf_soft_platform_free(cf_soft_platform *p);
/* Reads dir/cert.pem into out. */
cf_err cf_soft_platform_cert(const char *dir, cf_buf *out) CF_WUR;
/* platform_id of a certificate (SHA-256 of its SubjectPublicKeyInfo). */
cf_err cf_soft_cert_platform_id(const char *cert_pem, size_t len, uint8_t id[static 32]) CF_WUR;

/*
 * The sealing key of a measurement:
 * HKDF-SHA-256(seal_secret, salt = measurement, info = "coffer-soft-seal-v1" || label).
 */
cf_err cf_soft_seal_key(const uint8_t seal_secret[static 32], const uint8_t measurement[static 48],
			const char *label, uint8_t key[static CF_SEAL_KEY_LEN]) CF_WUR;

/* --- the launcher <-> enclave protocol (SOCK_SEQPACKET, one message each way) --- */

#define CF_SOFT_FD_ENV "COFFER_TEE_FD"
#define CF_SOFT_MAX_LABEL 64

enum cf_soft_msg {
	CF_SOFT_MSG_REPORT = 1, /* request: 64 bytes report_data; reply: report */
	CF_SOFT_MSG_SEAL = 2,   /* request: label (1..64 bytes); reply: 32-byte key */
	CF_SOFT_MSG_INFO = 3,   /* request: empty; reply: 48 measurement + 16 instance id */
};

/*
 * Client side, usable without OpenSSL: one request, one reply. Requests
 * carry a version byte and the type; replies a status byte (0 = ok).
 */
#define CF_SOFT_PROTO_VERSION 1
cf_err cf_soft_call(int fd, enum cf_soft_msg type, const void *req, size_t reqlen, void *reply,
		    size_t replycap, size_t *replylen) CF_WUR;
/* The fd from CF_SOFT_FD_ENV, or CF_ERR_NOT_FOUND outside a soft enclave. */
cf_err cf_soft_fd(int *fd) CF_WUR;

#endif
