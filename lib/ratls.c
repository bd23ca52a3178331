/*
 * Attested TLS: issuing RA-TLS certificates with TEE evidence, and
 * verifying them, alone or inside an OpenSSL handshake.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "coffer/crypto.h"
#include "coffer/enc.h"
#include "coffer/ratls.h"

static ASN1_OBJECT *ratls_oid(void)
{
	return OBJ_txt2obj(CF_RATLS_OID, 1);
}

cf_err cf_ratls_key_hash(EVP_PKEY *key, uint8_t out[static CF_REPORT_DATA_LEN])
{
	unsigned char *der = NULL;
	if (!key)
		return CF_ERR_ARG;
	int n = i2d_PUBKEY(key, &der);
	if (n <= 0)
		return CF_ERR_CRYPTO;
	cf_err rc = cf_hash(CF_SHA512, der, (size_t)n, out);
	OPENSSL_free(der);
	return rc;
}

cf_err cf_ratls_sign_cert(EVP_PKEY *key, const uint8_t *ext, size_t ext_len, time_t now,
			  long lifetime, X509 **cert_out)
{
	cf_err rc = CF_ERR_CRYPTO;
	X509 *x = NULL;
	X509_NAME *name = NULL;
	ASN1_OBJECT *oid = NULL;
	ASN1_OCTET_STRING *os = NULL;
	X509_EXTENSION *e = NULL;
	BIGNUM *serial = NULL;
	uint8_t rnd[16];

	if (!key || !cert_out || lifetime <= 0 || ext_len > INT32_MAX)
		return CF_ERR_ARG;
	*cert_out = NULL;
	if ((rc = cf_random(rnd, sizeof(rnd))) != CF_OK)
		return rc;
	rc = CF_ERR_CRYPTO;
	rnd[0] &= 0x7f; /* a positive serial */
	if (!(x = X509_new()) || !X509_set_version(x, X509_VERSION_3))
		goto out;
	if (!(serial = BN_bin2bn(rnd, sizeof(rnd), NULL)) ||
	    !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)))
		goto out;
	if (!(name = X509_NAME_new()) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)"coffer-ratls", -1, -1, 0) ||
	    !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name))
		goto out;
	if (!X509_time_adj_ex(X509_getm_notBefore(x), 0, -60, &now) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), 0, lifetime, &now))
		goto out;
	if (!X509_set_pubkey(x, key))
		goto out;
	if (ext) {
		if (!(oid = ratls_oid()) || !(os = ASN1_OCTET_STRING_new()) ||
		    !ASN1_OCTET_STRING_set(os, ext, (int)ext_len) ||
		    !(e = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, os)) || !X509_add_ext(x, e, -1))
			goto out;
	}
	if (X509_sign(x, key, EVP_sha256()) <= 0)
		goto out;
	*cert_out = x;
	x = NULL;
	rc = CF_OK;
out:
	X509_free(x);
	X509_NAME_free(name);
	ASN1_OBJECT_free(oid);
	ASN1_OCTET_STRING_free(os);
	X509_EXTENSION_free(e);
	BN_free(serial);
	return rc;
}

