/*
 * Dispatch to the per-kind verifiers, and the soft TEE's adapter.
 */
#include <string.h>

#include "coffer/enc.h"
#include "coffer/evidence.h"
#include "coffer/soft.h"

cf_err cf_evidence_verify(const cf_evidence_input *in, cf_verdict *v)
{
	if (!in || !v)
		return CF_ERR_ARG;
	switch (in->kind) {
	case CF_TEE_SOFT:
		return cf_evidence_verify_soft(in, v);
	case CF_TEE_SNP:
		return cf_evidence_verify_snp(in, v);
	case CF_TEE_SGX:
	case CF_TEE_TDX:
		return cf_evidence_verify_dcap(in, v);
	case CF_TEE_CSV:
		return cf_evidence_verify_csv(in, v);
	default:
		return CF_ERR_ARG;
	}
}

cf_err cf_evidence_verify_soft(const cf_evidence_input *in, cf_verdict *v)
{
	cf_soft_report r;
	cf_verdict_init(v, CF_TEE_SOFT);
	if (!v->claims)
		return CF_ERR_NOMEM;
	cf_claims_set(v, "hardware", json_false());
	cf_err rc = cf_soft_report_parse(in->evidence.data, in->evidence.len, &r);
	if (rc != CF_OK) {
		cf_verdict_fail(v, "format", "a 352-byte soft report, version 1", "%s (%zu bytes)",
				cf_strerror(rc), in->evidence.len);
		return CF_OK;
	}
	cf_verdict_pass(v, "format", "soft report version %u", r.version);
	cf_claims_measurement(v, "measurement", r.measurement, sizeof(r.measurement));
	cf_claims_set_hex(v, "report_data", r.report_data, sizeof(r.report_data));
	cf_claims_set_hex(v, "instance_id", r.instance_id, sizeof(r.instance_id));
	cf_claims_set_hex(v, "platform_id", r.platform_id, sizeof(r.platform_id));
	cf_claims_set(v, "launcher_version", json_string(r.launcher_version));
	cf_claims_set(v, "evidence_time", json_integer((json_int_t)r.launch_time));
	v->debug = r.flags & CF_SOFT_FLAG_DEBUG;
	cf_claims_set(v, "debug", json_boolean(v->debug));
	/* Soft has no TCB: the host's kernel is the TCB. */
	cf_claims_set(v, "tcb_status", json_string("NotApplicable"));
	if (!in->platform_cert.data) {
		cf_verdict_fail(v, "platform_signature", "a platform certificate (--platform-cert)",
				"none given");
		return CF_OK;
	}
	uint8_t cert_id[32];
	rc = cf_soft_cert_platform_id((const char *)in->platform_cert.data, in->platform_cert.len,
				      cert_id);
	if (rc != CF_OK) {
		cf_verdict_fail(v, "platform_certificate", "a PEM X.509 certificate", "%s",
				cf_strerror(rc));
		return CF_OK;
	}
	char want[65], got[65];
	cf_hex_encode(cert_id, 32, want);
	cf_hex_encode(r.platform_id, 32, got);
	cf_verdict_expect(v, "platform_id", cf_ct_equal(cert_id, r.platform_id, 32), want, "%s", got);
	rc = cf_soft_report_verify(in->evidence.data, in->evidence.len,
				   (const char *)in->platform_cert.data, in->platform_cert.len, &r);
	cf_verdict_expect(v, "platform_signature", rc == CF_OK,
			  "ECDSA P-384 signature by the platform key", "%s",
			  rc == CF_OK ? "valid" : cf_strerror(rc));
	return CF_OK;
}
