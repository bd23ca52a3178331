/* Placeholder until the dcap verifier lands: refuses, never passes. */
#include "coffer/evidence.h"

cf_err cf_evidence_verify_dcap(const cf_evidence_input *in, cf_verdict *v)
{
	cf_verdict_init(v, in->kind);
	cf_verdict_fail(v, "format", "a supported evidence format", "%s", "not implemented yet");
	return v->claims ? CF_OK : CF_ERR_NOMEM;
}
