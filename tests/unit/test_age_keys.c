/*
 * Unit tests for lib/age/keys.c: X25519 identities and recipients in
 * their Bech32 spellings, and identity / recipient files, with hostile
 * input (bad case, bad checksums, wrong HRP or length, huge strings,
 * hybrid and plugin keys, malformed files).
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coffer/age.h"
#include "coffer/enc.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The X25519 identity of the C2SP CCTV vectors, and its recipient (from `age-keygen -y`). */
static const char known_identity[] =
	"AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0";
static const char known_recipient[] =
	"age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef";

static const char bech32_charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/* A heap copy of exactly n bytes (no NUL), so ASan catches any overread. */
static char *exact_copy(const char *s, size_t n)
{
	char *p = malloc(n ? n : 1);
	assert_non_null(p);
	memcpy(p, s, n);
	return p;
}

/* Bech32-encodes n bytes of a fixed pattern under hrp into a fresh string. */
static char *bech32_of(const char *hrp, size_t n, bool upper)
{
	uint8_t *data = malloc(n ? n : 1);
	assert_non_null(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)(i * 37 + 11);
	size_t cap = strlen(hrp) + 1 + (n * 8 + 4) / 5 + 6 + 1;
	char *out = malloc(cap);
	assert_non_null(out);
	assert_int_equal(cf_bech32_encode(hrp, data, n, upper, out, cap), CF_OK);
	free(data);
	return out;
}

static void expect_identity_rc(const char *s, cf_err want)
{
	cf_age_x25519_key key;
	memset(&key, 0, sizeof(key));
	cf_err rc = cf_age_identity_parse(s, &key);
	if (rc != want)
		fail_msg("identity \"%.80s\": got %s, want %s", s, cf_errname(rc), cf_errname(want));
}

static void expect_recipient_rc(const char *s, cf_err want)
{
	uint8_t pub[32];
	cf_err rc = cf_age_recipient_parse(s, pub);
	if (rc != want)
		fail_msg("recipient \"%.80s\": got %s, want %s", s, cf_errname(rc), cf_errname(want));
}

/* --- single keys --- */

static void test_keygen_round_trip(void **state)
{
	(void)state;
	for (int iter = 0; iter < 16; iter++) {
		cf_age_x25519_key key, back;
		assert_int_equal(cf_age_keygen(&key), CF_OK);

		char id[CF_AGE_IDENTITY_STRLEN + 1];
		memset(id, 'x', sizeof(id));
		assert_int_equal(cf_age_identity_format(&key, id), CF_OK);
		assert_int_equal(strlen(id), CF_AGE_IDENTITY_STRLEN);
		assert_memory_equal(id, "AGE-SECRET-KEY-1", 16);
		for (size_t i = 0; i < CF_AGE_IDENTITY_STRLEN; i++)
			assert_false(islower((unsigned char)id[i]));
		memset(&back, 0xaa, sizeof(back));
		assert_int_equal(cf_age_identity_parse(id, &back), CF_OK);
		assert_memory_equal(back.secret, key.secret, 32);
		assert_memory_equal(back.pub, key.pub, 32);

		char rc[CF_AGE_RECIPIENT_STRLEN + 1];
		memset(rc, 'x', sizeof(rc));
		assert_int_equal(cf_age_recipient_format(key.pub, rc), CF_OK);
		assert_int_equal(strlen(rc), CF_AGE_RECIPIENT_STRLEN);
		assert_memory_equal(rc, "age1", 4);
		for (size_t i = 0; i < CF_AGE_RECIPIENT_STRLEN; i++)
			assert_false(isupper((unsigned char)rc[i]));
		uint8_t pub[32];
		assert_int_equal(cf_age_recipient_parse(rc, pub), CF_OK);
		assert_memory_equal(pub, key.pub, 32);

		cf_age_key_wipe(&key);
		static const uint8_t zero[sizeof(key)];
		assert_memory_equal(&key, zero, sizeof(key));
		cf_age_key_wipe(&back);
	}
}

