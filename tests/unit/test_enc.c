/* Unit tests for lib/enc.c: strict hex, base64 and Bech32. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "coffer/enc.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* --- hex --- */

static void test_hex_round_trip(void **state)
{
	(void)state;
	uint8_t in[256], back[256];
	char txt[513];
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	cf_hex_encode(in, sizeof(in), txt);
	assert_int_equal(strlen(txt), 512);
	assert_memory_equal(txt, "000102030405060708090a0b0c0d0e0f10", 34);
	assert_string_equal(txt + 500, "fafbfcfdfeff");
	size_t n = 0;
	assert_int_equal(cf_hex_decode(txt, 512, back, sizeof(back), &n), CF_OK);
	assert_int_equal(n, 256);
	assert_memory_equal(back, in, 256);

	/* Upper case decodes to the same bytes. */
	assert_int_equal(cf_hex_decode("DEADbeef", 8, back, 4, &n), CF_OK);
	assert_int_equal(n, 4);
	assert_memory_equal(back, "\xde\xad\xbe\xef", 4);

	/* Empty. */
	cf_hex_encode(in, 0, txt);
	assert_string_equal(txt, "");
	n = 99;
	assert_int_equal(cf_hex_decode("", 0, back, 0, &n), CF_OK);
	assert_int_equal(n, 0);
}

static void test_hex_rejects(void **state)
{
	(void)state;
	uint8_t out[8];
	size_t n = 12345;
	assert_int_equal(cf_hex_decode("abc", 3, out, sizeof(out), &n), CF_ERR_ENCODING);
	assert_int_equal(cf_hex_decode("a", 1, out, sizeof(out), &n), CF_ERR_ENCODING);
	static const char *const bad[] = { "0g", "g0", "0x12", " 12", "12 ", "1-", "+1", "zz", "\xff\x30" };
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		assert_int_equal(cf_hex_decode(bad[i], strlen(bad[i]), out, sizeof(out), &n),
				 CF_ERR_ENCODING);
	/* An embedded NUL is not a hex digit. */
	assert_int_equal(cf_hex_decode("12\0004", 4, out, sizeof(out), &n), CF_ERR_ENCODING);
	/* Output too small: refused before anything is written. */
	memset(out, 0x77, sizeof(out));
	assert_int_equal(cf_hex_decode("00112233", 8, out, 3, &n), CF_ERR_TOO_BIG);
	assert_int_equal(out[0], 0x77);
	assert_int_equal(cf_hex_decode("00112233", 8, out, 4, &n), CF_OK);
	assert_int_equal(n, 4);
	assert_int_equal(n, 4);
	/* Failure never reports a length. */
	n = 12345;
	assert_int_equal(cf_hex_decode("001g", 4, out, sizeof(out), &n), CF_ERR_ENCODING);
	assert_int_equal(n, 12345);
}

/* --- base64 --- */

static const struct {
	const char *plain, *padded, *unpadded;
} rfc4648[] = {
	{ "", "", "" },
	{ "f", "Zg==", "Zg" },
	{ "fo", "Zm8=", "Zm8" },
	{ "foo", "Zm9v", "Zm9v" },
	{ "foob", "Zm9vYg==", "Zm9vYg" },
	{ "fooba", "Zm9vYmE=", "Zm9vYmE" },
	{ "foobar", "Zm9vYmFy", "Zm9vYmFy" },
};

