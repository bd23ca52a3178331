/*
 * Unit tests for lib/age/stream.c (the STREAM payload with a known key)
 * and for whole files through cf_age_encrypt / cf_age_decrypt: round
 * trips at chunk boundaries, truncation, extension, reordering and
 * corruption, and the rule that only authenticated whole chunks are ever
 * released to the writer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coffer/age.h"
#include "coffer/crypto.h"
#include "coffer/enc.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CHUNK CF_AGE_CHUNK_LEN
#define ENC_CHUNK (CF_AGE_CHUNK_LEN + CF_AGE_TAG_LEN)

static const uint8_t key[32] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};

static uint8_t *plain(size_t n, uint32_t seed)
{
	uint8_t *p = malloc(n ? n : 1);
	assert_non_null(p);
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1664525u + 1013904223u;
		p[i] = (uint8_t)(seed >> 24);
	}
	return p;
}

static size_t nchunks(size_t n)
{
	return n == 0 ? 1 : (n + CHUNK - 1) / CHUNK;
}

static void stream_encrypt(const uint8_t k[32], const uint8_t *pt, size_t n, size_t max_read,
			   cf_buf *ct)
{
	cf_buf_init(ct, 1u << 26, false);
	cf_mem_reader mr = { .data = pt, .len = n, .max_read = max_read };
	assert_int_equal(cf_age_stream_encrypt(k, cf_mem_reader_of(&mr), cf_buf_writer(ct)), CF_OK);
}

/* Decrypts len bytes from an exact-size heap copy; out gets what the writer was given. */
static cf_err stream_decrypt(const uint8_t k[32], const uint8_t *ct, size_t len, size_t max_read,
			     cf_buf *out)
{
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	if (len)
		memcpy(copy, ct, len);
	cf_buf_init(out, 1u << 26, false);
	cf_mem_reader mr = { .data = copy, .len = len, .max_read = max_read };
	cf_err rc = cf_age_stream_decrypt(k, cf_mem_reader_of(&mr), cf_buf_writer(out));
	free(copy);
	return rc;
}

/* The released plaintext is exactly the first `chunks` whole chunks of pt. */
static void expect_prefix(const cf_buf *out, const uint8_t *pt, size_t n, size_t chunks)
{
	size_t want = chunks * CHUNK < n ? chunks * CHUNK : n;
	if (out->len != want)
		fail_msg("released %zu bytes, want %zu (%zu whole chunks)", out->len, want, chunks);
	if (want)
		assert_memory_equal(out->data, pt, want);
}

static bool is_payload_error(cf_err rc)
{
	return rc == CF_ERR_AGE_PAYLOAD || rc == CF_ERR_AGE_TRUNCATED;
}

/* --- STREAM round trips --- */

static void test_round_trip(void **state)
{
	(void)state;
	static const size_t sizes[] = { 0, 1, 65535, 65536, 65537, 131072, 200000 };
	static const size_t reads[] = { 0, 1, 7 };
	for (size_t si = 0; si < ARRAY_LEN(sizes); si++) {
		size_t n = sizes[si];
		uint8_t *pt = plain(n, (uint32_t)n);
		cf_buf ref;
		stream_encrypt(key, pt, n, 0, &ref);
		assert_int_equal(ref.len, n + CF_AGE_TAG_LEN * nchunks(n));
		for (size_t r = 0; r < ARRAY_LEN(reads); r++) {
			/* Byte-by-byte reads only up to a little over one chunk (ASan is slow). */
			if (reads[r] == 1 && n > 65537)
				continue;
			/* STREAM is deterministic: the read pattern does not change the output. */
			cf_buf ct;
			stream_encrypt(key, pt, n, reads[r], &ct);
			assert_int_equal(ct.len, ref.len);
			assert_memory_equal(ct.data, ref.data, ref.len);
			cf_buf out;
			cf_err rc = stream_decrypt(key, ct.data, ct.len, reads[r], &out);
			if (rc != CF_OK)
				fail_msg("size %zu, max_read %zu: %s", n, reads[r], cf_errname(rc));
			assert_int_equal(out.len, n);
			if (n)
				assert_memory_equal(out.data, pt, n);
			cf_buf_free(&out);
			cf_buf_free(&ct);
		}
		cf_buf_free(&ref);
		free(pt);
	}
}

/* Chunk-sized edges of the length rule: plaintext + 16 per chunk, an empty file is one chunk. */
static void test_ciphertext_length(void **state)
{
	(void)state;
	static const size_t sizes[] = { 0, 1, 15, 16, 17, 65520, 65535, 65536, 65537, 131071, 131072, 131073 };
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		uint8_t *pt = plain(sizes[i], 3);
		cf_buf ct;
		stream_encrypt(key, pt, sizes[i], 0, &ct);
		assert_int_equal(ct.len, sizes[i] + 16 * nchunks(sizes[i]));
		cf_buf_free(&ct);
		free(pt);
	}
}

