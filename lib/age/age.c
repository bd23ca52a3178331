/*
 * age encryption and decryption of whole files: recipient stanzas, the
 * header MAC, and the STREAM payload. Error classes follow the stages of
 * decryption so that a caller (and the CCTV vectors) can tell a malformed
 * file from a wrong key from a forgery.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "age_internal.h"
#include "coffer/crypto.h"
#include "coffer/enc.h"

#define X25519_LABEL "age-encryption.org/v1/X25519"
#define SCRYPT_LABEL "age-encryption.org/v1/scrypt"
#define SCRYPT_SALT_LEN 16
#define WRAPPED_KEY_LEN (CF_AGE_FILE_KEY_LEN + CF_AGE_TAG_LEN)
#define PAYLOAD_NONCE_LEN 16

/* ChaCha20-Poly1305 with a zero nonce: each wrapping key is used once. */
static cf_err wrap_file_key(const uint8_t key[32], const uint8_t file_key[CF_AGE_FILE_KEY_LEN],
			    uint8_t out[WRAPPED_KEY_LEN])
{
	static const uint8_t zero_nonce[12];
	cf_aead *aead = NULL;
	cf_err rc = cf_aead_new(CF_CHACHA20_POLY1305, key, &aead);
	if (rc == CF_OK)
		rc = cf_aead_seal(aead, zero_nonce, NULL, 0, file_key, CF_AGE_FILE_KEY_LEN, out,
				  out + CF_AGE_FILE_KEY_LEN);
	cf_aead_free(aead);
	return rc;
}

/* CF_ERR_AGE_NO_MATCH when the tag does not verify: a wrong key, not a bad file. */
static cf_err unwrap_file_key(const uint8_t key[32], const cf_age_stanza *s,
			      uint8_t file_key[CF_AGE_FILE_KEY_LEN])
{
	static const uint8_t zero_nonce[12];
	cf_aead *aead = NULL;
	cf_err rc = cf_aead_new(CF_CHACHA20_POLY1305, key, &aead);
	if (rc == CF_OK)
		rc = cf_aead_open(aead, zero_nonce, NULL, 0, s->body, CF_AGE_FILE_KEY_LEN,
				  s->body + CF_AGE_FILE_KEY_LEN, file_key);
	cf_aead_free(aead);
	return rc == CF_ERR_AUTH ? CF_ERR_AGE_NO_MATCH : rc;
}

static cf_err decode_arg(const char *arg, uint8_t *out, size_t want)
{
	size_t n = 0;
	uint8_t tmp[64];
	if (strlen(arg) > cf_b64_encoded_len(sizeof(tmp), false))
		return CF_ERR_AGE_HEADER;
	if (cf_b64_decode(arg, strlen(arg), false, tmp, sizeof(tmp), &n) != CF_OK || n != want)
		return CF_ERR_AGE_HEADER;
	memcpy(out, tmp, n);
	return CF_OK;
}

static cf_err x25519_unwrap(const cf_age_identity *id, const cf_age_stanza *s,
			    uint8_t file_key[CF_AGE_FILE_KEY_LEN])
{
	uint8_t share[32], shared[32], salt[64], key[32];
	cf_err rc;
	if (strcmp(s->args[0], "X25519") != 0)
		return CF_ERR_AGE_NO_MATCH;
	if (s->nargs != 2 || s->bodylen != WRAPPED_KEY_LEN)
		return CF_ERR_AGE_HEADER;
	if ((rc = decode_arg(s->args[1], share, sizeof(share))) != CF_OK)
		return rc;
	rc = cf_x25519(id->key.secret, share, shared);
	if (rc == CF_ERR_WEAK_KEY)
		rc = CF_ERR_AGE_HEADER; /* a low-order share is a malformed file */
	if (rc != CF_OK)
		goto out;
	memcpy(salt, share, 32);
	memcpy(salt + 32, id->key.pub, 32);
	rc = cf_hkdf_sha256(shared, 32, salt, 64, X25519_LABEL, strlen(X25519_LABEL), key, 32);
	if (rc == CF_OK)
		rc = unwrap_file_key(key, s, file_key);
out:
	cf_wipe(shared, sizeof(shared));
	cf_wipe(key, sizeof(key));
	return rc;
}

