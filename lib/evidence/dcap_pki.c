/*
 * Certificates and CRLs of Intel's PCK infrastructure ("SGX PCK Certificate
 * and Certificate Revocation List Profile Specification"): strict PEM and
 * DER loading, the PCK certificate's SGX extension (a small DER reader over
 * a cursor), and chain checks to the pinned Intel SGX Root CA.
 *
 * Chains are checked link by link (issuer name and key identifier, CA
 * basic constraint, signature) rather than with X509_verify_cert: the
 * chains are short and fixed in shape, and validity periods are reported
 * by a check of their own (cert_validity), not folded into "chain broken".
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "coffer/buf.h"
#include "coffer/crypto.h"
#include "coffer/enc.h"
#include "dcap_internal.h"

/*
 * SHA-256 of the DER encoding of the Intel SGX Root CA ("CN=Intel SGX Root
 * CA, O=Intel Corporation, L=Santa Clara, ST=CA, C=US", P-256, valid
 * 2018-05-21..2049-12-31), as in testdata/tdx/dcap-qvl/TrustedRootCA.der
 * (Phala-Network/dcap-qvl src/TrustedRootCA.der) and go-tdx-guest
 * verify/trusted_root.pem:
 * 44:A0:19:6B:2B:99:F8:89:B8:E1:49:E9:5B:80:7A:35:0E:74:24:96:43:99:E8:85:A7:CB:B8:CC:FA:B6:74:D3
 */
static const uint8_t intel_root_sha256[32] = {
	0x44, 0xa0, 0x19, 0x6b, 0x2b, 0x99, 0xf8, 0x89, 0xb8, 0xe1, 0x49, 0xe9, 0x5b, 0x80, 0x7a, 0x35,
	0x0e, 0x74, 0x24, 0x96, 0x43, 0x99, 0xe8, 0x85, 0xa7, 0xcb, 0xb8, 0xcc, 0xfa, 0xb6, 0x74, 0xd3,
};

#define PEM_MAX_B64 16384u /* a certificate or CRL of up to 12 KiB */
#define PEM_MAX_LINE 76u

/* --- PEM --- */