cf_err cf_ratls_make_cert_with(cf_tee_kind kind, cf_ratls_evidence_fn fn, void *arg, time_t now,
			       long lifetime, EVP_PKEY **key_out, X509 **cert_out)
{
	cf_err rc;
	EVP_PKEY *key = NULL;
	uint8_t rd[CF_REPORT_DATA_LEN];
	uint64_t tag;
	cf_buf ev, cbor;

	if (!fn || !key_out || !cert_out)
		return CF_ERR_ARG;
	*key_out = NULL;
	*cert_out = NULL;
	if ((rc = cf_ratls_tag_of(kind, &tag)) != CF_OK)
		return rc;
	cf_buf_init(&ev, CF_RATLS_MAX_EVIDENCE, false);
	cf_buf_init(&cbor, CF_RATLS_MAX_EVIDENCE + 32, false);
	/* P-256, not Ed25519: libpq's SCRAM channel binding needs a hash from the signature. */
	if (!(key = EVP_EC_gen("P-256"))) {
		rc = CF_ERR_CRYPTO;
		goto out;
	}
	if ((rc = cf_ratls_key_hash(key, rd)) != CF_OK)
		goto out;
	if ((rc = fn(arg, rd, &ev)) != CF_OK)
		goto out;
	if ((rc = cf_ratls_cbor_encode(tag, ev.data, ev.len, &cbor)) != CF_OK)
		goto out;
	if ((rc = cf_ratls_sign_cert(key, cbor.data, cbor.len, now, lifetime, cert_out)) != CF_OK)
		goto out;
	*key_out = key;
	key = NULL;
out:
	EVP_PKEY_free(key);
	cf_buf_free(&ev);
	cf_buf_free(&cbor);
	return rc;
}

static cf_err provider_evidence(void *arg, const uint8_t rd[CF_REPORT_DATA_LEN], cf_buf *out)
{
	const cf_tee_provider *tee = arg;
	return tee->evidence(rd, out);
}

cf_err cf_ratls_make_cert(const cf_tee_provider *tee, EVP_PKEY **key_out, X509 **cert_out)
{
	if (!tee || !tee->evidence)
		return CF_ERR_ARG;
	return cf_ratls_make_cert_with(tee->kind, provider_evidence, (void *)tee, time(NULL),
				       CF_RATLS_DEFAULT_LIFETIME, key_out, cert_out);
}

/* --- verification --- */

static void check_validity(X509 *cert, time_t now, cf_verdict *v)
{
	int before = X509_cmp_time(X509_get0_notBefore(cert), &now);
	int after = X509_cmp_time(X509_get0_notAfter(cert), &now);
	cf_verdict_expect(v, "ratls_cert_validity", before < 0 && after > 0,
			  "notBefore <= now <= notAfter", "%s",
			  before >= 0 ? "not yet valid" : after <= 0 ? "expired" : "valid");
}

/* Compares the evidence's report_data claim with the hash of the certificate key. */
static cf_err check_binding(X509 *cert, cf_verdict *v)
{
	uint8_t h[CF_REPORT_DATA_LEN];
	char want[2 * CF_REPORT_DATA_LEN + 1];
	EVP_PKEY *pub = X509_get0_pubkey(cert);
	if (!pub) {
		cf_verdict_fail(v, "key_binding", "a certificate public key", "none");
		return CF_OK;
	}
	cf_err rc = cf_ratls_key_hash(pub, h);
	if (rc != CF_OK)
		return rc;
	cf_hex_encode(h, sizeof(h), want);
	json_t *rd = v->claims ? json_object_get(v->claims, "report_data") : NULL;
	if (!json_is_string(rd)) {
		cf_verdict_fail(v, "key_binding", "report_data = SHA-512(certificate SPKI)",
				"the evidence has no report_data");
		return CF_OK;
	}
	const char *got = json_string_value(rd);
	cf_verdict_expect(v, "key_binding", strcasecmp(got, want) == 0,
			  "report_data = SHA-512(certificate SPKI)", "%s", got);
	return CF_OK;
}