static void test_known_pair(void **state)
{
	(void)state;
	cf_age_x25519_key key;
	assert_int_equal(cf_age_identity_parse(known_identity, &key), CF_OK);
	char rc[CF_AGE_RECIPIENT_STRLEN + 1];
	assert_int_equal(cf_age_recipient_format(key.pub, rc), CF_OK);
	assert_string_equal(rc, known_recipient);
	char id[CF_AGE_IDENTITY_STRLEN + 1];
	assert_int_equal(cf_age_identity_format(&key, id), CF_OK);
	assert_string_equal(id, known_identity);
	uint8_t pub[32];
	assert_int_equal(cf_age_recipient_parse(known_recipient, pub), CF_OK);
	assert_memory_equal(pub, key.pub, 32);
	/* The strings exactly as long as the header says. */
	assert_int_equal(strlen(known_identity), CF_AGE_IDENTITY_STRLEN);
	assert_int_equal(strlen(known_recipient), CF_AGE_RECIPIENT_STRLEN);
	cf_age_key_wipe(&key);
}

static void test_identity_case(void **state)
{
	(void)state;
	char s[sizeof(known_identity)];
	/* All lower case: a valid Bech32 string, but not how identities are spelled. */
	for (size_t i = 0; i < sizeof(s); i++)
		s[i] = (char)tolower((unsigned char)known_identity[i]);
	expect_identity_rc(s, CF_ERR_AGE_IDENTITY);
	/* Lower-case prefix only. */
	memcpy(s, known_identity, sizeof(s));
	s[0] = 'a';
	expect_identity_rc(s, CF_ERR_AGE_IDENTITY);
	/* Mixed case: each single letter of the data part lowered in turn. */
	for (size_t i = 16; i < CF_AGE_IDENTITY_STRLEN; i++) {
		memcpy(s, known_identity, sizeof(s));
		if (!isupper((unsigned char)s[i]))
			continue;
		s[i] = (char)tolower((unsigned char)s[i]);
		expect_identity_rc(s, CF_ERR_AGE_IDENTITY);
	}
	/* Lower-case data with an upper-case prefix. */
	memcpy(s, known_identity, sizeof(s));
	for (size_t i = 16; i < CF_AGE_IDENTITY_STRLEN; i++)
		s[i] = (char)tolower((unsigned char)s[i]);
	expect_identity_rc(s, CF_ERR_AGE_IDENTITY);
}

static void test_identity_bad_checksum(void **state)
{
	(void)state;
	char s[sizeof(known_identity)];
	/* Every single-character substitution in the data part is caught by Bech32. */
	for (size_t i = 16; i < CF_AGE_IDENTITY_STRLEN; i++) {
		for (size_t k = 0; k < 32; k++) {
			char c = (char)toupper((unsigned char)bech32_charset[k]);
			if (c == known_identity[i])
				continue;
			memcpy(s, known_identity, sizeof(s));
			s[i] = c;
			expect_identity_rc(s, CF_ERR_AGE_IDENTITY);
		}
		/* Characters outside the alphabet (B, I, O, 1) and punctuation. */
		static const char outside[] = "BIO1-=+/ \t";
		for (size_t k = 0; outside[k]; k++) {
			memcpy(s, known_identity, sizeof(s));
			s[i] = outside[k];
			expect_identity_rc(s, CF_ERR_AGE_IDENTITY);
		}
	}
	/* Two adjacent characters swapped. */
	memcpy(s, known_identity, sizeof(s));
	char t = s[40];
	s[40] = s[41];
	s[41] = t;
	expect_identity_rc(s, CF_ERR_AGE_IDENTITY);
	/* Prefix and suffix truncations, and one character too many. */
	for (size_t n = 0; n < CF_AGE_IDENTITY_STRLEN; n++) {
		memcpy(s, known_identity, n);
		s[n] = 0;
		expect_identity_rc(s, CF_ERR_AGE_IDENTITY);
	}
	char longer[sizeof(known_identity) + 1];
	memcpy(longer, known_identity, CF_AGE_IDENTITY_STRLEN);
	longer[CF_AGE_IDENTITY_STRLEN] = 'Q';
	longer[CF_AGE_IDENTITY_STRLEN + 1] = 0;
	expect_identity_rc(longer, CF_ERR_AGE_IDENTITY);
}

