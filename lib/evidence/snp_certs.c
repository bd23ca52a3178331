/*
 * SEV-SNP certificates: the VCEK or VLEK, the ASK or ASVK and the ARK.
 *
 * ARK (self-signed, RSA) -> ASK "SEV-<product>" -> VCEK "SEV-VCEK", or
 * ARK -> ASVK "SEV-VLEK-<product>" -> VLEK "SEV-VLEK". Every certificate
 * signature is RSASSA-PSS with SHA-384, MGF1-SHA-384 and a 48-byte salt
 * (AMD 57230); the parameters are checked exactly before OpenSSL checks
 * the signature. The ARK is trusted only if it is byte for byte one of
 * AMD's ARKs (pinned below). The leaf's AMD extensions (arc
 * 1.3.6.1.4.1.3704.1) carry the TCB it was issued for and, for a VCEK, the
 * chip's hwID: they are decoded once, here, and compared with each report.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "coffer/crypto.h"
#include "coffer/enc.h"
#include "snp_internal.h"

#define VEK_MAX_LEN (16u * 1024)   /* one certificate, DER or PEM */
#define CHAIN_MAX_LEN (64u * 1024) /* a few PEM certificates */
#define CHAIN_MAX_CERTS 4
#define WHY_LEN 200

/*
 * AMD's root keys, pinned by the SHA-256 of the ARK certificate (DER).
 * Source: /work/shared/testdata/snp/go-sev-guest/trust/ask_ark_{milan,genoa,
 * turin_vcek}.pem (google/go-sev-guest verify/trust at af1c107a648f; the
 * same certificates AMD's KDS serves at /vcek/v1/<product>/cert_chain and
 * trustee ships); `openssl x509 -noout -fingerprint -sha256` of the second
 * certificate of each file, as listed in testdata/FORMATS.md section 1.
 */
static const struct {
	cf_snp_product product;
	uint8_t sha256[32];
} pinned_arks[] = {
	{ CF_SNP_PRODUCT_MILAN, /* ARK-Milan */
	  { 0x69, 0xD0, 0x63, 0xB4, 0x53, 0x44, 0xD2, 0x6A, 0x2E, 0x94, 0xE1,
	    0xF4, 0x21, 0x0D, 0xE4, 0x9E, 0xF5, 0x55, 0x30, 0x82, 0x87, 0xD4,
	    0xC1, 0x74, 0x44, 0x5C, 0x95, 0x63, 0x9A, 0x54, 0x0B, 0xCD } },
	{ CF_SNP_PRODUCT_GENOA, /* ARK-Genoa */
	  { 0x4C, 0x65, 0x98, 0xD1, 0x9C, 0x18, 0x71, 0x9C, 0x5D, 0xFD, 0x4A,
	    0x7D, 0x33, 0x5F, 0x67, 0x4E, 0x5B, 0xFE, 0x1D, 0x8F, 0x80, 0x0C,
	    0xEA, 0x2C, 0xF2, 0x70, 0xC1, 0x0D, 0x10, 0x3D, 0xB2, 0xF1 } },
	{ CF_SNP_PRODUCT_TURIN, /* ARK-Turin */
	  { 0x1F, 0x08, 0x41, 0x61, 0xA4, 0x4B, 0xB6, 0xD9, 0x37, 0x78, 0xA9,
	    0x04, 0x87, 0x7D, 0x48, 0x19, 0xCA, 0xFA, 0x5D, 0x05, 0xEF, 0x41,
	    0x93, 0xB2, 0xDE, 0xD9, 0xDD, 0x9C, 0x73, 0xDD, 0x3F, 0x6A } },
};

/* DER content of the OID 1.3.6.1.4.1.3704.1 (AMD's VCEK extension arc). */
static const uint8_t amd_arc[] = { 0x2B, 0x06, 0x01, 0x04, 0x01, 0x9C, 0x78, 0x01 };

enum { SPL_FIRST = 1, SPL_LAST = 9 }; /* .3.1 blSPL ... .3.8 ucodeSPL, .3.9 fmcSPL */
enum { SPL_BL = 1, SPL_TEE = 2, SPL_SNP = 3, SPL_UCODE = 8, SPL_FMC = 9 };

/* A yes/no outcome decided at load time, with its explanation. */
typedef struct outcome {
	bool ok;
	char why[WHY_LEN];
} outcome;

struct cf_snp_certs {
	X509 *vek, *ask, *ark; /* ask: the ASK or ASVK that issued the leaf */
	EVP_PKEY *vek_key;     /* borrowed from vek */
	bool vlek;             /* leaf CN "SEV-VLEK" (else "SEV-VCEK" or unknown) */
	bool leaf_known;       /* CN is SEV-VCEK or SEV-VLEK */
	char vek_cn[64], ask_cn[64], ark_cn[64];
	cf_snp_product product;
	outcome pinned, ark_sig, ask_sig, vek_sig, vek_key_ok;
	/* AMD extensions */
	outcome ext;             /* well-formed, no duplicates */
	int spl[SPL_LAST + 1];   /* -1 when absent */
	char product_name[32];   /* productName, "" when absent */
	outcome hwid;            /* the hwID decoded at the product's length */
	uint8_t hwid_bytes[64];
	size_t hwid_len;
};