cf_err cf_ratls_verify_cert(X509 *cert, const cf_ratls_verifier *cfg, cf_verdict *v)
{
	cf_err rc;
	uint64_t tag;
	cf_blob ev;
	cf_evidence_input in;
	cf_tee_kind kind;
	ASN1_OBJECT *oid = NULL;

	if (!cert || !cfg || !v)
		return CF_ERR_ARG;
	time_t now = cfg->now ? cfg->now : time(NULL);
	cf_verdict_init(v, CF_TEE_NONE);
	if (!v->claims)
		return CF_ERR_NOMEM;

	if (!(oid = ratls_oid()))
		return CF_ERR_CRYPTO;
	int idx = X509_get_ext_by_OBJ(cert, oid, -1);
	int again = idx >= 0 ? X509_get_ext_by_OBJ(cert, oid, idx) : -1;
	ASN1_OBJECT_free(oid);
	if (idx < 0 || again >= 0) {
		cf_verdict_fail(v, "ratls_extension", "one " CF_RATLS_OID " extension", "%s",
				idx < 0 ? "none" : "more than one");
		return CF_OK;
	}
	X509_EXTENSION *ext = X509_get_ext(cert, idx);
	const ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(ext);
	if (!os) {
		cf_verdict_fail(v, "ratls_extension", "an extension value", "none");
		return CF_OK;
	}
	cf_verdict_pass(v, "ratls_extension", "one " CF_RATLS_OID " extension");
	rc = cf_ratls_cbor_decode(ASN1_STRING_get0_data(os), (size_t)ASN1_STRING_length(os), &tag,
				  &ev);
	if (rc != CF_OK) {
		cf_verdict_fail(v, "ratls_cbor", "a CBOR tagged byte string", "%s (%d bytes)",
				cf_strerror(rc), ASN1_STRING_length(os));
		return CF_OK;
	}
	cf_verdict_pass(v, "ratls_cbor", "a CBOR tagged byte string");
	if (cf_ratls_kind_of(tag, ev.data, ev.len, &kind) != CF_OK) {
		cf_verdict_fail(v, "ratls_tag", "a known evidence tag", "0x%llx",
				(unsigned long long)tag);
		return CF_OK;
	}

	/* The evidence verifier starts its own verdict: run it, then merge ours in front. */
	cf_verdict pre = *v;
	memcpy(&in, &cfg->collateral, sizeof(in));
	in.kind = kind;
	in.evidence = ev;
	in.at = now;
	rc = cf_evidence_verify(&in, v);
	if (rc != CF_OK) {
		cf_verdict_free(&pre);
		return rc;
	}
	cf_verdict post = *v;
	*v = pre;
	v->tee = post.tee;
	v->debug = post.debug;
	v->tcb_status = post.tcb_status;
	json_decref(v->claims);
	v->claims = post.claims;
	post.claims = NULL;
	cf_verdict_pass(v, "ratls_tag", "a known evidence tag: %s", cf_tee_kind_name(kind));
	for (size_t i = 0; i < post.nchecks; i++) {
		const cf_check *c = &post.checks[i];
		if (c->state == CF_CHECK_PASS)
			cf_verdict_pass(v, c->name, "%s", c->expected);
		else if (c->state == CF_CHECK_FAIL)
			cf_verdict_fail(v, c->name, c->expected, "%s", c->actual);
		else
			cf_verdict_skip(v, c->name, "%s", c->actual);
	}
	cf_verdict_free(&post);

	check_validity(cert, now, v);
	EVP_PKEY *pub = X509_get0_pubkey(cert);
	cf_verdict_expect(v, "ratls_cert_signature", pub && X509_verify(cert, pub) == 1,
			  "self-signed by the certified key", "%s", pub ? "bad signature" : "no key");
	if ((rc = check_binding(cert, v)) != CF_OK)
		return rc;
	return cf_policy_apply(cfg->policy, now, v);
}

/* --- OpenSSL --- */

typedef struct ratls_result {
	char check[64];
	char error[640];
	char host[256];  /* CA mode: the name the server must hold */
	X509 *ca;        /* CA mode: the verified CA, owned */
	json_t *verdict; /* CA mode: cf_verdict_json of the last verification, owned */
} ratls_result;

static int ex_index = -1;
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;

static void result_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	ratls_result *r = ptr;
	if (r) {
		X509_free(r->ca);
		json_decref(r->verdict);
	}
	free(r);
}

static void ex_init(void)
{
	ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, result_free);
}

