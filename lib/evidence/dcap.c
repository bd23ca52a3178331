/*
 * Intel DCAP quote verification, offline: SGX quote v3 and TDX quote v4/v5
 * (TD report 1.0 and 1.5), following the QVL's QuoteVerifier::verify
 * (steps 4.1.2.4.x) but recording every check instead of stopping at the
 * first failure:
 *
 *   format, tee                      the quote parses strictly; its kind is the one asked
 *   pck_chain, cert_validity         PCK <- PCK Platform/Processor CA <- pinned Intel root;
 *                                    every certificate valid at `at`
 *   root_crl, pck_crl                revocation (not checked when not given)
 *   tcb_info_signature/_validity     TCB Info signed by TCB Signing <- root; current at `at`
 *   fmspc                            TCB Info is for this TEE, FMSPC and PCE-ID
 *   tdx_module                       MRSIGNERSEAM/SEAMATTRIBUTES, module identity and SVN
 *   qe_report_signature, qe_binding  the PCK signs the QE report; the QE report binds the
 *                                    attestation key and QE authentication data
 *   qe_identity_signature/_validity  QE Identity signed and current
 *   qe_identity                      QE MRSIGNER, ISVPRODID, MISCSELECT, ATTRIBUTES, ISVSVN
 *   quote_signature                  the attestation key signs header + body
 *   tcb_level                        Intel's TCB status algorithm (dcap_tcb.c)
 *
 * Nothing here trusts the collateral more than its signature: an unsigned
 * or badly signed TCB Info still gets evaluated (for the explanation) but
 * its signature check fails, so the verdict does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "coffer/crypto.h"
#include "coffer/enc.h"
#include "coffer/evidence.h"
#include "dcap_internal.h"

typedef struct dcap_ctx {
	const cf_evidence_input *in;
	cf_verdict *v;
	dcap_quote q;
	dcap_shared_collateral *shared;
	const dcap_collateral *col;
	dcap_chain pck;          /* the quote's PCK chain */
	bool pck_parsed;
	bool ext_ok;
	dcap_pck_ext ext;
	X509 *anchor;            /* trusted root (borrowed) */
	bool tdx;                /* the quote is a TDX quote */
	int qe_status;           /* DCAP_ST_NONE unless the QE identity matched */
	char at[32];
} dcap_ctx;

#define CHECK_TEXT 256

static const char *hx(const uint8_t *p, size_t n, char *buf)
{
	cf_hex_encode(p, n, buf);
	return buf;
}

/* --- claims --- */

static void claims_sgx_report(cf_verdict *v, const dcap_sgx_report *r)
{
	cf_claims_measurement(v, "mr_enclave", r->mr_enclave, 32);
	cf_claims_measurement(v, "mr_signer", r->mr_signer, 32);
	cf_claims_set_hex(v, "report_data", r->report_data, 64);
	cf_claims_set(v, "isv_prod_id", json_integer(r->isv_prod_id));
	cf_claims_set(v, "isv_svn", json_integer(r->isv_svn));
	cf_claims_set(v, "config_svn", json_integer(r->config_svn));
	cf_claims_set(v, "misc_select", json_integer(r->misc_select));
	cf_claims_set_hex(v, "attributes", r->attributes, 16);
	cf_claims_set_hex(v, "config_id", r->config_id, 64);
	cf_claims_set_hex(v, "isv_ext_prod_id", r->isv_ext_prod_id, 16);
	cf_claims_set_hex(v, "isv_family_id", r->isv_family_id, 16);
	cf_claims_set_hex(v, "enclave_cpu_svn", r->cpu_svn, 16);
}

static void claims_td_report(cf_verdict *v, const dcap_td_report *t)
{
	static const char *const rtmr[4] = { "rtmr0", "rtmr1", "rtmr2", "rtmr3" };
	cf_claims_measurement(v, "mr_td", t->mr_td, 48);
	for (int i = 0; i < 4; i++)
		cf_claims_measurement(v, rtmr[i], t->rtmr[i], 48);
	cf_claims_measurement(v, "mr_config_id", t->mr_config_id, 48);
	cf_claims_measurement(v, "mr_owner", t->mr_owner, 48);
	cf_claims_measurement(v, "mr_owner_config", t->mr_owner_config, 48);
	cf_claims_measurement(v, "mr_seam", t->mr_seam, 48);
	cf_claims_measurement(v, "mr_signer_seam", t->mr_signer_seam, 48);
	if (t->mr_service_td)
		cf_claims_measurement(v, "mr_service_td", t->mr_service_td, 48);
	cf_claims_set_hex(v, "report_data", t->report_data, 64);
	cf_claims_set_hex(v, "td_attributes", t->td_attributes, 8);
	cf_claims_set_hex(v, "xfam", t->xfam, 8);
	cf_claims_set_hex(v, "seam_attributes", t->seam_attributes, 8);
	cf_claims_set_hex(v, "tee_tcb_svn", t->tee_tcb_svn, 16);
	if (t->tee_tcb_svn2)
		cf_claims_set_hex(v, "tee_tcb_svn2", t->tee_tcb_svn2, 16);
}