static void test_identity_wrong_hrp_and_length(void **state)
{
	(void)state;
	/* Right shape, wrong HRP (still starting "AGE-SECRET-KEY-1"). */
	char *s = bech32_of("age-secret-key-1x", 32, true);
	expect_identity_rc(s, CF_ERR_AGE_IDENTITY);
	free(s);
	s = bech32_of("age-secret-key-1", 32, true);
	expect_identity_rc(s, CF_ERR_AGE_IDENTITY);
	free(s);
	s = bech32_of("age-secret-key", 32, true);
	expect_identity_rc(s, CF_ERR_AGE_IDENTITY);
	free(s);
	s = bech32_of("age", 32, true);
	expect_identity_rc(s, CF_ERR_AGE_IDENTITY);
	free(s);
	/* A recipient is not an identity. */
	expect_identity_rc(known_recipient, CF_ERR_AGE_IDENTITY);

	/* Right HRP, wrong payload length. */
	static const size_t lens[] = { 0, 1, 16, 31, 33, 40, 64, 65, 100, 150 };
	for (size_t i = 0; i < ARRAY_LEN(lens); i++) {
		s = bech32_of("age-secret-key-", lens[i], true);
		expect_identity_rc(s, CF_ERR_AGE_IDENTITY);
		free(s);
	}
	/* The right length decodes (the control for the above). */
	s = bech32_of("age-secret-key-", 32, true);
	expect_identity_rc(s, CF_OK);
	free(s);
}

static void test_identity_garbage(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"A",
		"AGE",
		"AGE-SECRET-KEY-",
		"AGE-SECRET-KEY-1",
		"AGE-SECRET-KEY-1Q",
		"AGE-SECRET-KEY-1QQQQQQ",
		"AGE-SECRET-KEY-11111111",
		"AGE-SECRET-KEY-1\x7f\x7f\x7f\x7f\x7f\x7f",
		"AGE-SECRET-KEY-1\xff\xfe\xfd\xfc\xfb\xfa",
		"AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0 ",
		" AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0",
		"AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0\n",
		"AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0\r",
		"AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0#",
		"# AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0",
		"-----BEGIN AGE ENCRYPTED FILE-----",
		"\t\n\r\v\f",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		expect_identity_rc(bad[i], CF_ERR_AGE_IDENTITY);

	/* 10 KB: a valid-looking prefix then a long run of data characters. */
	size_t big = 10 * 1024;
	char *s = malloc(big + 1);
	assert_non_null(s);
	memcpy(s, "AGE-SECRET-KEY-1", 16);
	for (size_t i = 16; i < big; i++)
		s[i] = (char)toupper((unsigned char)bech32_charset[i % 32]);
	s[big] = 0;
	expect_identity_rc(s, CF_ERR_AGE_IDENTITY);
	/* A real identity followed by 10 KB of more data. */
	memcpy(s, known_identity, CF_AGE_IDENTITY_STRLEN);
	expect_identity_rc(s, CF_ERR_AGE_IDENTITY);
	/* 10 KB of NUL-free pseudo-random bytes, with and without the prefix. */
	uint32_t x = 12345;
	for (int round = 0; round < 64; round++) {
		for (size_t i = 0; i < big; i++) {
			x = x * 1103515245u + 12345u;
			s[i] = (char)(1 + (x >> 16) % 255);
		}
		s[big] = 0;
		if (round & 1)
			memcpy(s, "AGE-SECRET-KEY-1", 16);
		expect_identity_rc(s, CF_ERR_AGE_IDENTITY);
		/* Short random strings too. */
		s[70 + round % 10] = 0;
		expect_identity_rc(s, CF_ERR_AGE_IDENTITY);
	}
	free(s);
}

