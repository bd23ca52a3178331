/*
 * STREAM (age spec, "Payload"): 64 KiB chunks sealed with
 * ChaCha20-Poly1305 under a nonce of an 11-byte big-endian counter and a
 * last-chunk flag. One chunk of lookahead tells the last chunk apart, so
 * memory stays constant whatever the file size.
 */
#include <stdlib.h>
#include <string.h>

#include "age_internal.h"
#include "coffer/crypto.h"

#define ENC_CHUNK (CF_AGE_CHUNK_LEN + CF_AGE_TAG_LEN)

static void stream_nonce(uint8_t nonce[12], uint64_t counter, bool last)
{
	memset(nonce, 0, 12);
	for (int i = 0; i < 8; i++)
		nonce[10 - i] = (uint8_t)(counter >> (8 * i));
	nonce[11] = last ? 1 : 0;
}

static cf_err chunk_open(cf_aead *aead, uint64_t counter, bool last, const uint8_t *in,
			 size_t len, uint8_t *out)
{
	uint8_t nonce[12];
	stream_nonce(nonce, counter, last);
	size_t plen = len - CF_AGE_TAG_LEN;
	return cf_aead_open(aead, nonce, NULL, 0, in, plen, in + plen, out);
}

cf_err cf_age_stream_decrypt(const uint8_t key[static 32], cf_reader in, cf_writer out)
{
	cf_err rc;
	cf_aead *aead = NULL;
	/* One encrypted chunk plus one byte of lookahead; plaintext in its own buffer. */
	uint8_t *cbuf = malloc(ENC_CHUNK + 1);
	uint8_t *pbuf = malloc(CF_AGE_CHUNK_LEN);
	if (!cbuf || !pbuf) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	if ((rc = cf_aead_new(CF_CHACHA20_POLY1305, key, &aead)) != CF_OK)
		goto out;

	size_t have = 0;
	if ((rc = cf_read_full(in, cbuf, ENC_CHUNK + 1, &have)) != CF_OK)
		goto out;
	for (uint64_t counter = 0;; counter++) {
		if (have > ENC_CHUNK) {
			/* More data follows, so this chunk must not be the last. */
			rc = chunk_open(aead, counter, false, cbuf, ENC_CHUNK, pbuf);
			if (rc == CF_ERR_AUTH) {
				/*
				 * A final chunk followed by more data: release the authentic
				 * final chunk (as the reference does), then refuse the rest.
				 */
				if (chunk_open(aead, counter, true, cbuf, ENC_CHUNK, pbuf) != CF_OK) {
					rc = CF_ERR_AGE_PAYLOAD;
					goto out;
				}
				rc = out.write(out.ctx, pbuf, CF_AGE_CHUNK_LEN);
				if (rc == CF_OK)
					rc = CF_ERR_AGE_TRAILING;
				goto out;
			}
			if (rc != CF_OK)
				goto out;
			if ((rc = out.write(out.ctx, pbuf, CF_AGE_CHUNK_LEN)) != CF_OK)
				goto out;
			cbuf[0] = cbuf[ENC_CHUNK];
			size_t got = 0;
			if ((rc = cf_read_full(in, cbuf + 1, ENC_CHUNK, &got)) != CF_OK)
				goto out;
			have = 1 + got;
			continue;
		}
		/* End of input: this is the last chunk. */
		if (have == 0) {
			/* No chunk at all, or the stream stopped after a non-final one. */
			rc = counter == 0 ? CF_ERR_AGE_PAYLOAD : CF_ERR_AGE_TRUNCATED;
			goto out;
		}
		if (have < CF_AGE_TAG_LEN || (have == CF_AGE_TAG_LEN && counter > 0)) {
			/* Too short for a tag, or an empty final chunk after data. */
			rc = CF_ERR_AGE_PAYLOAD;
			goto out;
		}
		rc = chunk_open(aead, counter, true, cbuf, have, pbuf);
		if (rc == CF_ERR_AUTH) {
			/* A full non-final chunk at end of input: authentic, but truncated after. */
			if (have != ENC_CHUNK ||
			    chunk_open(aead, counter, false, cbuf, have, pbuf) != CF_OK) {
				rc = CF_ERR_AGE_PAYLOAD;
				goto out;
			}
			rc = out.write(out.ctx, pbuf, CF_AGE_CHUNK_LEN);
			if (rc == CF_OK)
				rc = CF_ERR_AGE_TRUNCATED;
			goto out;
		}
		if (rc != CF_OK)
			goto out;
		rc = out.write(out.ctx, pbuf, have - CF_AGE_TAG_LEN);
		goto out;
	}
out:
	cf_aead_free(aead);
	if (pbuf) {
		cf_wipe(pbuf, CF_AGE_CHUNK_LEN);
		free(pbuf);
	}
	free(cbuf);
	return rc;
}

cf_err cf_age_stream_encrypt(const uint8_t key[static 32], cf_reader in, cf_writer out)
{
	cf_err rc;
	cf_aead *aead = NULL;
	uint8_t *pbuf = malloc(CF_AGE_CHUNK_LEN + 1);
	uint8_t *cbuf = malloc(ENC_CHUNK);
	if (!cbuf || !pbuf) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	if ((rc = cf_aead_new(CF_CHACHA20_POLY1305, key, &aead)) != CF_OK)
		goto out;
	size_t have = 0;
	if ((rc = cf_read_full(in, pbuf, CF_AGE_CHUNK_LEN + 1, &have)) != CF_OK)
		goto out;
	for (uint64_t counter = 0;; counter++) {
		bool last = have <= CF_AGE_CHUNK_LEN;
		size_t n = last ? have : CF_AGE_CHUNK_LEN;
		uint8_t nonce[12];
		stream_nonce(nonce, counter, last);
		rc = cf_aead_seal(aead, nonce, NULL, 0, pbuf, n, cbuf, cbuf + n);
		if (rc != CF_OK)
			goto out;
		if ((rc = out.write(out.ctx, cbuf, n + CF_AGE_TAG_LEN)) != CF_OK)
			goto out;
		if (last)
			break;
		pbuf[0] = pbuf[CF_AGE_CHUNK_LEN];
		size_t got = 0;
		if ((rc = cf_read_full(in, pbuf + 1, CF_AGE_CHUNK_LEN, &got)) != CF_OK)
			goto out;
		have = 1 + got;
	}
out:
	cf_aead_free(aead);
	if (pbuf) {
		cf_wipe(pbuf, CF_AGE_CHUNK_LEN + 1);
		free(pbuf);
	}
	free(cbuf);
	return rc;
}