/* --- format and kind --- */

static const char *body_name(const dcap_quote *q)
{
	switch (q->body_type) {
	case DCAP_BODY_SGX:
		return "SGX report body";
	case DCAP_BODY_TD10:
		return "TD report 1.0";
	case DCAP_BODY_TD15:
		return "TD report 1.5";
	default:
		return "?";
	}
}

/* false: stop here (nothing more can be said about this evidence). */
static bool check_format(dcap_ctx *x)
{
	char why[200];
	cf_verdict *v = x->v;
	const char *expected = "an Intel DCAP quote: v3 (SGX) or v4/v5 (TDX), ECDSA P-256, "
			       "Intel QE, PCK chain certification data";
	cf_err rc = dcap_quote_parse(x->in->evidence.data, x->in->evidence.len, &x->q, why,
				     sizeof(why));
	if (rc != CF_OK) {
		cf_verdict_fail(v, "format", expected, "%s", why);
		return false;
	}
	const dcap_quote *q = &x->q;
	cf_claims_set(v, "quote_version", json_integer(q->version));
	if (q->trailing && !q->trailing_zero) {
		cf_verdict_fail(v, "format", expected,
				"%zu bytes after the signature data, not all zero", q->trailing);
		return true; /* the quote itself parsed: keep checking it */
	}
	if (q->trailing) {
		cf_claims_set(v, "trailing_zero_bytes", json_integer((json_int_t)q->trailing));
		cf_verdict_pass(v, "format",
				"quote v%u, %s, ECDSA P-256, Intel QE, PCK chain; %zu trailing "
				"zero bytes after the signature data ignored",
				q->version, body_name(q), q->trailing);
	} else {
		cf_verdict_pass(v, "format", "quote v%u, %s, ECDSA P-256, Intel QE, PCK chain",
				q->version, body_name(q));
	}
	return true;
}

static bool check_tee(dcap_ctx *x)
{
	cf_tee_kind kind = x->q.tee_type == DCAP_TEE_TDX ? CF_TEE_TDX : CF_TEE_SGX;
	cf_verdict_expect(x->v, "tee", kind == x->in->kind, cf_tee_kind_name(x->in->kind),
			  "%s quote (TEE type 0x%08x)", cf_tee_kind_name(kind), x->q.tee_type);
	x->tdx = kind == CF_TEE_TDX;
	return kind == x->in->kind;
}

/* --- certificates --- */

static void find_anchor(dcap_ctx *x)
{
	if (x->col->root_state == DCAP_ITEM_OK) {
		x->anchor = x->col->root_ca;
		return;
	}
	if (x->col->root_state == DCAP_ITEM_BAD)
		return; /* a root was given but is unusable: never fall back */
	const dcap_chain *chains[] = { &x->pck, &x->col->tcb_doc.chain, &x->col->qe_doc.chain };
	for (size_t i = 0; i < 3; i++) {
		const dcap_chain *c = chains[i];
		if (c->n && dcap_is_intel_root(c->cert[c->n - 1])) {
			x->anchor = c->cert[c->n - 1];
			return;
		}
	}
}

static void root_description(dcap_ctx *x, char *out, size_t outlen)
{
	uint8_t fp[32];
	char h[65];
	if (x->col->root_state == DCAP_ITEM_OK && dcap_cert_fingerprint(x->col->root_ca, fp) == CF_OK)
		snprintf(out, outlen, "the given root CA (sha256 %s)", hx(fp, 32, h));
	else
		snprintf(out, outlen, "the pinned Intel SGX Root CA (sha256 44a0196b...fab674d3)");
}

static bool cn_contains(X509 *c, const char *s)
{
	char cn[80];
	dcap_cert_cn(c, cn, sizeof(cn));
	return strstr(cn, s) != NULL;
}