/* The result slot of ssl, created on first use; NULL only when out of memory. */
static ratls_result *result_get(SSL *ssl)
{
	if (!ssl || ex_index < 0)
		return NULL;
	ratls_result *r = SSL_get_ex_data(ssl, ex_index);
	if (!r) {
		if (!(r = calloc(1, sizeof(*r))))
			return NULL;
		if (!SSL_set_ex_data(ssl, ex_index, r)) {
			free(r);
			return NULL;
		}
	}
	return r;
}

static void record(SSL *ssl, const char *check, const char *fmt, ...) CF_PRINTF(3, 4);
static void record(SSL *ssl, const char *check, const char *fmt, ...)
{
	ratls_result *r = result_get(ssl);
	if (!r)
		return;
	snprintf(r->check, sizeof(r->check), "%s", check);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
}

static int verify_cb(X509_STORE_CTX *sctx, void *arg)
{
	const cf_ratls_verifier *cfg = arg;
	SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	X509 *leaf = X509_STORE_CTX_get0_cert(sctx);
	cf_verdict v = { 0 };
	int ok = 0;

	if (!leaf) {
		record(ssl, "ratls_certificate", "ratls_certificate: expected a peer certificate, got none");
		X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	cf_err rc = cf_ratls_verify_cert(leaf, cfg, &v);
	if (rc != CF_OK) {
		record(ssl, "ratls_internal", "ratls_internal: verification failed: %s",
		       cf_strerror(rc));
	} else {
		const cf_check *f = cf_verdict_first_failure(&v);
		if (f)
			record(ssl, f->name, "%s: expected %s, got %s", f->name, f->expected,
			       f->actual);
		else
			ok = 1;
	}
	cf_verdict_free(&v);
	if (!ok)
		X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
	else
		X509_STORE_CTX_set_error(sctx, X509_V_OK);
	return ok;
}

cf_err cf_ratls_ssl_ctx_setup(SSL_CTX *ctx, const cf_ratls_verifier *cfg)
{
	if (!ctx || !cfg)
		return CF_ERR_ARG;
	pthread_once(&ex_once, ex_init);
	if (ex_index < 0)
		return CF_ERR_CRYPTO;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, verify_cb, (void *)cfg);
	return CF_OK;
}

cf_err cf_ratls_ssl_ctx_use(SSL_CTX *ctx, EVP_PKEY *key, X509 *cert)
{
	if (!ctx || !key || !cert)
		return CF_ERR_ARG;
	if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		return CF_ERR_CRYPTO;
	return CF_OK;
}

static const ratls_result *result_of(const SSL *ssl)
{
	if (!ssl || ex_index < 0)
		return NULL;
	return SSL_get_ex_data(ssl, ex_index);
}

/* The slot may exist with no failure recorded (CA mode keeps the host there). */
const char *cf_ratls_last_check(const SSL *ssl)
{
	const ratls_result *r = result_of(ssl);
	return r && r->check[0] ? r->check : NULL;
}

const char *cf_ratls_last_error(const SSL *ssl)
{
	const ratls_result *r = result_of(ssl);
	return r && r->check[0] ? r->error : NULL;
}

/* --- an attested CA --- */

static bool has_ratls_ext(X509 *x)
{
	ASN1_OBJECT *oid = ratls_oid();
	bool has = oid && X509_get_ext_by_OBJ(x, oid, -1) >= 0;
	ASN1_OBJECT_free(oid);
	return has;
}

/*
 * The CA candidate after the leaf: a self-signed certificate, preferably
 * one with evidence. Its signature and evidence are checked afterwards,
 * by cf_ratls_verify_cert, so that a wrong CA fails with a named check.
 */
static X509 *find_ca(STACK_OF(X509) *chain, int *depth)
{
	X509 *first = NULL;
	for (int i = 1; i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);
		if (X509_self_signed(x, 0) != 1)
			continue;
		if (has_ratls_ext(x)) {
			*depth = i;
			return x;
		}
		if (!first) {
			first = x;
			*depth = i;
		}
	}
	return first;
}

