/*
 * The KMS CA: one P-256 key, a self-signed RA-TLS CA certificate
 * reissued at every start, and the leaves it signs (ca.h).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "coffer/crypto.h"
#include "coffer/enc.h"

struct kms_ca {
	EVP_PKEY *key;
	X509 *cert;
	time_t not_after; /* of cert: no leaf outlives it */
	char cn[64];      /* "coffer-kms CA " + 16 hex digits */
};

static bool is_p256(EVP_PKEY *k)
{
	char group[32];
	size_t glen = 0;
	return k && EVP_PKEY_is_a(k, "EC") &&
	       EVP_PKEY_get_group_name(k, group, sizeof(group), &glen) == 1 &&
	       strcmp(group, "prime256v1") == 0;
}

/* Derived from the key alone, so a reissued CA certificate has the same subject. */
static cf_err set_cn(kms_ca *ca)
{
	unsigned char *der = NULL;
	uint8_t h[CF_SHA256_LEN];
	char hex[2 * 8 + 1];
	int n = i2d_PUBKEY(ca->key, &der);
	if (n <= 0)
		return CF_ERR_CRYPTO;
	cf_err rc = cf_hash(CF_SHA256, der, (size_t)n, h);
	OPENSSL_free(der);
	if (rc != CF_OK)
		return rc;
	cf_hex_encode(h, 8, hex);
	snprintf(ca->cn, sizeof(ca->cn), "coffer-kms CA %s", hex);
	return CF_OK;
}

static cf_err ca_new(EVP_PKEY *key, kms_ca **out)
{
	kms_ca *ca = calloc(1, sizeof(*ca));
	if (!ca)
		return CF_ERR_NOMEM;
	ca->key = key;
	cf_err rc = set_cn(ca);
	if (rc != CF_OK) {
		ca->key = NULL; /* still the caller's */
		free(ca);
		return rc;
	}
	*out = ca;
	return CF_OK;
}

cf_err kms_ca_generate(kms_ca **out)
{
	if (!out)
		return CF_ERR_ARG;
	*out = NULL;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	if (!key)
		return CF_ERR_CRYPTO;
	cf_err rc = ca_new(key, out);
	if (rc != CF_OK)
		EVP_PKEY_free(key);
	return rc;
}

cf_err kms_ca_load(const uint8_t *pkcs8_der, size_t len, kms_ca **out)
{
	cf_err rc = CF_ERR_PARSE;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	EVP_PKEY *key = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	const unsigned char *p = pkcs8_der;

	if (!pkcs8_der || !out || len == 0 || len > 4096)
		return CF_ERR_ARG;
	*out = NULL;
	if (!(p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len)) || p != pkcs8_der + len)
		goto out;
	if (!(key = EVP_PKCS82PKEY(p8)))
		goto out;
	if (!is_p256(key)) {
		rc = CF_ERR_UNSUPPORTED;
		goto out;
	}
	/* Sealed state is trusted, but a wrong public half would sign nonsense. */
	if (!(pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) || EVP_PKEY_check(pctx) != 1)
		goto out;
	if ((rc = ca_new(key, out)) != CF_OK)
		goto out;
	key = NULL;
out:
	if (rc != CF_OK)
		ERR_clear_error();
	EVP_PKEY_CTX_free(pctx);
	EVP_PKEY_free(key);
	PKCS8_PRIV_KEY_INFO_free(p8); /* clears the key bytes it holds */
	return rc;
}

cf_err kms_ca_export_key(const kms_ca *ca, cf_buf *pkcs8_der)
{
	cf_err rc = CF_ERR_CRYPTO;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	unsigned char *der = NULL;
	int n = 0;

	/* The key must never land in a buffer that is freed unwiped. */
	if (!ca || !pkcs8_der || !pkcs8_der->secret)
		return CF_ERR_ARG;
	if (!(p8 = EVP_PKEY2PKCS8(ca->key)) || (n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der)) <= 0)
		goto out;
	rc = cf_buf_append(pkcs8_der, der, (size_t)n);
out:
	if (der)
		OPENSSL_clear_free(der, (size_t)n);
	PKCS8_PRIV_KEY_INFO_free(p8);
	return rc;
}

/* --- certificate building --- */