static void say(char *why, size_t whylen, const char *fmt, ...) CF_PRINTF(3, 4);
static void say(char *why, size_t whylen, const char *fmt, ...)
{
	if (!why || whylen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static void set(outcome *o, bool ok, const char *fmt, ...) CF_PRINTF(3, 4);
static void set(outcome *o, bool ok, const char *fmt, ...)
{
	va_list ap;
	o->ok = ok;
	va_start(ap, fmt);
	vsnprintf(o->why, sizeof(o->why), fmt, ap);
	va_end(ap);
}

/* The CN of a name as printable ASCII ("" if absent or too long). */
static void common_name(const X509_NAME *name, char *out, size_t cap)
{
	out[0] = '\0';
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (i < 0)
		return;
	const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	int len = s ? ASN1_STRING_length(s) : 0;
	const unsigned char *d = s ? ASN1_STRING_get0_data(s) : NULL;
	if (!d || len <= 0 || (size_t)len >= cap)
		return;
	for (int k = 0; k < len; k++)
		out[k] = d[k] >= 0x20 && d[k] < 0x7f ? (char)d[k] : '?';
	out[len] = '\0';
}

/* --- parsing --- */

static bool looks_pem(const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
		i++;
	return n - i >= 10 && memcmp(p + i, "-----BEGIN", 10) == 0;
}

static X509 *der_cert(const uint8_t *p, long n)
{
	const unsigned char *q = p;
	X509 *x = d2i_X509(NULL, &q, n);
	if (x && q != p + n) { /* trailing bytes */
		X509_free(x);
		x = NULL;
	}
	return x;
}

/*
 * Reads every PEM block of `data` into certs (at most max). Each block must
 * be a CERTIFICATE without headers holding exactly one DER certificate.
 */
static cf_err pem_certs(const uint8_t *data, size_t len, X509 **certs, size_t max, size_t *n,
			char *why, size_t whylen)
{
	cf_err rc = CF_OK;
	*n = 0;
	BIO *bio = BIO_new_mem_buf(data, (int)len);
	if (!bio)
		return CF_ERR_NOMEM;
	for (;;) {
		char *name = NULL, *header = NULL;
		unsigned char *der = NULL;
		long derlen = 0;
		if (PEM_read_bio(bio, &name, &header, &der, &derlen) != 1) {
			unsigned long e = ERR_peek_last_error();
			if (*n == 0 || ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
				say(why, whylen, "%s", *n == 0 ? "no PEM certificate" : "malformed PEM");
				rc = CF_ERR_PARSE;
			}
			break;
		}
		X509 *x = NULL;
		if (strcmp(name, "CERTIFICATE") != 0 || header[0] != '\0') {
			say(why, whylen, "PEM block %zu is not a plain CERTIFICATE", *n + 1);
			rc = CF_ERR_PARSE;
		} else if (*n == max) {
			say(why, whylen, "more than %zu certificates", max);
			rc = CF_ERR_TOO_BIG;
		} else if (!(x = der_cert(der, derlen))) {
			say(why, whylen, "PEM block %zu is not an X.509 certificate", *n + 1);
			rc = CF_ERR_PARSE;
		} else {
			certs[(*n)++] = x;
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(der);
		if (rc != CF_OK)
			break;
	}
	BIO_free(bio);
	ERR_clear_error();
	if (rc != CF_OK) {
		for (size_t i = 0; i < *n; i++)
			X509_free(certs[i]);
		*n = 0;
	}
	return rc;
}

/* --- signatures --- */

/* True if x is signed with RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48. */
static bool pss_sha384(const X509 *x, char *why, size_t whylen)
{
	const X509_ALGOR *alg = NULL;
	const ASN1_OBJECT *obj = NULL;
	const void *pval = NULL;
	int ptype = 0;
	bool ok = false;
	RSA_PSS_PARAMS *pss = NULL;
	X509_ALGOR *mgf_hash = NULL;

	X509_get0_signature(NULL, &alg, x);
	X509_ALGOR_get0(&obj, &ptype, &pval, alg);
	if (OBJ_obj2nid(obj) != NID_rsassaPss || ptype != V_ASN1_SEQUENCE) {
		say(why, whylen, "signature algorithm %s, not RSASSA-PSS",
		    OBJ_nid2sn(OBJ_obj2nid(obj)));
		return false;
	}
	const ASN1_STRING *seq = pval;
	const unsigned char *p = ASN1_STRING_get0_data(seq);
	long n = ASN1_STRING_length(seq);
	pss = d2i_RSA_PSS_PARAMS(NULL, &p, n);
	if (!pss || p != ASN1_STRING_get0_data(seq) + n) {
		say(why, whylen, "%s", "malformed RSASSA-PSS parameters");
		goto out;
	}
	int64_t salt = -1, trailer = 1;
	if (!pss->hashAlgorithm || OBJ_obj2nid(pss->hashAlgorithm->algorithm) != NID_sha384) {
		say(why, whylen, "%s", "RSASSA-PSS hash is not SHA-384");
		goto out;
	}
	if (!pss->maskGenAlgorithm || OBJ_obj2nid(pss->maskGenAlgorithm->algorithm) != NID_mgf1 ||
	    !pss->maskGenAlgorithm->parameter ||
	    pss->maskGenAlgorithm->parameter->type != V_ASN1_SEQUENCE) {
		say(why, whylen, "%s", "RSASSA-PSS mask generation is not MGF1");
		goto out;
	}
	const ASN1_STRING *mseq = pss->maskGenAlgorithm->parameter->value.sequence;
	p = ASN1_STRING_get0_data(mseq);
	mgf_hash = d2i_X509_ALGOR(NULL, &p, ASN1_STRING_length(mseq));
	if (!mgf_hash || OBJ_obj2nid(mgf_hash->algorithm) != NID_sha384) {
		say(why, whylen, "%s", "RSASSA-PSS MGF1 hash is not SHA-384");
		goto out;
	}
	if (!pss->saltLength || ASN1_INTEGER_get_int64(&salt, pss->saltLength) != 1 || salt != 48) {
		say(why, whylen, "RSASSA-PSS salt length %" PRId64 ", not 48", salt);
		goto out;
	}
	if (pss->trailerField &&
	    (ASN1_INTEGER_get_int64(&trailer, pss->trailerField) != 1 || trailer != 1)) {
		say(why, whylen, "%s", "RSASSA-PSS trailer field is not 1");
		goto out;
	}
	ok = true;
out:
	X509_ALGOR_free(mgf_hash);
	RSA_PSS_PARAMS_free(pss);
	ERR_clear_error();
	return ok;
}

/* subject was issued and signed by issuer (RSASSA-PSS SHA-384). */
static void check_signed(outcome *o, const X509 *subject, const char *subject_role,
			 const X509 *issuer, const char *issuer_role)
{
	char why[WHY_LEN];
	char issuer_cn[64];
	if (X509_NAME_cmp(X509_get_issuer_name(subject), X509_get_subject_name(issuer)) != 0) {
		common_name(X509_get_issuer_name(subject), issuer_cn, sizeof(issuer_cn));
		set(o, false, "%s issuer CN=%s is not the %s", subject_role, issuer_cn, issuer_role);
		return;
	}
	if (!pss_sha384(subject, why, sizeof(why))) {
		set(o, false, "%s: %s", subject_role, why);
		return;
	}
	EVP_PKEY *key = X509_get0_pubkey(issuer);
	int id = key ? EVP_PKEY_get_base_id(key) : 0;
	if (id != EVP_PKEY_RSA && id != EVP_PKEY_RSA_PSS) {
		set(o, false, "the %s key is not RSA", issuer_role);
		ERR_clear_error();
		return;
	}
	int r = X509_verify((X509 *)subject, key);
	ERR_clear_error();
	if (r != 1) {
		set(o, false, "the %s signature by the %s does not verify", subject_role,
		    issuer_role);
		return;
	}
	set(o, true, "%s signed by the %s (RSASSA-PSS SHA-384, %d-bit key)", subject_role,
	    issuer_role, EVP_PKEY_get_bits(key));
}

static void check_pin(cf_snp_certs *c)
{
	unsigned char *der = NULL;
	uint8_t digest[CF_SHA256_LEN];
	char hex[2 * CF_SHA256_LEN + 1];
	int n = i2d_X509(c->ark, &der);
	if (n <= 0 || cf_hash(CF_SHA256, der, (size_t)n, digest) != CF_OK) {
		OPENSSL_free(der);
		ERR_clear_error();
		set(&c->pinned, false, "%s", "cannot encode the ARK");
		return;
	}
	OPENSSL_free(der);
	cf_hex_encode(digest, sizeof(digest), hex);
	for (size_t i = 0; i < sizeof(pinned_arks) / sizeof(pinned_arks[0]); i++) {
		if (memcmp(digest, pinned_arks[i].sha256, sizeof(digest)) == 0) {
			c->product = pinned_arks[i].product;
			set(&c->pinned, true, "ARK-%s (sha256 %s)",
			    cf_snp_product_name(c->product), hex);
			return;
		}
	}
	set(&c->pinned, false, "unknown ARK CN=%s (sha256 %s)", c->ark_cn, hex);
	/* Not trusted, but name the product it claims so the other checks read well. */
	if (strcmp(c->ark_cn, "ARK-Milan") == 0)
		c->product = CF_SNP_PRODUCT_MILAN;
	else if (strcmp(c->ark_cn, "ARK-Genoa") == 0)
		c->product = CF_SNP_PRODUCT_GENOA;
	else if (strcmp(c->ark_cn, "ARK-Turin") == 0)
		c->product = CF_SNP_PRODUCT_TURIN;
}

static void check_leaf_key(cf_snp_certs *c)
{
	char group[32] = "";
	EVP_PKEY *k = c->vek_key;
	if (!k || EVP_PKEY_get_base_id(k) != EVP_PKEY_EC) {
		set(&c->vek_key_ok, false, "the %s key is not an EC key", c->vlek ? "VLEK" : "VCEK");
	} else if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group,
						  sizeof(group), NULL) != 1 ||
		   strcmp(group, "secp384r1") != 0) {
		set(&c->vek_key_ok, false, "the %s key is on curve %s, not P-384",
		    c->vlek ? "VLEK" : "VCEK", group[0] ? group : "(unknown)");
	} else {
		set(&c->vek_key_ok, true, "%s", "P-384");
	}
	ERR_clear_error();
}

/* --- AMD extensions --- */

/* A DER INTEGER 0..255 filling the whole value. */
static bool der_u8(const ASN1_OCTET_STRING *v, int *out)
{
	const unsigned char *p = ASN1_STRING_get0_data(v);
	long n = ASN1_STRING_length(v);
	int64_t x = -1;
	ASN1_INTEGER *i = d2i_ASN1_INTEGER(NULL, &p, n);
	bool ok = i && p == ASN1_STRING_get0_data(v) + n && ASN1_INTEGER_get_int64(&x, i) == 1 &&
		  x >= 0 && x <= 255;
	ASN1_INTEGER_free(i);
	ERR_clear_error();
	if (ok)
		*out = (int)x;
	return ok;
}

/* A DER IA5String filling the whole value, as printable ASCII. */
static bool der_ia5(const ASN1_OCTET_STRING *v, char *out, size_t cap)
{
	const unsigned char *p = ASN1_STRING_get0_data(v);
	long n = ASN1_STRING_length(v);
	ASN1_IA5STRING *s = d2i_ASN1_IA5STRING(NULL, &p, n);
	bool ok = s && p == ASN1_STRING_get0_data(v) + n && ASN1_STRING_length(s) > 0 &&
		  (size_t)ASN1_STRING_length(s) < cap;
	if (ok) {
		const unsigned char *d = ASN1_STRING_get0_data(s);
		int len = ASN1_STRING_length(s);
		for (int k = 0; k < len && ok; k++)
			ok = d[k] >= 0x20 && d[k] < 0x7f;
		if (ok) {
			memcpy(out, d, (size_t)len);
			out[len] = '\0';
		}
	}
	ASN1_IA5STRING_free(s);
	ERR_clear_error();
	return ok;
}

/*
 * The hwID is either exactly `want` raw bytes (what the KDS serves) or a
 * DER OCTET STRING of exactly `want` bytes: the two differ in length, so
 * the length decides.
 */
static void decode_hwid(cf_snp_certs *c, const ASN1_OCTET_STRING *v)
{
	size_t want = c->product == CF_SNP_PRODUCT_TURIN ? 8 : 64;
	const unsigned char *d = ASN1_STRING_get0_data(v);
	size_t n = (size_t)ASN1_STRING_length(v);
	if (n == want) {
		memcpy(c->hwid_bytes, d, want);
	} else if (n == want + 2 && d[0] == 0x04 && d[1] == want) {
		memcpy(c->hwid_bytes, d + 2, want);
	} else {
		set(&c->hwid, false, "hwID is %zu bytes, neither %zu raw bytes nor an OCTET STRING "
			    "of %zu (%s)", n, want, want, cf_snp_product_name(c->product));
		return;
	}
	c->hwid_len = want;
	set(&c->hwid, true, "%s", "hwID");
}

static void decode_extensions(cf_snp_certs *c)
{
	unsigned seen = 0; /* bit per extension kind, to refuse duplicates */
	const ASN1_OCTET_STRING *hwid = NULL;
	for (int k = SPL_FIRST; k <= SPL_LAST; k++)
		c->spl[k] = -1;
	set(&c->hwid, false, "%s", "no hwID extension (1.3.6.1.4.1.3704.1.4)");
	int count = X509_get_ext_count(c->vek);
	for (int i = 0; i < count; i++) {
		X509_EXTENSION *e = X509_get_ext(c->vek, i);
		const ASN1_OBJECT *obj = X509_EXTENSION_get_object(e);
		const unsigned char *oid = OBJ_get0_data(obj);
		size_t oidlen = OBJ_length(obj);
		const ASN1_OCTET_STRING *val = X509_EXTENSION_get_data(e);
		if (!oid || oidlen <= sizeof(amd_arc) || memcmp(oid, amd_arc, sizeof(amd_arc)) != 0)
			continue;
		const unsigned char *rest = oid + sizeof(amd_arc);
		size_t restlen = oidlen - sizeof(amd_arc);
		unsigned bit;
		bool ok = true;
		if (restlen == 1 && rest[0] == 1) { /* structVersion */
			int sv;
			bit = 1u << 0;
			ok = der_u8(val, &sv);
		} else if (restlen == 1 && rest[0] == 2) { /* productName */
			bit = 1u << 1;
			ok = der_ia5(val, c->product_name, sizeof(c->product_name));
		} else if (restlen == 2 && rest[0] == 3 && rest[1] >= SPL_FIRST && rest[1] <= SPL_LAST) {
			bit = 1u << (2 + rest[1]);
			ok = der_u8(val, &c->spl[rest[1]]);
		} else if (restlen == 1 && rest[0] == 4) { /* hwID */
			bit = 1u << 12;
			hwid = val;
		} else if (restlen == 1 && rest[0] == 5) { /* cspID (VLEK) */
			bit = 1u << 13;
		} else {
			continue; /* an AMD extension this verifier does not use */
		}
		if (seen & bit) {
			set(&c->ext, false, "%s", "duplicate AMD extension");
			return;
		}
		seen |= bit;
		if (!ok) {
			if (restlen == 2)
				set(&c->ext, false, "malformed extension 1.3.6.1.4.1.3704.1.%u.%u",
				    (unsigned)rest[0], (unsigned)rest[1]);
			else
				set(&c->ext, false, "malformed extension 1.3.6.1.4.1.3704.1.%u",
				    (unsigned)rest[0]);
			return;
		}
	}
	set(&c->ext, true, "%s", "well-formed");
	if (hwid)
		decode_hwid(c, hwid);
}

/* --- loading --- */

static X509 *load_leaf(const cf_blob *b, char *why, size_t whylen, cf_err *rc)
{
	if (!looks_pem(b->data, b->len)) {
		X509 *x = b->len <= LONG_MAX ? der_cert(b->data, (long)b->len) : NULL;
		ERR_clear_error();
		if (!x) {
			say(why, whylen, "%s", "the VCEK/VLEK is not a DER or PEM X.509 certificate");
			*rc = CF_ERR_PARSE;
		}
		return x;
	}
	X509 *certs[2] = { NULL, NULL };
	size_t n = 0;
	char inner[WHY_LEN];
	*rc = pem_certs(b->data, b->len, certs, 2, &n, inner, sizeof(inner));
	if (*rc != CF_OK) {
		say(why, whylen, "VCEK/VLEK PEM: %s", inner);
		return NULL;
	}
	if (n != 1) {
		for (size_t i = 0; i < n; i++)
			X509_free(certs[i]);
		say(why, whylen, "VCEK/VLEK PEM holds %zu certificates, not one", n);
		*rc = CF_ERR_PARSE;
		return NULL;
	}
	return certs[0];
}

void cf_snp_certs_free(cf_snp_certs *c)
{
	if (!c)
		return;
	X509_free(c->vek);
	X509_free(c->ask);
	X509_free(c->ark);
	free(c);
}

cf_err cf_snp_certs_load(const cf_blob *vek, const cf_blob *chain, cf_snp_certs **out, char *why,
			 size_t whylen)
{
	cf_err rc = CF_OK;
	cf_snp_certs *c = NULL;
	X509 *certs[CHAIN_MAX_CERTS];
	size_t n = 0;
	say(why, whylen, "%s", "");
	if (!out)
		return CF_ERR_ARG;
	*out = NULL;
	if (!vek || !vek->data || vek->len == 0) {
		say(why, whylen, "%s", "no VCEK or VLEK certificate given");
		return CF_ERR_NOT_FOUND;
	}
	if (!chain || !chain->data || chain->len == 0) {
		say(why, whylen, "%s", "no ASK/ASVK + ARK chain given");
		return CF_ERR_NOT_FOUND;
	}
	if (vek->len > VEK_MAX_LEN || chain->len > CHAIN_MAX_LEN) {
		say(why, whylen, "%s", "certificate input larger than any SNP certificate");
		return CF_ERR_TOO_BIG;
	}
	if (!(c = calloc(1, sizeof(*c))))
		return CF_ERR_NOMEM;
	if (!(c->vek = load_leaf(vek, why, whylen, &rc)))
		goto out;
	char inner[WHY_LEN];
	if ((rc = pem_certs(chain->data, chain->len, certs, CHAIN_MAX_CERTS, &n, inner,
			    sizeof(inner))) != CF_OK) {
		say(why, whylen, "chain: %s", inner);
		goto out;
	}
	/* The ARK: the one self-issued certificate. */
	size_t roots = 0, ark = 0;
	for (size_t i = 0; i < n; i++) {
		if (X509_NAME_cmp(X509_get_subject_name(certs[i]), X509_get_issuer_name(certs[i])) ==
		    0) {
			roots++;
			ark = i;
		}
	}
	if (roots != 1 || n < 2) {
		say(why, whylen, "chain of %zu certificates has %zu self-issued roots; want an "
			    "ASK or ASVK and one ARK", n, roots);
		rc = CF_ERR_PARSE;
		goto out;
	}
	/* The intermediate: the one that issued the leaf, else the first other one. */
	size_t ask = n;
	for (size_t i = 0; i < n; i++) {
		if (i == ark)
			continue;
		if (ask == n)
			ask = i;
		if (X509_NAME_cmp(X509_get_subject_name(certs[i]), X509_get_issuer_name(c->vek)) ==
		    0) {
			ask = i;
			break;
		}
	}
	c->ark = certs[ark];
	c->ask = certs[ask];
	certs[ark] = certs[ask] = NULL;

	common_name(X509_get_subject_name(c->vek), c->vek_cn, sizeof(c->vek_cn));
	common_name(X509_get_subject_name(c->ask), c->ask_cn, sizeof(c->ask_cn));
	common_name(X509_get_subject_name(c->ark), c->ark_cn, sizeof(c->ark_cn));
	c->vlek = strcmp(c->vek_cn, "SEV-VLEK") == 0;
	c->leaf_known = c->vlek || strcmp(c->vek_cn, "SEV-VCEK") == 0;
	const char *leaf = c->vlek ? "VLEK" : "VCEK", *mid = c->vlek ? "ASVK" : "ASK";

	check_pin(c);
	check_signed(&c->ark_sig, c->ark, "ARK", c->ark, "ARK itself");
	check_signed(&c->ask_sig, c->ask, mid, c->ark, "ARK");
	check_signed(&c->vek_sig, c->vek, leaf, c->ask, mid);
	c->vek_key = X509_get0_pubkey(c->vek);
	check_leaf_key(c);
	decode_extensions(c);
	rc = CF_OK;
out:
	for (size_t i = 0; i < n; i++)
		X509_free(certs[i]);
	ERR_clear_error();
	if (rc != CF_OK) {
		cf_snp_certs_free(c);
		return rc;
	}
	*out = c;
	return CF_OK;
}

cf_snp_product cf_snp_certs_product(const cf_snp_certs *c)
{
	return c->product;
}

bool cf_snp_certs_is_vlek(const cf_snp_certs *c)
{
	return c->vlek;
}

/* --- checks --- */

static void fmt_time(time_t t, char *out, size_t cap)
{
	struct tm tm;
	if (!gmtime_r(&t, &tm) || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, cap, "%lld", (long long)t);
}

static void fmt_asn1_time(const ASN1_TIME *t, char *out, size_t cap)
{
	struct tm tm;
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1 || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, cap, "%s", "(bad time)");
}