static void check_pck_chain(dcap_ctx *x)
{
	char why[200], root[120], expected[CHECK_TEXT], cn[80];
	cf_verdict *v = x->v;
	root_description(x, root, sizeof(root));
	snprintf(expected, sizeof(expected),
		 "PCK certificate <- Intel SGX PCK Platform/Processor CA <- %s", root);
	x->pck_parsed = dcap_pem_chain(x->q.pck_pem, x->q.pck_pem_len, true, &x->pck, why,
				       sizeof(why)) == CF_OK;
	find_anchor(x); /* from the collateral's chains if the quote's is unusable */
	if (!x->pck_parsed) {
		cf_verdict_fail(v, "pck_chain", expected, "PCK chain in the quote: %s", why);
		return;
	}
	char ext_why[160];
	x->ext_ok = dcap_pck_ext_parse(x->pck.cert[0], &x->ext, ext_why, sizeof(ext_why)) == CF_OK;
	if (x->pck.n < 2) {
		cf_verdict_fail(v, "pck_chain", expected, "%zu certificate(s): no PCK CA", x->pck.n);
		return;
	}
	if (x->col->root_state == DCAP_ITEM_BAD) {
		cf_verdict_fail(v, "pck_chain", expected, "%s", x->col->root_why);
		return;
	}
	if (!x->anchor) {
		cf_verdict_fail(v, "pck_chain", expected,
				"the chain does not end in the Intel SGX Root CA");
		return;
	}
	if (!cn_contains(x->pck.cert[0], "SGX PCK Certificate")) {
		dcap_cert_cn(x->pck.cert[0], cn, sizeof(cn));
		cf_verdict_fail(v, "pck_chain", expected, "leaf CN \"%s\" is not an SGX PCK Certificate",
				cn);
		return;
	}
	dcap_cert_cn(x->pck.cert[1], cn, sizeof(cn));
	if (strcmp(cn, "Intel SGX PCK Platform CA") != 0 &&
	    strcmp(cn, "Intel SGX PCK Processor CA") != 0) {
		cf_verdict_fail(v, "pck_chain", expected, "intermediate \"%s\" is not a PCK CA", cn);
		return;
	}
	if (!dcap_chain_to_anchor(&x->pck, x->anchor, why, sizeof(why))) {
		cf_verdict_fail(v, "pck_chain", expected, "%s", why);
		return;
	}
	if (!x->ext_ok) {
		cf_verdict_fail(v, "pck_chain", expected, "PCK certificate: %s", ext_why);
		return;
	}
	cf_claims_set(v, "pck_ca", json_string(strstr(cn, "Processor") ? "processor" : "platform"));
	cf_verdict_pass(v, "pck_chain", "PCK certificate <- %s <- %s", cn, root);
}

static bool seen_cert(X509 *const *list, size_t n, X509 *c)
{
	for (size_t i = 0; i < n; i++) {
		if (X509_cmp(list[i], c) == 0)
			return true;
	}
	return false;
}

static void check_cert_validity(dcap_ctx *x)
{
	X509 *all[4 * DCAP_MAX_CHAIN];
	size_t n = 0;
	const dcap_chain *chains[] = { &x->pck, &x->col->tcb_doc.chain, &x->col->qe_doc.chain };
	for (size_t i = 0; i < 3; i++) {
		for (size_t j = 0; j < chains[i]->n; j++) {
			if (!seen_cert(all, n, chains[i]->cert[j]))
				all[n++] = chains[i]->cert[j];
		}
	}
	if (x->anchor && !seen_cert(all, n, x->anchor))
		all[n++] = x->anchor;
	if (n == 0) {
		cf_verdict_skip(x->v, "cert_validity", "no certificate to check");
		return;
	}
	char expected[CHECK_TEXT];
	snprintf(expected, sizeof(expected), "every certificate valid at %s", x->at);
	for (size_t i = 0; i < n; i++) {
		if (!dcap_cert_valid_at(all[i], x->in->at)) {
			char cn[80], period[64];
			dcap_cert_cn(all[i], cn, sizeof(cn));
			dcap_cert_period(all[i], period, sizeof(period));
			cf_verdict_fail(x->v, "cert_validity", expected, "\"%s\" is valid %s", cn,
					period);
			return;
		}
	}
	cf_verdict_pass(x->v, "cert_validity", "%zu certificates valid at %s", n, x->at);
}

/* Common CRL checks: issuer, signature, thisUpdate <= at <= nextUpdate. */
static bool crl_current(dcap_ctx *x, X509_CRL *crl, X509 *issuer, const X509_NAME *want_issuer,
			char *why, size_t whylen)
{
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl), want_issuer) != 0) {
		snprintf(why, whylen, "issued by another CA");
		return false;
	}
	if (!dcap_memo_crl(crl, issuer)) {
		snprintf(why, whylen, "signature does not verify");
		return false;
	}
	const ASN1_TIME *lu = X509_CRL_get0_lastUpdate(crl), *nu = X509_CRL_get0_nextUpdate(crl);
	int a = dcap_asn1_time_cmp(lu, x->in->at), b = dcap_asn1_time_cmp(nu, x->in->at);
	if (a == -2 || b == -2 || a > 0 || b < 0) {
		char s1[32], s2[32];
		dcap_asn1_time_str(lu, s1, sizeof(s1));
		dcap_asn1_time_str(nu, s2, sizeof(s2));
		snprintf(why, whylen, "current %s..%s, not at %s", s1, s2, x->at);
		return false;
	}
	return true;
}

static void check_root_crl(dcap_ctx *x)
{
	char why[200], cn[80];
	const char *expected = "Root CA CRL signed by the root, current, revoking none of the CAs";
	const dcap_crl_item *it = &x->col->root_crl;
	if (it->state == DCAP_ITEM_ABSENT) {
		cf_verdict_skip(x->v, "root_crl", "no Root CA CRL given");
		return;
	}
	if (it->state == DCAP_ITEM_BAD) {
		cf_verdict_fail(x->v, "root_crl", expected, "%s", it->why);
		return;
	}
	if (!x->anchor) {
		cf_verdict_fail(x->v, "root_crl", expected, "no trusted root to check it with");
		return;
	}
	if (!crl_current(x, it->crl, x->anchor, X509_get_subject_name(x->anchor), why,
			 sizeof(why))) {
		cf_verdict_fail(x->v, "root_crl", expected, "Root CA CRL %s", why);
		return;
	}
	X509 *cas[3] = { x->pck.n > 1 ? x->pck.cert[1] : NULL,
			 x->col->tcb_doc.chain.n ? x->col->tcb_doc.chain.cert[0] : NULL,
			 x->col->qe_doc.chain.n ? x->col->qe_doc.chain.cert[0] : NULL };
	for (size_t i = 0; i < 3; i++) {
		if (cas[i] && dcap_crl_revokes(it->crl, cas[i])) {
			dcap_cert_cn(cas[i], cn, sizeof(cn));
			cf_verdict_fail(x->v, "root_crl", expected, "\"%s\" is revoked", cn);
			return;
		}
	}
	cf_verdict_pass(x->v, "root_crl",
			"Root CA CRL signed by the root, current at %s, revokes none of the CAs",
			x->at);
}

