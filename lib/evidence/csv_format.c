/*
 * Strict parsers of the Hygon CSV certificate and report formats
 * (csv_internal.h). Every read goes through a cursor; every reserved
 * byte must be zero; a failure names the field and its offset.
 */
#include <stdio.h>
#include <string.h>

#include "coffer/buf.h"
#include "coffer/enc.h"

#include "csv_internal.h"

#define ATTESTATION_EXT_MAGIC "ATTESTATION_EXT" /* 15 chars + NUL = 16 bytes */

static cf_err failed(cf_err rc, const cf_cursor *c, const char *what, char *why)
{
	if (rc == CF_ERR_TRUNCATED)
		snprintf(why, CSV_WHY_LEN, "truncated in %s at byte %zu", what, c->len);
	else if (rc == CF_ERR_PARSE)
		snprintf(why, CSV_WHY_LEN, "%s at byte %zu is not zero", what, c->off);
	else
		snprintf(why, CSV_WHY_LEN, "%s at byte %zu: %s", what, c->off, cf_strerror(rc));
	return rc;
}

static cf_err rd_u32(cf_cursor *c, uint32_t *v, const char *what, char *why)
{
	cf_err rc = cf_cursor_u32le(c, v);
	return rc == CF_OK ? CF_OK : failed(rc, c, what, why);
}

static cf_err rd_u16(cf_cursor *c, uint16_t *v, const char *what, char *why)
{
	cf_err rc = cf_cursor_u16le(c, v);
	return rc == CF_OK ? CF_OK : failed(rc, c, what, why);
}

static cf_err rd_u8(cf_cursor *c, uint8_t *v, const char *what, char *why)
{
	cf_err rc = cf_cursor_u8(c, v);
	return rc == CF_OK ? CF_OK : failed(rc, c, what, why);
}

static cf_err rd_bytes(cf_cursor *c, void *out, size_t n, const char *what, char *why)
{
	cf_err rc = cf_cursor_read(c, out, n);
	return rc == CF_OK ? CF_OK : failed(rc, c, what, why);
}

static cf_err rd_zeros(cf_cursor *c, size_t n, const char *what, char *why)
{
	cf_err rc = cf_cursor_zeros(c, n);
	return rc == CF_OK ? CF_OK : failed(rc, c, what, why);
}

/* A 256-bit value in a 72-byte little-endian slot: the top 40 bytes must be zero. */
static cf_err rd_int256(cf_cursor *c, uint8_t out[static CSV_SM2_LEN], const char *what, char *why)
{
	cf_err rc = rd_bytes(c, out, CSV_SM2_LEN, what, why);
	if (rc == CF_OK)
		rc = rd_zeros(c, 72 - CSV_SM2_LEN, what, why);
	return rc;
}

static cf_err rd_pubkey(cf_cursor *c, csv_pubkey *k, char *why)
{
	uint32_t curve;
	cf_err rc = rd_u32(c, &curve, "curve id", why);
	if (rc != CF_OK)
		return rc;
	if (curve != CSV_CURVE_SM2) {
		snprintf(why, CSV_WHY_LEN, "curve id %u at byte %zu (want %u, SM2-256)", curve,
			 c->off - 4, CSV_CURVE_SM2);
		return CF_ERR_PARSE;
	}
	rc = rd_int256(c, k->x, "public key x (high bytes)", why);
	if (rc == CF_OK)
		rc = rd_int256(c, k->y, "public key y (high bytes)", why);
	return rc;
}

static cf_err rd_sig(cf_cursor *c, csv_sig *s, char *why)
{
	cf_err rc = rd_int256(c, s->r, "signature r (high bytes)", why);
	if (rc == CF_OK)
		rc = rd_int256(c, s->s, "signature s (high bytes)", why);
	return rc;
}

/* uid_size (1..254) then 254 bytes whose padding past uid_size is zero. */
static cf_err rd_uid(cf_cursor *c, uint16_t *len, uint8_t uid[static CSV_UID_MAX], char *why)
{
	cf_err rc = rd_u16(c, len, "user id size", why);
	if (rc != CF_OK)
		return rc;
	if (*len == 0 || *len > CSV_UID_MAX) {
		snprintf(why, CSV_WHY_LEN, "user id size %u at byte %zu (want 1..%d)", *len,
			 c->off - 2, CSV_UID_MAX);
		return CF_ERR_PARSE;
	}
	size_t at = c->off;
	rc = rd_bytes(c, uid, CSV_UID_MAX, "user id", why);
	if (rc != CF_OK)
		return rc;
	for (size_t i = *len; i < CSV_UID_MAX; i++) {
		if (uid[i]) {
			snprintf(why, CSV_WHY_LEN, "user id padding at byte %zu is not zero", at + i);
			return CF_ERR_PARSE;
		}
	}
	return CF_OK;
}