/* Appends to `acc` why x is not valid at `at`; true if it is. */
static bool valid_at(const X509 *x, const char *role, time_t at, char *acc, size_t cap)
{
	char when[32];
	size_t used = strlen(acc);
	int nb = X509_cmp_time(X509_get0_notBefore(x), &at);
	int na = X509_cmp_time(X509_get0_notAfter(x), &at);
	ERR_clear_error();
	if (nb == 0 || na == 0) {
		snprintf(acc + used, cap - used, "%s%s has a malformed validity", used ? "; " : "",
			 role);
		return false;
	}
	if (nb > 0) {
		fmt_asn1_time(X509_get0_notBefore(x), when, sizeof(when));
		snprintf(acc + used, cap - used, "%s%s not valid before %s", used ? "; " : "", role,
			 when);
		return false;
	}
	if (na < 0) {
		fmt_asn1_time(X509_get0_notAfter(x), when, sizeof(when));
		snprintf(acc + used, cap - used, "%s%s expired %s", used ? "; " : "", role, when);
		return false;
	}
	return true;
}

void cf_snp_certs_check(const cf_snp_certs *c, time_t at, cf_verdict *v)
{
	const char *leaf = c->vlek ? "VLEK" : "VCEK", *mid = c->vlek ? "ASVK" : "ASK";
	cf_verdict_pass(v, "certificates", "%s CN=%s, %s CN=%s, ARK CN=%s", leaf, c->vek_cn, mid,
			c->ask_cn, c->ark_cn);
	cf_verdict_expect(v, "ark_pinned", c->pinned.ok,
			  "AMD's ARK-Milan, ARK-Genoa or ARK-Turin (pinned SHA-256)", "%s",
			  c->pinned.why);
	cf_verdict_expect(v, "ark_self_signature", c->ark_sig.ok,
			  "ARK self-signed with RSASSA-PSS SHA-384", "%s", c->ark_sig.why);
	cf_verdict_expect(v, "ask_signature", c->ask_sig.ok,
			  c->vlek ? "ASVK signed by the ARK with RSASSA-PSS SHA-384"
				  : "ASK signed by the ARK with RSASSA-PSS SHA-384",
			  "%s", c->ask_sig.why);
	cf_verdict_expect(v, "vcek_signature", c->vek_sig.ok,
			  c->vlek ? "VLEK signed by the ASVK with RSASSA-PSS SHA-384"
				  : "VCEK signed by the ASK with RSASSA-PSS SHA-384",
			  "%s", c->vek_sig.why);

	char when[32], expected[128], actual[256] = "";
	fmt_time(at, when, sizeof(when));
	snprintf(expected, sizeof(expected), "%s, %s and ARK valid at %s", leaf, mid, when);
	bool ok = valid_at(c->vek, leaf, at, actual, sizeof(actual));
	ok &= valid_at(c->ask, mid, at, actual, sizeof(actual));
	ok &= valid_at(c->ark, "ARK", at, actual, sizeof(actual));
	cf_verdict_expect(v, "cert_validity", ok, expected, "%s", ok ? "all valid" : actual);
}

