#include "coffer/json.h"

#include <stdlib.h>
#include <string.h>

/* Nesting depth, counted outside strings: jansson's own limit is 2048. */
static unsigned json_depth(const char *text, size_t len, unsigned limit, int *too_deep)
{
	unsigned depth = 0, max = 0;
	int in_string = 0;
	*too_deep = 0;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = 0;
			continue;
		}
		if (c == '"') {
			in_string = 1;
		} else if (c == '{' || c == '[') {
			if (++depth > limit) {
				*too_deep = 1;
				return depth;
			}
			if (depth > max)
				max = depth;
		} else if ((c == '}' || c == ']') && depth > 0) {
			depth--;
		}
	}
	return max;
}

cf_err cf_json_parse(const char *text, size_t len, const cf_json_limits *limits, json_t **out)
{
	size_t max_bytes = limits ? limits->max_bytes : CF_JSON_DEFAULT_MAX_BYTES;
	unsigned max_depth = limits ? limits->max_depth : CF_JSON_DEFAULT_MAX_DEPTH;
	if (!text)
		return CF_ERR_ARG;
	if (len > max_bytes)
		return CF_ERR_TOO_BIG;
	int too_deep;
	json_depth(text, len, max_depth, &too_deep);
	if (too_deep)
		return CF_ERR_LIMIT;
	json_error_t jerr;
	json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!v)
		return CF_ERR_PARSE;
	*out = v;
	return CF_OK;
}

cf_err cf_json_canonical(const json_t *value, char **out, size_t *outlen)
{
	if (!value)
		return CF_ERR_ARG;
	char *s = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY |
					    JSON_REAL_PRECISION(17));
	if (!s)
		return CF_ERR_NOMEM;
	*out = s;
	if (outlen)
		*outlen = strlen(s);
	return CF_OK;
}

static cf_err json_member(const json_t *obj, const char *key, json_t **v)
{
	if (!json_is_object(obj))
		return CF_ERR_PARSE;
	*v = json_object_get(obj, key);
	return *v ? CF_OK : CF_ERR_NOT_FOUND;
}

cf_err cf_json_get_string(const json_t *obj, const char *key, const char **out)
{
	json_t *v;
	cf_err rc = json_member(obj, key, &v);
	if (rc != CF_OK)
		return rc;
	if (!json_is_string(v))
		return CF_ERR_PARSE;
	*out = json_string_value(v);
	return CF_OK;
}

cf_err cf_json_get_int(const json_t *obj, const char *key, long long *out)
{
	json_t *v;
	cf_err rc = json_member(obj, key, &v);
	if (rc != CF_OK)
		return rc;
	if (!json_is_integer(v))
		return CF_ERR_PARSE;
	*out = json_integer_value(v);
	return CF_OK;
}

cf_err cf_json_get_bool(const json_t *obj, const char *key, int *out)
{
	json_t *v;
	cf_err rc = json_member(obj, key, &v);
	if (rc != CF_OK)
		return rc;
	if (!json_is_boolean(v))
		return CF_ERR_PARSE;
	*out = json_is_true(v);
	return CF_OK;
}