static cf_err exact_size(size_t len, size_t want, char *why)
{
	if (len == want)
		return CF_OK;
	snprintf(why, CSV_WHY_LEN, "%zu bytes (want exactly %zu)", len, want);
	return len < want ? CF_ERR_TRUNCATED : CF_ERR_TRAILING;
}

cf_err csv_ca_cert_parse(const uint8_t *p, size_t len, uint32_t want_usage, csv_ca_cert *out,
			 char why[static CSV_WHY_LEN])
{
	cf_cursor c;
	cf_err rc;
	memset(out, 0, sizeof(*out));
	why[0] = '\0';
	if (!p)
		len = 0; /* a NULL span is empty */
	if ((rc = exact_size(len, CSV_CA_CERT_LEN, why)) != CF_OK)
		return rc;
	cf_cursor_init(&c, p, len);
	if ((rc = rd_u32(&c, &out->version, "version", why)) != CF_OK)
		return rc;
	if (out->version != 1) {
		snprintf(why, CSV_WHY_LEN, "version %u (want 1)", out->version);
		return CF_ERR_PARSE;
	}
	if ((rc = rd_bytes(&c, out->key_id, CSV_KEY_ID_LEN, "key id", why)) != CF_OK ||
	    (rc = rd_bytes(&c, out->sig_id, CSV_KEY_ID_LEN, "certifying key id", why)) != CF_OK ||
	    (rc = rd_u32(&c, &out->usage, "key usage", why)) != CF_OK)
		return rc;
	if (out->usage != want_usage) {
		snprintf(why, CSV_WHY_LEN, "key usage 0x%04x (want 0x%04x, %s)", out->usage,
			 want_usage, want_usage == CSV_USAGE_HRK ? "HRK" : "HSK");
		return CF_ERR_PARSE;
	}
	if ((rc = rd_zeros(&c, 24, "reserved", why)) != CF_OK ||
	    (rc = rd_pubkey(&c, &out->key, why)) != CF_OK ||
	    (rc = rd_uid(&c, &out->uid_len, out->uid, why)) != CF_OK ||
	    (rc = rd_zeros(&c, 108, "reserved", why)) != CF_OK)
		return rc;
	if (c.off != CSV_CA_BODY_LEN) { /* the layout above is fixed: this cannot happen */
		snprintf(why, CSV_WHY_LEN, "internal layout error");
		return CF_ERR_PARSE;
	}
	memcpy(out->body, p, CSV_CA_BODY_LEN);
	if ((rc = rd_sig(&c, &out->sig, why)) != CF_OK ||
	    (rc = rd_zeros(&c, 112, "reserved", why)) != CF_OK)
		return rc;
	if ((rc = cf_cursor_expect_end(&c)) != CF_OK)
		snprintf(why, CSV_WHY_LEN, "trailing bytes at %zu", c.off);
	return rc;
}

static bool certifying_usage(uint32_t usage)
{
	return usage == CSV_USAGE_HSK || usage == CSV_USAGE_OCA || usage == CSV_USAGE_CEK;
}

static cf_err rd_slot(cf_cursor *c, int n, csv_sig_slot *s, char *why)
{
	size_t at = c->off;
	cf_err rc;
	if ((rc = rd_u32(c, &s->usage, "signature usage", why)) != CF_OK ||
	    (rc = rd_u32(c, &s->algo, "signature algorithm", why)) != CF_OK ||
	    (rc = rd_sig(c, &s->sig, why)) != CF_OK ||
	    (rc = rd_zeros(c, 368, "signature reserved", why)) != CF_OK)
		return rc;
	if (s->usage == CSV_USAGE_INVALID) {
		static const csv_sig zero;
		if (s->algo != 0 || memcmp(&s->sig, &zero, sizeof(zero)) != 0) {
			snprintf(why, CSV_WHY_LEN, "empty signature slot %d at byte %zu is not zero",
				 n, at);
			return CF_ERR_PARSE;
		}
		return CF_OK;
	}
	if (!certifying_usage(s->usage) || s->algo != CSV_ALGO_SM2_SIG) {
		snprintf(why, CSV_WHY_LEN,
			 "signature slot %d at byte %zu: usage 0x%04x, algorithm %u (want a "
			 "certifying usage with algorithm %u, SM2)",
			 n, at, s->usage, s->algo, CSV_ALGO_SM2_SIG);
		return CF_ERR_PARSE;
	}
	return CF_OK;
}

