/*
 * Strict parser of Intel DCAP quotes: SGX ECDSA quote v3, and quote v4/v5
 * (TDX, or SGX in the v4/v5 envelope). Layouts: Intel "SGX ECDSA Quote
 * Library API" (quote v3) and "TDX DCAP Quoting Library API" (v4, v5);
 * offsets summarised in testdata/FORMATS.md.
 *
 * Every field is read through a cursor. Lengths inside the quote must add
 * up exactly: the signature data ends where its length says, the
 * certification data of type 6 holds exactly its QE report, signature,
 * authentication data and inner certification data. Reserved fields of
 * the REPORT bodies must be zero.
 */
#include <stdio.h>
#include <string.h>

#include "coffer/buf.h"
#include "dcap_internal.h"

/* Intel's QE vendor ID 939A7233-F79C-4CA9-940A-0DB3957F0607. */
static const uint8_t intel_qe_vendor_id[16] = {
	0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
	0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
};

#define FAIL(rc_, ...)                                  \
	do {                                            \
		snprintf(why, whylen, __VA_ARGS__);     \
		return (rc_);                           \
	} while (0)

/* A read that can only fail by running out of bytes. */
#define TAKE(expr, what)                                                              \
	do {                                                                          \
		if ((expr) != CF_OK)                                                  \
			FAIL(CF_ERR_TRUNCATED, "truncated: the quote (%zu bytes) ends "   \
				 "inside %s", len, what);                             \
	} while (0)

static cf_err parse_sgx_report(const uint8_t *p, dcap_sgx_report *r, const char *what,
			       char *why, size_t whylen)
{
	cf_cursor c;
	cf_cursor_init(&c, p, DCAP_SGX_REPORT_LEN);
	memset(r, 0, sizeof(*r));
	r->raw = p;
	/* The caller hands exactly 384 bytes: only the reserved checks can fail. */
	if (cf_cursor_borrow(&c, 16, &r->cpu_svn) != CF_OK ||
	    cf_cursor_u32le(&c, &r->misc_select) != CF_OK)
		FAIL(CF_ERR_PARSE, "%s: short", what);
	if (cf_cursor_zeros(&c, 12) != CF_OK)
		FAIL(CF_ERR_PARSE, "%s: reserved bytes 20..31 not zero", what);
	if (cf_cursor_borrow(&c, 16, &r->isv_ext_prod_id) != CF_OK ||
	    cf_cursor_borrow(&c, 16, &r->attributes) != CF_OK ||
	    cf_cursor_borrow(&c, 32, &r->mr_enclave) != CF_OK)
		FAIL(CF_ERR_PARSE, "%s: short", what);
	if (cf_cursor_zeros(&c, 32) != CF_OK)
		FAIL(CF_ERR_PARSE, "%s: reserved bytes 96..127 not zero", what);
	if (cf_cursor_borrow(&c, 32, &r->mr_signer) != CF_OK)
		FAIL(CF_ERR_PARSE, "%s: short", what);
	if (cf_cursor_zeros(&c, 32) != CF_OK)
		FAIL(CF_ERR_PARSE, "%s: reserved bytes 160..191 not zero", what);
	if (cf_cursor_borrow(&c, 64, &r->config_id) != CF_OK ||
	    cf_cursor_u16le(&c, &r->isv_prod_id) != CF_OK ||
	    cf_cursor_u16le(&c, &r->isv_svn) != CF_OK ||
	    cf_cursor_u16le(&c, &r->config_svn) != CF_OK)
		FAIL(CF_ERR_PARSE, "%s: short", what);
	if (cf_cursor_zeros(&c, 42) != CF_OK)
		FAIL(CF_ERR_PARSE, "%s: reserved bytes 262..303 not zero", what);
	if (cf_cursor_borrow(&c, 16, &r->isv_family_id) != CF_OK ||
	    cf_cursor_borrow(&c, 64, &r->report_data) != CF_OK ||
	    cf_cursor_expect_end(&c) != CF_OK)
		FAIL(CF_ERR_PARSE, "%s: wrong size", what);
	return CF_OK;
}

static void parse_td_report(const uint8_t *p, size_t n, dcap_td_report *t)
{
	/* Fixed offsets inside a span whose size the caller checked. */
	memset(t, 0, sizeof(*t));
	t->raw = p;
	t->len = n;
	t->tee_tcb_svn = p + 0;
	t->mr_seam = p + 16;
	t->mr_signer_seam = p + 64;
	t->seam_attributes = p + 112;
	t->td_attributes = p + 120;
	t->xfam = p + 128;
	t->mr_td = p + 136;
	t->mr_config_id = p + 184;
	t->mr_owner = p + 232;
	t->mr_owner_config = p + 280;
	for (int i = 0; i < 4; i++)
		t->rtmr[i] = p + 328 + 48 * i;
	t->report_data = p + 520;
	if (n == DCAP_TD15_REPORT_LEN) {
		t->tee_tcb_svn2 = p + 584;
		t->mr_service_td = p + 600;
	}
}

