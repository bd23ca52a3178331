/*
 * Fuzzes whole-file decryption (armor detection, header, X25519 and
 * scrypt unwrapping, MAC, STREAM) with the identity and passphrase of
 * the CCTV vectors, so mutated vectors reach deep states.
 */
#include <stdlib.h>
#include <string.h>

#include "coffer/age.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static cf_age_identity ids[2];
	static int ready;
	if (!ready) {
		/* The identity and passphrase most CCTV vectors use. */
		if (cf_age_identity_parse("AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48U"
					  "AWX40Q2P2LM0",
					  &ids[0].key) != CF_OK)
			abort();
		ids[0].kind = CF_AGE_X25519;
		ids[1].kind = CF_AGE_SCRYPT;
		ids[1].passphrase = (const uint8_t *)"password";
		ids[1].passlen = 8;
		/* Keep scrypt cheap: the work factor cap is part of what is fuzzed. */
		ids[1].max_work_factor = 10;
		ready = 1;
	}
	cf_mem_reader mr = { .data = data, .len = size };
	cf_buf out;
	cf_buf_init(&out, 8u << 20, false);
	(void)!cf_age_decrypt(ids, 2, cf_mem_reader_of(&mr), cf_buf_writer(&out));
	cf_buf_free(&out);
	return 0;
}