/* The payload of the CCTV "x25519" vector decrypts with the key derived from its file key. */
static void test_known_answer(void **state)
{
	(void)state;
	const char *td = getenv("COFFER_TESTDATA");
	char path[4096];
	snprintf(path, sizeof(path), "%s/age/cctv/testdata/x25519", td ? td : "tests/data");
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	static uint8_t data[1 << 16];
	size_t len = fread(data, 1, sizeof(data), f);
	fclose(f);
	/* Skip the vector's metadata, then the header (through the "--- " line). */
	const uint8_t *p = NULL;
	for (size_t i = 0; i + 4 <= len; i++) {
		if ((i == 0 || data[i - 1] == '\n') && memcmp(data + i, "--- ", 4) == 0) {
			p = memchr(data + i, '\n', len - i);
			break;
		}
	}
	assert_non_null(p);
	p++;
	const uint8_t *nonce = p;
	const uint8_t *payload = p + 16;
	size_t plen = len - (size_t)(payload - data);
	/* "YELLOW SUBMARINE", the vector's file key. */
	static const uint8_t file_key[16] = "YELLOW SUBMARINE";
	uint8_t pkey[32];
	assert_int_equal(cf_hkdf_sha256(file_key, 16, nonce, 16, "payload", 7, pkey, 32), CF_OK);
	cf_buf out;
	assert_int_equal(stream_decrypt(pkey, payload, plen, 0, &out), CF_OK);
	uint8_t digest[32];
	char hex[65];
	assert_int_equal(cf_hash(CF_SHA256, out.data ? out.data : (const uint8_t *)"", out.len, digest),
			 CF_OK);
	cf_hex_encode(digest, 32, hex);
	assert_string_equal(hex, "013f54400c82da08037759ada907a8b864e97de81c088a182062c4b5622fd2ab");
	/* And re-encrypting gives the same payload bytes. */
	cf_buf ct;
	stream_encrypt(pkey, out.data, out.len, 0, &ct);
	assert_int_equal(ct.len, plen);
	assert_memory_equal(ct.data, payload, plen);
	cf_buf_free(&ct);
	cf_buf_free(&out);
}

/* --- truncation, extension, corruption --- */

static void check_truncation(const uint8_t *pt, size_t n, const cf_buf *ct, size_t cut)
{
	cf_buf out;
	cf_err rc = stream_decrypt(key, ct->data, cut, 0, &out);
	if (!is_payload_error(rc))
		fail_msg("%zu-byte plaintext cut at %zu of %zu: got %s", n, cut, ct->len,
			 cf_errname(rc));
	/* Whole authenticated chunks before the cut, and nothing else. */
	size_t whole = cut / ENC_CHUNK;
	if (cut % ENC_CHUNK == 0 && whole > 0) {
		/* Exactly at a boundary after a full non-final chunk. */
		if (rc != CF_ERR_AGE_TRUNCATED)
			fail_msg("cut at boundary %zu: got %s, want CF_ERR_AGE_TRUNCATED", cut,
				 cf_errname(rc));
	}
	expect_prefix(&out, pt, n, whole);
	cf_buf_free(&out);
}

static void test_truncation(void **state)
{
	(void)state;
	/* Two chunks: one full, one short final one. */
	size_t n = CHUNK + 1000;
	uint8_t *pt = plain(n, 11);
	cf_buf ct;
	stream_encrypt(key, pt, n, 0, &ct);
	assert_int_equal(ct.len, n + 32);
	for (size_t cut = 0; cut < ct.len; cut++) {
		bool near = cut <= 64 || (cut + 64 >= ENC_CHUNK && cut <= ENC_CHUNK + 64) ||
			    cut + 64 >= ct.len;
		if (near || cut % 4099 == 0)
			check_truncation(pt, n, &ct, cut);
	}
	cf_buf_free(&ct);
	free(pt);

	/* Two full chunks (the second is final): a cut after the first is TRUNCATED. */
	n = 2 * CHUNK;
	pt = plain(n, 12);
	stream_encrypt(key, pt, n, 0, &ct);
	assert_int_equal(ct.len, 2 * ENC_CHUNK);
	for (size_t cut = ENC_CHUNK - 17; cut <= ENC_CHUNK + 17; cut++)
		check_truncation(pt, n, &ct, cut);
	for (size_t cut = ct.len - 17; cut < ct.len; cut++)
		check_truncation(pt, n, &ct, cut);
	cf_buf_free(&ct);
	free(pt);

	/* Three chunks: a cut after the second full chunk releases two. */
	n = 2 * CHUNK + 5;
	pt = plain(n, 13);
	stream_encrypt(key, pt, n, 0, &ct);
	check_truncation(pt, n, &ct, 2 * ENC_CHUNK);
	check_truncation(pt, n, &ct, 2 * ENC_CHUNK + 1);
	check_truncation(pt, n, &ct, 2 * ENC_CHUNK + 16);
	check_truncation(pt, n, &ct, ENC_CHUNK);
	cf_buf_free(&ct);
	free(pt);

	/* A single full final chunk: every cut leaves nothing authentic. */
	n = CHUNK;
	pt = plain(n, 14);
	stream_encrypt(key, pt, n, 0, &ct);
	for (size_t cut = ct.len - 20; cut < ct.len; cut++)
		check_truncation(pt, n, &ct, cut);
	cf_buf_free(&ct);
	free(pt);

	/* Empty input is not a valid payload (it must hold at least one chunk). */
	cf_buf out;
	assert_int_equal(stream_decrypt(key, NULL, 0, 0, &out), CF_ERR_AGE_PAYLOAD);
	assert_int_equal(out.len, 0);
	cf_buf_free(&out);
}

