/*
 * ratls: attested TLS (RA-TLS) certificates and their verification.
 *
 * A server inside a TEE generates a fresh ECDSA P-256 key, asks its TEE
 * for evidence over report_data = SHA-512(DER SubjectPublicKeyInfo) and
 * puts the evidence into a short-lived self-signed X.509 certificate, in
 * the non-critical extension 2.23.133.5.4.9 (TCG DICE
 * tcg-dice-conceptual-message-wrapper) as the CCC Interoperable RA-TLS
 * formats do. The extension's value is one CBOR tagged byte string:
 * tag(T, bstr(evidence)), where T names the evidence format.
 *
 * A client verifies such a certificate with the collateral of the kind
 * (the soft platform certificate, an SNP VCEK and chain, ...), an
 * optional policy, and one more check: "key_binding", that the
 * evidence's report_data is the hash of the certificate's key. Wired into
 * OpenSSL, a handshake succeeds only if that verdict is verified, and the
 * reason of a failure can be read back (cf_ratls_last_error).
 *
 * The CBOR reader parses untrusted bytes: it accepts exactly one
 * definite-length, minimally encoded tag over one byte string, and
 * nothing after it. docs/attested-tls.md has the format and the tags.
 */
#ifndef COFFER_RATLS_H
#define COFFER_RATLS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "coffer/buf.h"
#include "coffer/err.h"
#include "coffer/evidence.h"
#include "coffer/tee.h"

#define CF_RATLS_OID "2.23.133.5.4.9"

/* CBOR tags naming the evidence format. */
#define CF_RATLS_TAG_INTEL 0x1a7501u /* Intel SGX/TDX quote (Interoperable RA-TLS) */
#define CF_RATLS_TAG_SNP 0x1a7504u   /* AMD SEV-SNP report (Interoperable RA-TLS) */
/* coffer-private, NOT registered with IANA: placeholders (docs/attested-tls.md). */
#define CF_RATLS_TAG_SOFT 0x1a75c0u
#define CF_RATLS_TAG_CSV 0x1a75c1u

/* Hard limit on the evidence carried in a certificate. */
#define CF_RATLS_MAX_EVIDENCE (256u * 1024u)
/* Default lifetime of a certificate from cf_ratls_make_cert. */
#define CF_RATLS_DEFAULT_LIFETIME (24 * 60 * 60)

/* --- the CBOR wrapper (tag over byte string) --- */

/* Appends tag(tag, bstr(data)) to out, minimally encoded. */
cf_err cf_ratls_cbor_encode(uint64_t tag, const uint8_t *data, size_t len, cf_buf *out) CF_WUR;
/*
 * Strictly decodes exactly one tag(T, bstr) from in; *evidence borrows
 * from in. CF_ERR_TRUNCATED, CF_ERR_PARSE (wrong major type, reserved or
 * indefinite length, non-minimal head), CF_ERR_TRAILING, CF_ERR_TOO_BIG
 * (more than CF_RATLS_MAX_EVIDENCE).
 */
cf_err cf_ratls_cbor_decode(const uint8_t *in, size_t len, uint64_t *tag,
			    cf_blob *evidence) CF_WUR;

/* The tag of a kind; CF_ERR_UNSUPPORTED for CF_TEE_NONE. */
cf_err cf_ratls_tag_of(cf_tee_kind kind, uint64_t *tag) CF_WUR;
/*
 * The kind of a tag (Intel quotes are told apart, SGX or TDX, by the
 * quote header's TEE type); CF_ERR_UNSUPPORTED for an unknown tag.
 */
cf_err cf_ratls_kind_of(uint64_t tag, const uint8_t *evidence, size_t len,
			cf_tee_kind *kind) CF_WUR;

/* --- server side --- */

/* Obtains evidence over report_data (a provider's `evidence`, or a test's). */
typedef cf_err (*cf_ratls_evidence_fn)(void *arg, const uint8_t report_data[CF_REPORT_DATA_LEN],
				       cf_buf *out);

/* SHA-512 of the key's DER SubjectPublicKeyInfo: the report_data of a key. */
cf_err cf_ratls_key_hash(EVP_PKEY *key, uint8_t out[static CF_REPORT_DATA_LEN]) CF_WUR;

/*
 * Generates a P-256 key, gets evidence of `kind` over its hash from fn
 * and issues the certificate, valid from now - 60 s for lifetime seconds.
 */
cf_err cf_ratls_make_cert_with(cf_tee_kind kind, cf_ratls_evidence_fn fn, void *arg, time_t now,
			       long lifetime, EVP_PKEY **key_out, X509 **cert_out) CF_WUR;
