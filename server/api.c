/*
 * The API's front door: one table of routes (method, path pattern,
 * handler, who may call, what body, and the audit operation of a change),
 * the checks every request passes before its handler (path decoding,
 * authentication, body limits and parsing), and the audit entry every
 * change leaves behind, refusals included once the caller is known.
 */
#define CF_LOG_MODULE "api"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coffer/enc.h"
#include "coffer/json.h"
#include "coffer/log.h"
#include "internal.h"

typedef enum need { NEED_NONE, NEED_USER, NEED_RUN, NEED_USER_OR_RUN } need;
typedef enum body_kind { BODY_NONE, BODY_JSON, BODY_RAW } body_kind;

typedef struct route {
	cofferd_method method;
	const char *pattern;   /* segments after the leading '/'; "*" is a parameter */
	void (*handler)(ctx *c);
	const char *op;        /* audit operation; NULL for reads */
	need auth;
	body_kind body;
} route;

#define GET COFFERD_GET
#define POST COFFERD_POST
#define PUT COFFERD_PUT
#define DEL COFFERD_DELETE

static const route routes[] = {
	{ POST, "v1/login", h_login, "session.login", NEED_NONE, BODY_JSON },
	{ POST, "v1/logout", h_logout, "session.logout", NEED_USER, BODY_NONE },
	{ GET, "v1/me", h_me, NULL, NEED_USER, BODY_NONE },
	{ POST, "v1/tokens", h_token_create, "token.create", NEED_USER, BODY_JSON },
	{ GET, "v1/tokens", h_token_list, NULL, NEED_USER, BODY_NONE },
	{ DEL, "v1/tokens/*", h_token_delete, "token.delete", NEED_USER, BODY_NONE },
	{ POST, "v1/orgs", h_org_create, "org.create", NEED_USER, BODY_JSON },
	{ GET, "v1/orgs", h_org_list, NULL, NEED_USER, BODY_NONE },
	{ GET, "v1/orgs/*", h_org_get, NULL, NEED_USER, BODY_NONE },
	{ PUT, "v1/orgs/*/keys", h_org_keys, "org.keys", NEED_USER, BODY_JSON },
	{ POST, "v1/users", h_user_create, "user.create", NEED_USER, BODY_JSON },
	{ GET, "v1/users", h_user_list, NULL, NEED_USER, BODY_NONE },
	{ DEL, "v1/users/*", h_user_delete, "user.delete", NEED_USER, BODY_NONE },
	{ POST, "v1/datasets", h_dataset_create, "dataset.create", NEED_USER, BODY_JSON },
	{ GET, "v1/datasets", h_dataset_list, NULL, NEED_USER, BODY_NONE },
	{ GET, "v1/datasets/*", h_dataset_get, NULL, NEED_USER, BODY_NONE },
	{ DEL, "v1/datasets/*", h_dataset_delete, "dataset.delete", NEED_USER, BODY_NONE },
	{ PUT, "v1/datasets/*/blob", h_dataset_put, "dataset.upload", NEED_USER, BODY_RAW },
	{ GET, "v1/datasets/*/blob", h_dataset_blob, NULL, NEED_USER_OR_RUN, BODY_NONE },
	{ POST, "v1/datasets/*/commit", h_dataset_commit, "dataset.commit", NEED_USER, BODY_NONE },
	{ POST, "v1/tasks", h_task_create, "task.create", NEED_USER, BODY_JSON },
	{ GET, "v1/tasks", h_task_list, NULL, NEED_USER, BODY_NONE },
	{ GET, "v1/tasks/*", h_task_get, NULL, NEED_USER, BODY_NONE },
	{ POST, "v1/tasks/*/approvals", h_task_approve, "task.approve", NEED_USER, BODY_JSON },
	{ POST, "v1/tasks/*/run", h_task_run, "task.run", NEED_USER, BODY_JSON },
	{ POST, "v1/tasks/*/cancel", h_task_cancel, "task.cancel", NEED_USER, BODY_NONE },
	{ GET, "v1/tasks/*/outputs/*", h_task_output, NULL, NEED_USER, BODY_NONE },
	{ GET, "v1/runs/*", h_run_get, NULL, NEED_USER, BODY_NONE },
	{ GET, "v1/runs/*/spec", h_run_spec, NULL, NEED_RUN, BODY_NONE },
	{ PUT, "v1/runs/*/outputs/*", h_run_output_put, "run.output", NEED_RUN, BODY_RAW },
	{ POST, "v1/runs/*/outputs/*/commit", h_run_output_commit, "run.output_commit", NEED_RUN,
	  BODY_JSON },
	{ POST, "v1/runs/*/finish", h_run_finish, "run.finish", NEED_RUN, BODY_JSON },
	{ GET, "v1/hosts", h_host_list, NULL, NEED_USER, BODY_NONE },
	{ POST, "v1/instances", h_instance_create, "instance.create", NEED_USER, BODY_JSON },
	{ GET, "v1/instances", h_instance_list, NULL, NEED_USER, BODY_NONE },
	{ POST, "v1/instances/*/start", h_instance_start, "instance.start", NEED_USER, BODY_NONE },
	{ POST, "v1/instances/*/stop", h_instance_stop, "instance.stop", NEED_USER, BODY_NONE },
	{ DEL, "v1/instances/*", h_instance_delete, "instance.delete", NEED_USER, BODY_NONE },
	{ GET, "v1/audit", h_audit_log, NULL, NEED_USER, BODY_NONE },
	{ GET, "v1/audit/key", h_audit_key, NULL, NEED_USER, BODY_NONE },
};

