/*
 * The RA-TLS extension's CBOR reader on arbitrary bytes, then the same
 * bytes as an extension value in a certificate through the verifier.
 */
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "coffer/ratls.h"

static EVP_PKEY *key;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t tag;
	cf_blob ev;
	cf_tee_kind kind;
	if (cf_ratls_cbor_decode(data, size, &tag, &ev) == CF_OK) {
		if (ev.len > size || (ev.len && (ev.data < data || ev.data + ev.len > data + size)))
			__builtin_trap();
		/* Re-encoding a strictly decoded input gives the input back. */
		cf_buf re;
		cf_buf_init(&re, CF_RATLS_MAX_EVIDENCE + 32, false);
		if (cf_ratls_cbor_encode(tag, ev.data, ev.len, &re) != CF_OK || re.len != size ||
		    memcmp(re.data, data, size) != 0)
			__builtin_trap();
		cf_buf_free(&re);
		(void)cf_ratls_kind_of(tag, ev.data, ev.len, &kind);
	}
	if (size > 4096)
		return 0;
	if (!key && !(key = EVP_EC_gen("P-256")))
		return 0;
	X509 *cert = NULL;
	if (cf_ratls_sign_cert(key, data, size, 1700000000, 3600, &cert) != CF_OK)
		return 0;
	cf_ratls_verifier cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.now = 1700000000;
	cf_verdict v;
	if (cf_ratls_verify_cert(cert, &cfg, &v) == CF_OK) {
		(void)cf_verdict_ok(&v);
		cf_verdict_free(&v);
	}
	X509_free(cert);
	return 0;
}