/* version 3, random positive 127-bit serial, names, validity and key. */
static cf_err new_cert(const X509_NAME *issuer, const char *cn, EVP_PKEY *pub, time_t now,
		       time_t not_after, X509 **out)
{
	cf_err rc;
	X509 *x = NULL;
	X509_NAME *name = NULL;
	BIGNUM *serial = NULL;
	uint8_t rnd[16];

	*out = NULL;
	if ((rc = cf_random(rnd, sizeof(rnd))) != CF_OK)
		return rc;
	rc = CF_ERR_CRYPTO;
	rnd[0] &= 0x7f; /* a positive serial */
	rnd[0] |= 0x40; /* and 16 bytes long in DER */
	if (!(x = X509_new()) || !X509_set_version(x, X509_VERSION_3))
		goto out;
	if (!(serial = BN_bin2bn(rnd, sizeof(rnd), NULL)) ||
	    !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)))
		goto out;
	if (!(name = X509_NAME_new()) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
					-1, 0) ||
	    !X509_set_subject_name(x, name) ||
	    !X509_set_issuer_name(x, issuer ? issuer : name))
		goto out;
	if (!X509_time_adj_ex(X509_getm_notBefore(x), 0, -60, &now) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), not_after))
		goto out;
	if (!X509_set_pubkey(x, pub))
		goto out;
	*out = x;
	x = NULL;
	rc = CF_OK;
out:
	X509_free(x);
	X509_NAME_free(name);
	BN_free(serial);
	return rc;
}

/* An extension from a constant OpenSSL config string (never caller data). */
static bool add_conf_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!e)
		return false;
	int ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok == 1;
}

/* LDH labels, no wildcard, no trailing dot, and a last label that is not a number. */
static bool valid_dns(const char *s)
{
	size_t len = strlen(s), label = 0;
	bool digits_only = true;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = s[i];
		if (c == '.' || c == 0) {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return false;
			if (c == 0)
				return !digits_only;
			label = 0;
			digits_only = true;
			continue;
		}
		if (!isalnum((unsigned char)c) && c != '-')
			return false;
		if (label == 0 && c == '-')
			return false;
		if (!isdigit((unsigned char)c))
			digits_only = false;
		label++;
	}
	return false;
}

static cf_err general_name(const char *s, GENERAL_NAME **out)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();
	if (!gn)
		return CF_ERR_NOMEM;
	ASN1_OCTET_STRING *ip = a2i_IPADDRESS(s);
	if (ip) {
		GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
	} else {
		ERR_clear_error(); /* "not an address" is an answer, not an error */
		ASN1_IA5STRING *dns = NULL;
		if (!valid_dns(s)) {
			GENERAL_NAME_free(gn);
			return CF_ERR_ARG;
		}
		if (!(dns = ASN1_IA5STRING_new()) || !ASN1_STRING_set(dns, s, (int)strlen(s))) {
			ASN1_IA5STRING_free(dns);
			GENERAL_NAME_free(gn);
			return CF_ERR_NOMEM;
		}
		GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
	}
	*out = gn;
	return CF_OK;
}

static cf_err add_san(X509 *x, const char *const *names, size_t n)
{
	cf_err rc = CF_OK;
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	if (!gens)
		return CF_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		GENERAL_NAME *gn = NULL;
		if (!names[i]) {
			rc = CF_ERR_ARG;
			goto out;
		}
		if ((rc = general_name(names[i], &gn)) != CF_OK)
			goto out;
		if (!sk_GENERAL_NAME_push(gens, gn)) {
			GENERAL_NAME_free(gn);
			rc = CF_ERR_NOMEM;
			goto out;
		}
	}
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
		rc = CF_ERR_CRYPTO;
out:
	GENERAL_NAMES_free(gens);
	return rc;
}

static cf_err add_ratls_ext(X509 *x, const uint8_t *cbor, size_t len)
{
	cf_err rc = CF_ERR_CRYPTO;
	ASN1_OBJECT *oid = NULL;
	ASN1_OCTET_STRING *os = NULL;
	X509_EXTENSION *e = NULL;
	if (len > INT32_MAX)
		return CF_ERR_TOO_BIG;
	/* Non-critical, as in cf_ratls_sign_cert: stock verifiers must not refuse it. */
	if (!(oid = OBJ_txt2obj(CF_RATLS_OID, 1)) || !(os = ASN1_OCTET_STRING_new()) ||
	    !ASN1_OCTET_STRING_set(os, cbor, (int)len) ||
	    !(e = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, os)) || !X509_add_ext(x, e, -1))
		goto out;
	rc = CF_OK;