static void check_pck_crl(dcap_ctx *x)
{
	char why[200];
	const char *expected = "PCK CA CRL signed by the PCK's issuer, current, not revoking the PCK";
	const dcap_crl_item *it = &x->col->pck_crl;
	if (it->state == DCAP_ITEM_ABSENT) {
		cf_verdict_skip(x->v, "pck_crl", "no PCK CRL given");
		return;
	}
	if (it->state == DCAP_ITEM_BAD) {
		cf_verdict_fail(x->v, "pck_crl", expected, "%s", it->why);
		return;
	}
	if (x->pck.n < 2) {
		cf_verdict_fail(x->v, "pck_crl", expected, "no PCK CA to check it with");
		return;
	}
	if (!crl_current(x, it->crl, x->pck.cert[1], X509_get_issuer_name(x->pck.cert[0]), why,
			 sizeof(why))) {
		cf_verdict_fail(x->v, "pck_crl", expected, "PCK CRL %s", why);
		return;
	}
	if (dcap_crl_revokes(it->crl, x->pck.cert[0])) {
		cf_verdict_fail(x->v, "pck_crl", expected, "the PCK certificate is revoked");
		return;
	}
	cf_verdict_pass(x->v, "pck_crl", "PCK CRL (%d entries) current at %s, PCK not revoked",
			sk_X509_REVOKED_num(X509_CRL_get_REVOKED(it->crl)), x->at);
}

/* --- collateral documents --- */

/* Signature and signer chain of a TCB Info or QE Identity. */
static void check_doc_signature(dcap_ctx *x, const dcap_signed_doc *d, const char *name,
				const char *what)
{
	char why[200], expected[CHECK_TEXT], cn[80];
	snprintf(expected, sizeof(expected), "%s signed by Intel SGX TCB Signing <- the root", what);
	if (d->state == DCAP_ITEM_ABSENT) {
		cf_verdict_skip(x->v, name, "no %s given", what);
		return;
	}
	if (d->state == DCAP_ITEM_BAD) {
		cf_verdict_fail(x->v, name, expected, "%s", d->why);
		return;
	}
	if (d->chain_state == DCAP_ITEM_ABSENT) {
		cf_verdict_fail(x->v, name, expected, "no TCB Signing chain given (tcb_chain)");
		return;
	}
	if (d->chain_state == DCAP_ITEM_BAD) {
		cf_verdict_fail(x->v, name, expected, "%s", d->chain_why);
		return;
	}
	if (!x->anchor) {
		cf_verdict_fail(x->v, name, expected, "no trusted root to check the chain with");
		return;
	}
	if (!dcap_chain_to_anchor(&d->chain, x->anchor, why, sizeof(why))) {
		cf_verdict_fail(x->v, name, expected, "signer chain: %s", why);
		return;
	}
	X509 *signer = d->chain.cert[0];
	dcap_cert_cn(signer, cn, sizeof(cn));
	if (!strstr(cn, "SGX TCB Signing")) {
		cf_verdict_fail(x->v, name, expected, "signer \"%s\" is not a TCB Signing certificate",
				cn);
		return;
	}
	if (!dcap_memo_raw(signer, (const uint8_t *)d->raw, d->raw_len, d->sig)) {
		cf_verdict_fail(x->v, name, expected, "ECDSA signature by \"%s\" does not verify", cn);
		return;
	}
	cf_verdict_pass(x->v, name, "%s: ECDSA P-256 signature by \"%s\" <- the root", what, cn);
}

static void check_doc_validity(dcap_ctx *x, const dcap_signed_doc *d, const char *name,
			       const char *what, time_t issue, time_t next)
{
	char a[32], b[32], expected[CHECK_TEXT];
	if (d->state != DCAP_ITEM_OK) {
		cf_verdict_skip(x->v, name, d->state == DCAP_ITEM_ABSENT ? "no %s given" :
								"%s not usable", what);
		return;
	}
	dcap_format_time(issue, a, sizeof(a));
	dcap_format_time(next, b, sizeof(b));
	snprintf(expected, sizeof(expected), "%s current at %s (issueDate <= at <= nextUpdate)",
		 what, x->at);
	if (x->in->at < issue || x->in->at > next)
		cf_verdict_fail(x->v, name, expected, "issueDate %s, nextUpdate %s", a, b);
	else
		cf_verdict_pass(x->v, name, "%s current at %s (issued %s, next update %s)", what,
				x->at, a, b);
}