static void test_hybrid_and_plugin_unsupported(void **state)
{
	(void)state;
	/* ML-KEM-768 + X25519 identities are a 32-byte seed under another HRP. */
	char *s = bech32_of("age-secret-key-pq-", 32, true);
	assert_memory_equal(s, "AGE-SECRET-KEY-PQ-1", 19);
	expect_identity_rc(s, CF_ERR_UNSUPPORTED);
	free(s);
	s = bech32_of("age-plugin-yubikey-", 40, true);
	expect_identity_rc(s, CF_ERR_UNSUPPORTED);
	free(s);

	/* Hybrid recipients are long (1216 bytes of keys): refused before any length limit. */
	s = bech32_of("age1pq", 1216, false);
	assert_memory_equal(s, "age1pq1", 7);
	expect_recipient_rc(s, CF_ERR_UNSUPPORTED);
	free(s);
	s = bech32_of("age1pq", 32, false);
	expect_recipient_rc(s, CF_ERR_UNSUPPORTED);
	free(s);
	/* Plugin recipients: age1<name>1... */
	s = bech32_of("age1yubikey", 33, false);
	assert_memory_equal(s, "age1yubikey1", 12);
	expect_recipient_rc(s, CF_ERR_UNSUPPORTED);
	free(s);
	s = bech32_of("age1tag", 33, false);
	expect_recipient_rc(s, CF_ERR_UNSUPPORTED);
	free(s);
}