out:
	ASN1_OBJECT_free(oid);
	ASN1_OCTET_STRING_free(os);
	X509_EXTENSION_free(e);
	return rc;
}

cf_err kms_ca_certify_self(kms_ca *ca, cf_tee_kind kind, cf_ratls_evidence_fn fn, void *arg,
			   time_t now)
{
	cf_err rc;
	X509 *x = NULL;
	uint8_t rd[CF_REPORT_DATA_LEN];
	uint64_t tag;
	cf_buf ev, cbor;

	if (!ca || !fn)
		return CF_ERR_ARG;
	if ((rc = cf_ratls_tag_of(kind, &tag)) != CF_OK)
		return rc;
	cf_buf_init(&ev, CF_RATLS_MAX_EVIDENCE, false);
	cf_buf_init(&cbor, CF_RATLS_MAX_EVIDENCE + 32, false);
	/* Exactly what cf_ratls_verify_cert's key_binding expects. */
	if ((rc = cf_ratls_key_hash(ca->key, rd)) != CF_OK)
		goto out;
	if ((rc = fn(arg, rd, &ev)) != CF_OK)
		goto out;
	if ((rc = cf_ratls_cbor_encode(tag, ev.data, ev.len, &cbor)) != CF_OK)
		goto out;
	if ((rc = new_cert(NULL, ca->cn, ca->key, now, now + KMS_CA_LIFETIME, &x)) != CF_OK)
		goto out;
	rc = CF_ERR_CRYPTO;
	/*
	 * No authorityKeyIdentifier: leaves name their issuer by key id only,
	 * which every reissue of this CA shares, so an old pinned copy still
	 * anchors them.
	 */
	if (!add_conf_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    !add_conf_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") ||
	    !add_conf_ext(x, x, NID_subject_key_identifier, "hash"))
		goto out;
	if ((rc = add_ratls_ext(x, cbor.data, cbor.len)) != CF_OK)
		goto out;
	if (X509_sign(x, ca->key, EVP_sha256()) <= 0) {
		rc = CF_ERR_CRYPTO;
		goto out;
	}
	X509_free(ca->cert);
	ca->cert = x;
	ca->not_after = now + KMS_CA_LIFETIME;
	x = NULL;
	rc = CF_OK;
out:
	if (rc != CF_OK)
		ERR_clear_error();
	X509_free(x);
	cf_buf_free(&ev);
	cf_buf_free(&cbor);
	return rc;
}

X509 *kms_ca_cert(const kms_ca *ca)
{
	return ca ? ca->cert : NULL;
}

cf_err kms_ca_cert_pem(const kms_ca *ca, cf_buf *out)
{
	cf_err rc = CF_ERR_CRYPTO;
	BIO *b = NULL;
	char *p;
	if (!ca || !ca->cert || !out)
		return CF_ERR_ARG;
	if (!(b = BIO_new(BIO_s_mem())) || PEM_write_bio_X509(b, ca->cert) != 1)
		goto out;
	long n = BIO_get_mem_data(b, &p);
	if (n <= 0)
		goto out;
	rc = cf_buf_append(out, p, (size_t)n);
out:
	BIO_free(b);
	return rc;
}

cf_err kms_ca_fingerprint(const kms_ca *ca, uint8_t out[static 32])
{
	unsigned int n = 0;
	if (!ca || !ca->cert)
		return CF_ERR_ARG;
	if (X509_digest(ca->cert, EVP_sha256(), out, &n) != 1 || n != 32)
		return CF_ERR_CRYPTO;
	return CF_OK;
}

/* --- leaves --- */

static cf_err leaf_end(const kms_ca *ca, time_t now, long lifetime, long dflt, time_t *end)
{
	if (!ca->cert)
		return CF_ERR_ARG; /* kms_ca_certify_self first */
	if (lifetime == 0)
		lifetime = dflt;
	if (lifetime < 0 || lifetime > KMS_CA_MAX_LEAF_LIFETIME)
		return CF_ERR_ARG;
	*end = now + lifetime;
	if (*end > ca->not_after)
		*end = ca->not_after;
	return *end > now ? CF_OK : CF_ERR_ARG;
}