static void check_fmspc(dcap_ctx *x)
{
	char f1[13], f2[13], p1[5], p2[5], expected[CHECK_TEXT];
	if (x->col->tcb_doc.state != DCAP_ITEM_OK) {
		cf_verdict_skip(x->v, "fmspc", x->col->tcb_doc.state == DCAP_ITEM_ABSENT ?
				"no TCB Info given" : "no usable TCB Info");
		return;
	}
	if (!x->ext_ok) {
		cf_verdict_skip(x->v, "fmspc", "no PCK certificate SGX extension");
		return;
	}
	const dcap_tcb_info *t = &x->col->tcb;
	const char *want = x->tdx ? "TDX" : "SGX", *got = t->tdx ? "TDX" : "SGX";
	snprintf(expected, sizeof(expected), "TCB Info for %s, FMSPC %s, PCE-ID %s (the PCK's)",
		 want, hx(x->ext.fmspc, 6, f1), hx(x->ext.pce_id, 2, p1));
	bool ok = t->tdx == x->tdx && memcmp(t->fmspc, x->ext.fmspc, 6) == 0 &&
		  memcmp(t->pce_id, x->ext.pce_id, 2) == 0;
	cf_verdict_expect(x->v, "fmspc", ok, expected, "TCB Info for %s, FMSPC %s, PCE-ID %s", got,
			  hx(t->fmspc, 6, f2), hx(t->pce_id, 2, p2));
}

static void check_tdx_module(dcap_ctx *x)
{
	char expected[CHECK_TEXT], h[97];
	if (!x->tdx)
		return;
	if (x->col->tcb_doc.state != DCAP_ITEM_OK) {
		cf_verdict_skip(x->v, "tdx_module", x->col->tcb_doc.state == DCAP_ITEM_ABSENT ?
				"no TCB Info given" : "no usable TCB Info");
		return;
	}
	const dcap_tcb_info *t = &x->col->tcb;
	const dcap_td_report *td = &x->q.td;
	if (!t->tdx) {
		cf_verdict_skip(x->v, "tdx_module", "the TCB Info is not for TDX");
		return;
	}
	uint8_t version = td->tee_tcb_svn[1];
	const uint8_t *mrsigner = t->module_mrsigner, *attributes = t->module_attributes;
	char id[16] = "tdxModule";
	if (x->q.version > 3 && version > 0) {
		snprintf(id, sizeof(id), "TDX_%02X", version);
		snprintf(expected, sizeof(expected), "TDX module identity %s in the TCB Info", id);
		const dcap_module_identity *m = dcap_find_module(t, version);
		if (!m) {
			cf_verdict_fail(x->v, "tdx_module", expected,
					t->has_identities ? "no such identity" :
							    "the TCB Info has no tdxModuleIdentities");
			return;
		}
		mrsigner = m->mrsigner;
		attributes = m->attributes;
	}
	snprintf(expected, sizeof(expected),
		 "MRSIGNERSEAM == %s mrsigner, SEAMATTRIBUTES zero and == its attributes, module "
		 "ISVSVN at a known level", id);
	if (memcmp(td->mr_signer_seam, mrsigner, 48) != 0) {
		cf_verdict_fail(x->v, "tdx_module", expected, "MRSIGNERSEAM %s",
				hx(td->mr_signer_seam, 48, h));
		return;
	}
	static const uint8_t zero[8];
	if (memcmp(td->seam_attributes, zero, 8) != 0 || memcmp(td->seam_attributes, attributes, 8)) {
		cf_verdict_fail(x->v, "tdx_module", expected, "SEAMATTRIBUTES %s",
				hx(td->seam_attributes, 8, h));
		return;
	}
	long idx;
	int st = dcap_module_tcb_status(t, &x->q, &idx);
	cf_claims_set(x->v, "tdx_module_tcb_status", json_string(dcap_status_name(st)));
	if (st == DCAP_ST_NOT_SUPPORTED || st == DCAP_ST_MODULE_MISMATCH) {
		cf_verdict_fail(x->v, "tdx_module", expected,
				"module ISVSVN %u is below every level of %s", td->tee_tcb_svn[0], id);
		return;
	}
	if (version == 0)
		cf_verdict_pass(x->v, "tdx_module",
				"TDX module major version 0: MRSIGNERSEAM, SEAMATTRIBUTES match "
				"tdxModule; status %s", dcap_status_name(st));
	else
		cf_verdict_pass(x->v, "tdx_module",
				"%s: MRSIGNERSEAM, SEAMATTRIBUTES match; module ISVSVN %u -> %s", id,
				td->tee_tcb_svn[0], dcap_status_name(st));
}

/* --- the QE --- */

static void check_qe_report_signature(dcap_ctx *x)
{
	const char *expected = "ECDSA P-256 signature by the PCK certificate over the QE report";
	if (!x->pck_parsed) {
		cf_verdict_fail(x->v, "qe_report_signature", expected, "no PCK certificate");
		return;
	}
	bool ok = dcap_cert_verify_raw(x->pck.cert[0], x->q.qe_report.raw, DCAP_SGX_REPORT_LEN,
				       x->q.qe_report_sig);
	cf_verdict_expect(x->v, "qe_report_signature", ok, expected, "%s",
			  ok ? expected : "does not verify with the PCK certificate's key");
}