static void test_recipient_rejects(void **state)
{
	(void)state;
	char s[sizeof(known_recipient)];
	/* Upper case (stock age refuses it too), and mixed case. */
	for (size_t i = 0; i < sizeof(s); i++)
		s[i] = (char)toupper((unsigned char)known_recipient[i]);
	expect_recipient_rc(s, CF_ERR_AGE_IDENTITY);
	for (size_t i = 4; i < CF_AGE_RECIPIENT_STRLEN; i++) {
		memcpy(s, known_recipient, sizeof(s));
		if (!islower((unsigned char)s[i]))
			continue;
		s[i] = (char)toupper((unsigned char)s[i]);
		expect_recipient_rc(s, CF_ERR_AGE_IDENTITY);
	}
	/* Every substitution by another alphabet character breaks the checksum. */
	for (size_t i = 4; i < CF_AGE_RECIPIENT_STRLEN; i++) {
		for (size_t k = 0; k < 32; k++) {
			if (bech32_charset[k] == known_recipient[i])
				continue;
			memcpy(s, known_recipient, sizeof(s));
			s[i] = bech32_charset[k];
			expect_recipient_rc(s, CF_ERR_AGE_IDENTITY);
		}
		static const char outside[] = "bio-=+/ \t\x7f";
		for (size_t k = 0; outside[k]; k++) {
			memcpy(s, known_recipient, sizeof(s));
			s[i] = outside[k];
			expect_recipient_rc(s, CF_ERR_AGE_IDENTITY);
		}
	}
	/* Truncations. */
	for (size_t n = 0; n < CF_AGE_RECIPIENT_STRLEN; n++) {
		memcpy(s, known_recipient, n);
		s[n] = 0;
		expect_recipient_rc(s, CF_ERR_AGE_IDENTITY);
	}
	/* Wrong HRP, wrong payload length. */
	char *b = bech32_of("agf", 32, false);
	expect_recipient_rc(b, CF_ERR_AGE_IDENTITY);
	free(b);
	b = bech32_of("ag", 32, false);
	expect_recipient_rc(b, CF_ERR_AGE_IDENTITY);
	free(b);
	static const size_t lens[] = { 0, 1, 31, 33, 64, 65, 150 };
	for (size_t i = 0; i < ARRAY_LEN(lens); i++) {
		b = bech32_of("age", lens[i], false);
		expect_recipient_rc(b, CF_ERR_AGE_IDENTITY);
		free(b);
	}
	b = bech32_of("age", 32, false);
	expect_recipient_rc(b, CF_OK);
	free(b);
	/* An identity is not a recipient. */
	expect_recipient_rc(known_identity, CF_ERR_AGE_IDENTITY);

	static const char *const bad[] = {
		"", "a", "age", "age1", "age1q", "age1qqqqqq", "age1\xff\xfe\xfd\xfc\xfb\xfa",
		" age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef",
		"age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef ",
		"age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef\n",
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		expect_recipient_rc(bad[i], CF_ERR_AGE_IDENTITY);

	/* 10 KB strings. */
	size_t big = 10 * 1024;
	char *l = malloc(big + 1);
	assert_non_null(l);
	memcpy(l, "age1", 4);
	for (size_t i = 4; i < big; i++)
		l[i] = bech32_charset[i % 32];
	l[big] = 0;
	expect_recipient_rc(l, CF_ERR_AGE_IDENTITY);
	memcpy(l, known_recipient, CF_AGE_RECIPIENT_STRLEN);
	expect_recipient_rc(l, CF_ERR_AGE_IDENTITY);
	uint32_t x = 777;
	for (int round = 0; round < 64; round++) {
		for (size_t i = 0; i < big; i++) {
			x = x * 1103515245u + 12345u;
			l[i] = (char)(1 + (x >> 16) % 255);
		}
		l[big] = 0;
		if (round & 1)
			memcpy(l, "age1", 4);
		cf_err rc;
		uint8_t pub[32];
		rc = cf_age_recipient_parse(l, pub);
		/* Random bytes after "age1" may contain a '1' and look like a plugin. */
		assert_true(rc == CF_ERR_AGE_IDENTITY || rc == CF_ERR_UNSUPPORTED);
		l[60 + round % 10] = 0;
		rc = cf_age_recipient_parse(l, pub);
		assert_true(rc == CF_ERR_AGE_IDENTITY || rc == CF_ERR_UNSUPPORTED);
	}
	free(l);
}

/* --- identity and recipient files --- */

static char *fmt_identity(const cf_age_x25519_key *k)
{
	char *s = malloc(CF_AGE_IDENTITY_STRLEN + 1);
	assert_non_null(s);
	assert_int_equal(cf_age_identity_format(k, s), CF_OK);
	return s;
}

static cf_err parse_ids_exact(const char *text, size_t len, cf_age_identity **ids, size_t *n,
			      size_t *bad)
{
	char *copy = exact_copy(text, len);
	cf_err rc = cf_age_identities_parse(copy, len, ids, n, bad);
	free(copy);
	return rc;
}

static cf_err parse_rcpts_exact(const char *text, size_t len, cf_age_recipient **r, size_t *n,
				size_t *bad)
{
	char *copy = exact_copy(text, len);
	cf_err rc = cf_age_recipients_parse(copy, len, r, n, bad);
	free(copy);
	return rc;
}

static void test_identities_file(void **state)
{
	(void)state;
	cf_age_x25519_key k[3];
	char *s[3];
	for (int i = 0; i < 3; i++) {
		assert_int_equal(cf_age_keygen(&k[i]), CF_OK);
		s[i] = fmt_identity(&k[i]);
	}
	char text[2048];
	/* Comments, blank lines, CRLF, leading and trailing spaces and tabs, no final newline. */
	int len = snprintf(text, sizeof(text),
			   "# created: 2024-01-01T00:00:00Z\r\n"
			   "# public key: age1...\n"
			   "\n"
			   "   \t\n"
			   "%s\r\n"
			   "\r\n"
			   "  \t%s  \t\r\n"
			   "#%s\n"
			   "    # indented comment\n"
			   "%s",
			   s[0], s[1], known_identity, s[2]);
	assert_true(len > 0 && (size_t)len < sizeof(text));
	cf_age_identity *ids = NULL;
	size_t n = 0, bad = 999;
	assert_int_equal(parse_ids_exact(text, (size_t)len, &ids, &n, &bad), CF_OK);
	assert_int_equal(n, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ids[i].kind, CF_AGE_X25519);
		assert_memory_equal(ids[i].key.secret, k[i].secret, 32);
		assert_memory_equal(ids[i].key.pub, k[i].pub, 32);
	}
	cf_age_identities_free(ids, n);

	/* A single identity, with and without a newline; NULL bad_line is allowed. */
	ids = NULL;
	assert_int_equal(parse_ids_exact(known_identity, CF_AGE_IDENTITY_STRLEN, &ids, &n, NULL),
			 CF_OK);
	assert_int_equal(n, 1);
	cf_age_identities_free(ids, n);
	len = snprintf(text, sizeof(text), "%s\n", known_identity);
	ids = NULL;
	assert_int_equal(parse_ids_exact(text, (size_t)len, &ids, &n, NULL), CF_OK);
	assert_int_equal(n, 1);
	cf_age_identities_free(ids, n);

	/* Many identities (the same one repeated). */
	size_t many = 200, cap = many * (CF_AGE_IDENTITY_STRLEN + 1);
	char *big = malloc(cap);
	assert_non_null(big);
	for (size_t i = 0; i < many; i++) {
		memcpy(big + i * (CF_AGE_IDENTITY_STRLEN + 1), s[i % 3], CF_AGE_IDENTITY_STRLEN);
		big[i * (CF_AGE_IDENTITY_STRLEN + 1) + CF_AGE_IDENTITY_STRLEN] = '\n';
	}
	ids = NULL;
	assert_int_equal(parse_ids_exact(big, cap, &ids, &n, NULL), CF_OK);
	assert_int_equal(n, many);
	for (size_t i = 0; i < many; i++)
		assert_memory_equal(ids[i].key.secret, k[i % 3].secret, 32);
	cf_age_identities_free(ids, n);
	free(big);

	cf_age_identities_free(NULL, 0);
	for (int i = 0; i < 3; i++) {
		cf_age_key_wipe(&k[i]);
		free(s[i]);
	}
}