/* --- binding the report to the certificates --- */

static void check_signing_key(const cf_snp_certs *c, const cf_snp_report *r, cf_verdict *v)
{
	uint32_t sk = CF_SNP_SIGNING_KEY(r->flags);
	const char *pname = cf_snp_product_name(c->product);
	char want_mid[64], expected[256];
	snprintf(want_mid, sizeof(want_mid), "SEV-%s%s", c->vlek ? "VLEK-" : "", pname);
	snprintf(expected, sizeof(expected),
		 "SIGNING_KEY %u (%s) naming the certificate's kind (%s issued by %s), "
		 "MASK_CHIP_KEY 0",
		 c->vlek ? 1u : 0u, c->vlek ? "VLEK" : "VCEK", c->vlek ? "SEV-VLEK" : "SEV-VCEK",
		 want_mid);
	bool ok = c->leaf_known &&
		  sk == (c->vlek ? CF_SNP_SIGNING_KEY_VLEK : CF_SNP_SIGNING_KEY_VCEK) &&
		  strcmp(c->ask_cn, want_mid) == 0 && !(r->flags & CF_SNP_FLAG_MASK_CHIP_KEY);
	cf_verdict_expect(v, "signing_key", ok, expected,
			  "SIGNING_KEY %u (%s), certificate CN=%s issued by CN=%s, MASK_CHIP_KEY %u",
			  sk,
			  sk == CF_SNP_SIGNING_KEY_VCEK   ? "VCEK"
			  : sk == CF_SNP_SIGNING_KEY_VLEK ? "VLEK"
							  : "none",
			  c->vek_cn, c->ask_cn, (r->flags & CF_SNP_FLAG_MASK_CHIP_KEY) ? 1u : 0u);
}

