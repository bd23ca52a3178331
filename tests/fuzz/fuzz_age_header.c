/*
 * Fuzzes the age header parser. A header that parses must re-encode to
 * exactly the bytes it came from (the parser accepts one spelling only).
 */
#include <stdlib.h>
#include <string.h>

#include "coffer/age.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cf_age_header h;
	size_t consumed = 0;
	if (cf_age_header_parse(data, size, &h, &consumed) != CF_OK)
		return 0;
	if (consumed > size)
		abort();
	cf_buf out;
	cf_buf_init(&out, CF_AGE_MAX_HEADER * 2, false);
	if (cf_age_header_encode(&h, true, &out) != CF_OK)
		abort();
	if (out.len != consumed || memcmp(out.data, data, consumed) != 0)
		abort();
	cf_buf_free(&out);
	cf_age_header_free(&h);
	return 0;
}
