/*
 * ca: the KMS's certificate authority.
 *
 * Clients verify the KMS once over attested TLS, then pin its CA
 * certificate, so that stock tools (curl --cacert, openssl s_client
 * -CAfile, libpq) reach the KMS and every enclave it certified over
 * ordinary TLS. The CA is one long-lived ECDSA P-256 key, kept in the
 * KMS's sealed state (exported and imported as PKCS#8 DER, only ever in
 * secret buffers). At every start the KMS reissues its self-signed CA
 * certificate with that key: CN "coffer-kms CA <16 hex of SHA-256(SPKI)>",
 * CA:TRUE pathlen 0, valid one year, and carrying fresh TEE evidence in
 * the RA-TLS extension over cf_ratls_key_hash(CA key), so the CA
 * certificate is itself an RA-TLS certificate (cf_ratls_verify_cert).
 * Same key, same subject, same key identifier: a CA certificate pinned
 * before a restart still verifies the leaves issued after it.
 *
 * Leaves are P-256 only (libpq's SCRAM channel binding refuses Ed25519):
 * the KMS's own TLS server certificate, and short-lived certificates for
 * enclaves whose evidence the caller has already checked. Names always
 * come from the caller, never from a CSR. A leaf never outlives its CA.
 *
 * Not thread-safe; one event loop owns a kms_ca.
 */
#ifndef COFFER_KMS_CA_H
#define COFFER_KMS_CA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "coffer/buf.h"
#include "coffer/err.h"
#include "coffer/ratls.h"
#include "coffer/tee.h"

#define KMS_CA_LIFETIME (365L * 24 * 3600)     /* the self-signed CA certificate */
#define KMS_CA_SERVER_LIFETIME (3L * 24 * 3600) /* the KMS's TLS certificate */
#define KMS_CA_ENCLAVE_LIFETIME (24L * 3600)    /* default for enclaves */
#define KMS_CA_MAX_LEAF_LIFETIME (30L * 24 * 3600)
#define KMS_CA_MAX_NAMES 32
#define KMS_CA_MAX_CSR (64u * 1024u) /* bytes of PEM */

typedef struct kms_ca kms_ca;

/* --- the key --- */

/* A new CA with a fresh P-256 key and no certificate yet. */
cf_err kms_ca_generate(kms_ca **out) CF_WUR;
/*
 * A CA from its PKCS#8 DER private key (exactly len bytes, P-256 only:
 * CF_ERR_PARSE for malformed or trailing bytes, CF_ERR_UNSUPPORTED for
 * another key type). No certificate yet.
 */
cf_err kms_ca_load(const uint8_t *pkcs8_der, size_t len, kms_ca **out) CF_WUR;
/* Appends the PKCS#8 DER private key to out, which must be a secret buffer. */
cf_err kms_ca_export_key(const kms_ca *ca, cf_buf *pkcs8_der) CF_WUR;

/* --- the CA certificate --- */

/*
 * (Re)issues the self-signed CA certificate, valid from now - 60 s for
 * KMS_CA_LIFETIME, with evidence of `kind` from fn over
 * cf_ratls_key_hash(CA key). Until this succeeds nothing can be issued.
 */
cf_err kms_ca_certify_self(kms_ca *ca, cf_tee_kind kind, cf_ratls_evidence_fn fn, void *arg,
			   time_t now) CF_WUR;
/* The CA certificate (borrowed; NULL before kms_ca_certify_self). */
X509 *kms_ca_cert(const kms_ca *ca);
/* Appends the CA certificate in PEM to out. */
cf_err kms_ca_cert_pem(const kms_ca *ca, cf_buf *out) CF_WUR;
/* SHA-256 of the CA certificate's DER: what `coffer attest` prints and pins. */
cf_err kms_ca_fingerprint(const kms_ca *ca, uint8_t out[static 32]) CF_WUR;

/* --- leaves --- */

/*
 * The KMS's TLS server certificate: a fresh P-256 key, CN names[0], SAN
 * the n names (DNS names or IPv4/IPv6 addresses; CF_ERR_ARG for anything
 * else), EKU serverAuth, valid from now - 60 s for lifetime seconds (0:
 * KMS_CA_SERVER_LIFETIME; at most KMS_CA_MAX_LEAF_LIFETIME).
 */
cf_err kms_ca_issue_server(kms_ca *ca, const char *const *names, size_t n, time_t now,
			   long lifetime, EVP_PKEY **key_out, X509 **cert_out) CF_WUR;
/*
 * A certificate for an enclave's CSR (PEM, one CERTIFICATE REQUEST block,
 * at most KMS_CA_MAX_CSR bytes): CF_ERR_PARSE if malformed,
 * CF_ERR_UNSUPPORTED unless its key is P-256, CF_ERR_AUTH if its
 * self-signature does not verify. Subject CN cn, SAN the n names (the
 * CSR's own subject and extensions are ignored), EKU serverAuth and
 * clientAuth, random 16-byte serial, lifetime as above (0:
 * KMS_CA_ENCLAVE_LIFETIME). The enclave's evidence is the caller's to
 * check, against kms_ca_csr_key_hash.
 */
cf_err kms_ca_issue_csr(kms_ca *ca, const uint8_t *csr_pem, size_t len, const char *cn,
			const char *const *names, size_t n, time_t now, long lifetime,
			X509 **cert_out) CF_WUR;
/*
 * SHA-256 of the CSR's DER SubjectPublicKeyInfo: what an enclave binds
 * in its evidence (docs/kms.md, /v1/certify). Parses as kms_ca_issue_csr
 * does; does not check the self-signature.
 */
cf_err kms_ca_csr_key_hash(const uint8_t *csr_pem, size_t len, uint8_t out[static 32]) CF_WUR;

/* --- TLS --- */

/*
 * A TLS 1.3-only server context presenting leaf (with leaf_key) and the
 * CA certificate as its chain. Takes its own references.
 */
cf_err kms_ca_ssl_ctx(kms_ca *ca, EVP_PKEY *leaf_key, X509 *leaf, SSL_CTX **out) CF_WUR;

/* Wipes the key; NULL is fine. */
void kms_ca_free(kms_ca *ca);

#endif
