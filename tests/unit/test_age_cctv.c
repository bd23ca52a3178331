/*
 * Every C2SP CCTV age vector (tests/data/age/cctv/testdata, from ../shared/testdata) must
 * give exactly the outcome its "expect:" header names, and the plaintext
 * released before any failure must hash to its "payload:" value. ML-KEM
 * hybrid vectors must fail cleanly as unsupported.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "coffer/age.h"
#include "coffer/crypto.h"
#include "coffer/enc.h"

#define MAX_VECTORS 256
#define MAX_KEYS 8

struct vector {
	char path[4096 + 256 + 2];
	char name[256];
};

struct parsed {
	char expect[64];
	char payload_hex[65];
	bool compressed;
	bool armored;
	char *identities[MAX_KEYS];
	size_t nidentities;
	char *passphrases[MAX_KEYS];
	size_t npassphrases;
	uint8_t *body;
	size_t bodylen;
};

static void parsed_free(struct parsed *p)
{
	for (size_t i = 0; i < p->nidentities; i++)
		free(p->identities[i]);
	for (size_t i = 0; i < p->npassphrases; i++)
		free(p->passphrases[i]);
	free(p->body);
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *data = malloc((size_t)sz + 1);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, (size_t)sz, f), (size_t)sz);
	fclose(f);
	*len = (size_t)sz;
	return data;
}

static void inflate_body(struct parsed *p)
{
	z_stream zs = { 0 };
	size_t cap = 1u << 20, len = 0;
	uint8_t *out = malloc(cap);
	assert_non_null(out);
	assert_int_equal(inflateInit(&zs), Z_OK);
	zs.next_in = p->body;
	zs.avail_in = (uInt)p->bodylen;
	int zrc;
	do {
		if (len == cap) {
			cap *= 2;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		zs.next_out = out + len;
		zs.avail_out = (uInt)(cap - len);
		zrc = inflate(&zs, Z_NO_FLUSH);
		assert_true(zrc == Z_OK || zrc == Z_STREAM_END);
		len = cap - zs.avail_out;
	} while (zrc != Z_STREAM_END);
	inflateEnd(&zs);
	free(p->body);
	p->body = out;
	p->bodylen = len;
}

static void parse_vector(const char *path, struct parsed *p)
{
	size_t len;
	uint8_t *data = read_file(path, &len);
	size_t off = 0;
	memset(p, 0, sizeof(*p));
	for (;;) {
		uint8_t *nl = memchr(data + off, '\n', len - off);
		assert_non_null(nl);
		size_t ll = (size_t)(nl - (data + off));
		char *line = (char *)data + off;
		off += ll + 1;
		if (ll == 0)
			break;
		line[ll] = 0;
		char *sep = strstr(line, ": ");
		assert_non_null(sep);
		*sep = 0;
		const char *val = sep + 2;
		if (strcmp(line, "expect") == 0)
			snprintf(p->expect, sizeof(p->expect), "%s", val);
		else if (strcmp(line, "payload") == 0)
			snprintf(p->payload_hex, sizeof(p->payload_hex), "%s", val);
		else if (strcmp(line, "compressed") == 0)
			p->compressed = strcmp(val, "zlib") == 0;
		else if (strcmp(line, "armored") == 0)
			p->armored = strcmp(val, "yes") == 0;
		else if (strcmp(line, "identity") == 0 && p->nidentities < MAX_KEYS)
			p->identities[p->nidentities++] = strdup(val);
		else if (strcmp(line, "passphrase") == 0 && p->npassphrases < MAX_KEYS)
			p->passphrases[p->npassphrases++] = strdup(val);
	}
	p->bodylen = len - off;
	p->body = malloc(p->bodylen + 1);
	assert_non_null(p->body);
	memcpy(p->body, data + off, p->bodylen);
	free(data);
	if (p->compressed)
		inflate_body(p);
}

static const char *outcome_class(cf_err rc)
{
	switch (rc) {
	case CF_OK:
		return "success";
	case CF_ERR_AGE_NO_MATCH:
		return "no match";
	case CF_ERR_AGE_HMAC:
		return "HMAC failure";
	case CF_ERR_AGE_HEADER:
	case CF_ERR_AGE_SCRYPT_MIXED:
	case CF_ERR_AGE_WORK_FACTOR:
		return "header failure";
	case CF_ERR_AGE_PAYLOAD:
	case CF_ERR_AGE_TRUNCATED:
	case CF_ERR_AGE_TRAILING:
		return "payload failure";
	case CF_ERR_AGE_ARMOR:
		return "armor failure";
	default:
		return cf_errname(rc);
	}
}

static void run_vector(void **state)
{
	const struct vector *v = *state;
	struct parsed p;
	parse_vector(v->path, &p);

	cf_age_identity ids[2 * MAX_KEYS];
	size_t nids = 0, unsupported = 0;
	memset(ids, 0, sizeof(ids));
	for (size_t i = 0; i < p.nidentities; i++) {
		cf_err rc = cf_age_identity_parse(p.identities[i], &ids[nids].key);
		if (rc == CF_ERR_UNSUPPORTED) {
			unsupported++;
			continue;
		}
		assert_int_equal(rc, CF_OK);
		ids[nids++].kind = CF_AGE_X25519;
	}
	for (size_t i = 0; i < p.npassphrases; i++) {
		ids[nids].kind = CF_AGE_SCRYPT;
		ids[nids].passphrase = (const uint8_t *)p.passphrases[i];
		ids[nids].passlen = strlen(p.passphrases[i]);
		nids++;
	}
	if (nids == 0 && unsupported > 0) {
		/* Only ML-KEM hybrid identities: refused at parse time, cleanly. */
		assert_non_null(strstr(v->name, "hybrid"));
		parsed_free(&p);
		return;
	}

	cf_buf out;
	cf_buf_init(&out, 256u << 20, false);
	cf_mem_reader mr = { .data = p.body, .len = p.bodylen };
	cf_err rc = cf_age_decrypt(ids, nids, cf_mem_reader_of(&mr), cf_buf_writer(&out));
	const char *got = outcome_class(rc);
	if (strcmp(got, p.expect) != 0)
		fail_msg("%s: expected '%s', got '%s' (%s)", v->name, p.expect, got, cf_errname(rc));
	if (p.payload_hex[0]) {
		uint8_t digest[32];
		char hex[65];
		assert_int_equal(cf_hash(CF_SHA256, out.data ? out.data : (uint8_t *)"", out.len, digest), CF_OK);
		cf_hex_encode(digest, 32, hex);
		if (strcmp(hex, p.payload_hex) != 0)
			fail_msg("%s: payload hash %s, expected %s (%zu bytes released)", v->name, hex,
				 p.payload_hex, out.len);
	}
	cf_buf_free(&out);
	for (size_t i = 0; i < nids; i++)
		cf_age_key_wipe(&ids[i].key);
	parsed_free(&p);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct vector *)a)->name, ((const struct vector *)b)->name);
}

int main(void)
{
	const char *td = getenv("COFFER_TESTDATA");
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/age/cctv/testdata", td ? td : "tests/data");
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "cctv: cannot open %s\n", dir);
		return 1;
	}
	static struct vector vectors[MAX_VECTORS];
	static struct CMUnitTest tests[MAX_VECTORS];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < MAX_VECTORS) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(vectors[n].name, sizeof(vectors[n].name), "%s", e->d_name);
		snprintf(vectors[n].path, sizeof(vectors[n].path), "%s/%s", dir, e->d_name);
		n++;
	}
	closedir(d);
	if (n < 90) {
		fprintf(stderr, "cctv: only %zu vectors in %s\n", n, dir);
		return 1;
	}
	qsort(vectors, n, sizeof(vectors[0]), by_name);
	for (size_t i = 0; i < n; i++) {
		tests[i].name = vectors[i].name;
		tests[i].test_func = run_vector;
		tests[i].initial_state = &vectors[i];
	}
	return _cmocka_run_group_tests("age_cctv", tests, n, NULL, NULL);
}