static void test_b64_rfc4648_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(rfc4648); i++) {
		const char *plain = rfc4648[i].plain;
		size_t n = strlen(plain);
		char enc[32];
		uint8_t dec[32];
		size_t got = 999;

		assert_int_equal(cf_b64_encoded_len(n, true), strlen(rfc4648[i].padded));
		assert_int_equal(cf_b64_encoded_len(n, false), strlen(rfc4648[i].unpadded));
		cf_b64_encode((const uint8_t *)plain, n, true, enc);
		assert_string_equal(enc, rfc4648[i].padded);
		cf_b64_encode((const uint8_t *)plain, n, false, enc);
		assert_string_equal(enc, rfc4648[i].unpadded);

		const char *p = rfc4648[i].padded;
		assert_true(cf_b64_decoded_max(strlen(p)) >= n);
		assert_int_equal(cf_b64_decode(p, strlen(p), true, dec, sizeof(dec), &got), CF_OK);
		assert_int_equal(got, n);
		assert_memory_equal(dec, plain, n);

		const char *u = rfc4648[i].unpadded;
		assert_true(cf_b64_decoded_max(strlen(u)) >= n);
		got = 999;
		assert_int_equal(cf_b64_decode(u, strlen(u), false, dec, sizeof(dec), &got), CF_OK);
		assert_int_equal(got, n);
		assert_memory_equal(dec, plain, n);

		/* Exact output capacity works, one less does not. */
		if (n > 0) {
			assert_int_equal(cf_b64_decode(u, strlen(u), false, dec, n, &got), CF_OK);
			assert_int_equal(cf_b64_decode(u, strlen(u), false, dec, n - 1, &got),
					 CF_ERR_TOO_BIG);
			assert_int_equal(cf_b64_decode(p, strlen(p), true, dec, n - 1, &got),
					 CF_ERR_TOO_BIG);
		}
	}
}

static void test_b64_round_trip_all_bytes(void **state)
{
	(void)state;
	uint8_t in[300], out[300];
	char txt[512];
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + 3);
	for (size_t n = 0; n <= sizeof(in); n += 1) {
		for (int padded = 0; padded <= 1; padded++) {
			size_t got = 0;
			cf_b64_encode(in, n, padded, txt);
			assert_int_equal(strlen(txt), cf_b64_encoded_len(n, padded));
			assert_int_equal(cf_b64_decode(txt, strlen(txt), padded, out, sizeof(out), &got),
					 CF_OK);
			assert_int_equal(got, n);
			assert_memory_equal(out, in, n);
		}
	}
}

static void test_b64_rejects_noncanonical(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		bool padded;
	} bad[] = {
		/* unused low bits not zero */
		{ "QR==", true }, { "QR", false }, { "QUJ=", true }, { "QUJ", false },
		{ "Zh==", true }, { "Zm9=", true },
		/* wrong padding */
		{ "Zg=", true }, { "Zg===", true }, { "Zg", true }, { "Zm8", true },
		{ "Zg==", false }, { "Zm8=", false }, { "Zm8==", true }, { "Z===", true },
		{ "====", true }, { "=", false }, { "Zm9v====", true }, { "Zm9vYmFy=", true },
		/* length % 4 == 1 */
		{ "Z", false }, { "Zm9vY", false }, { "Zm9vYmFyZ", false },
		/* embedded '=' */
		{ "Zg==Zm8=", true }, { "Zg==Zm9v", true }, { "Zm=v", true }, { "Z=9v", false },
		{ "Zm9v=mFy", true }, { "Zg=A", true },
		/* whitespace, URL-safe alphabet, other junk */
		{ "Zm9v\nYmFy", false }, { " Zm9v", false }, { "Zm9v ", false }, { "Zm9v\r\n", false },
		{ "Zm 9v", true }, { "Zm9v\t", false }, { "-_-_", false }, { "Zm9*", true },
		{ "Zm9v.mFy", true }, { "\xc3\xa9Zm9", false },
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		uint8_t out[64];
		size_t got = 4242;
		cf_err rc = cf_b64_decode(bad[i].s, strlen(bad[i].s), bad[i].padded, out, sizeof(out),
					  &got);
		if (rc != CF_ERR_ENCODING)
			fail_msg("\"%s\" (padded=%d) gave %d", bad[i].s, bad[i].padded, rc);
		assert_int_equal(got, 4242);
	}
	/* An embedded NUL inside the given length. */
	uint8_t out[8];
	size_t got;
	assert_int_equal(cf_b64_decode("Zm\0v", 4, false, out, sizeof(out), &got), CF_ERR_ENCODING);
	assert_int_equal(cf_b64_decode("Zm\0v", 4, true, out, sizeof(out), &got), CF_ERR_ENCODING);
	assert_int_equal(cf_b64_decode("Zg\0=", 4, true, out, sizeof(out), &got), CF_ERR_ENCODING);
}

