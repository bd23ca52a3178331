/*
 * Intel's TCB status algorithm, as in the QVL (intel/SGX-TDX-DCAP-
 * QuoteVerificationLibrary, Src/AttestationLibrary/src/Verifiers/Checks/
 * TcbLevelCheck.cpp, TdxModuleCheck.cpp, TDRelaunchCheck.cpp and
 * EnclaveReportVerifier.cpp), steps 4.1.2.4.17.x:
 *
 *   - walk the TCB levels highest first; the SGX level is the first whose
 *     16 SGX component SVNs and PCESVN are all <= the PCK certificate's;
 *   - for TDX keep walking (from that level on) until also every
 *     TEE_TCB_SVN byte is >= the level's TDX component (from byte 2 when
 *     TEE_TCB_SVN[1], the module major version, is non-zero);
 *   - the TDX module identity "TDX_%02X" gives the module status from
 *     TEE_TCB_SVN[0]; it converges with the TDX level status, then TD 1.5
 *     quotes get the relaunch check, then the QE identity status
 *     converges: OutOfDate turns UpToDate/SWHardeningNeeded into OutOfDate
 *     and Configuration* into OutOfDateConfigurationNeeded; Revoked wins.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dcap_internal.h"

bool dcap_sgx_level_ok(const dcap_tcb_level *l, const dcap_pck_ext *pck)
{
	for (size_t i = 0; i < 16; i++) {
		if (pck->tcb_comp[i] < l->sgx[i])
			return false;
	}
	return pck->pce_svn >= l->pce_svn;
}

bool dcap_tdx_level_ok(const dcap_tcb_level *l, const uint8_t tee_tcb_svn[16])
{
	for (size_t i = tee_tcb_svn[1] > 0 ? 2 : 0; i < 16; i++) {
		if (tee_tcb_svn[i] < l->tdx[i])
			return false;
	}
	return true;
}

const dcap_module_identity *dcap_find_module(const dcap_tcb_info *t, uint8_t version)
{
	char id[16];
	snprintf(id, sizeof(id), "TDX_%02X", version);
	for (size_t i = 0; i < t->nmodules; i++) {
		if (strcasecmp(t->modules[i].id, id) == 0)
			return &t->modules[i];
	}
	return NULL;
}

int dcap_isv_status(const dcap_isv_level *levels, size_t n, uint16_t isv_svn, long *index)
{
	*index = -1;
	for (size_t i = 0; i < n; i++) {
		if (levels[i].isv_svn <= isv_svn) {
			*index = (long)i;
			return (int)levels[i].status;
		}
	}
	return DCAP_ST_NOT_SUPPORTED;
}

int dcap_qe_tcb_status(const dcap_qe_identity *qe, uint16_t isv_svn, long *index)
{
	int st = dcap_isv_status(qe->levels, qe->nlevels, isv_svn, index);
	if (st == DCAP_ST_NOT_SUPPORTED || st == CF_TCB_UP_TO_DATE || st == CF_TCB_REVOKED)
		return st;
	return CF_TCB_OUT_OF_DATE; /* QVL: any other status counts as ISVSVN out of date */
}

int dcap_module_tcb_status(const dcap_tcb_info *t, const dcap_quote *q, long *index)
{
	uint8_t version = q->td.tee_tcb_svn[1];
	*index = -1;
	if (q->version > 3 && version == 0)
		return CF_TCB_UP_TO_DATE;
	const dcap_module_identity *m = dcap_find_module(t, version);
	if (!m)
		return DCAP_ST_MODULE_MISMATCH;
	return dcap_isv_status(m->levels, m->nlevels, q->td.tee_tcb_svn[0], index);
}

static int converge(int tcb, int other)
{
	if (other == CF_TCB_OUT_OF_DATE) {
		if (tcb == CF_TCB_UP_TO_DATE || tcb == CF_TCB_SW_HARDENING_NEEDED)
			return CF_TCB_OUT_OF_DATE;
		if (tcb == CF_TCB_CONFIGURATION_NEEDED ||
		    tcb == CF_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED)
			return CF_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED;
	}
	if (other == CF_TCB_REVOKED)
		return CF_TCB_REVOKED;
	return tcb;
}

static int converge_qe(int tcb, int qe)
{
	if (qe == DCAP_ST_NONE)
		return tcb;
	if (qe == DCAP_ST_NOT_SUPPORTED) /* QE ISVSVN below every level */
		return DCAP_ST_NOT_SUPPORTED;
	return converge(tcb, qe);
}

static bool config_needed(int st)
{
	return st == CF_TCB_CONFIGURATION_NEEDED || st == CF_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED ||
	       st == CF_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED;
}