/* Signs a leaf for pub with the CA. */
static cf_err issue_leaf(kms_ca *ca, EVP_PKEY *pub, const char *cn, const char *const *names,
			 size_t n, bool client_auth, time_t now, time_t end, X509 **out)
{
	cf_err rc;
	X509 *x = NULL;

	*out = NULL;
	if (!names || n == 0 || n > KMS_CA_MAX_NAMES)
		return CF_ERR_ARG;
	if ((rc = new_cert(X509_get_subject_name(ca->cert), cn, pub, now, end, &x)) != CF_OK)
		goto out;
	if ((rc = add_san(x, names, n)) != CF_OK)
		goto out;
	rc = CF_ERR_CRYPTO;
	if (!add_conf_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE") ||
	    !add_conf_ext(x, ca->cert, NID_key_usage, "critical,digitalSignature") ||
	    !add_conf_ext(x, ca->cert, NID_ext_key_usage,
			  client_auth ? "serverAuth,clientAuth" : "serverAuth") ||
	    !add_conf_ext(x, ca->cert, NID_subject_key_identifier, "hash") ||
	    !add_conf_ext(x, ca->cert, NID_authority_key_identifier, "keyid:always"))
		goto out;
	if (X509_sign(x, ca->key, EVP_sha256()) <= 0)
		goto out;
	*out = x;
	x = NULL;
	rc = CF_OK;
out:
	X509_free(x);
	return rc;
}

cf_err kms_ca_issue_server(kms_ca *ca, const char *const *names, size_t n, time_t now,
			   long lifetime, EVP_PKEY **key_out, X509 **cert_out)
{
	cf_err rc;
	EVP_PKEY *key = NULL;
	time_t end;

	if (!ca || !key_out || !cert_out)
		return CF_ERR_ARG;
	*key_out = NULL;
	*cert_out = NULL;
	if ((rc = leaf_end(ca, now, lifetime, KMS_CA_SERVER_LIFETIME, &end)) != CF_OK)
		return rc;
	if (!(key = EVP_EC_gen("P-256"))) {
		rc = CF_ERR_CRYPTO;
		goto out;
	}
	if ((rc = issue_leaf(ca, key, "coffer-kms", names, n, false, now, end, cert_out)) != CF_OK)
		goto out;
	*key_out = key;
	key = NULL;
out:
	if (rc != CF_OK)
		ERR_clear_error();
	EVP_PKEY_free(key);
	return rc;
}

/*
 * Exactly one PEM block "CERTIFICATE REQUEST" without headers, its DER
 * exactly one request, and nothing but whitespace around it.
 */
static cf_err parse_csr(const uint8_t *pem, size_t len, X509_REQ **out)
{
	cf_err rc = CF_ERR_PARSE;
	BIO *b = NULL;
	char *name = NULL, *header = NULL, *rest = NULL;
	unsigned char *data = NULL;
	long dlen = 0;
	X509_REQ *req = NULL;
	size_t i = 0;

	*out = NULL;
	if (!pem || len == 0)
		return CF_ERR_ARG;
	if (len > KMS_CA_MAX_CSR)
		return CF_ERR_TOO_BIG;
	while (i < len && isspace(pem[i]))
		i++;
	/* PEM_read_bio skips any text before a block; we do not. */
	if (len - i < 11 || memcmp(pem + i, "-----BEGIN ", 11) != 0)
		return CF_ERR_PARSE;
	if (!(b = BIO_new_mem_buf(pem, (int)len))) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	if (PEM_read_bio(b, &name, &header, &data, &dlen) != 1 ||
	    strcmp(name, "CERTIFICATE REQUEST") != 0 || header[0] != 0 || dlen <= 0)
		goto out;
	const unsigned char *p = data;
	if (!(req = d2i_X509_REQ(NULL, &p, dlen)) || p != data + dlen)
		goto out;
	long nrest = BIO_get_mem_data(b, &rest);
	for (long j = 0; j < nrest; j++) {
		if (!isspace((unsigned char)rest[j]))
			goto out;
	}
	if (!is_p256(X509_REQ_get0_pubkey(req))) {
		rc = CF_ERR_UNSUPPORTED;
		goto out;
	}
	*out = req;
	req = NULL;
	rc = CF_OK;
out:
	if (rc != CF_OK)
		ERR_clear_error();
	X509_REQ_free(req);
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	BIO_free(b);
	return rc;
}