/* --- answers --- */

static const char *error_code(int status)
{
	switch (status) {
	case 400: return "bad_request";
	case 401: return "unauthenticated";
	case 403: return "forbidden";
	case 404: return "not_found";
	case 405: return "method_not_allowed";
	case 409: return "conflict";
	case 413: return "too_large";
	case 503: return "unavailable";
	default: return "internal";
	}
}

void api_fail(ctx *c, int status, const char *fmt, ...)
{
	char msg[512], clean[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_decref(c->resp->json);
	c->resp->status = status;
	c->resp->json = json_pack("{s:{s:s,s:s}}", "error", "code", error_code(status), "message",
				  clean_utf8(msg, clean, sizeof(clean) - 1));
}

void api_ok(ctx *c, json_t *body)
{
	json_decref(c->resp->json);
	c->resp->json = NULL;
	if (!body) {
		api_fail(c, 500, "out of memory");
		return;
	}
	c->resp->status = 200;
	c->resp->json = body;
}

void api_stream(ctx *c, int fd, uint64_t length, const char *content_type)
{
	json_decref(c->resp->json);
	c->resp->json = NULL;
	c->resp->status = 200;
	c->resp->fd = fd;
	c->resp->offset = 0;
	c->resp->length = length;
	c->resp->content_type = content_type;
}

void api_store_fail(ctx *c, cf_err rc, const char *what, const char *conflict)
{
	if (rc == CF_ERR_NOT_FOUND)
		api_fail(c, 404, "no such %s", what);
	else if (rc == CF_ERR_ARG)
		api_fail(c, 409, "%s", conflict);
	else
		api_fail(c, 500, "the database failed (%s)", cf_strerror(rc));
}

void api_object(ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->object, sizeof(c->object), fmt, ap);
	va_end(ap);
}

/* --- values --- */

bool valid_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return n >= 1 && n <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

bool valid_id(const char *s, const char *prefix)
{
	size_t p = strlen(prefix);
	return s && strncmp(s, prefix, p) == 0 && s[p] == '-' && strlen(s + p + 1) == 16 &&
	       strspn(s + p + 1, "0123456789abcdef") == 16;
}

cf_err make_id(const char *prefix, char out[static STORE_ID_LEN])
{
	uint8_t raw[8];
	char hex[17];
	cf_err rc = cf_random(raw, sizeof(raw));
	if (rc != CF_OK)
		return rc;
	cf_hex_encode(raw, sizeof(raw), hex);
	return snprintf(out, STORE_ID_LEN, "%s-%s", prefix, hex) < STORE_ID_LEN ? CF_OK : CF_ERR_ARG;
}