struct bad_file {
	const char *text;
	cf_err rc;
	size_t line;
};

static void test_identities_file_bad_line(void **state)
{
	(void)state;
	const struct bad_file cases[] = {
		{ "garbage\n", CF_ERR_AGE_IDENTITY, 1 },
		{ "# comment\n\nAGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0\n"
		  "bogus\n"
		  "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0\n",
		  CF_ERR_AGE_IDENTITY, 4 },
		/* CRLF line endings count as one line each. */
		{ "#a\r\n#b\r\n\r\nage1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef\r\n",
		  CF_ERR_AGE_IDENTITY, 4 },
		/* Bad last line without a newline. */
		{ "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0\n\n\nX",
		  CF_ERR_AGE_IDENTITY, 4 },
		/* A trailing comment on a key line is not allowed. */
		{ "\nAGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0 # mine\n",
		  CF_ERR_AGE_IDENTITY, 2 },
		/* Two keys on one line. */
		{ "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0 "
		  "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0\n",
		  CF_ERR_AGE_IDENTITY, 1 },
		/* Lower case. */
		{ "\n\n\nage-secret-key-1egtzvffv20835nwyv6270lxyvk2vknx2mmdkwyklmgr48uawx40q2p2lm0\n",
		  CF_ERR_AGE_IDENTITY, 4 },
		/* A lone CR does not end a line. */
		{ "#x\rAGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0\n"
		  "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0\rX\n",
		  CF_ERR_AGE_IDENTITY, 2 },
		/* Hybrid and plugin identities. */
		{ "# pq\nAGE-SECRET-KEY-PQ-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n",
		  CF_ERR_UNSUPPORTED, 2 },
		{ "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0\n"
		  "\n\nAGE-PLUGIN-YUBIKEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n",
		  CF_ERR_UNSUPPORTED, 4 },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		cf_age_identity *ids = NULL;
		size_t n = 12345, bad = 0;
		cf_err rc = parse_ids_exact(cases[i].text, strlen(cases[i].text), &ids, &n, &bad);
		if (rc != cases[i].rc || bad != cases[i].line)
			fail_msg("case %zu: got %s at line %zu, want %s at line %zu", i, cf_errname(rc),
				 bad, cf_errname(cases[i].rc), cases[i].line);
		assert_null(ids);
		assert_int_equal(n, 12345);
	}

	/* A very long line (10 KB) and an embedded NUL are bad lines, not crashes. */
	size_t big = 10 * 1024;
	char *t = malloc(big);
	assert_non_null(t);
	memcpy(t, "# ok\n", 5);
	memset(t + 5, 'Q', big - 5);
	cf_age_identity *ids = NULL;
	size_t n = 0, bad = 0;
	assert_int_equal(parse_ids_exact(t, big, &ids, &n, &bad), CF_ERR_AGE_IDENTITY);
	assert_int_equal(bad, 2);
	free(t);
	static const char nul_line[] =
		"\nAGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0\0\n";
	assert_int_equal(parse_ids_exact(nul_line, sizeof(nul_line) - 1, &ids, &n, &bad),
			 CF_ERR_AGE_IDENTITY);
	assert_int_equal(bad, 2);
	/* The length is honoured: a valid key beyond len is not seen. */
	static const char cut[] =
		"#\nAGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0\n";
	assert_int_equal(parse_ids_exact(cut, 2 + 40, &ids, &n, &bad), CF_ERR_AGE_IDENTITY);
	assert_int_equal(bad, 2);
	assert_int_equal(parse_ids_exact(cut, 2, &ids, &n, &bad), CF_ERR_NOT_FOUND);
}