static void check_product(const cf_snp_certs *c, const cf_snp_report *r, cf_verdict *v)
{
	const char *chain = cf_snp_product_name(c->product);
	if (r->version < 3) {
		cf_verdict_skip(v, "product",
				"report version %u carries no CPUID; the chain is for %s",
				(unsigned)r->version, chain);
	} else {
		cf_snp_product cpu = cf_snp_product_from_cpuid(r->cpuid_fam_id, r->cpuid_mod_id);
		char expected[128];
		snprintf(expected, sizeof(expected),
			 "a chain for the report's CPU (family %02xh model %02xh: %s)",
			 r->cpuid_fam_id, r->cpuid_mod_id, cf_snp_product_name(cpu));
		cf_verdict_expect(v, "product",
				  cpu != CF_SNP_PRODUCT_UNKNOWN && cpu == c->product, expected,
				  "chain for %s", chain);
	}
	/* productName is "<product>" or "<product>-<stepping>" ("Milan-B0"). */
	size_t plen = strlen(chain);
	bool ok = c->ext.ok && c->product != CF_SNP_PRODUCT_UNKNOWN &&
		  strncmp(c->product_name, chain, plen) == 0 &&
		  (c->product_name[plen] == '\0' || c->product_name[plen] == '-');
	char expected[96];
	snprintf(expected, sizeof(expected), "%s productName for %s", c->vlek ? "VLEK" : "VCEK",
		 chain);
	cf_verdict_expect(v, "vcek_product", ok, expected, "%s",
			  !c->ext.ok		      ? c->ext.why
			  : c->product_name[0] == '\0' ? "no productName extension"
						       : c->product_name);
}