/* Strict decimal: digits only, no leading zero, no sign, at most two digits. */
static cf_err parse_work_factor(const char *s, unsigned *out)
{
	size_t len = strlen(s);
	if (len == 0 || len > 2 || s[0] == '0')
		return CF_ERR_AGE_HEADER;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return CF_ERR_AGE_HEADER;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 63)
		return CF_ERR_AGE_HEADER;
	*out = v;
	return CF_OK;
}

static cf_err scrypt_key(const uint8_t *pass, size_t passlen, const uint8_t salt[SCRYPT_SALT_LEN],
			 unsigned work_factor, uint8_t key[32])
{
	uint8_t full_salt[sizeof(SCRYPT_LABEL) - 1 + SCRYPT_SALT_LEN];
	memcpy(full_salt, SCRYPT_LABEL, sizeof(SCRYPT_LABEL) - 1);
	memcpy(full_salt + sizeof(SCRYPT_LABEL) - 1, salt, SCRYPT_SALT_LEN);
	return cf_scrypt(pass, passlen, full_salt, sizeof(full_salt), 1ull << work_factor, 8, 1,
			 key, 32);
}

static cf_err scrypt_unwrap(const cf_age_identity *id, const cf_age_stanza *s,
			    uint8_t file_key[CF_AGE_FILE_KEY_LEN])
{
	uint8_t salt[SCRYPT_SALT_LEN], key[32];
	unsigned wf, max_wf = id->max_work_factor ? id->max_work_factor : CF_AGE_MAX_WORK_FACTOR;
	cf_err rc;
	if (strcmp(s->args[0], "scrypt") != 0)
		return CF_ERR_AGE_NO_MATCH;
	if (s->nargs != 3 || s->bodylen != WRAPPED_KEY_LEN)
		return CF_ERR_AGE_HEADER;
	if ((rc = decode_arg(s->args[1], salt, sizeof(salt))) != CF_OK)
		return rc;
	if ((rc = parse_work_factor(s->args[2], &wf)) != CF_OK)
		return rc;
	if (wf > max_wf)
		return CF_ERR_AGE_WORK_FACTOR;
	rc = scrypt_key(id->passphrase, id->passlen, salt, wf, key);
	if (rc == CF_OK)
		rc = unwrap_file_key(key, s, file_key);
	cf_wipe(key, sizeof(key));
	return rc;
}

/* As the reference implementation: identities in order, each tries every stanza. */
static cf_err unwrap_any(const cf_age_identity *ids, size_t n, const cf_age_header *h,
			 uint8_t file_key[CF_AGE_FILE_KEY_LEN])
{
	for (size_t i = 0; i < n; i++) {
		if (ids[i].kind == CF_AGE_SCRYPT) {
			for (size_t j = 0; j < h->nstanzas; j++) {
				if (strcmp(h->stanzas[j].args[0], "scrypt") == 0 && h->nstanzas != 1)
					return CF_ERR_AGE_SCRYPT_MIXED;
			}
		}
		for (size_t j = 0; j < h->nstanzas; j++) {
			cf_err rc = ids[i].kind == CF_AGE_X25519
					    ? x25519_unwrap(&ids[i], &h->stanzas[j], file_key)
				    : ids[i].kind == CF_AGE_SCRYPT
					    ? scrypt_unwrap(&ids[i], &h->stanzas[j], file_key)
					    : CF_ERR_ARG;
			if (rc != CF_ERR_AGE_NO_MATCH)
				return rc;
		}
	}
	return CF_ERR_AGE_NO_MATCH;
}

static cf_err header_mac(const uint8_t file_key[CF_AGE_FILE_KEY_LEN], const uint8_t *hdr,
			 size_t len, uint8_t mac[32])
{
	uint8_t key[32];
	cf_err rc = cf_hkdf_sha256(file_key, CF_AGE_FILE_KEY_LEN, NULL, 0, "header", 6, key, 32);
	if (rc == CF_OK)
		rc = cf_hmac(CF_SHA256, key, 32, hdr, len, mac);
	cf_wipe(key, sizeof(key));
	return rc;
}