/* Peer-supplied text goes into messages: printable ASCII only. */
static void sanitize(char *s)
{
	for (; *s; s++) {
		if (*s < 0x20 || *s > 0x7e)
			*s = '?';
	}
}

static void check_ca_chain(X509 *leaf, X509 *ca, time_t now, cf_verdict *v)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok = 0, err = X509_V_ERR_UNSPECIFIED;

	/* The attested CA is the only anchor; no intermediates (it has pathlen 0). */
	if (store && ctx && X509_STORE_add_cert(store, ca) == 1 &&
	    X509_STORE_CTX_init(ctx, store, leaf, NULL) == 1 &&
	    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER) == 1) {
		X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), now);
		ok = X509_verify_cert(ctx) == 1;
		err = X509_STORE_CTX_get_error(ctx);
	}
	cf_verdict_expect(v, "ca_chain", ok,
			  "the leaf issued by the attested CA (serverAuth, valid now)", "%s",
			  ok ? "issued by the attested CA" : X509_verify_cert_error_string(err));
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
}

/* "DNS:a, IP:b" from the leaf's subjectAltName, for a failure message. */
static void san_list(X509 *x, char *out, size_t cap)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	size_t off = 0;
	out[0] = 0;
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && off < cap; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
		const char *sep = off ? ", " : "";
		int n = 0;
		if (gn->type == GEN_DNS) {
			n = snprintf(out + off, cap - off, "%sDNS:%.*s", sep,
				     ASN1_STRING_length(gn->d.dNSName),
				     (const char *)ASN1_STRING_get0_data(gn->d.dNSName));
		} else if (gn->type == GEN_IPADD) {
			char ip[INET6_ADDRSTRLEN] = "?";
			int len = ASN1_STRING_length(gn->d.iPAddress);
			const unsigned char *a = ASN1_STRING_get0_data(gn->d.iPAddress);
			if (len == 4 || len == 16)
				inet_ntop(len == 4 ? AF_INET : AF_INET6, a, ip, sizeof(ip));
			n = snprintf(out + off, cap - off, "%sIP:%s", sep, ip);
		}
		if (n < 0)
			break;
		off += (size_t)n;
	}
	GENERAL_NAMES_free(gens);
	if (!out[0])
		snprintf(out, cap, "no subjectAltName");
	sanitize(out);
}

static void check_hostname(X509 *leaf, const char *host, cf_verdict *v)
{
	char names[200];
	int r;
	ASN1_OCTET_STRING *ip = a2i_IPADDRESS(host);
	if (ip) {
		ASN1_OCTET_STRING_free(ip);
		r = X509_check_ip_asc(leaf, host, 0);
	} else {
		/* SAN only: a CN is no name to check, and no "www*" wildcards. */
		r = X509_check_host(leaf, host, 0,
				    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
					    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
				    NULL);
	}
	ERR_clear_error();
	san_list(leaf, names, sizeof(names));
	char want[300];
	snprintf(want, sizeof(want), "the leaf's subjectAltName names %s", host);
	sanitize(want);
	cf_verdict_expect(v, "hostname", r == 1, want, "%s", names);
}