bool valid_hex256(const char *s)
{
	return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

const char *body_string(ctx *c, const char *key)
{
	json_t *v = json_object_get(c->body, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

bool body_uint(ctx *c, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(c->body, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

bool query_offset(const char *query, uint64_t *out)
{
	bool found = false;
	const char *p = query;
	while (p && *p) {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > 7 && strncmp(p, "offset=", 7) == 0) {
			size_t digits = len - 7;
			/* Decimal only, at most 18 digits: no sign, no overflow, no repeats. */
			if (found || digits > 18 || strspn(p + 7, "0123456789") < digits)
				return false;
			uint64_t v = 0;
			for (size_t i = 0; i < digits; i++)
				v = v * 10 + (uint64_t)(p[7 + i] - '0');
			*out = v;
			found = true;
		}
		p = end ? end + 1 : NULL;
	}
	return found;
}

/* --- routing --- */

static int hexval(char h)
{
	return h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
	       : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
}

/*
 * Splits the path into percent-decoded segments in c->segbuf. Refuses
 * empty segments, "." and "..", and any segment whose decoding holds a
 * control character or '/': a name or id never needs them.
 */
static bool split_path(ctx *c, const char *path, const char **seg, size_t *nseg)
{
	size_t n = 0, out = 0;
	if (!path || path[0] != '/' || strlen(path) > COFFERD_PATH_MAX)
		return false;
	const char *p = path + 1;
	while (*p) {
		if (n == COFFERD_MAX_SEGMENTS)
			return false;
		seg[n++] = c->segbuf + out;
		size_t start = out;
		while (*p && *p != '/') {
			int ch = (unsigned char)*p;
			if (ch == '%') {
				int hi = hexval(p[1]), lo = hi >= 0 ? hexval(p[2]) : -1;
				if (lo < 0)
					return false;
				ch = hi * 16 + lo;
				p += 3;
			} else {
				p++;
			}
			if (ch < 0x20 || ch == 0x7f || ch == '/')
				return false;
			c->segbuf[out++] = (char)ch;
		}
		c->segbuf[out++] = 0;
		const char *s = c->segbuf + start;
		if (!*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
			return false;
		if (*p == '/')
			p++;
		if (*p == 0 && p[-1] == '/')
			return false; /* a trailing slash */
	}
	*nseg = n;
	return true;
}

/* Whether seg matches pattern; the "*" segments go to c->param. */
static bool match(ctx *c, const char *pattern, const char **seg, size_t nseg)
{
	size_t i = 0, np = 0;
	const char *p = pattern;
	while (*p) {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (i == nseg)
			return false;
		if (len == 1 && *p == '*')
			c->param[np++] = seg[i];
		else if (strlen(seg[i]) != len || strncmp(seg[i], p, len) != 0)
			return false;
		i++;
		p = end ? end + 1 : p + len;
	}
	return i == nseg;
}

static void audit_call(ctx *c)
{
	const char *actor = c->who.kind != CALLER_ANON ? c->who.actor : c->actor;
	char result[128];
	int status = c->resp->status;
	if (!c->op || !actor[0])
		return;
	if (status >= 200 && status < 300)
		snprintf(result, sizeof(result), "ok");
	else if (status >= 500)
		snprintf(result, sizeof(result), "error: %s", error_code(status));
	else
		snprintf(result, sizeof(result), "denied: %s", c->reason[0] ? c->reason : error_code(status));
	if (!c->object[0]) {
		/* The path without "/v1/": the object the refused call was aimed at. */
		snprintf(c->object, sizeof(c->object), "%s", c->req->path ? c->req->path : "");
	}
	if (cofferd_audit(c->d, actor, c->op, c->object, result) != CF_OK) {
		/* An unaudited change must not look successful. */
		cofferd_response_clear(c->resp);
		api_fail(c, 500, "the audit log cannot be written");
	}
}

static const char *method_name(cofferd_method m)
{
	switch (m) {
	case COFFERD_GET: return "GET";
	case COFFERD_POST: return "POST";
	case COFFERD_PUT: return "PUT";
	case COFFERD_DELETE: return "DELETE";
	default: return "other";
	}
}

void cofferd_response_clear(cofferd_response *resp)
{
	/* A login or a new API token: its text is gone once sent. */
	json_t *token = json_object_get(resp->json, "token");
	if (json_is_string(token))
		cf_wipe((char *)json_string_value(token), json_string_length(token));
	json_decref(resp->json);
	resp->json = NULL;
	if (resp->fd >= 0)
		close(resp->fd);
	resp->fd = -1;
}

void cofferd_handle(cofferd *d, const cofferd_request *req, cofferd_response *resp)
{
	const char *seg[COFFERD_MAX_SEGMENTS];
	size_t nseg = 0;
	const route *r = NULL;
	bool path_known = false;
	ctx *c = calloc(1, sizeof(*c));
	*resp = (cofferd_response){ .status = 500, .fd = -1 };
	if (!c)
		return;
	c->d = d;
	c->req = req;
	c->resp = resp;
	c->now = (int64_t)d->now();

	if (!split_path(c, req->path, seg, &nseg)) {
		api_fail(c, 404, "no such resource");
		goto out;
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!match(c, routes[i].pattern, seg, nseg))
			continue;
		path_known = true;
		if (routes[i].method == req->method) {
			r = &routes[i];
			break;
		}
	}
	if (!r) {
		if (path_known)
			api_fail(c, 405, "%s is not allowed here", method_name(req->method));
		else
			api_fail(c, 404, "no such resource");
		goto out;
	}
	/* The route matched again last: its parameters are the ones in c->param. */
	(void)match(c, r->pattern, seg, nseg);

	if (r->auth != NEED_NONE) {
		cf_err rc = authenticate(c);
		if (rc == CF_ERR_NOT_FOUND || rc == CF_ERR_AUTH) {
			memset(&c->who, 0, sizeof(c->who));
			api_fail(c, 401, rc == CF_ERR_NOT_FOUND ? "a bearer token is needed"
								: "the token is invalid or expired");
			goto out;
		}
		if (rc != CF_OK) {
			memset(&c->who, 0, sizeof(c->who));
			api_fail(c, 500, "authentication failed (%s)", cf_strerror(rc));
			goto out;
		}
	}
	c->op = r->op;
	if (c->op && !cofferd_audit_ready(d)) {
		c->op = NULL; /* nothing to write it to */
		api_fail(c, 503, "the audit log cannot be written: changes are refused");
		goto out;
	}
	if ((r->auth == NEED_USER && c->who.kind != CALLER_USER) ||
	    (r->auth == NEED_RUN && c->who.kind != CALLER_RUN)) {
		api_fail(c, 403, r->auth == NEED_RUN ? "only a run's token may do this"
						     : "a run's token may not do this");
		goto out;
	}
	if (r->body == BODY_JSON) {
		if (req->body_len > COFFERD_MAX_JSON) {
			api_fail(c, 413, "JSON bodies are at most 1 MiB");
			goto out;
		}
		cf_err rc = req->body_len ? cf_json_parse((const char *)req->body, req->body_len, NULL,
							  &c->body)
					  : CF_OK;
		if (rc == CF_OK && !c->body)
			c->body = json_object();
		if (rc != CF_OK || !json_is_object(c->body)) {
			api_fail(c, rc == CF_ERR_TOO_BIG ? 413 : 400, "the body is not a JSON object (%s)",
				 rc != CF_OK ? cf_strerror(rc) : "another JSON value");
			goto out;
		}
	} else if (r->body == BODY_RAW && req->body_len > COFFERD_MAX_PART) {
		api_fail(c, 413, "parts are at most 8 MiB");
		goto out;
	}
	r->handler(c);
out:
	audit_call(c);
	log_debug("%s %s: %d", method_name(req->method), req->path ? req->path : "", resp->status);
	json_decref(c->body);
	cf_wipe(c, sizeof(*c));
	free(c);
}