static cf_err payload_key(const uint8_t file_key[CF_AGE_FILE_KEY_LEN],
			  const uint8_t nonce[PAYLOAD_NONCE_LEN], uint8_t key[32])
{
	return cf_hkdf_sha256(file_key, CF_AGE_FILE_KEY_LEN, nonce, PAYLOAD_NONCE_LEN, "payload", 7,
			      key, 32);
}

/* Reads bytes up to and including the MAC line ("---..." + LF). */
static cf_err read_header_bytes(age_src *src, cf_buf *hdr)
{
	size_t line_start = 0;
	for (;;) {
		int c;
		cf_err rc = age_src_getc(src, &c);
		if (rc != CF_OK)
			return rc;
		if (c < 0)
			return CF_ERR_AGE_HEADER;
		if (cf_buf_append_byte(hdr, (uint8_t)c) != CF_OK)
			return CF_ERR_AGE_HEADER; /* over CF_AGE_MAX_HEADER */
		if (c != '\n')
			continue;
		if (hdr->len - line_start >= 4 && memcmp(hdr->data + line_start, "---", 3) == 0)
			return CF_OK;
		line_start = hdr->len;
	}
}

struct decrypt_state {
	age_src outer;
	age_src inner; /* over the armor decoder when armored */
};

cf_err cf_age_unwrap_header(const cf_age_identity *ids, size_t n, const uint8_t *hdr, size_t len,
			    uint8_t file_key[static CF_AGE_FILE_KEY_LEN])
{
	cf_age_header h = { 0 };
	uint8_t mac[32];
	size_t consumed = 0;
	cf_err rc = cf_age_header_parse(hdr, len, &h, &consumed);
	if (rc == CF_ERR_TRUNCATED)
		rc = CF_ERR_AGE_HEADER;
	if (rc == CF_OK && consumed != len)
		rc = CF_ERR_TRAILING;
	if (rc == CF_OK)
		rc = unwrap_any(ids, n, &h, file_key);
	if (rc == CF_OK)
		rc = header_mac(file_key, hdr, h.mac_input_len, mac);
	if (rc == CF_OK && !cf_ct_equal(mac, h.mac, sizeof(mac)))
		rc = CF_ERR_AGE_HMAC;
	if (rc != CF_OK)
		cf_wipe(file_key, CF_AGE_FILE_KEY_LEN);
	cf_age_header_free(&h);
	return rc;
}

/*
 * Decrypts with identities, or (ids == NULL) with a file key already
 * known, optionally insisting on the header's SHA-256.
 */
