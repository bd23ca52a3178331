/*
 * Fuzzes the STREAM decryptor. Input: a 32-byte payload key, then the
 * chunks. Plaintext that decrypts must re-encrypt to the same chunks.
 */
#include <stdlib.h>
#include <string.h>

#include "coffer/age.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 33)
		return 0;
	const uint8_t *key = data + 1;
	size_t max_read = 1 + (size_t)data[0] * 257;
	cf_mem_reader mr = { .data = data + 33, .len = size - 33, .max_read = max_read };
	cf_buf plain, cipher;
	cf_buf_init(&plain, 8u << 20, false);
	cf_buf_init(&cipher, 9u << 20, false);
	cf_err rc = cf_age_stream_decrypt(key, cf_mem_reader_of(&mr), cf_buf_writer(&plain));
	if (rc == CF_OK) {
		cf_mem_reader pr = { .data = plain.data, .len = plain.len };
		if (cf_age_stream_encrypt(key, cf_mem_reader_of(&pr), cf_buf_writer(&cipher)) != CF_OK)
			abort();
		if (cipher.len != size - 33 || memcmp(cipher.data, data + 33, cipher.len) != 0)
			abort();
	}
	cf_buf_free(&plain);
	cf_buf_free(&cipher);
	return 0;
}