static cf_err check_qe_binding(dcap_ctx *x)
{
	const char *expected = "QE report_data = SHA-256(attestation key || QE auth data) || 32 zeros";
	uint8_t h[32];
	char a[65];
	cf_hash_ctx *hc = NULL;
	cf_err rc = cf_hash_new(CF_SHA256, &hc);
	if (rc == CF_OK)
		rc = cf_hash_update(hc, x->q.attest_key, DCAP_KEY_LEN);
	if (rc == CF_OK)
		rc = cf_hash_update(hc, x->q.qe_auth, x->q.qe_auth_len);
	if (rc == CF_OK)
		rc = cf_hash_final(hc, h);
	cf_hash_free(hc);
	if (rc != CF_OK)
		return rc;
	static const uint8_t zero[32];
	const uint8_t *rd = x->q.qe_report.report_data;
	if (!cf_ct_equal(rd, h, 32))
		cf_verdict_fail(x->v, "qe_binding", expected, "report_data[0:32] %s",
				hx(rd, 32, a));
	else if (memcmp(rd + 32, zero, 32) != 0)
		cf_verdict_fail(x->v, "qe_binding", expected, "report_data[32:64] not zero");
	else
		cf_verdict_pass(x->v, "qe_binding", "%s", expected);
	return CF_OK;
}

static void check_qe_identity(dcap_ctx *x)
{
	char expected[CHECK_TEXT], h[65];
	x->qe_status = DCAP_ST_NONE;
	if (x->col->qe_doc.state != DCAP_ITEM_OK) {
		cf_verdict_skip(x->v, "qe_identity", x->col->qe_doc.state == DCAP_ITEM_ABSENT ?
				"no QE Identity given" : "no usable QE Identity");
		return;
	}
	const dcap_qe_identity *qe = &x->col->qe;
	const dcap_sgx_report *r = &x->q.qe_report;
	const char *want_id = x->tdx ? "TD_QE" : "QE";
	snprintf(expected, sizeof(expected),
		 "QE Identity %s: MRSIGNER, ISVPRODID %u, MISCSELECT and ATTRIBUTES (masked) match, "
		 "ISVSVN at a known level", want_id, qe->isv_prod_id);
	if (strcmp(qe->id, want_id) != 0) {
		cf_verdict_fail(x->v, "qe_identity", expected, "QE Identity id \"%s\"", qe->id);
		return;
	}
	if ((r->misc_select & qe->miscselect_mask) != qe->miscselect) {
		cf_verdict_fail(x->v, "qe_identity", expected, "MISCSELECT 0x%08x", r->misc_select);
		return;
	}
	for (size_t i = 0; i < 16; i++) {
		if ((r->attributes[i] & qe->attributes_mask[i]) != qe->attributes[i]) {
			cf_verdict_fail(x->v, "qe_identity", expected, "ATTRIBUTES %s",
					hx(r->attributes, 16, h));
			return;
		}
	}
	if (memcmp(r->mr_signer, qe->mrsigner, 32) != 0) {
		cf_verdict_fail(x->v, "qe_identity", expected, "MRSIGNER %s", hx(r->mr_signer, 32, h));
		return;
	}
	if (r->isv_prod_id != qe->isv_prod_id) {
		cf_verdict_fail(x->v, "qe_identity", expected, "ISVPRODID %u", r->isv_prod_id);
		return;
	}
	long idx;
	int st = dcap_qe_tcb_status(qe, r->isv_svn, &idx);
	x->qe_status = st;
	cf_claims_set(x->v, "qe_tcb_status", json_string(dcap_status_name(st)));
	cf_claims_set(x->v, "qe_isv_svn", json_integer(r->isv_svn));
	if (st == DCAP_ST_NOT_SUPPORTED) {
		cf_verdict_fail(x->v, "qe_identity", expected, "QE ISVSVN %u is below every level",
				r->isv_svn);
		return;
	}
	if (idx >= 0 && qe->levels[idx].advisories &&
	    json_array_size(qe->levels[idx].advisories) > 0)
		cf_claims_set(x->v, "qe_advisories", json_deep_copy(qe->levels[idx].advisories));
	cf_verdict_pass(x->v, "qe_identity", "QE Identity %s matches; QE ISVSVN %u -> %s", want_id,
			r->isv_svn, dcap_status_name(st));
}