/* --- Bech32 --- */

static void test_bech32_bip173_valid(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		const char *hrp;
		size_t datalen;
	} valid[] = {
		{ "A12UEL5L", "a", 0 },
		{ "a12uel5l", "a", 0 },
		{ "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
		  "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio", 0 },
		{ "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", "abcdef", 20 },
		{ "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
		  "1", 51 },
		{ "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w", "split", 30 },
		{ "?1ezyfcl", "?", 0 },
	};
	for (size_t i = 0; i < ARRAY_LEN(valid); i++) {
		char hrp[128];
		uint8_t data[128];
		size_t n = 999;
		cf_err rc = cf_bech32_decode(valid[i].s, hrp, sizeof(hrp), data, sizeof(data), &n);
		if (rc != CF_OK)
			fail_msg("valid vector %zu (%s) gave %d", i, valid[i].s, rc);
		assert_string_equal(hrp, valid[i].hrp);
		assert_int_equal(n, valid[i].datalen);
	}
	/* The data of the abcdef vector is the charset in order: words 0..31. */
	char hrp[16];
	uint8_t data[32];
	size_t n;
	assert_int_equal(cf_bech32_decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", hrp,
					  sizeof(hrp), data, sizeof(data), &n),
			 CF_OK);
	static const uint8_t want[20] = { 0x00, 0x44, 0x32, 0x14, 0xc7, 0x42, 0x54, 0xb6, 0x35, 0xcf,
					  0x84, 0x65, 0x3a, 0x56, 0xd7, 0xc6, 0x75, 0xbe, 0x77, 0xdf };
	assert_memory_equal(data, want, 20);
	/* Re-encoding gives the same string back. */
	char out[64];
	assert_int_equal(cf_bech32_encode("abcdef", data, n, false, out, sizeof(out)), CF_OK);
	assert_string_equal(out, "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw");
	assert_int_equal(cf_bech32_encode("abcdef", data, n, true, out, sizeof(out)), CF_OK);
	assert_string_equal(out, "ABCDEF1QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7LMQQQXW");
}

static void test_bech32_invalid(void **state)
{
	(void)state;
	static const char *const invalid[] = {
		/* BIP 173 invalid vectors (all but the >90 length one: age has no limit) */
		"\x20" "1nwldj5",     /* HRP character out of range */
		"\x7f" "1axkwrx",     /* HRP character out of range */
		"\x80" "1eym55h",     /* HRP character out of range */
		"pzry9x0s0muk",       /* no separator */
		"1pzry9x0s0muk",      /* empty HRP */
		"x1b4n0q5v",          /* invalid data character */
		"li1dgmt3",           /* too short checksum */
		"de1lg7wt\xff",       /* invalid character in checksum */
		"A1G7SGD8",           /* checksum computed with upper-case HRP */
		"10a06t8",            /* empty HRP */
		"1qzzfhee",           /* empty HRP */
		/* mixed case */
		"a12UEL5L", "A12uel5l", "abcdef1QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7LMQQQXW",
		"Abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
		/* bad checksums: one changed character anywhere */
		"a12uel5m", "b12uel5l", "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxx",
		"abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqpxw",
		"abcdeg1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
		/* invalid characters: 1, b, i, o are not in the data charset; space; NUL-free junk */
		"a1b2uel5l", "a12uel5i", "a12uelol", "a1 2uel5l", "a12uel5l ", " a12uel5l",
		"a12uel5l\n", "a1\x7f" "2uel5l",
		/* empty and degenerate */
		"", "1", "a1", "a1qqqqq", "11111111",
		/* non-zero padding bits, and 5 or more padding bits (checksums valid) */
		"a1qpamnt9j", "a1qqqd87cpp", "a1q3g6mn3",
	};
	for (size_t i = 0; i < ARRAY_LEN(invalid); i++) {
		char hrp[128];
		uint8_t data[128];
		size_t n = 4242;
		cf_err rc = cf_bech32_decode(invalid[i], hrp, sizeof(hrp), data, sizeof(data), &n);
		if (rc == CF_OK)
			fail_msg("invalid vector %zu (\"%s\") was accepted", i, invalid[i]);
		assert_int_equal(n, 4242);
	}
	/* The padding controls: the same shapes with zero padding are fine. */
	char hrp[8];
	uint8_t data[8];
	size_t n;
	assert_int_equal(cf_bech32_decode("a1qqqd87cq", hrp, sizeof(hrp), data, sizeof(data), &n),
			 CF_OK);
	assert_int_equal(n, 1);
	assert_int_equal(data[0], 0x00);
	assert_int_equal(cf_bech32_decode("a1lu9cgf6y", hrp, sizeof(hrp), data, sizeof(data), &n),
			 CF_OK);
	assert_int_equal(n, 1);
	assert_int_equal(data[0], 0xff);
}