static void test_identities_file_empty(void **state)
{
	(void)state;
	static const char *const empty[] = {
		"", "\n", "\r\n", "   \t  \n\n", "# only a comment", "# one\n# two\r\n\n  # three\n",
		"#AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0\n",
	};
	for (size_t i = 0; i < ARRAY_LEN(empty); i++) {
		cf_age_identity *ids = NULL;
		cf_age_recipient *r = NULL;
		size_t n = 7, bad = 0;
		assert_int_equal(parse_ids_exact(empty[i], strlen(empty[i]), &ids, &n, &bad),
				 CF_ERR_NOT_FOUND);
		assert_null(ids);
		assert_int_equal(parse_rcpts_exact(empty[i], strlen(empty[i]), &r, &n, &bad),
				 CF_ERR_NOT_FOUND);
		assert_null(r);
	}
}

static void test_recipients_file(void **state)
{
	(void)state;
	cf_age_x25519_key k[3];
	char s[3][CF_AGE_RECIPIENT_STRLEN + 1];
	for (int i = 0; i < 3; i++) {
		assert_int_equal(cf_age_keygen(&k[i]), CF_OK);
		assert_int_equal(cf_age_recipient_format(k[i].pub, s[i]), CF_OK);
	}
	char text[2048];
	int len = snprintf(text, sizeof(text),
			   "# team keys\r\n"
			   "\n"
			   " \t %s \r\n"
			   "# %s\n"
			   "\r\n"
			   "%s\n"
			   "\t%s",
			   s[0], known_recipient, s[1], s[2]);
	assert_true(len > 0 && (size_t)len < sizeof(text));
	cf_age_recipient *r = NULL;
	size_t n = 0, bad = 999;
	assert_int_equal(parse_rcpts_exact(text, (size_t)len, &r, &n, &bad), CF_OK);
	assert_int_equal(n, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r[i].kind, CF_AGE_X25519);
		assert_memory_equal(r[i].pub, k[i].pub, 32);
		assert_null(r[i].passphrase);
	}
	free(r);

	const struct bad_file cases[] = {
		{ "# x\n\nage1bogus\n", CF_ERR_AGE_IDENTITY, 3 },
		{ "age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef\r\n"
		  "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0\r\n",
		  CF_ERR_AGE_IDENTITY, 2 },
		{ "\n\n\n\nAGE1XMWWC06LY3EE5RYTXM9MFLAZ2U56JJJ36S0MYPDRWSVLUL66MV4Q47RYEF", CF_ERR_AGE_IDENTITY,
		  5 },
		{ "age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryeg\n", CF_ERR_AGE_IDENTITY, 1 },
		{ "#\nage1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef # me\n",
		  CF_ERR_AGE_IDENTITY, 2 },
		{ "age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef\n"
		  "age1pq1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\n",
		  CF_ERR_UNSUPPORTED, 2 },
		{ "\nage1yubikey1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\n", CF_ERR_UNSUPPORTED, 2 },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		r = NULL;
		n = 12345;
		bad = 0;
		cf_err rc = parse_rcpts_exact(cases[i].text, strlen(cases[i].text), &r, &n, &bad);
		if (rc != cases[i].rc || bad != cases[i].line)
			fail_msg("case %zu: got %s at line %zu, want %s at line %zu", i, cf_errname(rc),
				 bad, cf_errname(cases[i].rc), cases[i].line);
		assert_null(r);
		assert_int_equal(n, 12345);
	}
	for (int i = 0; i < 3; i++)
		cf_age_key_wipe(&k[i]);
}