cf_err kms_ca_csr_key_hash(const uint8_t *csr_pem, size_t len, uint8_t out[static 32])
{
	cf_err rc;
	X509_REQ *req = NULL;
	unsigned char *der = NULL;
	int n;

	if (!out)
		return CF_ERR_ARG;
	if ((rc = parse_csr(csr_pem, len, &req)) != CF_OK)
		return rc;
	if ((n = i2d_PUBKEY(X509_REQ_get0_pubkey(req), &der)) <= 0) {
		rc = CF_ERR_CRYPTO;
		goto out;
	}
	rc = cf_hash(CF_SHA256, der, (size_t)n, out);
out:
	OPENSSL_free(der);
	X509_REQ_free(req);
	return rc;
}

static bool valid_cn(const char *cn)
{
	size_t len = cn ? strlen(cn) : 0;
	if (len == 0 || len > 64) /* ub-common-name */
		return false;
	for (size_t i = 0; i < len; i++) {
		if (cn[i] < 0x20 || cn[i] > 0x7e)
			return false;
	}
	return true;
}

cf_err kms_ca_issue_csr(kms_ca *ca, const uint8_t *csr_pem, size_t len, const char *cn,
			const char *const *names, size_t n, time_t now, long lifetime,
			X509 **cert_out)
{
	cf_err rc;
	X509_REQ *req = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	time_t end;

	if (!ca || !cert_out || !valid_cn(cn))
		return CF_ERR_ARG;
	*cert_out = NULL;
	if ((rc = leaf_end(ca, now, lifetime, KMS_CA_ENCLAVE_LIFETIME, &end)) != CF_OK)
		return rc;
	if ((rc = parse_csr(csr_pem, len, &req)) != CF_OK)
		return rc;
	EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
	if (!(pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL)) ||
	    EVP_PKEY_public_check(pctx) != 1) {
		rc = CF_ERR_PARSE;
		goto out;
	}
	/* Proof that the requester holds the key (the evidence binds only its hash). */
	if (X509_REQ_verify(req, pub) != 1) {
		rc = CF_ERR_AUTH;
		goto out;
	}
	rc = issue_leaf(ca, pub, cn, names, n, true, now, end, cert_out);
out:
	if (rc != CF_OK)
		ERR_clear_error();
	EVP_PKEY_CTX_free(pctx);
	X509_REQ_free(req);
	return rc;
}

/* --- TLS --- */

cf_err kms_ca_ssl_ctx(kms_ca *ca, EVP_PKEY *leaf_key, X509 *leaf, SSL_CTX **out)
{
	cf_err rc = CF_ERR_CRYPTO;
	SSL_CTX *ctx = NULL;

	if (!ca || !ca->cert || !leaf_key || !leaf || !out)
		return CF_ERR_ARG;
	*out = NULL;
	/* Serving a chain that does not verify would only fail at every client. */
	if (X509_check_issued(ca->cert, leaf) != X509_V_OK) {
		rc = CF_ERR_ARG;
		goto out;
	}
	if (!(ctx = SSL_CTX_new(TLS_server_method())) ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION))
		goto out;
	if (SSL_CTX_use_certificate(ctx, leaf) != 1 || SSL_CTX_use_PrivateKey(ctx, leaf_key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1 || SSL_CTX_add1_chain_cert(ctx, ca->cert) != 1)
		goto out;
	*out = ctx;
	ctx = NULL;
	rc = CF_OK;
out:
	if (rc != CF_OK)
		ERR_clear_error();
	SSL_CTX_free(ctx);
	return rc;
}

void kms_ca_free(kms_ca *ca)
{
	if (!ca)
		return;
	EVP_PKEY_free(ca->key); /* OpenSSL clears EC private scalars on free */
	X509_free(ca->cert);
	free(ca);
}