static void test_bech32_capacity(void **state)
{
	(void)state;
	char hrp[16];
	uint8_t data[32];
	size_t n;
	const char *s = "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw";
	assert_int_equal(cf_bech32_decode(s, hrp, 6, data, sizeof(data), &n), CF_ERR_TOO_BIG);
	assert_int_equal(cf_bech32_decode(s, hrp, 7, data, sizeof(data), &n), CF_OK);
	assert_int_equal(cf_bech32_decode(s, hrp, sizeof(hrp), data, 19, &n), CF_ERR_TOO_BIG);
	assert_int_equal(cf_bech32_decode(s, hrp, sizeof(hrp), data, 20, &n), CF_OK);

	/* Encoder: needs hrp + '1' + ceil(8n/5) + 6 + NUL. */
	uint8_t key[32] = { 0 };
	char out[128];
	size_t need = 3 + 1 + 52 + 6 + 1;
	memset(out, '#', sizeof(out));
	assert_int_equal(cf_bech32_encode("age", key, 32, false, out, need - 1), CF_ERR_TOO_BIG);
	assert_int_equal(cf_bech32_encode("age", key, 32, false, out, need), CF_OK);
	assert_int_equal(strlen(out), need - 1);
	assert_int_equal(out[need], '#');
	/* The HRP must be non-empty, printable and lower-case. */
	assert_int_equal(cf_bech32_encode("", key, 32, false, out, sizeof(out)), CF_ERR_ARG);
	assert_int_equal(cf_bech32_encode("Age", key, 32, false, out, sizeof(out)), CF_ERR_ARG);
	assert_int_equal(cf_bech32_encode("a b", key, 32, false, out, sizeof(out)), CF_ERR_ARG);
	assert_int_equal(cf_bech32_encode("a\x7f", key, 32, false, out, sizeof(out)), CF_ERR_ARG);
	assert_int_equal(cf_bech32_encode("a\xc3\xa9", key, 32, false, out, sizeof(out)), CF_ERR_ARG);
	/* A length whose bit count wraps is refused before anything is written. */
	memset(out, '#', sizeof(out));
	assert_int_equal(cf_bech32_encode("a", key, SIZE_MAX / 8 + 1, false, out, sizeof(out)),
			 CF_ERR_TOO_BIG);
	assert_int_equal(cf_bech32_encode("a", key, SIZE_MAX, false, out, sizeof(out)),
			 CF_ERR_TOO_BIG);
	assert_int_equal(out[0], '#');
	/* Empty data is fine: just HRP, separator and checksum. */
	assert_int_equal(cf_bech32_encode("a", NULL, 0, false, out, sizeof(out)), CF_OK);
	assert_string_equal(out, "a12uel5l");
}

/* The key pair from age's documentation. */
static const char age_identity[] =
	"AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0";