static cf_err decrypt_common(const cf_age_identity *ids, size_t n, const uint8_t *known_key,
			     const uint8_t *header_sha256, cf_reader in, cf_writer out)
{
	cf_err rc;
	cf_age_header h = { 0 };
	cf_armor_reader *armor = NULL;
	uint8_t file_key[CF_AGE_FILE_KEY_LEN], mac[32], nonce[PAYLOAD_NONCE_LEN], pkey[32];
	cf_buf hdr;
	cf_buf_init(&hdr, CF_AGE_MAX_HEADER, false);
	struct decrypt_state *st = malloc(sizeof(*st));
	if (!st)
		return CF_ERR_NOMEM;

	age_src_init(&st->outer, in);
	age_src *src = &st->outer;
	int first;
	if ((rc = age_src_peek(src, &first)) != CF_OK)
		goto out;
	/* A binary file starts with "age-"; anything starting with space or '-' is armor. */
	if (first >= 0 && (age_is_space(first) || first == '-')) {
		if ((rc = cf_armor_reader_new(age_src_reader(src), &armor)) != CF_OK)
			goto out;
		age_src_init(&st->inner, cf_armor_reader_as_reader(armor));
		src = &st->inner;
	}

	if ((rc = read_header_bytes(src, &hdr)) != CF_OK)
		goto out;
	size_t consumed = 0;
	rc = cf_age_header_parse(hdr.data, hdr.len, &h, &consumed);
	if (rc == CF_ERR_TRUNCATED || (rc == CF_OK && consumed != hdr.len))
		rc = CF_ERR_AGE_HEADER;
	if (rc != CF_OK)
		goto out;

	if (header_sha256) {
		uint8_t got_hash[CF_SHA256_LEN];
		if ((rc = cf_hash(CF_SHA256, hdr.data, hdr.len, got_hash)) != CF_OK)
			goto out;
		if (!cf_ct_equal(got_hash, header_sha256, sizeof(got_hash))) {
			rc = CF_ERR_AUTH;
			goto out;
		}
	}
	if (known_key)
		memcpy(file_key, known_key, CF_AGE_FILE_KEY_LEN);
	else if ((rc = unwrap_any(ids, n, &h, file_key)) != CF_OK)
		goto out;
	if ((rc = header_mac(file_key, hdr.data, h.mac_input_len, mac)) != CF_OK)
		goto out;
	if (!cf_ct_equal(mac, h.mac, sizeof(mac))) {
		rc = CF_ERR_AGE_HMAC;
		goto out;
	}
	size_t got = 0;
	if ((rc = cf_read_full(age_src_reader(src), nonce, sizeof(nonce), &got)) != CF_OK)
		goto out;
	if (got != sizeof(nonce)) {
		rc = CF_ERR_AGE_HEADER;
		goto out;
	}
	if ((rc = payload_key(file_key, nonce, pkey)) != CF_OK)
		goto out;
	rc = cf_age_stream_decrypt(pkey, age_src_reader(src), out);
out:
	cf_wipe(file_key, sizeof(file_key));
	cf_wipe(pkey, sizeof(pkey));
	cf_age_header_free(&h);
	cf_buf_free(&hdr);
	cf_armor_reader_free(armor);
	if (st) {
		/* The buffers may hold decrypted armor of a payload: not secret, but wipe. */
		cf_wipe(st, sizeof(*st));
		free(st);
	}
	return rc;
}

cf_err cf_age_decrypt(const cf_age_identity *ids, size_t n, cf_reader in, cf_writer out)
{
	return decrypt_common(ids, n, NULL, NULL, in, out);
}

cf_err cf_age_decrypt_with_file_key(const uint8_t file_key[static CF_AGE_FILE_KEY_LEN],
				    const uint8_t *header_sha256, cf_reader in, cf_writer out)
{
	return decrypt_common(NULL, 0, file_key, header_sha256, in, out);
}

static cf_err stanza_set(cf_age_stanza *s, const char *const *args, size_t nargs,
			 const uint8_t *body, size_t bodylen)
{
	s->args = calloc(nargs, sizeof(char *));
	s->body = malloc(bodylen);
	if (!s->args || !s->body)
		return CF_ERR_NOMEM;
	memcpy(s->body, body, bodylen);
	s->bodylen = bodylen;
	for (size_t i = 0; i < nargs; i++) {
		s->args[i] = strdup(args[i]);
		if (!s->args[i])
			return CF_ERR_NOMEM;
		s->nargs++;
	}
	return CF_OK;
}

static cf_err x25519_wrap(const cf_age_recipient *r, const uint8_t file_key[CF_AGE_FILE_KEY_LEN],
			  cf_age_stanza *s)
{
	uint8_t eph[32], share[32], shared[32], salt[64], key[32], body[WRAPPED_KEY_LEN];
	char share_b64[48];
	cf_err rc = cf_x25519_keygen(eph, share);
	if (rc == CF_OK)
		rc = cf_x25519(eph, r->pub, shared);
	if (rc != CF_OK)
		goto out;
	memcpy(salt, share, 32);
	memcpy(salt + 32, r->pub, 32);
	rc = cf_hkdf_sha256(shared, 32, salt, 64, X25519_LABEL, strlen(X25519_LABEL), key, 32);
	if (rc == CF_OK)
		rc = wrap_file_key(key, file_key, body);
	if (rc != CF_OK)
		goto out;
	cf_b64_encode(share, 32, false, share_b64);
	const char *args[] = { "X25519", share_b64 };
	rc = stanza_set(s, args, 2, body, sizeof(body));
out:
	cf_wipe(eph, sizeof(eph));
	cf_wipe(shared, sizeof(shared));
	cf_wipe(key, sizeof(key));
	return rc;
}