/* Large files: the list grows (and, for identities, wipes what it leaves behind). */
static void test_files_large(void **state)
{
	(void)state;
	size_t stride = CF_AGE_IDENTITY_STRLEN + 1;
	size_t count = 5000;
	char *text = malloc(count * stride);
	assert_non_null(text);
	for (size_t i = 0; i < count; i++) {
		memcpy(text + i * stride, known_identity, CF_AGE_IDENTITY_STRLEN);
		text[i * stride + CF_AGE_IDENTITY_STRLEN] = '\n';
	}
	static const size_t ok_counts[] = { 1, 7, 8, 9, 1000 };
	for (size_t c = 0; c < ARRAY_LEN(ok_counts); c++) {
		cf_age_identity *ids = NULL;
		size_t n = 0;
		assert_int_equal(parse_ids_exact(text, ok_counts[c] * stride, &ids, &n, NULL), CF_OK);
		assert_int_equal(n, ok_counts[c]);
		assert_memory_equal(ids[n - 1].key.pub, ids[0].key.pub, 32);
		cf_age_identities_free(ids, n);
	}
	/* Past the implementation's cap: an error on a line, not an unbounded allocation. */
	cf_age_identity *ids = NULL;
	size_t n = 0, bad = 0;
	cf_err rc = parse_ids_exact(text, count * stride, &ids, &n, &bad);
	assert_int_equal(rc, CF_ERR_TOO_BIG);
	assert_true(bad > 1000 && bad <= count);
	assert_null(ids);
	free(text);

	stride = CF_AGE_RECIPIENT_STRLEN + 1;
	text = malloc(count * stride);
	assert_non_null(text);
	for (size_t i = 0; i < count; i++) {
		memcpy(text + i * stride, known_recipient, CF_AGE_RECIPIENT_STRLEN);
		text[i * stride + CF_AGE_RECIPIENT_STRLEN] = '\n';
	}
	cf_age_recipient *r = NULL;
	assert_int_equal(parse_rcpts_exact(text, 1000 * stride, &r, &n, NULL), CF_OK);
	assert_int_equal(n, 1000);
	free(r);
	r = NULL;
	assert_int_equal(parse_rcpts_exact(text, count * stride, &r, &n, &bad), CF_ERR_TOO_BIG);
	assert_null(r);
	free(text);
}

/* Comments may be long; only key lines are limited in length. */
static void test_long_comment(void **state)
{
	(void)state;
	size_t big = 10 * 1024;
	char *t = malloc(big + 1 + CF_AGE_IDENTITY_STRLEN);
	assert_non_null(t);
	t[0] = '#';
	memset(t + 1, 'x', big - 1);
	t[big] = '\n';
	memcpy(t + big + 1, known_identity, CF_AGE_IDENTITY_STRLEN);
	cf_age_identity *ids = NULL;
	size_t n = 0;
	assert_int_equal(parse_ids_exact(t, big + 1 + CF_AGE_IDENTITY_STRLEN, &ids, &n, NULL), CF_OK);
	assert_int_equal(n, 1);
	cf_age_identities_free(ids, n);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keygen_round_trip),
		cmocka_unit_test(test_known_pair),
		cmocka_unit_test(test_identity_case),
		cmocka_unit_test(test_identity_bad_checksum),
		cmocka_unit_test(test_identity_wrong_hrp_and_length),
		cmocka_unit_test(test_identity_garbage),
		cmocka_unit_test(test_hybrid_and_plugin_unsupported),
		cmocka_unit_test(test_recipient_rejects),
		cmocka_unit_test(test_identities_file),
		cmocka_unit_test(test_identities_file_bad_line),
		cmocka_unit_test(test_identities_file_empty),
		cmocka_unit_test(test_recipients_file),
		cmocka_unit_test(test_files_large),
		cmocka_unit_test(test_long_comment),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