static void test_bech32_age_round_trip(void **state)
{
	(void)state;
	uint8_t key[32], back[32];
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(0xf0 ^ (i * 13));
	char out[128], hrp[32];
	size_t n = 0;

	assert_int_equal(cf_bech32_encode("age", key, 32, false, out, sizeof(out)), CF_OK);
	assert_true(strncmp(out, "age1", 4) == 0);
	assert_int_equal(strlen(out), 62);
	assert_int_equal(cf_bech32_decode(out, hrp, sizeof(hrp), back, sizeof(back), &n), CF_OK);
	assert_string_equal(hrp, "age");
	assert_int_equal(n, 32);
	assert_memory_equal(back, key, 32);

	assert_int_equal(cf_bech32_encode("age-secret-key-", key, 32, true, out, sizeof(out)), CF_OK);
	assert_true(strncmp(out, "AGE-SECRET-KEY-1", 16) == 0);
	for (const char *p = out; *p; p++)
		assert_false(*p >= 'a' && *p <= 'z');
	memset(back, 0, sizeof(back));
	assert_int_equal(cf_bech32_decode(out, hrp, sizeof(hrp), back, sizeof(back), &n), CF_OK);
	assert_string_equal(hrp, "age-secret-key-");
	assert_int_equal(n, 32);
	assert_memory_equal(back, key, 32);

	/* The documented identity decodes to its 32-byte scalar. */
	static const uint8_t want[32] = {
		0xca, 0x16, 0x26, 0x25, 0x2c, 0x53, 0xcf, 0x1a, 0x4d, 0xc4, 0x66,
		0x95, 0xe7, 0xfc, 0xc4, 0x65, 0x94, 0xcb, 0x4c, 0xca, 0xde, 0xdb,
		0x67, 0x12, 0xdf, 0xda, 0x07, 0x53, 0xf3, 0xae, 0x35, 0x5e,
	};
	assert_int_equal(cf_bech32_decode(age_identity, hrp, sizeof(hrp), back, sizeof(back), &n),
			 CF_OK);
	assert_string_equal(hrp, "age-secret-key-");
	assert_int_equal(n, 32);
	assert_memory_equal(back, want, 32);
	/* And re-encodes to exactly the same string. */
	assert_int_equal(cf_bech32_encode(hrp, back, n, true, out, sizeof(out)), CF_OK);
	assert_string_equal(out, age_identity);
	/* Its lower-case spelling is equally valid. */
	char lower[sizeof(age_identity)];
	for (size_t i = 0; i < sizeof(age_identity); i++)
		lower[i] = (char)(age_identity[i] >= 'A' && age_identity[i] <= 'Z'
					  ? age_identity[i] + 32 : age_identity[i]);
	assert_int_equal(cf_bech32_decode(lower, hrp, sizeof(hrp), back, sizeof(back), &n), CF_OK);
	assert_memory_equal(back, want, 32);
	/* One changed character breaks the checksum. */
	lower[40] = lower[40] == 'q' ? 'p' : 'q';
	assert_int_equal(cf_bech32_decode(lower, hrp, sizeof(hrp), back, sizeof(back), &n),
			 CF_ERR_ENCODING);
}

static void test_ct_equal(void **state)
{
	(void)state;
	uint8_t a[64], b[64];
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = b[i] = (uint8_t)i;
	assert_true(cf_ct_equal(a, b, sizeof(a)));
	assert_true(cf_ct_equal(a, b, 0));
	b[0] ^= 1;
	assert_false(cf_ct_equal(a, b, sizeof(a)));
	assert_true(cf_ct_equal(a + 1, b + 1, sizeof(a) - 1));
	b[0] ^= 1;
	b[63] ^= 0x80;
	assert_false(cf_ct_equal(a, b, sizeof(a)));
	assert_true(cf_ct_equal(a, b, 63));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hex_round_trip),
		cmocka_unit_test(test_hex_rejects),
		cmocka_unit_test(test_b64_rfc4648_vectors),
		cmocka_unit_test(test_b64_round_trip_all_bytes),
		cmocka_unit_test(test_b64_rejects_noncanonical),
		cmocka_unit_test(test_bech32_bip173_valid),
		cmocka_unit_test(test_bech32_invalid),
		cmocka_unit_test(test_bech32_capacity),
		cmocka_unit_test(test_bech32_age_round_trip),
		cmocka_unit_test(test_ct_equal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