static cf_err scrypt_wrap(const cf_age_recipient *r, const uint8_t file_key[CF_AGE_FILE_KEY_LEN],
			  cf_age_stanza *s)
{
	uint8_t salt[SCRYPT_SALT_LEN], key[32], body[WRAPPED_KEY_LEN];
	char salt_b64[32], wf_str[8];
	unsigned wf = r->work_factor ? r->work_factor : CF_AGE_DEFAULT_WORK_FACTOR;
	if (wf > 30)
		return CF_ERR_LIMIT;
	cf_err rc = cf_random(salt, sizeof(salt));
	if (rc == CF_OK)
		rc = scrypt_key(r->passphrase, r->passlen, salt, wf, key);
	if (rc == CF_OK)
		rc = wrap_file_key(key, file_key, body);
	cf_wipe(key, sizeof(key));
	if (rc != CF_OK)
		return rc;
	cf_b64_encode(salt, sizeof(salt), false, salt_b64);
	snprintf(wf_str, sizeof(wf_str), "%u", wf);
	const char *args[] = { "scrypt", salt_b64, wf_str };
	return stanza_set(s, args, 3, body, sizeof(body));
}

cf_err cf_age_encrypt(const cf_age_recipient *rcpts, size_t n, const cf_age_encrypt_opts *opts,
		      cf_reader in, cf_writer out)
{
	cf_err rc;
	cf_age_header h = { 0 };
	cf_armor_writer *armor = NULL;
	uint8_t file_key[CF_AGE_FILE_KEY_LEN], nonce[PAYLOAD_NONCE_LEN], pkey[32];
	cf_buf hdr;
	cf_buf_init(&hdr, CF_AGE_MAX_HEADER, false);

	if (n == 0 || n > CF_AGE_MAX_STANZAS)
		return CF_ERR_ARG;
	for (size_t i = 0; i < n; i++) {
		if (rcpts[i].kind == CF_AGE_SCRYPT && n > 1)
			return CF_ERR_AGE_SCRYPT_MIXED;
	}
	if ((rc = cf_random(file_key, sizeof(file_key))) != CF_OK)
		goto out;
	h.stanzas = calloc(n, sizeof(*h.stanzas));
	if (!h.stanzas) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		h.nstanzas++;
		rc = rcpts[i].kind == CF_AGE_X25519   ? x25519_wrap(&rcpts[i], file_key, &h.stanzas[i])
		     : rcpts[i].kind == CF_AGE_SCRYPT ? scrypt_wrap(&rcpts[i], file_key, &h.stanzas[i])
						      : CF_ERR_ARG;
		if (rc != CF_OK)
			goto out;
	}
	if ((rc = cf_age_header_encode(&h, false, &hdr)) != CF_OK)
		goto out;
	if ((rc = header_mac(file_key, hdr.data, hdr.len, h.mac)) != CF_OK)
		goto out;
	char mac_b64[48];
	cf_b64_encode(h.mac, sizeof(h.mac), false, mac_b64);
	if ((rc = cf_buf_printf(&hdr, " %s\n", mac_b64)) != CF_OK)
		goto out;
	if ((rc = cf_random(nonce, sizeof(nonce))) != CF_OK)
		goto out;
	if ((rc = cf_buf_append(&hdr, nonce, sizeof(nonce))) != CF_OK)
		goto out;

	cf_writer w = out;
	if (opts && opts->armor) {
		if ((rc = cf_armor_writer_new(out, &armor)) != CF_OK)
			goto out;
		w = cf_armor_writer_as_writer(armor);
	}
	if ((rc = w.write(w.ctx, hdr.data, hdr.len)) != CF_OK)
		goto out;
	if ((rc = payload_key(file_key, nonce, pkey)) != CF_OK)
		goto out;
	if ((rc = cf_age_stream_encrypt(pkey, in, w)) != CF_OK)
		goto out;
	if (armor)
		rc = cf_armor_writer_finish(armor);
out:
	cf_wipe(file_key, sizeof(file_key));
	cf_wipe(pkey, sizeof(pkey));
	cf_age_header_free(&h);
	cf_buf_free(&hdr);
	cf_armor_writer_free(armor);
	return rc;
}