static void test_extension(void **state)
{
	(void)state;
	static const size_t sizes[] = { 0, 1, 1000, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK };
	static const size_t extra[] = { 1, 15, 16, 17, 100, ENC_CHUNK, ENC_CHUNK + 1 };
	for (size_t si = 0; si < ARRAY_LEN(sizes); si++) {
		size_t n = sizes[si];
		uint8_t *pt = plain(n, 21);
		cf_buf ct;
		stream_encrypt(key, pt, n, 0, &ct);
		size_t ct_len = ct.len;
		for (size_t e = 0; e < ARRAY_LEN(extra); e++) {
			for (int fillc = 0; fillc < 2; fillc++) {
				ct.len = ct_len;
				uint8_t *junk = plain(extra[e], (uint32_t)e);
				if (fillc)
					memset(junk, 0, extra[e]);
				assert_int_equal(cf_buf_append(&ct, junk, extra[e]), CF_OK);
				free(junk);
				cf_buf out;
				cf_err rc = stream_decrypt(key, ct.data, ct.len, 0, &out);
				if (rc != CF_ERR_AGE_TRAILING && rc != CF_ERR_AGE_PAYLOAD)
					fail_msg("%zu + %zu extra bytes: got %s", n, extra[e], cf_errname(rc));
				/* Full chunks before the (short) final one are released; the final one
				 * only when it is full and so can be told apart from its trailer. */
				size_t full_before_last = (nchunks(n) - 1);
				if (rc == CF_ERR_AGE_TRAILING) {
					expect_prefix(&out, pt, n, nchunks(n));
				} else {
					if (out.len != full_before_last * CHUNK && out.len != n)
						fail_msg("%zu + %zu: released %zu", n, extra[e], out.len);
					if (out.len)
						assert_memory_equal(out.data, pt, out.len);
				}
				/* A full final chunk followed by data is recognised as trailing data. */
				if (n % CHUNK == 0 && n > 0)
					assert_int_equal(rc, CF_ERR_AGE_TRAILING);
				cf_buf_free(&out);
			}
		}
		cf_buf_free(&ct);
		free(pt);
	}
}

static void test_bit_flips(void **state)
{
	(void)state;
	/* Every byte of a small ciphertext, several masks. */
	static const size_t sizes[] = { 0, 1, 100 };
	static const uint8_t masks[] = { 0x01, 0x80, 0xff };
	for (size_t si = 0; si < ARRAY_LEN(sizes); si++) {
		size_t n = sizes[si];
		uint8_t *pt = plain(n, 31);
		cf_buf ct;
		stream_encrypt(key, pt, n, 0, &ct);
		for (size_t i = 0; i < ct.len; i++) {
			for (size_t m = 0; m < ARRAY_LEN(masks); m++) {
				ct.data[i] ^= masks[m];
				cf_buf out;
				cf_err rc = stream_decrypt(key, ct.data, ct.len, 0, &out);
				ct.data[i] ^= masks[m];
				if (rc != CF_ERR_AGE_PAYLOAD)
					fail_msg("size %zu, byte %zu ^ %02x: got %s", n, i, masks[m],
						 cf_errname(rc));
				assert_int_equal(out.len, 0);
				cf_buf_free(&out);
			}
		}
		cf_buf_free(&ct);
		free(pt);
	}
	/* Three chunks: a flip in chunk k releases exactly the k chunks before it. */
	size_t n = 2 * CHUNK + 100;
	uint8_t *pt = plain(n, 32);
	cf_buf ct;
	stream_encrypt(key, pt, n, 0, &ct);
	static const size_t at[] = { 0, 1, CHUNK, ENC_CHUNK - 1, ENC_CHUNK, ENC_CHUNK + 5000,
				     2 * ENC_CHUNK - 16, 2 * ENC_CHUNK, 2 * ENC_CHUNK + 99,
				     2 * ENC_CHUNK + 115 };
	for (size_t i = 0; i < ARRAY_LEN(at); i++) {
		assert_true(at[i] < ct.len);
		ct.data[at[i]] ^= 0x20;
		cf_buf out;
		cf_err rc = stream_decrypt(key, ct.data, ct.len, 0, &out);
		ct.data[at[i]] ^= 0x20;
		assert_int_equal(rc, CF_ERR_AGE_PAYLOAD);
		expect_prefix(&out, pt, n, at[i] / ENC_CHUNK);
		cf_buf_free(&out);
	}
	cf_buf_free(&ct);
	free(pt);
}

static void test_reorder_and_splice(void **state)
{
	(void)state;
	size_t n = 3 * CHUNK + 10;
	uint8_t *pt = plain(n, 41);
	cf_buf ct;
	stream_encrypt(key, pt, n, 0, &ct);
	uint8_t *tmp = malloc(ENC_CHUNK);
	assert_non_null(tmp);

	/* Swap chunks 0 and 1: nothing is released. */
	memcpy(tmp, ct.data, ENC_CHUNK);
	memcpy(ct.data, ct.data + ENC_CHUNK, ENC_CHUNK);
	memcpy(ct.data + ENC_CHUNK, tmp, ENC_CHUNK);
	cf_buf out;
	assert_int_equal(stream_decrypt(key, ct.data, ct.len, 0, &out), CF_ERR_AGE_PAYLOAD);
	assert_int_equal(out.len, 0);
	cf_buf_free(&out);
	memcpy(ct.data + ENC_CHUNK, ct.data, ENC_CHUNK);
	memcpy(ct.data, tmp, ENC_CHUNK);

	/* Swap chunks 1 and 2: chunk 0 only. */
	memcpy(tmp, ct.data + ENC_CHUNK, ENC_CHUNK);
	memcpy(ct.data + ENC_CHUNK, ct.data + 2 * ENC_CHUNK, ENC_CHUNK);
	memcpy(ct.data + 2 * ENC_CHUNK, tmp, ENC_CHUNK);
	assert_int_equal(stream_decrypt(key, ct.data, ct.len, 0, &out), CF_ERR_AGE_PAYLOAD);
	expect_prefix(&out, pt, n, 1);
	cf_buf_free(&out);
	memcpy(ct.data + 2 * ENC_CHUNK, ct.data + ENC_CHUNK, ENC_CHUNK);
	memcpy(ct.data + ENC_CHUNK, tmp, ENC_CHUNK);

	/* Duplicate chunk 0 in place of chunk 1. */
	memcpy(tmp, ct.data + ENC_CHUNK, ENC_CHUNK);
	memcpy(ct.data + ENC_CHUNK, ct.data, ENC_CHUNK);
	assert_int_equal(stream_decrypt(key, ct.data, ct.len, 0, &out), CF_ERR_AGE_PAYLOAD);
	expect_prefix(&out, pt, n, 1);
	cf_buf_free(&out);
	memcpy(ct.data + ENC_CHUNK, tmp, ENC_CHUNK);

	/* Drop chunk 1. */
	cf_buf cut;
	cf_buf_init(&cut, 1u << 26, false);
	assert_int_equal(cf_buf_append(&cut, ct.data, ENC_CHUNK), CF_OK);
	assert_int_equal(cf_buf_append(&cut, ct.data + 2 * ENC_CHUNK, ct.len - 2 * ENC_CHUNK), CF_OK);
	assert_int_equal(stream_decrypt(key, cut.data, cut.len, 0, &out), CF_ERR_AGE_PAYLOAD);
	expect_prefix(&out, pt, n, 1);
	cf_buf_free(&out);
	cf_buf_free(&cut);

	/* Splice chunk 1 of another stream under the same key. */
	uint8_t *pt2 = plain(n, 42);
	cf_buf ct2;
	stream_encrypt(key, pt2, n, 0, &ct2);
	memcpy(tmp, ct.data + ENC_CHUNK, ENC_CHUNK);
	memcpy(ct.data + ENC_CHUNK, ct2.data + ENC_CHUNK, ENC_CHUNK);
	/* Same key, same position: it authenticates; that is what the per-file key is for. */
	assert_int_equal(stream_decrypt(key, ct.data, ct.len, 0, &out), CF_OK);
	assert_memory_equal(out.data + CHUNK, pt2 + CHUNK, CHUNK);
	cf_buf_free(&out);
	memcpy(ct.data + ENC_CHUNK, tmp, ENC_CHUNK);
	cf_buf_free(&ct2);
	free(pt2);

	/* The original is intact. */
	assert_int_equal(stream_decrypt(key, ct.data, ct.len, 0, &out), CF_OK);
	expect_prefix(&out, pt, n, 4);
	cf_buf_free(&out);
	free(tmp);
	cf_buf_free(&ct);
	free(pt);
}