cf_err csv_cert_parse(const uint8_t *p, size_t len, uint32_t want_usage, csv_cert *out,
		      char why[static CSV_WHY_LEN])
{
	cf_cursor c;
	cf_err rc;
	memset(out, 0, sizeof(*out));
	why[0] = '\0';
	if (!p)
		len = 0; /* a NULL span is empty */
	if ((rc = exact_size(len, CSV_CERT_LEN, why)) != CF_OK)
		return rc;
	cf_cursor_init(&c, p, len);
	if ((rc = rd_u32(&c, &out->version, "version", why)) != CF_OK)
		return rc;
	/* csv-rs writes 1; Hygon's CEKs carry 2 (the staged one does). */
	if (out->version != 1 && out->version != 2) {
		snprintf(why, CSV_WHY_LEN, "version %u (want 1 or 2)", out->version);
		return CF_ERR_PARSE;
	}
	if ((rc = rd_u8(&c, &out->fw_major, "firmware major", why)) != CF_OK ||
	    (rc = rd_u8(&c, &out->fw_minor, "firmware minor", why)) != CF_OK ||
	    (rc = rd_zeros(&c, 2, "reserved", why)) != CF_OK ||
	    (rc = rd_u32(&c, &out->usage, "key usage", why)) != CF_OK ||
	    (rc = rd_u32(&c, &out->algo, "key algorithm", why)) != CF_OK)
		return rc;
	if (out->usage != want_usage) {
		snprintf(why, CSV_WHY_LEN, "key usage 0x%04x (want 0x%04x, %s)", out->usage,
			 want_usage, want_usage == CSV_USAGE_CEK ? "CEK" : "PEK");
		return CF_ERR_PARSE;
	}
	if (out->algo != CSV_ALGO_SM2_SIG) {
		snprintf(why, CSV_WHY_LEN, "key algorithm %u (want %u, SM2 signature)", out->algo,
			 CSV_ALGO_SM2_SIG);
		return CF_ERR_PARSE;
	}
	if ((rc = rd_pubkey(&c, &out->key, why)) != CF_OK ||
	    (rc = rd_uid(&c, &out->uid_len, out->uid, why)) != CF_OK ||
	    (rc = rd_bytes(&c, out->sid, CSV_KEY_ID_LEN, "sid", why)) != CF_OK ||
	    (rc = rd_zeros(&c, 608, "reserved", why)) != CF_OK)
		return rc;
	if (c.off != CSV_CERT_BODY_LEN) {
		snprintf(why, CSV_WHY_LEN, "internal layout error");
		return CF_ERR_PARSE;
	}
	memcpy(out->body, p, CSV_CERT_BODY_LEN);
	for (int i = 0; i < 2; i++) {
		if ((rc = rd_slot(&c, i, &out->slots[i], why)) != CF_OK)
			return rc;
	}
	if (out->slots[0].usage != CSV_USAGE_INVALID && out->slots[0].usage == out->slots[1].usage) {
		snprintf(why, CSV_WHY_LEN, "both signature slots have usage 0x%04x",
			 out->slots[0].usage);
		return CF_ERR_PARSE;
	}
	if ((rc = cf_cursor_expect_end(&c)) != CF_OK)
		snprintf(why, CSV_WHY_LEN, "trailing bytes at %zu", c.off);
	return rc;
}

const csv_sig_slot *csv_cert_slot(const csv_cert *c, uint32_t signer_usage)
{
	for (int i = 0; i < 2; i++) {
		if (c->slots[i].usage == signer_usage && c->slots[i].algo == CSV_ALGO_SM2_SIG)
			return &c->slots[i];
	}
	return NULL;
}

/* out[i] = in[i] ^ anonce's little-endian byte i % 4. */
static void xor_anonce(const uint8_t *in, size_t n, uint32_t anonce, uint8_t *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = in[i] ^ (uint8_t)(anonce >> (8 * (i % 4)));
}