static bool is_space(uint8_t ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static bool is_b64(uint8_t ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '+' || ch == '/' || ch == '=';
}

static size_t skip_space(const uint8_t *p, size_t n, size_t off)
{
	while (off < n && is_space(p[off]))
		off++;
	return off;
}

static bool has_prefix(const uint8_t *p, size_t n, size_t off, const char *s)
{
	size_t k = strlen(s);
	return n - off >= k && memcmp(p + off, s, k) == 0;
}

/* One line ending: "\n" or "\r\n"; at_end_ok lets the data end instead. */
static bool take_eol(const uint8_t *p, size_t n, size_t *off, bool at_end_ok)
{
	if (*off == n)
		return at_end_ok;
	if (p[*off] == '\n') {
		(*off)++;
		return true;
	}
	if (n - *off >= 2 && p[*off] == '\r' && p[*off + 1] == '\n') {
		*off += 2;
		return true;
	}
	return false;
}

/*
 * "-----BEGIN <label>-----", base64 lines of at most 76 characters,
 * "-----END <label>-----". *der is malloc'd.
 */
static cf_err pem_block(const uint8_t *p, size_t n, size_t *off, const char *label, uint8_t **der,
			size_t *derlen)
{
	char begin[64], end[64];
	snprintf(begin, sizeof(begin), "-----BEGIN %s-----", label);
	snprintf(end, sizeof(end), "-----END %s-----", label);
	size_t o = *off;
	if (!has_prefix(p, n, o, begin))
		return CF_ERR_PARSE;
	o += strlen(begin);
	if (!take_eol(p, n, &o, false))
		return CF_ERR_PARSE;
	char *b64 = malloc(PEM_MAX_B64);
	if (!b64)
		return CF_ERR_NOMEM;
	size_t nb = 0;
	cf_err rc = CF_ERR_PARSE;
	for (;;) {
		if (has_prefix(p, n, o, end)) {
			o += strlen(end);
			if (!take_eol(p, n, &o, true))
				goto out;
			break;
		}
		size_t line = 0;
		while (o < n && is_b64(p[o])) {
			if (++line > PEM_MAX_LINE || nb == PEM_MAX_B64) {
				rc = nb == PEM_MAX_B64 ? CF_ERR_TOO_BIG : CF_ERR_PARSE;
				goto out;
			}
			b64[nb++] = (char)p[o++];
		}
		if (line == 0 || !take_eol(p, n, &o, false))
			goto out;
	}
	size_t cap = cf_b64_decoded_max(nb);
	uint8_t *d = malloc(cap ? cap : 1);
	if (!d) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	rc = cf_b64_decode(b64, nb, true, d, cap, derlen);
	if (rc != CF_OK || *derlen == 0) {
		free(d);
		rc = CF_ERR_PARSE;
		goto out;
	}
	*der = d;
	*off = o;
	rc = CF_OK;
out:
	free(b64);
	return rc;
}

static X509 *der_to_x509(const uint8_t *der, size_t len)
{
	return dcap_cache_cert(der, len); /* decodes (strictly) or shares */
}

static X509_CRL *der_to_crl(const uint8_t *der, size_t len)
{
	const unsigned char *q = der;
	if (len > LONG_MAX)
		return NULL;
	X509_CRL *x = d2i_X509_CRL(NULL, &q, (long)len);
	if (x && q != der + len) {
		X509_CRL_free(x);
		return NULL;
	}
	return x;
}

cf_err dcap_pem_chain(const uint8_t *p, size_t n, bool allow_nul, dcap_chain *out, char *why,
		      size_t whylen)
{
	memset(out, 0, sizeof(*out));
	snprintf(why, whylen, "ok");
	if (!p || n == 0) {
		snprintf(why, whylen, "empty certificate chain");
		return CF_ERR_PARSE;
	}
	size_t off = 0;
	for (;;) {
		off = skip_space(p, n, off);
		if (off == n)
			break;
		if (p[off] == 0 && allow_nul) {
			while (off < n && p[off] == 0)
				off++;
			if (off != n) {
				snprintf(why, whylen, "bytes after the NUL padding of the PEM chain");
				goto bad;
			}
			break;
		}
		if (out->n == DCAP_MAX_CHAIN) {
			snprintf(why, whylen, "more than %d certificates", DCAP_MAX_CHAIN);
			goto bad;
		}
		uint8_t *der = NULL;
		size_t derlen = 0;
		cf_err rc = pem_block(p, n, &off, "CERTIFICATE", &der, &derlen);
		if (rc == CF_ERR_NOMEM) {
			dcap_chain_free(out);
			return rc;
		}
		if (rc != CF_OK) {
			snprintf(why, whylen, "certificate %zu: not a well-formed PEM block",
				 out->n + 1);
			goto bad;
		}
		X509 *x = der_to_x509(der, derlen);
		free(der);
		if (!x) {
			snprintf(why, whylen, "certificate %zu: not a DER X.509 certificate",
				 out->n + 1);
			goto bad;
		}
		out->cert[out->n++] = x;
	}
	if (out->n == 0) {
		snprintf(why, whylen, "no certificate");
		goto bad;
	}
	return CF_OK;
bad:
	dcap_chain_free(out);
	return CF_ERR_PARSE;
}

void dcap_chain_free(dcap_chain *c)
{
	for (size_t i = 0; i < c->n; i++)
		X509_free(c->cert[i]);
	memset(c, 0, sizeof(*c));
}

static bool looks_pem(const uint8_t *p, size_t n)
{
	size_t off = skip_space(p, n, 0);
	return has_prefix(p, n, off, "-----BEGIN ");
}

cf_err dcap_cert_load(const uint8_t *p, size_t n, X509 **out)
{
	if (!p || n == 0)
		return CF_ERR_PARSE;
	if (looks_pem(p, n)) {
		dcap_chain c;
		char why[96];
		cf_err rc = dcap_pem_chain(p, n, false, &c, why, sizeof(why));
		if (rc != CF_OK)
			return rc;
		if (c.n != 1) {
			dcap_chain_free(&c);
			return CF_ERR_PARSE;
		}
		*out = c.cert[0];
		return CF_OK;
	}
	X509 *x = der_to_x509(p, n);
	if (!x)
		return CF_ERR_PARSE;
	*out = x;
	return CF_OK;
}

cf_err dcap_crl_load(const uint8_t *p, size_t n, X509_CRL **out)
{
	if (!p || n == 0)
		return CF_ERR_PARSE;
	if (looks_pem(p, n)) {
		size_t off = skip_space(p, n, 0);
		uint8_t *der = NULL;
		size_t derlen = 0;
		cf_err rc = pem_block(p, n, &off, "X509 CRL", &der, &derlen);
		if (rc != CF_OK)
			return rc;
		if (skip_space(p, n, off) != n) {
			free(der);
			return CF_ERR_PARSE;
		}
		X509_CRL *crl = der_to_crl(der, derlen);
		free(der);
		if (!crl)
			return CF_ERR_PARSE;
		*out = crl;
		return CF_OK;
	}
	X509_CRL *crl = der_to_crl(p, n);
	if (!crl)
		return CF_ERR_PARSE;
	*out = crl;
	return CF_OK;
}

/* --- the SGX extension --- */

/* 1.2.840.113741.1.13.1 and its arcs. */
static const uint8_t sgx_ext_oid[9] = { 0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01 };

static cf_err der_take(cf_cursor *c, uint8_t tag, cf_cursor *content)
{
	uint8_t t, l;
	size_t len;
	const uint8_t *p;
	if (cf_cursor_u8(c, &t) != CF_OK || cf_cursor_u8(c, &l) != CF_OK)
		return CF_ERR_TRUNCATED;
	if (t != tag)
		return CF_ERR_PARSE;
	if (l < 0x80) {
		len = l;
	} else if (l == 0x81) {
		uint8_t b;
		if (cf_cursor_u8(c, &b) != CF_OK)
			return CF_ERR_TRUNCATED;
		if (b < 0x80)
			return CF_ERR_PARSE; /* not minimal */
		len = b;
	} else if (l == 0x82) {
		uint16_t w;
		if (cf_cursor_u16be(c, &w) != CF_OK)
			return CF_ERR_TRUNCATED;
		if (w < 0x100)
			return CF_ERR_PARSE;
		len = w;
	} else {
		return CF_ERR_PARSE;
	}
	if (cf_cursor_borrow(c, len, &p) != CF_OK)
		return CF_ERR_TRUNCATED;
	cf_cursor_init(content, p, len);
	return CF_OK;
}

/* A non-negative, minimally encoded INTEGER (or ENUMERATED) up to max. */
static cf_err der_uint(cf_cursor *c, uint8_t tag, uint32_t max, uint32_t *out)
{
	cf_cursor v;
	cf_err rc = der_take(c, tag, &v);
	if (rc != CF_OK)
		return rc;
	size_t n = cf_cursor_remaining(&v);
	const uint8_t *p = v.data;
	if (n == 0 || n > 3 || (p[0] & 0x80) || (n > 1 && p[0] == 0 && !(p[1] & 0x80)))
		return CF_ERR_PARSE;
	uint32_t x = 0;
	for (size_t i = 0; i < n; i++)
		x = x << 8 | p[i];
	if (x > max)
		return CF_ERR_PARSE;
	*out = x;
	return CF_OK;
}

static cf_err der_octets(cf_cursor *c, uint8_t *out, size_t n)
{
	cf_cursor v;
	cf_err rc = der_take(c, 0x04, &v);
	if (rc != CF_OK)
		return rc;
	if (cf_cursor_remaining(&v) != n)
		return CF_ERR_PARSE;
	return cf_cursor_read(&v, out, n);
}

/* The OID of an item: must be sgx_ext_oid + arcs; returns the arcs. */
static cf_err der_sgx_oid(cf_cursor *c, size_t narcs, uint8_t *arcs)
{
	cf_cursor o;
	cf_err rc = der_take(c, 0x06, &o);
	if (rc != CF_OK)
		return rc;
	if (cf_cursor_remaining(&o) != sizeof(sgx_ext_oid) + narcs ||
	    memcmp(o.data, sgx_ext_oid, sizeof(sgx_ext_oid)) != 0)
		return CF_ERR_NOT_FOUND;
	for (size_t i = 0; i < narcs; i++)
		arcs[i] = o.data[sizeof(sgx_ext_oid) + i];
	return CF_OK;
}

static cf_err parse_tcb(cf_cursor *seq, dcap_pck_ext *out)
{
	uint32_t seen = 0;
	while (cf_cursor_remaining(seq)) {
		cf_cursor item;
		uint8_t arcs[2] = { 0, 0 };
		uint32_t v = 0;
		if (der_take(seq, 0x30, &item) != CF_OK || der_sgx_oid(&item, 2, arcs) != CF_OK)
			return CF_ERR_PARSE;
		if (arcs[0] != 2 || arcs[1] < 1 || arcs[1] > 18 || (seen & (1u << arcs[1])))
			return CF_ERR_PARSE;
		seen |= 1u << arcs[1];
		if (arcs[1] <= 16) {
			if (der_uint(&item, 0x02, 255, &v) != CF_OK)
				return CF_ERR_PARSE;
			out->tcb_comp[arcs[1] - 1] = (uint8_t)v;
		} else if (arcs[1] == 17) {
			if (der_uint(&item, 0x02, 65535, &v) != CF_OK)
				return CF_ERR_PARSE;
			out->pce_svn = (uint16_t)v;
		} else if (der_octets(&item, out->cpu_svn, 16) != CF_OK) {
			return CF_ERR_PARSE;
		}
		if (cf_cursor_expect_end(&item) != CF_OK)
			return CF_ERR_PARSE;
	}
	return seen == 0x7fffeu ? CF_OK : CF_ERR_PARSE; /* arcs 1..18 exactly once */
}

cf_err dcap_pck_ext_parse(X509 *leaf, dcap_pck_ext *out, char *why, size_t whylen)
{
	memset(out, 0, sizeof(*out));
	out->sgx_type = -1;
	const X509_EXTENSION *found = NULL;
	int n = X509_get_ext_count(leaf);
	for (int i = 0; i < n; i++) {
		const X509_EXTENSION *e = X509_get_ext(leaf, i);
		const ASN1_OBJECT *obj = X509_EXTENSION_get_object((X509_EXTENSION *)e);
		if (OBJ_length(obj) == sizeof(sgx_ext_oid) &&
		    memcmp(OBJ_get0_data(obj), sgx_ext_oid, sizeof(sgx_ext_oid)) == 0) {
			if (found) {
				snprintf(why, whylen, "two SGX extensions");
				return CF_ERR_PARSE;
			}
			found = e;
		}
	}
	if (!found) {
		snprintf(why, whylen, "no SGX extension (1.2.840.113741.1.13.1)");
		return CF_ERR_PARSE;
	}
	const ASN1_OCTET_STRING *os = X509_EXTENSION_get_data((X509_EXTENSION *)found);
	cf_cursor ext, seq;
	cf_cursor_init(&ext, ASN1_STRING_get0_data(os), (size_t)ASN1_STRING_length(os));
	if (der_take(&ext, 0x30, &seq) != CF_OK || cf_cursor_expect_end(&ext) != CF_OK) {
		snprintf(why, whylen, "SGX extension: not one DER SEQUENCE");
		return CF_ERR_PARSE;
	}
	unsigned seen = 0;
	while (cf_cursor_remaining(&seq)) {
		cf_cursor item, sub;
		uint8_t arc = 0;
		uint32_t v = 0;
		cf_err rc = der_take(&seq, 0x30, &item);
		if (rc == CF_OK)
			rc = der_sgx_oid(&item, 1, &arc);
		if (rc != CF_OK) {
			snprintf(why, whylen, "SGX extension: malformed item");
			return CF_ERR_PARSE;
		}
		if (arc < 8 && (seen & (1u << arc))) {
			snprintf(why, whylen, "SGX extension: item %u twice", arc);
			return CF_ERR_PARSE;
		}
		if (arc < 8)
			seen |= 1u << arc;
		switch (arc) {
		case 1:
			rc = der_octets(&item, out->ppid, 16);
			break;
		case 2:
			rc = der_take(&item, 0x30, &sub);
			if (rc == CF_OK)
				rc = parse_tcb(&sub, out);
			break;
		case 3:
			rc = der_octets(&item, out->pce_id, 2);
			break;
		case 4:
			rc = der_octets(&item, out->fmspc, 6);
			break;
		case 5:
			rc = der_uint(&item, 0x0a, 255, &v);
			out->sgx_type = (int)v;
			break;
		default:
			/* platform instance id, configuration: not used here */
			continue;
		}
		if (rc == CF_OK)
			rc = cf_cursor_expect_end(&item);
		if (rc != CF_OK) {
			snprintf(why, whylen, "SGX extension: malformed item %u", arc);
			return CF_ERR_PARSE;
		}
	}
	if ((seen & 0x1e) != 0x1e) { /* PPID, TCB, PCE-ID, FMSPC */
		snprintf(why, whylen, "SGX extension: PPID, TCB, PCE-ID or FMSPC missing");
		return CF_ERR_PARSE;
	}
	return CF_OK;
}

/* --- chains --- */

cf_err dcap_cert_fingerprint(X509 *c, uint8_t out[32])
{
	unsigned int len = 0;
	if (X509_digest(c, EVP_sha256(), out, &len) != 1 || len != 32)
		return CF_ERR_CRYPTO;
	return CF_OK;
}

bool dcap_is_intel_root(X509 *c)
{
	uint8_t fp[32];
	return dcap_cert_fingerprint(c, fp) == CF_OK && cf_ct_equal(fp, intel_root_sha256, 32);
}

static bool issued_by(X509 *child, X509 *parent)
{
	EVP_PKEY *k = X509_get0_pubkey(parent);
	return k && X509_check_issued(parent, child) == X509_V_OK && X509_check_ca(parent) == 1 &&
	       X509_verify(child, k) == 1;
}

bool dcap_issued_by(X509 *child, X509 *parent)
{
	return dcap_memo_link("dcap issued-by", child, parent, issued_by);
}

static bool self_signed(X509 *c, X509 *same)
{
	EVP_PKEY *k = X509_get0_pubkey(c);
	return c == same && k && X509_check_issued(c, c) == X509_V_OK && X509_verify(c, k) == 1;
}

void dcap_cert_cn(X509 *c, char *out, size_t outlen)
{
	char cn[128];
	int n = X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, cn,
					  (int)sizeof(cn));
	snprintf(out, outlen, "%s", n > 0 ? cn : "?");
	/* A CN is printed in checks: keep it to printable ASCII. */
	for (char *s = out; *s; s++) {
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
	}
}

