/* Placeholder until the snp verifier lands: refuses, never passes. */
#include "coffer/evidence.h"

cf_err cf_evidence_verify_snp(const cf_evidence_input *in, cf_verdict *v)
{
	cf_verdict_init(v, CF_TEE_SNP);
	cf_verdict_fail(v, "format", "a supported evidence format", "%s", "not implemented yet");
	return v->claims ? CF_OK : CF_ERR_NOMEM;
}