cf_err csv_report_parse(const uint8_t *p, size_t len, csv_report *out, char why[static CSV_WHY_LEN])
{
	cf_cursor c, t;
	cf_err rc;
	const uint8_t *xored, *raw;
	uint8_t plain[CSV_XOR_LEN];
	uint8_t pek[CSV_CERT_LEN];
	char sub[CSV_WHY_LEN];

	memset(out, 0, sizeof(*out));
	why[0] = '\0';
	if (!p)
		len = 0; /* a NULL span is empty */
	if (len >= 16 && memcmp(p, ATTESTATION_EXT_MAGIC, 16) == 0) {
		snprintf(why, CSV_WHY_LEN, "an extended (V2/V3) report wrapper: not supported");
		return CF_ERR_UNSUPPORTED;
	}
	if ((rc = exact_size(len, CSV_REPORT_V1_LEN, why)) != CF_OK)
		return rc;
	cf_cursor_init(&c, p, len);

	/* TEE info: the first 0xBC bytes are XORed with anonce, which follows them. */
	if ((rc = cf_cursor_borrow(&c, CSV_XOR_LEN, &xored)) != CF_OK)
		return failed(rc, &c, "tee info", why);
	if ((rc = rd_u32(&c, &out->anonce, "anonce", why)) != CF_OK)
		return rc;
	out->signed_data = p;
	xor_anonce(xored, CSV_XOR_LEN, out->anonce, plain);
	cf_cursor_init(&t, plain, sizeof(plain));
	if ((rc = rd_bytes(&t, out->user_pubkey_digest, 32, "user pubkey digest", why)) != CF_OK ||
	    (rc = rd_bytes(&t, out->vm_id, 16, "vm id", why)) != CF_OK ||
	    (rc = rd_bytes(&t, out->vm_version, 16, "vm version", why)) != CF_OK ||
	    (rc = rd_bytes(&t, out->report_data, 64, "report data", why)) != CF_OK ||
	    (rc = rd_bytes(&t, out->mnonce, 16, "mnonce", why)) != CF_OK ||
	    (rc = rd_bytes(&t, out->measure, 32, "measure", why)) != CF_OK ||
	    (rc = rd_u32(&t, &out->policy, "policy", why)) != CF_OK ||
	    (rc = rd_u32(&t, &out->sig_usage, "signature usage", why)) != CF_OK ||
	    (rc = rd_u32(&t, &out->sig_algo, "signature algorithm", why)) != CF_OK)
		return rc;
	if (out->sig_usage != CSV_USAGE_PEK) {
		snprintf(why, CSV_WHY_LEN, "signature usage 0x%04x (want 0x%04x, PEK)",
			 out->sig_usage, CSV_USAGE_PEK);
		return CF_ERR_PARSE;
	}
	if (out->sig_algo != CSV_ALGO_SM2_SIG) {
		snprintf(why, CSV_WHY_LEN, "signature algorithm %u (want %u, SM2)", out->sig_algo,
			 CSV_ALGO_SM2_SIG);
		return CF_ERR_PARSE;
	}
	if ((rc = rd_sig(&c, &out->sig, why)) != CF_OK)
		return rc;

	/* Signer: PEK and SN XORed with anonce; reserved and mac as they are. */
	out->mac_data = c.data + c.off;
	if ((rc = cf_cursor_borrow(&c, CSV_CERT_LEN, &raw)) != CF_OK)
		return failed(rc, &c, "PEK certificate", why);
	xor_anonce(raw, CSV_CERT_LEN, out->anonce, pek);
	if ((rc = csv_cert_parse(pek, sizeof(pek), CSV_USAGE_PEK, &out->pek, sub)) != CF_OK) {
		snprintf(why, CSV_WHY_LEN, "PEK certificate (report byte %zu): %.120s",
			 (size_t)CSV_TEE_INFO_LEN, sub);
		return rc;
	}
	if ((rc = cf_cursor_borrow(&c, CSV_SN_LEN, &raw)) != CF_OK)
		return failed(rc, &c, "serial number", why);
	xor_anonce(raw, CSV_SN_LEN, out->anonce, out->sn);
	/* The 32 reserved bytes are not zero in firmware output; the MAC covers them. */
	if ((rc = cf_cursor_skip(&c, 32)) != CF_OK)
		return failed(rc, &c, "signer reserved", why);
	if ((rc = rd_bytes(&c, out->mac, CSV_MAC_LEN, "signer mac", why)) != CF_OK)
		return rc;
	if ((rc = cf_cursor_expect_end(&c)) != CF_OK)
		snprintf(why, CSV_WHY_LEN, "trailing bytes at %zu", c.off);
	return rc;
}

bool csv_sn_string(const uint8_t sn[static CSV_SN_LEN], char out[static 2 * CSV_SN_LEN + 1])
{
	size_t n = 0;
	while (n < CSV_SN_LEN && sn[n] > 0x20 && sn[n] < 0x7f)
		n++;
	bool ok = n > 0;
	for (size_t i = n; i < CSV_SN_LEN; i++)
		ok &= sn[i] == 0;
	if (!ok) {
		cf_hex_encode(sn, CSV_SN_LEN, out);
		return false;
	}
	memcpy(out, sn, n);
	out[n] = '\0';
	return true;
}