static void check_quote_signature(dcap_ctx *x)
{
	const char *expected = "ECDSA P-256 signature by the attestation key over header and body";
	cf_pkey *key = NULL;
	if (cf_ec_pubkey_from_xy(CF_P256, x->q.attest_key, DCAP_KEY_LEN, CF_BIG_ENDIAN, &key) !=
	    CF_OK) {
		cf_verdict_fail(x->v, "quote_signature", expected,
				"the attestation key is not a P-256 point");
		return;
	}
	bool ok = cf_ecdsa_verify_raw(key, x->q.signed_data, x->q.signed_len, x->q.signature, 32,
				      CF_BIG_ENDIAN) == CF_OK;
	cf_pkey_free(key);
	if (ok)
		cf_verdict_pass(x->v, "quote_signature",
				"ECDSA P-256 signature by the attestation key over header and body "
				"(%zu bytes)", x->q.signed_len);
	else
		cf_verdict_fail(x->v, "quote_signature", expected, "does not verify");
}

/* --- TCB level --- */

/* Why level l does not match: the first lower SGX component or the PCESVN. */
static void sgx_miss(const dcap_tcb_level *l, const dcap_pck_ext *p, char *out, size_t outlen)
{
	for (size_t i = 0; i < 16; i++) {
		if (p->tcb_comp[i] < l->sgx[i]) {
			snprintf(out, outlen, "SGX component %zu: PCK %u < %u", i + 1, p->tcb_comp[i],
				 l->sgx[i]);
			return;
		}
	}
	snprintf(out, outlen, "PCESVN: PCK %u < %u", p->pce_svn, l->pce_svn);
}

static void tdx_miss(const dcap_tcb_level *l, const uint8_t *svn, char *out, size_t outlen)
{
	for (size_t i = svn[1] > 0 ? 2 : 0; i < 16; i++) {
		if (svn[i] < l->tdx[i]) {
			snprintf(out, outlen, "TDX component %zu: TEE_TCB_SVN %u < %u", i + 1, svn[i],
				 l->tdx[i]);
			return;
		}
	}
	snprintf(out, outlen, "?");
}

static json_t *union_advisories(const dcap_tcb_level *a, const dcap_tcb_level *b)
{
	json_t *out = json_array();
	const dcap_tcb_level *ls[2] = { a, b };
	for (size_t k = 0; k < 2 && out; k++) {
		size_t i, j;
		json_t *e, *f;
		if (!ls[k] || !ls[k]->advisories)
			continue;
		json_array_foreach(ls[k]->advisories, i, e) {
			bool dup = false;
			json_array_foreach(out, j, f) {
				dup |= json_equal(e, f);
			}
			/* copies: e belongs to the (shared, cached) collateral */
			if (!dup)
				json_array_append_new(out, json_string(json_string_value(e)));
		}
	}
	return out;
}

static void check_tcb_level(dcap_ctx *x)
{
	char expected[CHECK_TEXT], miss[96], h1[33], h2[33];
	cf_verdict *v = x->v;
	if (x->col->tcb_doc.state != DCAP_ITEM_OK) {
		cf_verdict_skip(v, "tcb_level", x->col->tcb_doc.state == DCAP_ITEM_ABSENT ?
				"no TCB Info given (TCB status not checked)" : "no usable TCB Info");
		return;
	}
	if (!x->ext_ok) {
		cf_verdict_skip(v, "tcb_level", "no PCK TCB (SGX extension) to match");
		return;
	}
	const dcap_tcb_info *t = &x->col->tcb;
	dcap_tcb_eval e;
	dcap_tcb_evaluate(t, &x->ext, &x->q, x->qe_status, &e);
	cf_claims_set(v, "tcb_evaluation_data_number", json_integer(t->eval_number));
	snprintf(expected, sizeof(expected),
		 "a TCB level with SGX components and PCESVN <= the PCK's%s",
		 x->tdx ? " and TDX components <= TEE_TCB_SVN" : "");
	if (e.sgx_level < 0) {
		sgx_miss(&t->levels[t->nlevels - 1], &x->ext, miss, sizeof(miss));
		cf_verdict_fail(v, "tcb_level", expected,
				"No matching TCB level: PCK SGX TCB %s PCESVN %u; lowest level "
				"needs %s", hx(x->ext.tcb_comp, 16, h1), x->ext.pce_svn, miss);
		return;
	}
	const dcap_tcb_level *sl = &t->levels[e.sgx_level];
	cf_claims_set(v, "sgx_tcb_status", json_string(dcap_status_name(e.sgx_status)));
	if (x->tdx && t->tdx && e.tdx_level < 0) {
		tdx_miss(&t->levels[t->nlevels - 1], x->q.td.tee_tcb_svn, miss, sizeof(miss));
		cf_verdict_fail(v, "tcb_level", expected,
				"No matching TCB level: SGX matched (%s) but TEE_TCB_SVN %s is "
				"below every TDX level; lowest needs %s",
				dcap_status_name(e.sgx_status), hx(x->q.td.tee_tcb_svn, 16, h2), miss);
		return;
	}
	const dcap_tcb_level *tl = e.tdx_level >= 0 ? &t->levels[e.tdx_level] : NULL;
	if (e.tdx_status != DCAP_ST_NONE)
		cf_claims_set(v, "tdx_tcb_status", json_string(dcap_status_name(e.tdx_status)));
	if (x->q.body_type == DCAP_BODY_TD15)
		cf_claims_set(v, "td_relaunch_advised", json_boolean(e.relaunch_advised));
	const dcap_tcb_level *matched = tl ? tl : sl;
	cf_claims_set(v, "tcb_date", json_string(matched->date));
	cf_claims_set(v, "advisories", union_advisories(sl, tl));
	if (e.final_status == DCAP_ST_NOT_SUPPORTED || e.final_status == DCAP_ST_MODULE_MISMATCH) {
		cf_verdict_fail(v, "tcb_level", expected, "%s (TDX module %s, QE %s)",
				dcap_status_name(e.final_status), dcap_status_name(e.module_status),
				dcap_status_name(e.qe_status));
		return;
	}
	v->tcb_status = (cf_tcb_status)e.final_status;
	cf_claims_set(v, "tcb_status", json_string(cf_tcb_status_name(v->tcb_status)));
	if (v->tcb_status == CF_TCB_REVOKED) {
		cf_verdict_fail(v, "tcb_level", expected, "TCB status Revoked");
		return;
	}
	cf_verdict_pass(v, "tcb_level", "TCB level %ld of %zu (%s%s%s%s) -> %s", (long)(matched - t->levels) + 1,
			t->nlevels, dcap_status_name(e.sgx_status), tl ? ", TDX " : "",
			tl ? dcap_status_name(e.tdx_status) : "",
			e.relaunch_advised ? ", TD relaunch advised" : "",
			cf_tcb_status_name(v->tcb_status));
}