/* QE report, its signature, QE authentication data (common to v3 and type 6). */
static cf_err parse_qe_part(cf_cursor *c, dcap_quote *q, size_t len, char *why, size_t whylen)
{
	const uint8_t *qe;
	uint16_t auth_len;
	cf_err rc;
	TAKE(cf_cursor_borrow(c, DCAP_SGX_REPORT_LEN, &qe), "the QE report");
	TAKE(cf_cursor_borrow(c, DCAP_SIG_LEN, &q->qe_report_sig), "the QE report signature");
	TAKE(cf_cursor_u16le(c, &auth_len), "the QE authentication data size");
	TAKE(cf_cursor_borrow(c, auth_len, &q->qe_auth), "the QE authentication data");
	q->qe_auth_len = auth_len;
	rc = parse_sgx_report(qe, &q->qe_report, "QE report", why, whylen);
	return rc;
}

/* u16 type = 5, u32 size, the PCK chain; must end exactly at the cursor's end. */
static cf_err parse_pck_cert_data(cf_cursor *c, dcap_quote *q, size_t len, const char *where,
				  char *why, size_t whylen)
{
	uint16_t type;
	uint32_t size;
	TAKE(cf_cursor_u16le(c, &type), "the certification data type");
	TAKE(cf_cursor_u32le(c, &size), "the certification data size");
	if (type != DCAP_CERT_PCK_CHAIN)
		FAIL(CF_ERR_PARSE, "%s certification data type %u (supported: 5 = PCK chain)",
		     where, type);
	if (size == 0 || size > DCAP_MAX_CERT_DATA)
		FAIL(CF_ERR_PARSE, "%s certification data size %u out of range", where, size);
	if (size > cf_cursor_remaining(c))
		FAIL(CF_ERR_TRUNCATED, "truncated: the PCK chain (%u bytes) runs past its container",
		     size);
	TAKE(cf_cursor_borrow(c, size, &q->pck_pem), "the PCK certificate chain");
	q->pck_pem_len = size;
	if (cf_cursor_expect_end(c) != CF_OK)
		FAIL(CF_ERR_PARSE, "%zu unexplained bytes after the %s certification data",
		     cf_cursor_remaining(c), where);
	return CF_OK;
}

