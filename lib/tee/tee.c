/*
 * The TEE provider table. soft is complete; the hardware providers detect
 * their kernel interface and refuse evidence until implemented, so that a
 * machine with a real TEE is never silently served by the wrong provider.
 */
#include <string.h>
#include <unistd.h>

#include "coffer/soft.h"
#include "coffer/tee.h"

static const char *const kind_names[] = { "none", "soft", "sgx", "tdx", "snp", "csv" };

const char *cf_tee_kind_name(cf_tee_kind kind)
{
	if ((unsigned)kind < sizeof(kind_names) / sizeof(kind_names[0]))
		return kind_names[kind];
	return "unknown";
}

cf_err cf_tee_kind_parse(const char *name, cf_tee_kind *out)
{
	for (unsigned i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++) {
		if (strcmp(name, kind_names[i]) == 0) {
			*out = (cf_tee_kind)i;
			return CF_OK;
		}
	}
	return CF_ERR_ARG;
}

/* --- soft: ask coffer-launch over the inherited socket --- */

static cf_err soft_detect(void)
{
	int fd;
	return cf_soft_fd(&fd);
}

static cf_err soft_evidence(const uint8_t report_data[CF_REPORT_DATA_LEN], cf_buf *out)
{
	int fd;
	uint8_t report[CF_SOFT_REPORT_LEN];
	size_t len = 0;
	cf_err rc = cf_soft_fd(&fd);
	if (rc == CF_OK)
		rc = cf_soft_call(fd, CF_SOFT_MSG_REPORT, report_data, CF_REPORT_DATA_LEN, report,
				  sizeof(report), &len);
	if (rc == CF_OK && len != CF_SOFT_REPORT_LEN)
		rc = CF_ERR_PARSE;
	if (rc == CF_OK)
		rc = cf_buf_append(out, report, len);
	return rc;
}

static cf_err soft_seal_key(const char *label, uint8_t key[CF_SEAL_KEY_LEN])
{
	int fd;
	size_t len = 0;
	size_t llen = strlen(label);
	if (llen == 0 || llen > CF_SOFT_MAX_LABEL)
		return CF_ERR_ARG;
	cf_err rc = cf_soft_fd(&fd);
	if (rc == CF_OK)
		rc = cf_soft_call(fd, CF_SOFT_MSG_SEAL, label, llen, key, CF_SEAL_KEY_LEN, &len);
	if (rc == CF_OK && len != CF_SEAL_KEY_LEN)
		rc = CF_ERR_PARSE;
	if (rc != CF_OK)
		cf_wipe(key, CF_SEAL_KEY_LEN);
	return rc;
}

static cf_err soft_describe(cf_tee_info *info)
{
	int fd;
	uint8_t reply[64];
	size_t len = 0;
	memset(info, 0, sizeof(*info));
	cf_err rc = cf_soft_fd(&fd);
	if (rc == CF_OK)
		rc = cf_soft_call(fd, CF_SOFT_MSG_INFO, NULL, 0, reply, sizeof(reply), &len);
	if (rc == CF_OK && len != sizeof(reply))
		rc = CF_ERR_PARSE;
	if (rc != CF_OK)
		return rc;
	info->kind = CF_TEE_SOFT;
	info->hardware = false;
	memcpy(info->measurement, reply, 48);
	memcpy(info->instance_id, reply + 48, 16);
	strcpy(info->description,
	       "software TEE (memfd_secret): no memory encryption, trusts the host kernel");
	return CF_OK;
}

/* --- hardware: interface detection only, for now --- */

static cf_err sgx_detect(void)
{
	return access("/dev/attestation/quote", R_OK) == 0 ? CF_OK : CF_ERR_NOT_FOUND;
}

static cf_err tsm_detect(void)
{
	return access("/sys/kernel/config/tsm/report", W_OK) == 0 ? CF_OK : CF_ERR_NOT_FOUND;
}

static cf_err csv_detect(void)
{
	return access("/dev/csv-guest", R_OK | W_OK) == 0 ? CF_OK : CF_ERR_NOT_FOUND;
}

static cf_err absent(void)
{
	return CF_ERR_NOT_FOUND;
}

static cf_err hw_evidence(const uint8_t report_data[CF_REPORT_DATA_LEN], cf_buf *out)
{
	return CF_ERR_UNSUPPORTED;
}

static cf_err hw_seal_key(const char *label, uint8_t key[CF_SEAL_KEY_LEN])
{
	return CF_ERR_UNSUPPORTED;
}

static cf_err hw_describe(cf_tee_info *info)
{
	return CF_ERR_UNSUPPORTED;
}

static const cf_tee_provider providers[] = {
	{ CF_TEE_NONE, absent, hw_evidence, hw_seal_key, hw_describe },
	{ CF_TEE_SOFT, soft_detect, soft_evidence, soft_seal_key, soft_describe },
	{ CF_TEE_SGX, sgx_detect, hw_evidence, hw_seal_key, hw_describe },
	{ CF_TEE_TDX, tsm_detect, hw_evidence, hw_seal_key, hw_describe },
	{ CF_TEE_SNP, tsm_detect, hw_evidence, hw_seal_key, hw_describe },
	{ CF_TEE_CSV, csv_detect, hw_evidence, hw_seal_key, hw_describe },
};

const cf_tee_provider *cf_tee_provider_of(cf_tee_kind kind)
{
	if ((unsigned)kind < sizeof(providers) / sizeof(providers[0]))
		return &providers[kind];
	return &providers[CF_TEE_NONE];
}

cf_err cf_tee_detect(const cf_tee_provider **out)
{
	/* Hardware first: a soft socket inside a real TEE must not win. */
	static const cf_tee_kind order[] = { CF_TEE_SGX, CF_TEE_TDX, CF_TEE_SNP, CF_TEE_CSV,
					     CF_TEE_SOFT };
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		const cf_tee_provider *p = cf_tee_provider_of(order[i]);
		if (p->detect() == CF_OK) {
			*out = p;
			return CF_OK;
		}
	}
	return CF_ERR_NOT_FOUND;
}