/* --- entry point --- */

static cf_err verify(dcap_ctx *x)
{
	cf_verdict *v = x->v;
	cf_err rc;
	if (!check_format(x) || !check_tee(x))
		return CF_OK;
	if (x->tdx) {
		claims_td_report(v, &x->q.td);
		v->debug = x->q.td.td_attributes[0] & 0x01;
	} else {
		claims_sgx_report(v, &x->q.sgx);
		v->debug = x->q.sgx.attributes[0] & 0x02;
	}
	cf_claims_set(v, "debug", json_boolean(v->debug));
	cf_claims_set(v, "qe_svn", json_integer(x->q.qe_report.isv_svn));
	cf_claims_set(v, "tcb_status", json_string(cf_tcb_status_name(CF_TCB_UNKNOWN)));

	rc = dcap_collateral_acquire(x->in, &x->shared);
	if (rc != CF_OK)
		return rc;
	x->col = dcap_collateral_of(x->shared);
	if (x->col->bundle_bad)
		cf_verdict_fail(v, "collateral", "a dcap-qvl QuoteCollateralV3 JSON bundle", "%s",
				x->col->bundle_why);

	check_pck_chain(x);
	if (x->ext_ok) {
		char h[33];
		cf_claims_set_hex(v, "fmspc", x->ext.fmspc, 6);
		cf_claims_set_hex(v, "pce_id", x->ext.pce_id, 2);
		cf_claims_set(v, "pce_svn", json_integer(x->ext.pce_svn));
		cf_claims_set_hex(v, "cpu_svn", x->ext.cpu_svn, 16);
		cf_claims_set(v, "pck_tcb", json_string(hx(x->ext.tcb_comp, 16, h)));
	}
	check_cert_validity(x);
	check_root_crl(x);
	check_pck_crl(x);
	check_doc_signature(x, &x->col->tcb_doc, "tcb_info_signature", "TCB Info");
	check_doc_validity(x, &x->col->tcb_doc, "tcb_info_validity", "TCB Info",
			   x->col->tcb.issue_date, x->col->tcb.next_update);
	check_fmspc(x);
	check_tdx_module(x);
	check_qe_report_signature(x);
	if ((rc = check_qe_binding(x)) != CF_OK)
		return rc;
	check_doc_signature(x, &x->col->qe_doc, "qe_identity_signature", "QE Identity");
	check_doc_validity(x, &x->col->qe_doc, "qe_identity_validity", "QE Identity",
			   x->col->qe.issue_date, x->col->qe.next_update);
	check_qe_identity(x);
	check_quote_signature(x);
	check_tcb_level(x);
	return CF_OK;
}

cf_err cf_evidence_verify_dcap(const cf_evidence_input *in, cf_verdict *v)
{
	if (!in || !v)
		return CF_ERR_ARG;
	cf_verdict_init(v, in->kind);
	if (!v->claims)
		return CF_ERR_NOMEM;
	if (in->kind != CF_TEE_SGX && in->kind != CF_TEE_TDX) {
		cf_verdict_fail(v, "tee", "sgx or tdx", "%s evidence given to the DCAP verifier",
				cf_tee_kind_name(in->kind));
		return CF_OK;
	}
	dcap_ctx *x = calloc(1, sizeof(*x));
	if (!x)
		return CF_ERR_NOMEM;
	x->in = in;
	x->v = v;
	x->qe_status = DCAP_ST_NONE;
	dcap_format_time(in->at, x->at, sizeof(x->at));
	/* Hostile input makes OpenSSL queue errors: the verdict says it all,
	 * so leave the caller's error queue as it was. */
	ERR_set_mark();
	cf_err rc = verify(x);
	ERR_pop_to_mark();
	dcap_chain_free(&x->pck);
	dcap_collateral_release(x->shared);
	free(x);
	return rc;
}
