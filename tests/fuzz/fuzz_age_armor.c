/*
 * Fuzzes the ASCII armor decoder, reading in small pieces. Whatever
 * decodes must re-armor and decode back to the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "coffer/age.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cf_err decode_all(const uint8_t *data, size_t size, size_t max_read, cf_buf *out)
{
	cf_mem_reader mr = { .data = data, .len = size, .max_read = max_read };
	cf_armor_reader *a = NULL;
	cf_err rc = cf_armor_reader_new(cf_mem_reader_of(&mr), &a);
	if (rc != CF_OK)
		return rc;
	cf_reader r = cf_armor_reader_as_reader(a);
	uint8_t chunk[100];
	for (;;) {
		size_t got = 0;
		rc = r.read(r.ctx, chunk, sizeof(chunk), &got);
		if (rc != CF_OK || got == 0)
			break;
		if ((rc = cf_buf_append(out, chunk, got)) != CF_OK)
			break;
	}
	cf_armor_reader_free(a);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t max_read = 1 + data[0] % 64;
	cf_buf plain, armored, again;
	cf_buf_init(&plain, 1u << 20, false);
	cf_buf_init(&armored, 2u << 20, false);
	cf_buf_init(&again, 1u << 20, false);
	if (decode_all(data + 1, size - 1, max_read, &plain) == CF_OK) {
		cf_armor_writer *w = NULL;
		if (cf_armor_writer_new(cf_buf_writer(&armored), &w) != CF_OK)
			abort();
		cf_writer ww = cf_armor_writer_as_writer(w);
		if (plain.len && ww.write(ww.ctx, plain.data, plain.len) != CF_OK)
			abort();
		if (cf_armor_writer_finish(w) != CF_OK)
			abort();
		cf_armor_writer_free(w);
		if (decode_all(armored.data, armored.len, 0, &again) != CF_OK)
			abort();
		if (again.len != plain.len || (plain.len && memcmp(again.data, plain.data, plain.len)))
			abort();
	}
	cf_buf_free(&plain);
	cf_buf_free(&armored);
	cf_buf_free(&again);
	return 0;
}