cf_err cf_ratls_verify_ca_chain(STACK_OF(X509) *peer_chain, const char *host,
				const cf_ratls_verifier *cfg, cf_verdict *v, X509 **ca_out)
{
	cf_err rc;
	int depth = 0;
	char subject[128];

	if (ca_out)
		*ca_out = NULL;
	if (!peer_chain || !host || !*host || !cfg || !v)
		return CF_ERR_ARG;
	int n = sk_X509_num(peer_chain);
	X509 *leaf = n > 0 ? sk_X509_value(peer_chain, 0) : NULL;
	X509 *ca = leaf ? find_ca(peer_chain, &depth) : NULL;
	if (!ca) {
		cf_verdict_init(v, CF_TEE_NONE);
		if (!v->claims)
			return CF_ERR_NOMEM;
		cf_verdict_fail(v, "ratls_ca", "a self-signed CA certificate after the leaf",
				"none among %d certificate(s)", n < 0 ? 0 : n);
		return CF_OK;
	}
	/* The CA itself is an RA-TLS certificate: evidence, policy, key_binding. */
	if ((rc = cf_ratls_verify_cert(ca, cfg, v)) != CF_OK)
		return rc;
	if (!X509_NAME_oneline(X509_get_subject_name(ca), subject, sizeof(subject)))
		snprintf(subject, sizeof(subject), "?");
	sanitize(subject);
	cf_verdict_pass(v, "ratls_ca", "the self-signed CA at depth %d: %s", depth, subject);
	check_ca_chain(leaf, ca, cfg->now ? cfg->now : time(NULL), v);
	check_hostname(leaf, host, v);
	if (ca_out && X509_up_ref(ca) == 1)
		*ca_out = ca;
	return CF_OK;
}

static int verify_ca_cb(X509_STORE_CTX *sctx, void *arg)
{
	const cf_ratls_verifier *cfg = arg;
	SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	/* OpenSSL passes the peer's whole chain, leaf first, as the untrusted set. */
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_untrusted(sctx);
	ratls_result *r = result_get(ssl);
	cf_verdict v = { 0 };
	X509 *ca = NULL;
	int ok = 0;

	if (!r) {
		X509_STORE_CTX_set_error(sctx, X509_V_ERR_OUT_OF_MEM);
		return 0;
	}
	json_decref(r->verdict);
	r->verdict = NULL;
	X509_free(r->ca);
	r->ca = NULL;
	if (!r->host[0]) {
		record(ssl, "hostname",
		       "hostname: expected a host name to check (cf_ratls_ssl_set_host), got none");
		X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	cf_err rc = chain ? cf_ratls_verify_ca_chain(chain, r->host, cfg, &v, &ca) : CF_ERR_ARG;
	if (rc != CF_OK) {
		record(ssl, "ratls_internal", "ratls_internal: verification failed: %s",
		       cf_strerror(rc));
	} else {
		const cf_check *f = cf_verdict_first_failure(&v);
		ok = f == NULL && cf_verdict_ok(&v);
		r->verdict = cf_verdict_json(&v, ok);
		if (f)
			record(ssl, f->name, "%s: expected %s, got %s", f->name, f->expected,
			       f->actual);
		else if (!ok)
			record(ssl, "ratls_internal", "ratls_internal: an empty verdict");
	}
	if (ok) {
		r->ca = ca;
		ca = NULL;
	}
	X509_free(ca);
	cf_verdict_free(&v);
	X509_STORE_CTX_set_error(sctx, ok ? X509_V_OK : X509_V_ERR_APPLICATION_VERIFICATION);
	return ok;
}

cf_err cf_ratls_ssl_ctx_setup_ca(SSL_CTX *ctx, const cf_ratls_verifier *cfg)
{
	if (!ctx || !cfg)
		return CF_ERR_ARG;
	pthread_once(&ex_once, ex_init);
	if (ex_index < 0)
		return CF_ERR_CRYPTO;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, verify_ca_cb, (void *)cfg);
	return CF_OK;
}

cf_err cf_ratls_ssl_set_host(SSL *ssl, const char *host)
{
	if (!ssl || !host || !*host || strlen(host) >= sizeof(((ratls_result *)0)->host))
		return CF_ERR_ARG;
	pthread_once(&ex_once, ex_init);
	ratls_result *r = result_get(ssl);
	if (!r)
		return CF_ERR_NOMEM;
	snprintf(r->host, sizeof(r->host), "%s", host);
	return CF_OK;
}

const json_t *cf_ratls_last_verdict(const SSL *ssl)
{
	const ratls_result *r = result_of(ssl);
	return r ? r->verdict : NULL;
}

X509 *cf_ratls_peer_ca(const SSL *ssl)
{
	const ratls_result *r = result_of(ssl);
	return r ? r->ca : NULL;
}
