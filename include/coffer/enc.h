/*
 * enc: text encodings of bytes, all strict.
 *
 * Decoders accept exactly one spelling of each value: base64 must be
 * canonical (unused low bits zero; padding only in the padded form),
 * hex is case-insensitive but must have even length, Bech32 checks the
 * checksum, the HRP and the case rule (all lower or all upper). Any other
 * input is CF_ERR_ENCODING. Output sizes are the caller's to provide;
 * the *_len() helpers give them. Comparisons of secrets use cf_ct_equal.
 */
#ifndef COFFER_ENC_H
#define COFFER_ENC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coffer/err.h"

/* hex: out gets 2n chars plus NUL. */
void cf_hex_encode(const uint8_t *in, size_t n, char *out);
/* Decodes exactly inlen chars into outcap bytes; *outlen = inlen/2. */
cf_err cf_hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap,
		     size_t *outlen) CF_WUR;

/* base64 (RFC 4648 standard alphabet). */
size_t cf_b64_encoded_len(size_t n, bool padded);
/* Writes cf_b64_encoded_len() chars plus NUL. */
void cf_b64_encode(const uint8_t *in, size_t n, bool padded, char *out);
/* Upper bound on decoded size. */
size_t cf_b64_decoded_max(size_t inlen);
cf_err cf_b64_decode(const char *in, size_t inlen, bool padded, uint8_t *out,
		     size_t outcap, size_t *outlen) CF_WUR;

/*
 * Bech32 (BIP 173 checksum, no 90-character limit, as age uses it).
 * hrp is lower-case; upper_case selects the all-upper spelling.
 */
cf_err cf_bech32_encode(const char *hrp, const uint8_t *data, size_t n, bool upper_case,
			char *out, size_t outcap) CF_WUR;
/* On success *hrp_out holds the lower-cased HRP. */
cf_err cf_bech32_decode(const char *in, char *hrp_out, size_t hrpcap, uint8_t *data,
			size_t datacap, size_t *datalen) CF_WUR;

/* Constant-time equality of two n-byte strings. */
bool cf_ct_equal(const void *a, const void *b, size_t n);

#endif