bool dcap_chain_to_anchor(const dcap_chain *c, X509 *anchor, char *why, size_t whylen)
{
	char a[80], b[80];
	if (!anchor) {
		snprintf(why, whylen, "no trusted root certificate");
		return false;
	}
	if (!dcap_memo_link("dcap self-signed", anchor, anchor, self_signed)) {
		snprintf(why, whylen, "the trusted root is not a valid self-signed certificate");
		return false;
	}
	if (c->n == 0) {
		snprintf(why, whylen, "empty chain");
		return false;
	}
	for (size_t i = 0; i < c->n; i++) {
		X509 *cert = c->cert[i];
		if (i == c->n - 1 && X509_check_issued(cert, cert) == X509_V_OK) {
			if (X509_cmp(cert, anchor) != 0) {
				snprintf(why, whylen, "the chain ends in a root that is not the "
						      "trusted one");
				return false;
			}
			return true;
		}
		X509 *parent = i + 1 < c->n ? c->cert[i + 1] : anchor;
		if (!dcap_issued_by(cert, parent)) {
			dcap_cert_cn(cert, a, sizeof(a));
			dcap_cert_cn(parent, b, sizeof(b));
			snprintf(why, whylen, "\"%s\" is not validly issued by \"%s\"", a, b);
			return false;
		}
	}
	return true;
}