static void check_report_signature(const cf_snp_certs *c, const uint8_t *raw, cf_verdict *v)
{
	const char *expected = c->vlek ? "ECDSA P-384 SHA-384 signature by the VLEK"
				       : "ECDSA P-384 SHA-384 signature by the VCEK";
	if (!c->vek_key_ok.ok) {
		cf_verdict_fail(v, "report_signature", expected, "%s", c->vek_key_ok.why);
		return;
	}
	cf_err rc = cf_ecdsa_verify_raw(c->vek_key, raw, CF_SNP_SIGNED_LEN, raw + CF_SNP_SIGNED_LEN,
					CF_SNP_SIG_COMPONENT_LEN, CF_LITTLE_ENDIAN);
	ERR_clear_error();
	cf_verdict_expect(v, "report_signature", rc == CF_OK, expected, "%s",
			  rc == CF_OK	       ? "valid"
			  : rc == CF_ERR_AUTH ? "the signature does not verify"
					      : cf_strerror(rc));
}

static void check_tcb(const cf_snp_certs *c, const cf_snp_report *r, bool turin, cf_verdict *v)
{
	const char *leaf = c->vlek ? "VLEK" : "VCEK";
	cf_snp_tcb t = cf_snp_tcb_decode(r->reported_tcb, turin);
	char expected[160], actual[200];
	if (!c->ext.ok) {
		snprintf(expected, sizeof(expected), "REPORTED_TCB equal to the %s's TCB", leaf);
		cf_verdict_fail(v, "vcek_tcb", expected, "%s: %s", leaf, c->ext.why);
		return;
	}
	const int *s = c->spl;
	bool present = s[SPL_BL] >= 0 && s[SPL_TEE] >= 0 && s[SPL_SNP] >= 0 && s[SPL_UCODE] >= 0 &&
		       (!turin || s[SPL_FMC] >= 0);
	if (turin)
		snprintf(expected, sizeof(expected),
			 "REPORTED_TCB equal to the %s's: fmc %d, bl %d, tee %d, snp %d, ucode %d",
			 leaf, s[SPL_FMC], s[SPL_BL], s[SPL_TEE], s[SPL_SNP], s[SPL_UCODE]);
	else
		snprintf(expected, sizeof(expected),
			 "REPORTED_TCB equal to the %s's: bl %d, tee %d, snp %d, ucode %d", leaf,
			 s[SPL_BL], s[SPL_TEE], s[SPL_SNP], s[SPL_UCODE]);
	if (!present) {
		cf_verdict_fail(v, "vcek_tcb", expected, "the %s lacks a %sSPL extension", leaf,
				turin ? "bl/tee/snp/ucode/fmc " : "bl/tee/snp/ucode ");
		return;
	}
	bool ok;
	if (turin) {
		ok = t.fmc == s[SPL_FMC] && t.bootloader == s[SPL_BL] && t.tee == s[SPL_TEE] &&
		     t.snp == s[SPL_SNP] && t.microcode == s[SPL_UCODE];
		snprintf(actual, sizeof(actual), "fmc %u, bl %u, tee %u, snp %u, ucode %u (0x%016" PRIx64 ")",
			 t.fmc, t.bootloader, t.tee, t.snp, t.microcode, t.raw);
	} else {
		/* The whole word: the reserved bytes 2..5 are spl4..spl7 (0 when absent). */
		uint64_t want = (uint64_t)s[SPL_BL] | (uint64_t)s[SPL_TEE] << 8 |
				(uint64_t)s[SPL_UCODE] << 56 | (uint64_t)s[SPL_SNP] << 48;
		for (int k = 4; k <= 7; k++)
			want |= (uint64_t)(s[k] > 0 ? s[k] : 0) << (8 * (k - 2));
		ok = r->reported_tcb == want;
		snprintf(actual, sizeof(actual), "bl %u, tee %u, snp %u, ucode %u (0x%016" PRIx64 ")",
			 t.bootloader, t.tee, t.snp, t.microcode, t.raw);
	}
	cf_verdict_expect(v, "vcek_tcb", ok, expected, "%s", actual);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static void check_chip_id(const cf_snp_certs *c, const cf_snp_report *r, cf_verdict *v)
{
	char want[2 * 64 + 1], got[2 * 64 + 1], expected[256];
	if (c->vlek) {
		/* A VLEK is not tied to a chip: the report's CHIP_ID must be zero. */
		bool zero = all_zero(r->chip_id, sizeof(r->chip_id));
		cf_verdict_expect(v, "chip_id", zero, "CHIP_ID zero (a VLEK has no hwID)", "%s",
				  zero ? "not applicable (VLEK): CHIP_ID is zero"
				       : "CHIP_ID is not zero in a VLEK-signed report");
		return;
	}
	if (!c->hwid.ok) {
		cf_verdict_fail(v, "chip_id", "CHIP_ID equal to the VCEK's hwID", "%s", c->hwid.why);
		return;
	}
	cf_hex_encode(c->hwid_bytes, c->hwid_len, want);
	snprintf(expected, sizeof(expected), "CHIP_ID %s%s", want,
		 c->hwid_len < sizeof(r->chip_id) ? " then zeros" : "");
	bool ok = cf_ct_equal(c->hwid_bytes, r->chip_id, c->hwid_len) &&
		  all_zero(r->chip_id + c->hwid_len, sizeof(r->chip_id) - c->hwid_len);
	if (all_zero(r->chip_id, sizeof(r->chip_id))) {
		cf_verdict_expect(v, "chip_id", false, expected, "%s",
				  "CHIP_ID is zero (masked by the host)");
		return;
	}
	cf_hex_encode(r->chip_id, sizeof(r->chip_id), got);
	cf_verdict_expect(v, "chip_id", ok, expected, "%s", got);
}

void cf_snp_check_binding(const cf_snp_certs *c, const cf_snp_report *r, const uint8_t *raw,
			  bool turin, cf_verdict *v)
{
	check_signing_key(c, r, v);
	check_product(c, r, v);
	check_report_signature(c, raw, v);
	check_tcb(c, r, turin, v);
	check_chip_id(c, r, v);
}
