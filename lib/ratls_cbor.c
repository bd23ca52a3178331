/*
 * The CBOR of an RA-TLS extension: tag(T, bstr(evidence)), nothing more.
 * The reader takes untrusted bytes: definite lengths only, minimal heads
 * only (RFC 8949 §4.2.1 preferred serialisation), no trailing bytes.
 */
#include <string.h>

#include "coffer/ratls.h"

enum { MT_BSTR = 2, MT_TAG = 6 };

static cf_err put_head(cf_buf *out, uint8_t major, uint64_t v)
{
	uint8_t h[9];
	size_t n;
	if (v < 24) {
		h[0] = (uint8_t)(major << 5 | v);
		n = 1;
	} else if (v <= 0xff) {
		h[0] = (uint8_t)(major << 5 | 24);
		n = 2;
	} else if (v <= 0xffff) {
		h[0] = (uint8_t)(major << 5 | 25);
		n = 3;
	} else if (v <= 0xffffffffu) {
		h[0] = (uint8_t)(major << 5 | 26);
		n = 5;
	} else {
		h[0] = (uint8_t)(major << 5 | 27);
		n = 9;
	}
	for (size_t i = 1; i < n; i++)
		h[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return cf_buf_append(out, h, n);
}

cf_err cf_ratls_cbor_encode(uint64_t tag, const uint8_t *data, size_t len, cf_buf *out)
{
	cf_err rc;
	if (!out || (!data && len) || len > CF_RATLS_MAX_EVIDENCE)
		return CF_ERR_ARG;
	if ((rc = put_head(out, MT_TAG, tag)) != CF_OK)
		return rc;
	if ((rc = put_head(out, MT_BSTR, len)) != CF_OK)
		return rc;
	return len ? cf_buf_append(out, data, len) : CF_OK;
}

/* One head: major type and argument, minimal and definite. */
static cf_err get_head(cf_cursor *c, uint8_t *major, uint64_t *arg)
{
	uint8_t ib;
	cf_err rc = cf_cursor_u8(c, &ib);
	if (rc != CF_OK)
		return rc;
	uint8_t ai = ib & 0x1f;
	*major = ib >> 5;
	if (ai < 24) {
		*arg = ai;
		return CF_OK;
	}
	uint64_t v, min;
	switch (ai) {
	case 24: {
		uint8_t b;
		rc = cf_cursor_u8(c, &b);
		v = b;
		min = 24;
		break;
	}
	case 25: {
		uint16_t b;
		rc = cf_cursor_u16be(c, &b);
		v = b;
		min = 0x100;
		break;
	}
	case 26: {
		uint32_t b;
		rc = cf_cursor_u32be(c, &b);
		v = b;
		min = 0x10000;
		break;
	}
	case 27:
		rc = cf_cursor_u64be(c, &v);
		min = 0x100000000ull;
		break;
	default: /* 28..30 reserved, 31 indefinite */
		return CF_ERR_PARSE;
	}
	if (rc != CF_OK)
		return rc;
	if (v < min)
		return CF_ERR_PARSE; /* non-minimal */
	*arg = v;
	return CF_OK;
}

cf_err cf_ratls_cbor_decode(const uint8_t *in, size_t len, uint64_t *tag, cf_blob *evidence)
{
	cf_cursor c;
	uint8_t major;
	uint64_t t, n;
	const uint8_t *p;
	cf_err rc;
	if ((!in && len) || !tag || !evidence)
		return CF_ERR_ARG;
	cf_cursor_init(&c, in, len);
	if ((rc = get_head(&c, &major, &t)) != CF_OK)
		return rc;
	if (major != MT_TAG)
		return CF_ERR_PARSE;
	if ((rc = get_head(&c, &major, &n)) != CF_OK)
		return rc;
	if (major != MT_BSTR)
		return CF_ERR_PARSE;
	if (n > CF_RATLS_MAX_EVIDENCE)
		return CF_ERR_TOO_BIG;
	if (n > cf_cursor_remaining(&c))
		return CF_ERR_TRUNCATED;
	if ((rc = cf_cursor_borrow(&c, (size_t)n, &p)) != CF_OK)
		return rc;
	if ((rc = cf_cursor_expect_end(&c)) != CF_OK)
		return rc;
	*tag = t;
	evidence->data = p;
	evidence->len = (size_t)n;
	return CF_OK;
}

cf_err cf_ratls_tag_of(cf_tee_kind kind, uint64_t *tag)
{
	switch (kind) {
	case CF_TEE_SGX:
	case CF_TEE_TDX:
		*tag = CF_RATLS_TAG_INTEL;
		return CF_OK;
	case CF_TEE_SNP:
		*tag = CF_RATLS_TAG_SNP;
		return CF_OK;
	case CF_TEE_SOFT:
		*tag = CF_RATLS_TAG_SOFT;
		return CF_OK;
	case CF_TEE_CSV:
		*tag = CF_RATLS_TAG_CSV;
		return CF_OK;
	default:
		return CF_ERR_UNSUPPORTED;
	}
}

cf_err cf_ratls_kind_of(uint64_t tag, const uint8_t *evidence, size_t len, cf_tee_kind *kind)
{
	switch (tag) {
	case CF_RATLS_TAG_INTEL: {
		/* Quote header: version u16, attestation key type u16, TEE type u32 (LE). */
		uint32_t tee_type = 0;
		if (len >= 8)
			tee_type = (uint32_t)evidence[4] | (uint32_t)evidence[5] << 8 |
				   (uint32_t)evidence[6] << 16 | (uint32_t)evidence[7] << 24;
		*kind = tee_type == 0x81 ? CF_TEE_TDX : CF_TEE_SGX;
		return CF_OK;
	}
	case CF_RATLS_TAG_SNP:
		*kind = CF_TEE_SNP;
		return CF_OK;
	case CF_RATLS_TAG_SOFT:
		*kind = CF_TEE_SOFT;
		return CF_OK;
	case CF_RATLS_TAG_CSV:
		*kind = CF_TEE_CSV;
		return CF_OK;
	default:
		return CF_ERR_UNSUPPORTED;
	}
}
