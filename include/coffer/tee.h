/*
 * tee: one interface over every trusted execution environment.
 *
 * An enclave program asks its provider for evidence binding 64 bytes of
 * its own data (a hash of its TLS key, a verifier's nonce), for a sealing
 * key bound to its measurement, and for a description of the TEE it runs
 * in. The provider is chosen by what the machine offers; the evidence
 * always names the kind, so a run protected only by the software TEE can
 * never pass for a hardware one.
 *
 * Providers: soft (implemented: coffer-launch over an inherited socket),
 * sgx (Gramine's /dev/attestation), tdx and snp (Linux configfs-tsm,
 * /sys/kernel/config/tsm/report), csv (Hygon guest ioctl). The hardware
 * providers detect their interface today and return CF_ERR_UNSUPPORTED
 * for evidence until their issue lands.
 */
#ifndef COFFER_TEE_H
#define COFFER_TEE_H

#include <stdbool.h>
#include <stdint.h>

#include "coffer/buf.h"
#include "coffer/err.h"

#define CF_REPORT_DATA_LEN 64
#define CF_SEAL_KEY_LEN 32

typedef enum cf_tee_kind {
	CF_TEE_NONE = 0,
	CF_TEE_SOFT = 1,
	CF_TEE_SGX = 2,
	CF_TEE_TDX = 3,
	CF_TEE_SNP = 4,
	CF_TEE_CSV = 5,
} cf_tee_kind;

const char *cf_tee_kind_name(cf_tee_kind kind);
cf_err cf_tee_kind_parse(const char *name, cf_tee_kind *out) CF_WUR;

typedef struct cf_tee_info {
	cf_tee_kind kind;
	bool hardware;            /* false for soft: see docs/soft-tee.md */
	uint8_t measurement[48];  /* soft: SHA-384 of program, runtime, manifest */
	uint8_t instance_id[16];
	char description[128];
} cf_tee_info;

typedef struct cf_tee_provider {
	cf_tee_kind kind;
	/* CF_OK if this provider's interface is present in this process. */
	cf_err (*detect)(void);
	/* Evidence over report_data, in the provider's native format. */
	cf_err (*evidence)(const uint8_t report_data[CF_REPORT_DATA_LEN], cf_buf *out);
	/* A key bound to this program's measurement and the label. */
	cf_err (*seal_key)(const char *label, uint8_t key[CF_SEAL_KEY_LEN]);
	cf_err (*describe)(cf_tee_info *info);
} cf_tee_provider;

/* The provider of a kind (never NULL for a valid kind). */
const cf_tee_provider *cf_tee_provider_of(cf_tee_kind kind);
/* The first provider whose interface is present; CF_ERR_NOT_FOUND if none. */
cf_err cf_tee_detect(const cf_tee_provider **out) CF_WUR;

#endif
