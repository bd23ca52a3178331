#define CF_LOG_MODULE "params"

#include "params.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/json.h"

static cf_err bad(char *why, size_t whylen, cf_err rc, const char *fmt, ...) CF_PRINTF(4, 5);
static cf_err bad(char *why, size_t whylen, cf_err rc, const char *fmt, ...)
{
	if (why && whylen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

void cf_run_params_free(cf_run_params *p)
{
	if (!p)
		return;
	if (p->token) {
		cf_wipe(p->token, strlen(p->token));
		free(p->token);
	}
	free(p->cofferd);
	free(p->kms);
	free(p->run);
	cf_buf_free(&p->cofferd_ca);
	cf_buf_free(&p->kms_ca);
	cf_buf_free(&p->platform_cert);
	memset(p, 0, sizeof(*p));
}

/* The PEM text of a member: inline, or read from an absolute path. */
static cf_err load_pem(const char *value, cf_buf *out)
{
	cf_err rc = CF_OK;
	if (strncmp(value, "-----BEGIN", 10) == 0)
		return cf_buf_append_str(out, value);
	if (value[0] != '/')
		return CF_ERR_PARSE;
	FILE *f = fopen(value, "rbe");
	if (!f)
		return errno == ENOENT ? CF_ERR_NOT_FOUND : CF_ERR_IO;
	char chunk[4096];
	size_t n;
	while (rc == CF_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc = cf_buf_append(out, chunk, n);
	if (rc == CF_OK && ferror(f))
		rc = CF_ERR_IO;
	fclose(f);
	if (rc == CF_OK && (out->len < 10 || memcmp(out->data, "-----BEGIN", 10) != 0))
		rc = CF_ERR_PARSE;
	return rc;
}

cf_err cf_run_params_parse(const char *text, size_t len, cf_run_params *out, char *why,
			   size_t whylen)
{
	static const char *const known[] = { "cofferd", "cofferd_ca", "kms", "kms_ca",
					     "platform_cert", "run", "token" };
	json_t *j = NULL;
	const json_t *t;
	const char *s;
	cf_err rc;
	if (!out)
		return CF_ERR_ARG;
	memset(out, 0, sizeof(*out));
	cf_buf_init(&out->cofferd_ca, CF_PARAMS_MAX_PEM, false);
	cf_buf_init(&out->kms_ca, CF_PARAMS_MAX_PEM, false);
	cf_buf_init(&out->platform_cert, CF_PARAMS_MAX_PEM, false);
	if (!text || len > CF_PARAMS_MAX) {
		rc = bad(why, whylen, CF_ERR_TOO_BIG, "the run parameters are over %u bytes",
			 CF_PARAMS_MAX);
		goto out;
	}
	if (cf_json_parse(text, len, NULL, &j) != CF_OK || !json_is_object(j)) {
		rc = bad(why, whylen, CF_ERR_PARSE, "the run parameters are not a JSON object");
		goto out;
	}
	const char *key;
	const json_t *v;
	json_object_foreach(j, key, v) {
		bool ok = false;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]) && !ok; i++)
			ok = strcmp(key, known[i]) == 0;
		if (!ok) {
			rc = bad(why, whylen, CF_ERR_PARSE, "unknown run parameter \"%.32s\"", key);
			goto out;
		}
	}
	/* What it takes to report back to cofferd is required; the KMS's part may be absent. */
	char **strings[] = { &out->cofferd, &out->run, &out->token, &out->kms };
	static const char *const names[] = { "cofferd", "run", "token", "kms" };
	for (size_t i = 0; i < 4; i++) {
		const json_t *m = json_object_get(j, names[i]);
		if (i == 3 && (!m || json_is_null(m)))
			continue;
		if (cf_json_get_string(j, names[i], &s) != CF_OK || !*s) {
			rc = bad(why, whylen, CF_ERR_PARSE, "the run parameters need \"%s\"", names[i]);
			goto out;
		}
		if (!(*strings[i] = strdup(s))) {
			rc = CF_ERR_NOMEM;
			goto out;
		}
	}
	cf_buf *pems[] = { &out->cofferd_ca, &out->kms_ca, &out->platform_cert };
	static const char *const pem_names[] = { "cofferd_ca", "kms_ca", "platform_cert" };
	for (size_t i = 0; i < 3; i++) {
		const json_t *m = json_object_get(j, pem_names[i]);
		if (i > 0 && (!m || json_is_null(m)))
			continue;
		if (cf_json_get_string(j, pem_names[i], &s) != CF_OK) {
			rc = bad(why, whylen, CF_ERR_PARSE, "the run parameters need \"%s\"",
				 pem_names[i]);
			goto out;
		}
		if ((rc = load_pem(s, pems[i])) != CF_OK) {
			bad(why, whylen, rc, "%s is neither PEM text nor an absolute path to a PEM "
			    "file (%s)", pem_names[i], cf_strerror(rc));
			goto out;
		}
	}
	rc = CF_OK;
out:
	/* The text held the token: wipe jansson's copy before it is freed. */
	t = json_object_get(j, "token");
	if (json_is_string(t))
		cf_wipe((char *)json_string_value(t), json_string_length(t));
	json_decref(j);
	if (rc != CF_OK)
		cf_run_params_free(out);
	return rc;
}