static void test_wrong_key(void **state)
{
	(void)state;
	static const size_t sizes[] = { 0, 5, 2 * CHUNK + 1 };
	for (size_t si = 0; si < ARRAY_LEN(sizes); si++) {
		uint8_t *pt = plain(sizes[si], 51);
		cf_buf ct;
		stream_encrypt(key, pt, sizes[si], 0, &ct);
		for (size_t bit = 0; bit < 256; bit += 37) {
			uint8_t k2[32];
			memcpy(k2, key, 32);
			k2[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			cf_buf out;
			assert_int_equal(stream_decrypt(k2, ct.data, ct.len, 0, &out), CF_ERR_AGE_PAYLOAD);
			assert_int_equal(out.len, 0);
			cf_buf_free(&out);
		}
		cf_buf_free(&ct);
		free(pt);
	}
}

/* Chunks sealed by hand, to reach the cases an honest encoder never produces. */
static void seal_chunk(cf_aead *a, uint64_t counter, bool last, const uint8_t *pt, size_t n,
		       cf_buf *ct)
{
	uint8_t nonce[12] = { 0 };
	for (int i = 0; i < 8; i++)
		nonce[10 - i] = (uint8_t)(counter >> (8 * i));
	nonce[11] = last;
	uint8_t *c = malloc(n + 16);
	assert_non_null(c);
	assert_int_equal(cf_aead_seal(a, nonce, NULL, 0, pt, n, c, c + n), CF_OK);
	assert_int_equal(cf_buf_append(ct, c, n + 16), CF_OK);
	free(c);
}

static void test_crafted_chunks(void **state)
{
	(void)state;
	cf_aead *a = NULL;
	assert_int_equal(cf_aead_new(CF_CHACHA20_POLY1305, key, &a), CF_OK);
	uint8_t *pt = plain(2 * CHUNK, 61);
	cf_buf ct, out;

	/* The control: what the encoder writes. */
	cf_buf_init(&ct, 1u << 26, false);
	seal_chunk(a, 0, false, pt, CHUNK, &ct);
	seal_chunk(a, 1, true, pt + CHUNK, 10, &ct);
	assert_int_equal(stream_decrypt(key, ct.data, ct.len, 0, &out), CF_OK);
	assert_int_equal(out.len, CHUNK + 10);
	cf_buf_free(&out);
	cf_buf_free(&ct);

	/* An empty final chunk after a full one is not allowed. */
	cf_buf_init(&ct, 1u << 26, false);
	seal_chunk(a, 0, false, pt, CHUNK, &ct);
	seal_chunk(a, 1, true, pt, 0, &ct);
	assert_int_equal(stream_decrypt(key, ct.data, ct.len, 0, &out), CF_ERR_AGE_PAYLOAD);
	expect_prefix(&out, pt, 2 * CHUNK, 1);
	cf_buf_free(&out);
	cf_buf_free(&ct);

	/* A short chunk not marked last, at the end. */
	cf_buf_init(&ct, 1u << 26, false);
	seal_chunk(a, 0, false, pt, 10, &ct);
	assert_int_equal(stream_decrypt(key, ct.data, ct.len, 0, &out), CF_ERR_AGE_PAYLOAD);
	assert_int_equal(out.len, 0);
	cf_buf_free(&out);
	cf_buf_free(&ct);

	/* An empty chunk not marked last. */
	cf_buf_init(&ct, 1u << 26, false);
	seal_chunk(a, 0, false, pt, 0, &ct);
	assert_int_equal(stream_decrypt(key, ct.data, ct.len, 0, &out), CF_ERR_AGE_PAYLOAD);
	cf_buf_free(&out);
	cf_buf_free(&ct);

	/* A full chunk marked last, then another chunk: the first is released, then refused. */
	cf_buf_init(&ct, 1u << 26, false);
	seal_chunk(a, 0, true, pt, CHUNK, &ct);
	seal_chunk(a, 1, true, pt + CHUNK, 10, &ct);
	assert_int_equal(stream_decrypt(key, ct.data, ct.len, 0, &out), CF_ERR_AGE_TRAILING);
	expect_prefix(&out, pt, 2 * CHUNK, 1);
	cf_buf_free(&out);
	cf_buf_free(&ct);

	/* Counters must start at zero and count up. */
	cf_buf_init(&ct, 1u << 26, false);
	seal_chunk(a, 1, true, pt, 10, &ct);
	assert_int_equal(stream_decrypt(key, ct.data, ct.len, 0, &out), CF_ERR_AGE_PAYLOAD);
	cf_buf_free(&out);
	cf_buf_free(&ct);
	cf_buf_init(&ct, 1u << 26, false);
	seal_chunk(a, 0, false, pt, CHUNK, &ct);
	seal_chunk(a, 0, true, pt, 10, &ct);
	assert_int_equal(stream_decrypt(key, ct.data, ct.len, 0, &out), CF_ERR_AGE_PAYLOAD);
	expect_prefix(&out, pt, 2 * CHUNK, 1);
	cf_buf_free(&out);
	cf_buf_free(&ct);
	cf_buf_init(&ct, 1u << 26, false);
	seal_chunk(a, 0, false, pt, CHUNK, &ct);
	seal_chunk(a, 2, true, pt, 10, &ct);
	assert_int_equal(stream_decrypt(key, ct.data, ct.len, 0, &out), CF_ERR_AGE_PAYLOAD);
	cf_buf_free(&out);
	cf_buf_free(&ct);

	/* An oversized chunk (more than 64 KiB sealed in one go). */
	uint8_t *big = plain(CHUNK + 1, 62);
	cf_buf_init(&ct, 1u << 26, false);
	seal_chunk(a, 0, true, big, CHUNK + 1, &ct);
	assert_int_equal(stream_decrypt(key, ct.data, ct.len, 0, &out), CF_ERR_AGE_PAYLOAD);
	assert_int_equal(out.len, 0);
	cf_buf_free(&out);
	cf_buf_free(&ct);
	free(big);

	cf_aead_free(a);
	free(pt);
}

static cf_err failing_write(void *ctx, const uint8_t *buf, size_t len)
{
	(void)buf;
	size_t *calls = ctx;
	(void)len;
	if ((*calls)++ >= 1)
		return CF_ERR_IO;
	return CF_OK;
}

static cf_err failing_read(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
	cf_mem_reader *m = ctx;
	if (m->off >= m->max_read)
		return CF_ERR_IO;
	size_t n = m->max_read - m->off < cap ? m->max_read - m->off : cap;
	memcpy(buf, m->data + m->off, n);
	m->off += n;
	*got = n;
	return CF_OK;
}

/* Reader and writer errors are passed on unchanged. */
static void test_io_errors(void **state)
{
	(void)state;
	size_t n = 3 * CHUNK;
	uint8_t *pt = plain(n, 71);
	cf_buf ct;
	stream_encrypt(key, pt, n, 0, &ct);
	/* The writer fails on its second call (the second chunk). */
	size_t calls = 0;
	cf_mem_reader mr = { .data = ct.data, .len = ct.len };
	assert_int_equal(cf_age_stream_decrypt(key, cf_mem_reader_of(&mr),
					       (cf_writer){ failing_write, &calls }),
			 CF_ERR_IO);
	assert_int_equal(calls, 2);
	calls = 0;
	cf_mem_reader pr = { .data = pt, .len = n };
	assert_int_equal(cf_age_stream_encrypt(key, cf_mem_reader_of(&pr),
					       (cf_writer){ failing_write, &calls }),
			 CF_ERR_IO);
	/* The reader fails part-way (max_read is the failure point here). */
	static const size_t fail_at[] = { 0, 1, ENC_CHUNK, ENC_CHUNK + 1, 2 * ENC_CHUNK + 5 };
	for (size_t i = 0; i < ARRAY_LEN(fail_at); i++) {
		cf_mem_reader fr = { .data = ct.data, .len = ct.len, .max_read = fail_at[i] };
		cf_buf out;
		cf_buf_init(&out, 1u << 26, false);
		assert_int_equal(cf_age_stream_decrypt(key, (cf_reader){ failing_read, &fr },
						       cf_buf_writer(&out)),
				 CF_ERR_IO);
		assert_true(out.len <= fail_at[i]);
		cf_buf_free(&out);
		cf_mem_reader fp = { .data = pt, .len = n, .max_read = fail_at[i] };
		cf_buf_init(&out, 1u << 26, false);
		assert_int_equal(cf_age_stream_encrypt(key, (cf_reader){ failing_read, &fp },
						       cf_buf_writer(&out)),
				 CF_ERR_IO);
		cf_buf_free(&out);
	}
	cf_buf_free(&ct);
	free(pt);
}

/* --- whole files --- */

static cf_err encrypt_file(const cf_age_recipient *r, size_t n, bool armor, const uint8_t *pt,
			   size_t len, cf_buf *out)
{
	cf_buf_init(out, 1u << 26, false);
	cf_age_encrypt_opts opts = { .armor = armor };
	cf_mem_reader mr = { .data = pt, .len = len };
	return cf_age_encrypt(r, n, &opts, cf_mem_reader_of(&mr), cf_buf_writer(out));
}

static cf_err decrypt_file(const cf_age_identity *ids, size_t n, const uint8_t *ct, size_t len,
			   size_t max_read, cf_buf *out)
{
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	if (len)
		memcpy(copy, ct, len);
	cf_buf_init(out, 1u << 26, false);
	cf_mem_reader mr = { .data = copy, .len = len, .max_read = max_read };
	cf_err rc = cf_age_decrypt(ids, n, cf_mem_reader_of(&mr), cf_buf_writer(out));
	free(copy);
	return rc;
}

static void test_file_x25519(void **state)
{
	(void)state;
	cf_age_identity ids[3];
	cf_age_recipient rs[3];
	memset(ids, 0, sizeof(ids));
	memset(rs, 0, sizeof(rs));
	for (int i = 0; i < 3; i++) {
		ids[i].kind = CF_AGE_X25519;
		assert_int_equal(cf_age_keygen(&ids[i].key), CF_OK);
		rs[i].kind = CF_AGE_X25519;
		memcpy(rs[i].pub, ids[i].key.pub, 32);
	}
	cf_age_identity stranger = { .kind = CF_AGE_X25519 };
	assert_int_equal(cf_age_keygen(&stranger.key), CF_OK);

	static const size_t sizes[] = { 0, 1, CHUNK, CHUNK + 1, 150000 };
	for (size_t si = 0; si < ARRAY_LEN(sizes); si++) {
		size_t n = sizes[si];
		uint8_t *pt = plain(n, 81);
		for (int armor = 0; armor < 2; armor++) {
			cf_buf ct;
			assert_int_equal(encrypt_file(rs, 3, armor, pt, n, &ct), CF_OK);
			if (armor)
				assert_memory_equal(ct.data, "-----BEGIN AGE ENCRYPTED FILE-----\n", 35);
			else
				assert_memory_equal(ct.data, "age-encryption.org/v1\n-> X25519 ", 32);
			for (int i = 0; i < 3; i++) {
				cf_buf out;
				cf_err rc = decrypt_file(&ids[i], 1, ct.data, ct.len, n < 1000 ? 1 : 0, &out);
				if (rc != CF_OK)
					fail_msg("size %zu armor %d identity %d: %s", n, armor, i,
						 cf_errname(rc));
				assert_int_equal(out.len, n);
				if (n)
					assert_memory_equal(out.data, pt, n);
				cf_buf_free(&out);
			}
			/* A list where only the last identity matches. */
			cf_age_identity list[2] = { stranger, ids[2] };
			cf_buf out;
			assert_int_equal(decrypt_file(list, 2, ct.data, ct.len, 0, &out), CF_OK);
			assert_int_equal(out.len, n);
			cf_buf_free(&out);
			/* The wrong identity, and none at all. */
			assert_int_equal(decrypt_file(&stranger, 1, ct.data, ct.len, 0, &out),
					 CF_ERR_AGE_NO_MATCH);
			assert_int_equal(out.len, 0);
			cf_buf_free(&out);
			assert_int_equal(decrypt_file(NULL, 0, ct.data, ct.len, 0, &out),
					 CF_ERR_AGE_NO_MATCH);
			cf_buf_free(&out);
			cf_buf_free(&ct);
		}
		free(pt);
	}
	/* Two encryptions of the same data differ (fresh file key, nonce, shares). */
	cf_buf c1, c2;
	assert_int_equal(encrypt_file(rs, 1, false, (const uint8_t *)"x", 1, &c1), CF_OK);
	assert_int_equal(encrypt_file(rs, 1, false, (const uint8_t *)"x", 1, &c2), CF_OK);
	assert_int_equal(c1.len, c2.len);
	assert_memory_not_equal(c1.data, c2.data, c1.len);
	cf_buf_free(&c1);
	cf_buf_free(&c2);
	for (int i = 0; i < 3; i++)
		cf_age_key_wipe(&ids[i].key);
	cf_age_key_wipe(&stranger.key);
}

static void test_file_scrypt(void **state)
{
	(void)state;
	static const char pass[] = "correct horse battery staple";
	cf_age_recipient r = { .kind = CF_AGE_SCRYPT, .passphrase = (const uint8_t *)pass,
			       .passlen = strlen(pass), .work_factor = 10 };
	cf_age_identity id = { .kind = CF_AGE_SCRYPT, .passphrase = (const uint8_t *)pass,
			       .passlen = strlen(pass) };
	static const size_t sizes[] = { 0, 100, CHUNK + 7 };
	for (size_t si = 0; si < ARRAY_LEN(sizes); si++) {
		uint8_t *pt = plain(sizes[si], 91);
		for (int armor = 0; armor < 2; armor++) {
			cf_buf ct, out;
			assert_int_equal(encrypt_file(&r, 1, armor, pt, sizes[si], &ct), CF_OK);
			if (!armor) {
				/* One scrypt stanza with the work factor asked for. */
				cf_age_header h;
				size_t consumed = 0;
				assert_int_equal(cf_age_header_parse(ct.data, ct.len, &h, &consumed), CF_OK);
				assert_int_equal(h.nstanzas, 1);
				assert_int_equal(h.stanzas[0].nargs, 3);
				assert_string_equal(h.stanzas[0].args[0], "scrypt");
				assert_string_equal(h.stanzas[0].args[2], "10");
				cf_age_header_free(&h);
			}
			assert_int_equal(decrypt_file(&id, 1, ct.data, ct.len, 0, &out), CF_OK);
			assert_int_equal(out.len, sizes[si]);
			if (sizes[si])
				assert_memory_equal(out.data, pt, sizes[si]);
			cf_buf_free(&out);
			/* Wrong passphrase. */
			cf_age_identity wrong = id;
			wrong.passlen--;
			assert_int_equal(decrypt_file(&wrong, 1, ct.data, ct.len, 0, &out),
					 CF_ERR_AGE_NO_MATCH);
			assert_int_equal(out.len, 0);
			cf_buf_free(&out);
			/* Work factor above the identity's limit; at the limit it works. */
			cf_age_identity capped = id;
			capped.max_work_factor = 9;
			assert_int_equal(decrypt_file(&capped, 1, ct.data, ct.len, 0, &out),
					 CF_ERR_AGE_WORK_FACTOR);
			assert_int_equal(out.len, 0);
			cf_buf_free(&out);
			capped.max_work_factor = 10;
			assert_int_equal(decrypt_file(&capped, 1, ct.data, ct.len, 0, &out), CF_OK);
			cf_buf_free(&out);
			/* An X25519 identity does not match a passphrase file. */
			cf_age_identity x = { .kind = CF_AGE_X25519 };
			assert_int_equal(cf_age_keygen(&x.key), CF_OK);
			assert_int_equal(decrypt_file(&x, 1, ct.data, ct.len, 0, &out),
					 CF_ERR_AGE_NO_MATCH);
			cf_age_key_wipe(&x.key);
			cf_buf_free(&out);
			cf_buf_free(&ct);
		}
		free(pt);
	}
}

static void test_file_scrypt_mixed(void **state)
{
	(void)state;
	static const char pass[] = "pw";
	cf_age_recipient rs[2] = {
		{ .kind = CF_AGE_SCRYPT, .passphrase = (const uint8_t *)pass, .passlen = 2,
		  .work_factor = 10 },
		{ .kind = CF_AGE_X25519 },
	};
	cf_age_identity x = { .kind = CF_AGE_X25519 };
	assert_int_equal(cf_age_keygen(&x.key), CF_OK);
	memcpy(rs[1].pub, x.key.pub, 32);
	cf_buf ct;
	assert_int_equal(encrypt_file(rs, 2, false, (const uint8_t *)"x", 1, &ct), CF_ERR_AGE_SCRYPT_MIXED);
	assert_int_equal(ct.len, 0);
	cf_buf_free(&ct);
	cf_age_recipient swapped[2] = { rs[1], rs[0] };
	assert_int_equal(encrypt_file(swapped, 2, true, (const uint8_t *)"x", 1, &ct),
			 CF_ERR_AGE_SCRYPT_MIXED);
	assert_int_equal(ct.len, 0);
	cf_buf_free(&ct);
	cf_age_recipient two[2] = { rs[0], rs[0] };
	assert_int_equal(encrypt_file(two, 2, false, (const uint8_t *)"x", 1, &ct),
			 CF_ERR_AGE_SCRYPT_MIXED);
	cf_buf_free(&ct);
	/* No recipients at all. */
	assert_int_equal(encrypt_file(rs, 0, false, (const uint8_t *)"x", 1, &ct), CF_ERR_ARG);
	cf_buf_free(&ct);

	/* A file with a scrypt stanza next to an X25519 one: the passphrase refuses it. */
	assert_int_equal(encrypt_file(&rs[1], 1, false, (const uint8_t *)"x", 1, &ct), CF_OK);
	static const char extra[] = "-> scrypt AAAAAAAAAAAAAAAAAAAAAA 10\n"
				    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";
	cf_buf mixed;
	cf_buf_init(&mixed, 1u << 20, false);
	size_t vlen = strlen("age-encryption.org/v1\n");
	assert_int_equal(cf_buf_append(&mixed, ct.data, vlen), CF_OK);
	assert_int_equal(cf_buf_append_str(&mixed, extra), CF_OK);
	assert_int_equal(cf_buf_append(&mixed, ct.data + vlen, ct.len - vlen), CF_OK);
	cf_age_identity sid = { .kind = CF_AGE_SCRYPT, .passphrase = (const uint8_t *)pass,
				.passlen = 2 };
	cf_buf out;
	assert_int_equal(decrypt_file(&sid, 1, mixed.data, mixed.len, 0, &out),
			 CF_ERR_AGE_SCRYPT_MIXED);
	cf_buf_free(&out);
	/* The X25519 identity unwraps its stanza, but the header changed under the MAC. */
	assert_int_equal(decrypt_file(&x, 1, mixed.data, mixed.len, 0, &out), CF_ERR_AGE_HMAC);
	assert_int_equal(out.len, 0);
	cf_buf_free(&out);
	cf_buf_free(&mixed);
	cf_buf_free(&ct);
	cf_age_key_wipe(&x.key);
}

/* Finds the start of the "--- " MAC line in a binary age file. */
static size_t mac_line_at(const cf_buf *ct)
{
	for (size_t i = 1; i + 4 <= ct->len; i++) {
		if (ct->data[i - 1] == '\n' && memcmp(ct->data + i, "--- ", 4) == 0)
			return i;
	}
	fail_msg("no MAC line");
	return 0;
}

static void test_file_tampering(void **state)
{
	(void)state;
	cf_age_identity id = { .kind = CF_AGE_X25519 };
	assert_int_equal(cf_age_keygen(&id.key), CF_OK);
	cf_age_recipient r = { .kind = CF_AGE_X25519 };
	memcpy(r.pub, id.key.pub, 32);
	size_t n = CHUNK + 500;
	uint8_t *pt = plain(n, 101);
	cf_buf ct, out;
	assert_int_equal(encrypt_file(&r, 1, false, pt, n, &ct), CF_OK);
	size_t mac = mac_line_at(&ct);
	size_t hdr_end = mac + 4 + 43 + 1;
	assert_int_equal(ct.data[hdr_end - 1], '\n');

	/* Every MAC character but the last (whose low bits are unused): another letter. */
	for (size_t i = mac + 4; i < mac + 4 + 42; i++) {
		uint8_t saved = ct.data[i];
		ct.data[i] = saved == 'A' ? 'B' : 'A';
		assert_int_equal(decrypt_file(&id, 1, ct.data, ct.len, 0, &out), CF_ERR_AGE_HMAC);
		assert_int_equal(out.len, 0);
		cf_buf_free(&out);
		ct.data[i] = saved;
	}
	/* The last MAC character with its low bits set is a malformed header. */
	uint8_t saved = ct.data[mac + 4 + 42];
	ct.data[mac + 4 + 42] = '/';
	assert_int_equal(decrypt_file(&id, 1, ct.data, ct.len, 0, &out), CF_ERR_AGE_HEADER);
	cf_buf_free(&out);
	ct.data[mac + 4 + 42] = saved;

	/* The stanza's body or share changed: the wrapped key no longer opens. */
	size_t body = (size_t)((uint8_t *)memchr(ct.data + 22, '\n', ct.len - 22) - ct.data) + 1;
	saved = ct.data[body + 3];
	ct.data[body + 3] = saved == 'A' ? 'B' : 'A';
	assert_int_equal(decrypt_file(&id, 1, ct.data, ct.len, 0, &out), CF_ERR_AGE_NO_MATCH);
	cf_buf_free(&out);
	ct.data[body + 3] = saved;
	saved = ct.data[22 + 10];
	ct.data[22 + 10] = saved == 'A' ? 'B' : 'A';
	cf_err rc = decrypt_file(&id, 1, ct.data, ct.len, 0, &out);
	assert_true(rc == CF_ERR_AGE_NO_MATCH || rc == CF_ERR_AGE_HEADER);
	cf_buf_free(&out);
	ct.data[22 + 10] = saved;

	/* The payload nonce, and a payload byte in each chunk. */
	ct.data[hdr_end] ^= 1;
	assert_int_equal(decrypt_file(&id, 1, ct.data, ct.len, 0, &out), CF_ERR_AGE_PAYLOAD);
	assert_int_equal(out.len, 0);
	cf_buf_free(&out);
	ct.data[hdr_end] ^= 1;
	ct.data[hdr_end + 16 + ENC_CHUNK + 3] ^= 1;
	assert_int_equal(decrypt_file(&id, 1, ct.data, ct.len, 0, &out), CF_ERR_AGE_PAYLOAD);
	expect_prefix(&out, pt, n, 1);
	cf_buf_free(&out);
	ct.data[hdr_end + 16 + ENC_CHUNK + 3] ^= 1;

	/* Cut inside the nonce, at a chunk boundary, and one byte extra. */
	rc = decrypt_file(&id, 1, ct.data, hdr_end + 8, 0, &out);
	assert_int_not_equal(rc, CF_OK);
	cf_buf_free(&out);
	assert_int_equal(decrypt_file(&id, 1, ct.data, hdr_end + 16 + ENC_CHUNK, 0, &out),
			 CF_ERR_AGE_TRUNCATED);
	expect_prefix(&out, pt, n, 1);
	cf_buf_free(&out);
	assert_int_equal(cf_buf_append_byte(&ct, 0), CF_OK);
	rc = decrypt_file(&id, 1, ct.data, ct.len, 0, &out);
	assert_true(rc == CF_ERR_AGE_PAYLOAD || rc == CF_ERR_AGE_TRAILING);
	cf_buf_free(&out);
	ct.len--;

	/* Still intact after all that. */
	assert_int_equal(decrypt_file(&id, 1, ct.data, ct.len, 0, &out), CF_OK);
	expect_prefix(&out, pt, n, 2);
	cf_buf_free(&out);
	cf_buf_free(&ct);

	/* The same MAC check through armor. */
	assert_int_equal(encrypt_file(&r, 1, true, pt, 100, &ct), CF_OK);
	cf_buf plainhdr;
	cf_armor_reader *a = NULL;
	cf_mem_reader mr = { .data = ct.data, .len = ct.len };
	assert_int_equal(cf_armor_reader_new(cf_mem_reader_of(&mr), &a), CF_OK);
	cf_buf_init(&plainhdr, 1u << 20, false);
	uint8_t buf[4096];
	size_t got;
	while ((rc = cf_armor_reader_as_reader(a).read(a, buf, sizeof(buf), &got)) == CF_OK && got)
		assert_int_equal(cf_buf_append(&plainhdr, buf, got), CF_OK);
	assert_int_equal(rc, CF_OK);
	cf_armor_reader_free(a);
	mac = mac_line_at(&plainhdr);
	plainhdr.data[mac + 10] = plainhdr.data[mac + 10] == 'A' ? 'B' : 'A';
	cf_buf rearmored;
	cf_buf_init(&rearmored, 1u << 20, false);
	cf_armor_writer *w = NULL;
	assert_int_equal(cf_armor_writer_new(cf_buf_writer(&rearmored), &w), CF_OK);
	assert_int_equal(cf_armor_writer_as_writer(w).write(w, plainhdr.data, plainhdr.len), CF_OK);
	assert_int_equal(cf_armor_writer_finish(w), CF_OK);
	cf_armor_writer_free(w);
	assert_int_equal(decrypt_file(&id, 1, rearmored.data, rearmored.len, 0, &out), CF_ERR_AGE_HMAC);
	cf_buf_free(&out);
	cf_buf_free(&rearmored);
	cf_buf_free(&plainhdr);
	cf_buf_free(&ct);
	free(pt);
	cf_age_key_wipe(&id.key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_ciphertext_length),
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_extension),
		cmocka_unit_test(test_bit_flips),
		cmocka_unit_test(test_reorder_and_splice),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_crafted_chunks),
		cmocka_unit_test(test_io_errors),
		cmocka_unit_test(test_file_x25519),
		cmocka_unit_test(test_file_scrypt),
		cmocka_unit_test(test_file_scrypt_mixed),
		cmocka_unit_test(test_file_tampering),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