/* The same with a TEE provider's evidence, now and the default lifetime. */
cf_err cf_ratls_make_cert(const cf_tee_provider *tee, EVP_PKEY **key_out, X509 **cert_out) CF_WUR;
/*
 * The certificate alone: self-signed by key, carrying ext (ext_len bytes)
 * verbatim as the extension's value, or no extension if ext is NULL.
 * Exposed so that tests can build hostile certificates.
 */
cf_err cf_ratls_sign_cert(EVP_PKEY *key, const uint8_t *ext, size_t ext_len, time_t now,
			  long lifetime, X509 **cert_out) CF_WUR;

/* --- client side --- */

typedef struct cf_ratls_verifier {
	/* Collateral (platform_cert, vcek, snp_chain, ...), borrowed; kind,
	   evidence and at are filled in per certificate. */
	cf_evidence_input collateral;
	const json_t *policy; /* optional (docs/evidence.md) */
	time_t now;           /* verification time; 0 for the current time */
} cf_ratls_verifier;

/*
 * Verifies cert into v (initialised here): the extension ("ratls_extension"),
 * its CBOR ("ratls_cbor"), the tag ("ratls_tag"), the certificate's
 * validity ("ratls_cert_validity") and self-signature
 * ("ratls_cert_signature"), the evidence (cf_evidence_verify), the policy
 * (cf_policy_apply) and "key_binding". CF_OK when a verdict was reached:
 * the certificate is accepted iff cf_verdict_ok(v).
 */
cf_err cf_ratls_verify_cert(X509 *cert, const cf_ratls_verifier *cfg, cf_verdict *v) CF_WUR;

/*
 * Makes ctx verify the peer's certificate with cf_ratls_verify_cert
 * (replacing chain verification: the leaf is self-signed) and require
 * one (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT; on a server
 * context that asks for a client certificate). cfg is borrowed and must
 * outlive ctx and its connections.
 */
cf_err cf_ratls_ssl_ctx_setup(SSL_CTX *ctx, const cf_ratls_verifier *cfg) CF_WUR;
/* Uses key and cert as ctx's own certificate. */
cf_err cf_ratls_ssl_ctx_use(SSL_CTX *ctx, EVP_PKEY *key, X509 *cert) CF_WUR;

/*
 * After a handshake on ssl: the name of the first failed check of the
 * peer's verdict ("key_binding", ...) and a sentence "check: expected
 * ..., got ...", or NULL if the peer was verified or never checked.
 */
const char *cf_ratls_last_check(const SSL *ssl);
const char *cf_ratls_last_error(const SSL *ssl);

/* --- client side: an attested CA (the KMS's) --- */

/*
 * Verifies a TLS server's chain whose trust comes from an attested CA,
 * as the KMS serves it (leaf, then its self-signed RA-TLS CA): the first
 * self-signed certificate after the leaf is the CA ("ratls_ca"; one
 * carrying the RA-TLS extension is preferred). Into v (initialised
 * here): every check of cf_ratls_verify_cert on that CA (evidence,
 * policy, key_binding), then "ca_chain" (X509_verify_cert of the leaf
 * with that CA as the only trust anchor and no intermediates, purpose
 * sslserver, at cfg->now) and "hostname" (host, a DNS name or a bare
 * IPv4/IPv6 address, against the leaf's subjectAltName only; no partial
 * wildcards). CF_OK when a verdict was reached: the chain is accepted iff
 * cf_verdict_ok(v). If ca_out is given it gets a new reference to the
 * CA found (NULL if none), whatever the verdict.
 */
cf_err cf_ratls_verify_ca_chain(STACK_OF(X509) *peer_chain, const char *host,
				const cf_ratls_verifier *cfg, cf_verdict *v, X509 **ca_out) CF_WUR;

/*
 * Makes a client ctx verify the server with cf_ratls_verify_ca_chain
 * instead of OpenSSL's chain verification; the host name of each
 * connection is given with cf_ratls_ssl_set_host (without it the
 * handshake fails at "hostname"). cfg is borrowed and must outlive ctx
 * and its connections. A failed verdict aborts the handshake; its reason
 * is read with cf_ratls_last_check / cf_ratls_last_error.
 */
cf_err cf_ratls_ssl_ctx_setup_ca(SSL_CTX *ctx, const cf_ratls_verifier *cfg) CF_WUR;
/* The name the server must hold: a DNS name or bare IP address (no brackets). */
cf_err cf_ratls_ssl_set_host(SSL *ssl, const char *host) CF_WUR;
/*
 * After a handshake with cf_ratls_ssl_ctx_setup_ca: the verdict as
 * cf_verdict_json gives it (also when refused), and the CA that was
 * verified (NULL unless the verdict passed). Both borrowed from ssl.
 */
const json_t *cf_ratls_last_verdict(const SSL *ssl);
X509 *cf_ratls_peer_ca(const SSL *ssl);

#endif
