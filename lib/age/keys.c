/*
 * age keys: X25519 identities and recipients in their Bech32 spellings,
 * and the line-oriented identity and recipient files.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "age_internal.h"
#include "coffer/crypto.h"
#include "coffer/enc.h"

#define HRP_RECIPIENT "age"
#define HRP_IDENTITY "age-secret-key-"
#define MAX_KEY_STRLEN 256

void cf_age_key_wipe(cf_age_x25519_key *key)
{
	cf_wipe(key, sizeof(*key));
}

cf_err cf_age_keygen(cf_age_x25519_key *key)
{
	return cf_x25519_keygen(key->secret, key->pub);
}

cf_err cf_age_identity_parse(const char *s, cf_age_x25519_key *key)
{
	char hrp[64];
	uint8_t data[64];
	size_t n = 0;
	cf_err rc = CF_ERR_AGE_IDENTITY;
	/* ML-KEM hybrid and plugin identities are recognised, not supported. */
	if (strncmp(s, "AGE-SECRET-KEY-PQ-1", 19) == 0 || strncmp(s, "AGE-PLUGIN-", 11) == 0)
		return CF_ERR_UNSUPPORTED;
	/* Identities are spelled in upper case, as age-keygen writes them. */
	if (strncmp(s, "AGE-SECRET-KEY-1", 16) != 0)
		return CF_ERR_AGE_IDENTITY;
	if (strnlen(s, MAX_KEY_STRLEN + 1) > MAX_KEY_STRLEN)
		return CF_ERR_AGE_IDENTITY;
	if (cf_bech32_decode(s, hrp, sizeof(hrp), data, sizeof(data), &n) != CF_OK)
		goto out;
	if (strcmp(hrp, HRP_IDENTITY) != 0 || n != 32)
		goto out;
	memcpy(key->secret, data, 32);
	rc = cf_x25519_public(key->secret, key->pub);
	if (rc != CF_OK)
		cf_age_key_wipe(key);
out:
	cf_wipe(data, sizeof(data));
	return rc;
}

cf_err cf_age_recipient_parse(const char *s, uint8_t pub[static 32])
{
	char hrp[64];
	uint8_t data[64];
	size_t n = 0;
	if (strncmp(s, "age1", 4) != 0)
		return CF_ERR_AGE_IDENTITY;
	/* age1pq1... (ML-KEM hybrid) and age1<plugin>1... recipients are not ours. */
	const char *sep = strrchr(s, '1');
	if (sep != s + 3)
		return CF_ERR_UNSUPPORTED;
	if (strnlen(s, MAX_KEY_STRLEN + 1) > MAX_KEY_STRLEN)
		return CF_ERR_AGE_IDENTITY;
	if (cf_bech32_decode(s, hrp, sizeof(hrp), data, sizeof(data), &n) != CF_OK)
		return CF_ERR_AGE_IDENTITY;
	if (strcmp(hrp, HRP_RECIPIENT) != 0 || n != 32)
		return CF_ERR_AGE_IDENTITY;
	memcpy(pub, data, 32);
	return CF_OK;
}

cf_err cf_age_identity_format(const cf_age_x25519_key *key,
			      char out[static CF_AGE_IDENTITY_STRLEN + 1])
{
	return cf_bech32_encode(HRP_IDENTITY, key->secret, 32, true, out,
				CF_AGE_IDENTITY_STRLEN + 1);
}

cf_err cf_age_recipient_format(const uint8_t pub[static 32],
			       char out[static CF_AGE_RECIPIENT_STRLEN + 1])
{
	return cf_bech32_encode(HRP_RECIPIENT, pub, 32, false, out, CF_AGE_RECIPIENT_STRLEN + 1);
}

/*
 * Calls fn on each meaningful line (trimmed, not blank, not a comment).
 * Stops at the first failure and reports its line number.
 */
