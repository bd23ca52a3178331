/*
 * json: jansson with limits, and the canonical form used for signing.
 *
 * cf_json_parse() refuses documents over a byte limit or nested deeper
 * than a depth limit before jansson sees them, rejects duplicate keys
 * and NUL bytes in strings, and requires the whole input to be one
 * value. cf_json_canonical() serialises with sorted keys and no
 * whitespace; two parties that hash it get the same digest.
 */
#ifndef COFFER_JSON_H
#define COFFER_JSON_H

#include <stddef.h>

#include <jansson.h>

#include "coffer/err.h"

typedef struct cf_json_limits {
	size_t max_bytes;
	unsigned max_depth;
} cf_json_limits;

#define CF_JSON_DEFAULT_MAX_BYTES (1u << 20)
#define CF_JSON_DEFAULT_MAX_DEPTH 32u

/* limits may be NULL for the defaults. On success the caller owns *out. */
cf_err cf_json_parse(const char *text, size_t len, const cf_json_limits *limits,
		     json_t **out) CF_WUR;

/* Sorted keys, no whitespace, UTF-8. The caller frees *out with free(). */
cf_err cf_json_canonical(const json_t *value, char **out, size_t *outlen) CF_WUR;

/* Typed getters: CF_ERR_NOT_FOUND if absent, CF_ERR_PARSE if of another type. */
cf_err cf_json_get_string(const json_t *obj, const char *key, const char **out) CF_WUR;
cf_err cf_json_get_int(const json_t *obj, const char *key, long long *out) CF_WUR;
cf_err cf_json_get_bool(const json_t *obj, const char *key, int *out) CF_WUR;

#endif