/* QVL checkForRelaunch for TD 1.5 quotes: true if a relaunch is advised. */
static int relaunch(const dcap_tcb_info *t, const dcap_quote *q, int sgx, int tdx, int module,
		    int qe, bool *advised)
{
	const uint8_t *svn2 = q->td.tee_tcb_svn2;
	*advised = false;
	if (qe == CF_TCB_OUT_OF_DATE || qe == CF_TCB_REVOKED || qe == DCAP_ST_NOT_SUPPORTED)
		return tdx;
	if (sgx != CF_TCB_UP_TO_DATE && sgx != CF_TCB_SW_HARDENING_NEEDED &&
	    sgx != CF_TCB_CONFIGURATION_NEEDED && sgx != CF_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED)
		return tdx;
	if ((tdx != CF_TCB_OUT_OF_DATE && tdx != CF_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED) ||
	    module != CF_TCB_OUT_OF_DATE || !svn2 || t->nlevels == 0)
		return tdx;
	const dcap_tcb_level *latest = &t->levels[0];
	uint16_t need0 = latest->tdx[0];
	if (svn2[1] != 0) {
		const dcap_module_identity *m2 = dcap_find_module(t, svn2[1]);
		if (!m2)
			return DCAP_ST_MODULE_MISMATCH;
		if (m2->nlevels == 0)
			return DCAP_ST_NOT_SUPPORTED;
		need0 = m2->levels[0].isv_svn;
	}
	if (svn2[0] >= need0 && svn2[2] >= latest->tdx[2]) {
		*advised = true;
		/* TD_RELAUNCH_ADVISED[_CONFIGURATION_NEEDED]: out of date until relaunched. */
		return config_needed(sgx) || config_needed(tdx)
			       ? CF_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED
			       : CF_TCB_OUT_OF_DATE;
	}
	return tdx;
}

void dcap_tcb_evaluate(const dcap_tcb_info *t, const dcap_pck_ext *pck, const dcap_quote *q,
		       int qe_status, dcap_tcb_eval *out)
{
	memset(out, 0, sizeof(*out));
	out->sgx_level = out->tdx_level = -1;
	out->sgx_status = out->tdx_status = out->module_status = DCAP_ST_NONE;
	out->qe_status = qe_status;
	out->final_status = DCAP_ST_NOT_SUPPORTED;
	bool is_tdx = t->tdx && t->version >= 3 && q->tee_type == DCAP_TEE_TDX &&
		      q->body_type != DCAP_BODY_SGX;

	for (size_t i = 0; i < t->nlevels; i++) {
		const dcap_tcb_level *l = &t->levels[i];
		if (!dcap_sgx_level_ok(l, pck))
			continue;
		if (!is_tdx) {
			out->sgx_level = (long)i;
			break;
		}
		if (out->sgx_level < 0)
			out->sgx_level = (long)i;
		if (dcap_tdx_level_ok(l, q->td.tee_tcb_svn)) {
			out->tdx_level = (long)i;
			break;
		}
	}
	if (out->sgx_level < 0)
		return;
	out->sgx_status = (int)t->levels[out->sgx_level].status;
	if (!is_tdx) {
		out->final_status = converge_qe(out->sgx_status, qe_status);
		return;
	}
	if (out->tdx_level < 0)
		return;
	long mi;
	out->module_status = dcap_module_tcb_status(t, q, &mi);
	if (out->module_status == DCAP_ST_NOT_SUPPORTED ||
	    out->module_status == DCAP_ST_MODULE_MISMATCH) {
		out->final_status = out->module_status;
		return;
	}
	int tdx = converge((int)t->levels[out->tdx_level].status, out->module_status);
	out->tdx_status = tdx;
	if (tdx == CF_TCB_REVOKED) {
		out->final_status = tdx;
		return;
	}
	if (q->body_type == DCAP_BODY_TD15)
		tdx = relaunch(t, q, out->sgx_status, tdx, out->module_status, qe_status,
			       &out->relaunch_advised);
	if (tdx == DCAP_ST_NOT_SUPPORTED || tdx == DCAP_ST_MODULE_MISMATCH) {
		out->final_status = tdx;
		return;
	}
	out->final_status = converge_qe(tdx, qe_status);
}

const char *dcap_status_name(int st)
{
	switch (st) {
	case DCAP_ST_NOT_SUPPORTED:
		return "NotSupported";
	case DCAP_ST_MODULE_MISMATCH:
		return "TdxModuleMismatch";
	case DCAP_ST_NONE:
		return "NotEvaluated";
	default:
		return cf_tcb_status_name((cf_tcb_status)st);
	}
}
