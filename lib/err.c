#include "coffer/err.h"

struct err_desc {
	cf_err code;
	const char *name;
	const char *text;
};

static const struct err_desc err_table[] = {
	{ CF_OK, "CF_OK", "success" },
	{ CF_ERR_NOMEM, "CF_ERR_NOMEM", "out of memory" },
	{ CF_ERR_ARG, "CF_ERR_ARG", "invalid argument" },
	{ CF_ERR_TOO_BIG, "CF_ERR_TOO_BIG", "input too large" },
	{ CF_ERR_TRUNCATED, "CF_ERR_TRUNCATED", "input truncated" },
	{ CF_ERR_PARSE, "CF_ERR_PARSE", "malformed input" },
	{ CF_ERR_IO, "CF_ERR_IO", "input/output error" },
	{ CF_ERR_CRYPTO, "CF_ERR_CRYPTO", "crypto library failure" },
	{ CF_ERR_AUTH, "CF_ERR_AUTH", "authentication failed" },
	{ CF_ERR_UNSUPPORTED, "CF_ERR_UNSUPPORTED", "unsupported" },
	{ CF_ERR_NOT_FOUND, "CF_ERR_NOT_FOUND", "not found" },
	{ CF_ERR_ENCODING, "CF_ERR_ENCODING", "invalid encoding" },
	{ CF_ERR_TRAILING, "CF_ERR_TRAILING", "trailing data after the end" },
	{ CF_ERR_WEAK_KEY, "CF_ERR_WEAK_KEY", "weak or low-order public key" },
	{ CF_ERR_LIMIT, "CF_ERR_LIMIT", "cost limit exceeded" },
	{ CF_ERR_AGE_HEADER, "CF_ERR_AGE_HEADER", "malformed age header" },
	{ CF_ERR_AGE_NO_MATCH, "CF_ERR_AGE_NO_MATCH", "no identity matched any recipient" },
	{ CF_ERR_AGE_HMAC, "CF_ERR_AGE_HMAC", "header MAC mismatch" },
	{ CF_ERR_AGE_PAYLOAD, "CF_ERR_AGE_PAYLOAD", "payload chunk failed to authenticate" },
	{ CF_ERR_AGE_TRUNCATED, "CF_ERR_AGE_TRUNCATED", "truncated stream (no final chunk)" },
	{ CF_ERR_AGE_ARMOR, "CF_ERR_AGE_ARMOR", "malformed ASCII armor" },
	{ CF_ERR_AGE_TRAILING, "CF_ERR_AGE_TRAILING", "trailing data after the final chunk" },
	{ CF_ERR_AGE_IDENTITY, "CF_ERR_AGE_IDENTITY", "malformed age identity or recipient" },
	{ CF_ERR_AGE_SCRYPT_MIXED, "CF_ERR_AGE_SCRYPT_MIXED", "scrypt recipient must be the only recipient" },
	{ CF_ERR_AGE_WORK_FACTOR, "CF_ERR_AGE_WORK_FACTOR", "scrypt work factor exceeds the limit" },
};

static const struct err_desc *err_find(cf_err err)
{
	for (unsigned i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++) {
		if (err_table[i].code == err)
			return &err_table[i];
	}
	return 0;
}

const char *cf_strerror(cf_err err)
{
	const struct err_desc *d = err_find(err);
	return d ? d->text : "unknown error";
}

const char *cf_errname(cf_err err)
{
	const struct err_desc *d = err_find(err);
	return d ? d->name : "CF_ERR_UNKNOWN";
}