int dcap_asn1_time_cmp(const ASN1_TIME *a, time_t t)
{
	if (!a)
		return -2;
	return ASN1_TIME_cmp_time_t(a, t);
}

void dcap_asn1_time_str(const ASN1_TIME *a, char *out, size_t outlen)
{
	struct tm tm;
	if (!a || ASN1_TIME_to_tm(a, &tm) != 1) {
		snprintf(out, outlen, "?");
		return;
	}
	strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

bool dcap_cert_valid_at(X509 *c, time_t at)
{
	int nb = dcap_asn1_time_cmp(X509_get0_notBefore(c), at);
	int na = dcap_asn1_time_cmp(X509_get0_notAfter(c), at);
	return nb != -2 && na != -2 && nb <= 0 && na >= 0;
}

void dcap_cert_period(X509 *c, char *out, size_t outlen)
{
	char a[32], b[32];
	dcap_asn1_time_str(X509_get0_notBefore(c), a, sizeof(a));
	dcap_asn1_time_str(X509_get0_notAfter(c), b, sizeof(b));
	snprintf(out, outlen, "%s..%s", a, b);
}

static bool is_p256(EVP_PKEY *k)
{
	char group[32];
	size_t len = 0;
	if (!k || !EVP_PKEY_is_a(k, "EC"))
		return false;
	if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
					   &len) != 1)
		return false;
	return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

bool dcap_cert_verify_raw(X509 *c, const uint8_t *msg, size_t len, const uint8_t sig[64])
{
	EVP_PKEY *k = X509_get0_pubkey(c);
	if (!is_p256(k))
		return false;
	return cf_ecdsa_verify_raw(k, msg, len, sig, 32, CF_BIG_ENDIAN) == CF_OK;
}

bool dcap_crl_revokes(X509_CRL *crl, X509 *c)
{
	X509_REVOKED *r = NULL;
	/* 1: listed; 2: listed as removeFromCRL (not revoked); 0: absent. */
	return X509_CRL_get0_by_serial(crl, &r, (ASN1_INTEGER *)X509_get0_serialNumber(c)) == 1;
}