static cf_err for_each_key_line(const char *text, size_t len, size_t *bad_line,
				cf_err (*fn)(void *ctx, const char *line), void *ctx)
{
	char line[MAX_KEY_STRLEN + 1];
	size_t lineno = 0, off = 0;
	cf_err rc = CF_OK;
	while (off < len && rc == CF_OK) {
		const char *start = text + off;
		const char *nl = memchr(start, '\n', len - off);
		size_t ll = nl ? (size_t)(nl - start) : len - off;
		off += ll + (nl ? 1 : 0);
		lineno++;
		while (ll && isspace((unsigned char)start[ll - 1]))
			ll--;
		while (ll && isspace((unsigned char)*start)) {
			start++;
			ll--;
		}
		if (ll == 0 || *start == '#')
			continue;
		if (ll > MAX_KEY_STRLEN || memchr(start, 0, ll)) {
			rc = CF_ERR_AGE_IDENTITY;
			break;
		}
		memcpy(line, start, ll);
		line[ll] = 0;
		rc = fn(ctx, line);
	}
	cf_wipe(line, sizeof(line));
	if (rc != CF_OK && bad_line)
		*bad_line = lineno;
	return rc;
}

struct key_list {
	void *items;
	size_t n;     /* completed items */
	size_t alloc; /* items that may hold data (n, or n + 1 while one is filled) */
	size_t cap;   /* items allocated */
	size_t item_size;
};

static cf_err key_list_push(struct key_list *l, void **slot)
{
	if (l->n >= 4096)
		return CF_ERR_TOO_BIG;
	if (l->n == l->cap) {
		/*
		 * Not realloc: a block it moves is freed without being wiped, which
		 * would leave copies of the secret keys parsed so far on the heap.
		 */
		size_t cap = l->cap ? 2 * l->cap : 8;
		uint8_t *grown = calloc(cap, l->item_size);
		if (!grown)
			return CF_ERR_NOMEM;
		if (l->items) {
			memcpy(grown, l->items, l->n * l->item_size);
			cf_wipe(l->items, l->cap * l->item_size);
			free(l->items);
		}
		l->items = grown;
		l->cap = cap;
	}
	l->alloc = l->n + 1;
	*slot = (uint8_t *)l->items + l->n * l->item_size;
	memset(*slot, 0, l->item_size);
	return CF_OK;
}

static cf_err add_identity(void *ctx, const char *line)
{
	struct key_list *l = ctx;
	cf_age_identity *id;
	cf_err rc = key_list_push(l, (void **)&id);
	if (rc != CF_OK)
		return rc;
	id->kind = CF_AGE_X25519;
	rc = cf_age_identity_parse(line, &id->key);
	if (rc == CF_OK)
		l->n++;
	return rc;
}

static cf_err add_recipient(void *ctx, const char *line)
{
	struct key_list *l = ctx;
	cf_age_recipient *r;
	cf_err rc = key_list_push(l, (void **)&r);
	if (rc != CF_OK)
		return rc;
	r->kind = CF_AGE_X25519;
	rc = cf_age_recipient_parse(line, r->pub);
	if (rc == CF_OK)
		l->n++;
	return rc;
}

void cf_age_identities_free(cf_age_identity *ids, size_t n)
{
	if (!ids)
		return;
	cf_wipe(ids, n * sizeof(*ids));
	free(ids);
}

cf_err cf_age_identities_parse(const char *text, size_t len, cf_age_identity **ids, size_t *n,
			       size_t *bad_line)
{
	struct key_list l = { .item_size = sizeof(cf_age_identity) };
	cf_err rc = for_each_key_line(text, len, bad_line, add_identity, &l);
	if (rc == CF_OK && l.n == 0)
		rc = CF_ERR_NOT_FOUND;
	if (rc != CF_OK) {
		/* Wipe the slot being filled too, not only the completed ones. */
		cf_age_identities_free(l.items, l.alloc);
		return rc;
	}
	*ids = l.items;
	*n = l.n;
	return CF_OK;
}

cf_err cf_age_recipients_parse(const char *text, size_t len, cf_age_recipient **rcpts, size_t *n,
			       size_t *bad_line)
{
	struct key_list l = { .item_size = sizeof(cf_age_recipient) };
	cf_err rc = for_each_key_line(text, len, bad_line, add_recipient, &l);
	if (rc == CF_OK && l.n == 0)
		rc = CF_ERR_NOT_FOUND;
	if (rc != CF_OK) {
		free(l.items);
		return rc;
	}
	*rcpts = l.items;
	*n = l.n;
	return CF_OK;
}