cf_err dcap_quote_parse(const uint8_t *data, size_t len, dcap_quote *q, char *why, size_t whylen)
{
	cf_cursor c, sd;
	cf_err rc;
	memset(q, 0, sizeof(*q));
	snprintf(why, whylen, "ok");
	if (!data || len == 0)
		FAIL(CF_ERR_TRUNCATED, "empty evidence");
	cf_cursor_init(&c, data, len);

	/* Header (48 bytes). */
	TAKE(cf_cursor_u16le(&c, &q->version), "the header");
	TAKE(cf_cursor_u16le(&c, &q->key_type), "the header");
	TAKE(cf_cursor_u32le(&c, &q->tee_type), "the header");
	TAKE(cf_cursor_u16le(&c, &q->qe_svn), "the header");
	TAKE(cf_cursor_u16le(&c, &q->pce_svn), "the header");
	TAKE(cf_cursor_borrow(&c, 16, &q->qe_vendor_id), "the header");
	TAKE(cf_cursor_borrow(&c, 20, &q->user_data), "the header");
	if (q->version < 3 || q->version > 5)
		FAIL(CF_ERR_PARSE, "quote version %u (supported: 3, 4, 5)", q->version);
	if (q->key_type != 2)
		FAIL(CF_ERR_PARSE, "attestation key type %u (supported: 2 = ECDSA P-256)",
		     q->key_type);
	if (q->tee_type != DCAP_TEE_SGX && q->tee_type != DCAP_TEE_TDX)
		FAIL(CF_ERR_PARSE, "TEE type 0x%08x (supported: 0x00000000 SGX, 0x00000081 TDX)",
		     q->tee_type);
	if (q->version == 3 && q->tee_type != DCAP_TEE_SGX)
		FAIL(CF_ERR_PARSE, "quote v3 with TEE type 0x%08x (v3 is SGX only)", q->tee_type);
	if (memcmp(q->qe_vendor_id, intel_qe_vendor_id, 16) != 0)
		FAIL(CF_ERR_PARSE, "QE vendor ID is not Intel's (939a7233f79c4ca9940a0db3957f0607)");

	/* Body. */
	size_t body_len;
	if (q->version == 5) {
		uint16_t body_type;
		uint32_t body_size;
		TAKE(cf_cursor_u16le(&c, &body_type), "the body descriptor");
		TAKE(cf_cursor_u32le(&c, &body_size), "the body descriptor");
		static const size_t sizes[] = { 0, DCAP_SGX_REPORT_LEN, DCAP_TD10_REPORT_LEN,
						DCAP_TD15_REPORT_LEN };
		if (body_type < 1 || body_type > 3)
			FAIL(CF_ERR_PARSE, "quote v5 body type %u (supported: 1, 2, 3)", body_type);
		if (body_size != sizes[body_type])
			FAIL(CF_ERR_PARSE, "quote v5 body type %u with size %u (must be %zu)",
			     body_type, body_size, sizes[body_type]);
		if ((body_type == DCAP_BODY_SGX) != (q->tee_type == DCAP_TEE_SGX))
			FAIL(CF_ERR_PARSE, "quote v5 body type %u does not fit TEE type 0x%08x",
			     body_type, q->tee_type);
		q->body_type = body_type;
		body_len = body_size;
	} else if (q->tee_type == DCAP_TEE_TDX) {
		q->body_type = DCAP_BODY_TD10;
		body_len = DCAP_TD10_REPORT_LEN;
	} else {
		q->body_type = DCAP_BODY_SGX;
		body_len = DCAP_SGX_REPORT_LEN;
	}
	const uint8_t *body;
	TAKE(cf_cursor_borrow(&c, body_len, &body), "the report body");
	if (q->body_type == DCAP_BODY_SGX) {
		rc = parse_sgx_report(body, &q->sgx, "SGX report body", why, whylen);
		if (rc != CF_OK)
			return rc;
	} else {
		parse_td_report(body, body_len, &q->td);
	}
	q->signed_data = data;
	q->signed_len = c.off;

	/* Signature data. */
	TAKE(cf_cursor_u32le(&c, &q->sig_data_len), "the signature data length");
	if (q->sig_data_len > cf_cursor_remaining(&c))
		FAIL(CF_ERR_TRUNCATED,
		     "truncated: signature data of %u bytes declared, %zu present", q->sig_data_len,
		     cf_cursor_remaining(&c));
	const uint8_t *sig_data;
	TAKE(cf_cursor_borrow(&c, q->sig_data_len, &sig_data), "the signature data");
	cf_cursor_init(&sd, sig_data, q->sig_data_len);
	TAKE(cf_cursor_borrow(&sd, DCAP_SIG_LEN, &q->signature), "the quote signature");
	TAKE(cf_cursor_borrow(&sd, DCAP_KEY_LEN, &q->attest_key), "the attestation key");
	if (q->version == 3) {
		rc = parse_qe_part(&sd, q, len, why, whylen);
		if (rc != CF_OK)
			return rc;
		rc = parse_pck_cert_data(&sd, q, len, "signature data", why, whylen);
		if (rc != CF_OK)
			return rc;
	} else {
		uint16_t type;
		uint32_t size;
		const uint8_t *inner;
		cf_cursor ic;
		TAKE(cf_cursor_u16le(&sd, &type), "the certification data type");
		TAKE(cf_cursor_u32le(&sd, &size), "the certification data size");
		if (type != DCAP_CERT_QE_REPORT)
			FAIL(CF_ERR_PARSE,
			     "certification data type %u (quote v%u needs 6 = QE report data)", type,
			     q->version);
		if (size > cf_cursor_remaining(&sd))
			FAIL(CF_ERR_TRUNCATED,
			     "truncated: QE report certification data of %u bytes declared, %zu "
			     "present", size, cf_cursor_remaining(&sd));
		TAKE(cf_cursor_borrow(&sd, size, &inner), "the QE report certification data");
		if (cf_cursor_expect_end(&sd) != CF_OK)
			FAIL(CF_ERR_PARSE, "%zu unexplained bytes at the end of the signature data",
			     cf_cursor_remaining(&sd));
		cf_cursor_init(&ic, inner, size);
		rc = parse_qe_part(&ic, q, len, why, whylen);
		if (rc != CF_OK)
			return rc;
		rc = parse_pck_cert_data(&ic, q, len, "QE report", why, whylen);
		if (rc != CF_OK)
			return rc;
	}

	/* Whatever follows the signature data: the caller accepts zeros only. */
	q->trailing = cf_cursor_remaining(&c);
	q->trailing_zero = cf_cursor_zeros(&c, q->trailing) == CF_OK;
	snprintf(why, whylen, "ok");
	return CF_OK;
}
