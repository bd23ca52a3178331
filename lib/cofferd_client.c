/*
 * The client side of cofferd's REST API (docs/api.md): pure helpers, the
 * pinned HTTPS JSON client with a bearer token, blob uploads in parts
 * and streamed downloads, and the client profile.
 */
#include "coffer/cofferd_client.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "coffer/enc.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"
#include "https.h"

#define CA_FILE_MAX (256u * 1024)
#define PROFILE_FILE_MAX (64u * 1024)
#define TOKEN_FILE_MAX 1024u
#define ERROR_BODY_MAX (64u * 1024)
/* A stream buffers at most this much ahead of its reader before it pauses. */
#define STREAM_HIGH_WATER (1u << 20)
#define STREAM_BUF_MAX (STREAM_HIGH_WATER + (4u << 20))
/* JSON calls are small; blobs may crawl, so they are bounded by speed instead. */
#define JSON_TIMEOUT 120L
#define LOW_SPEED_BYTES 1024L
#define LOW_SPEED_SECONDS 60L
#define COPY_CHUNK (64u * 1024)

/* --- pure helpers --- */

static bool is_lower_hex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

bool cf_cofferd_valid_id(const char *s, const char *prefix)
{
	if (!s || !prefix)
		return false;
	size_t p = strlen(prefix);
	if (p == 0 || strncmp(s, prefix, p) != 0 || s[p] != '-')
		return false;
	s += p + 1;
	if (strlen(s) != CF_COFFERD_ID_HEX)
		return false;
	for (size_t i = 0; i < CF_COFFERD_ID_HEX; i++) {
		if (!is_lower_hex(s[i]))
			return false;
	}
	return true;
}

bool cf_cofferd_valid_token(const char *s)
{
	if (!s)
		return false;
	size_t n = strlen(s);
	if (n < 1 || n > CF_COFFERD_TOKEN_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

cf_err cf_cofferd_parse_size(const char *s, uint64_t *out)
{
	static const struct {
		const char *unit;
		unsigned shift;
	} units[] = {
		{ "", 0 },    { "B", 0 },    { "K", 10 },   { "KB", 10 },  { "KiB", 10 },
		{ "M", 20 },  { "MB", 20 },  { "MiB", 20 }, { "G", 30 },   { "GB", 30 },
		{ "GiB", 30 }, { "T", 40 },  { "TB", 40 },  { "TiB", 40 },
	};
	if (!s || !out || !(*s >= '0' && *s <= '9'))
		return CF_ERR_ARG;
	uint64_t v = 0;
	const char *p = s;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return CF_ERR_ARG;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(p, units[i].unit) != 0)
			continue;
		if (v == 0 || v > (UINT64_C(1) << 63) >> units[i].shift)
			return CF_ERR_ARG;
		*out = v << units[i].shift;
		return CF_OK;
	}
	return CF_ERR_ARG;
}

void cf_cofferd_format_size(uint64_t n, char *out, size_t cap)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	if (n < 1024) {
		snprintf(out, cap, "%" PRIu64 " B", n);
		return;
	}
	double v = (double)n;
	size_t u = 0;
	v /= 1024;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(out, cap, "%.1f %s", v, units[u]);
}

cf_err cf_cofferd_path_segment(const char *s, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	if (!s || !*s)
		return CF_ERR_ARG;
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		bool keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' ||
			    *p == '~';
		/* "." and ".." are path navigation, not names. */
		if (*p == '.' && (strcmp(s, ".") == 0 || strcmp(s, "..") == 0))
			keep = false;
		size_t need = keep ? 1 : 3;
		if (o + need >= cap)
			return CF_ERR_TOO_BIG;
		if (keep) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
	return CF_OK;
}

bool cf_cofferd_state_final(const char *state)
{
	return state && (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
			 strcmp(state, "cancelled") == 0);
}

/* --- the HTTPS client --- */

struct cf_cofferd_client {
	CURL *curl;
	char *url;             /* without a trailing '/' */
	uint8_t *ca_pem;
	size_t ca_len;
	struct curl_blob ca;
	char token[CF_COFFERD_TOKEN_MAX + 1]; /* secret */
	cf_buf reply;          /* secret: a login answer holds a token */
	bool reply_too_big;
	bool busy;             /* a stream holds the handle */
	char curl_error[CURL_ERROR_SIZE];
	cf_cofferd_error err;
};

/* Replaces every occurrence of the token in s by "(hidden)" (s has room: it only shrinks). */
static void hide_token(const cf_cofferd_client *c, char *s)
{
	size_t tl = strlen(c->token);
	/* Shorter than "(hidden)" would grow the text; no real token is that short. */
	if (tl < 8)
		return;
	char *at;
	while ((at = strstr(s, c->token)) != NULL) {
		memcpy(at, "(hidden)", 8);
		memmove(at + 8, at + tl, strlen(at + tl) + 1);
	}
}

static void client_error(cf_cofferd_client *c, long status, const char *code, const char *fmt, ...)
	CF_PRINTF(4, 5);
static void client_error(cf_cofferd_client *c, long status, const char *code, const char *fmt, ...)
{
	c->err.status = status;
	snprintf(c->err.code, sizeof(c->err.code), "%s", code ? code : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err.message, sizeof(c->err.message), fmt, ap);
	va_end(ap);
	/* The text may come from the network: printable, one line, never the token. */
	for (char *p = c->err.code; *p; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	}
	for (char *p = c->err.message; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
	hide_token(c, c->err.code);
	hide_token(c, c->err.message);
}

static cf_err status_err(long status)
{
	switch (status) {
	case 400: return CF_ERR_PARSE;
	case 401: return CF_ERR_AUTH;
	case 403: return CF_ERR_AUTH;
	case 404: return CF_ERR_NOT_FOUND;
	case 409: return CF_ERR_ARG;
	case 413: return CF_ERR_TOO_BIG;
	default: return CF_ERR_IO;
	}
}

/* Keeps cofferd's refusal ({"error": {"code", "message"}}, or whatever came) for the caller. */
static void keep_refusal(cf_cofferd_client *c, long status, const json_t *body)
{
	const json_t *err = json_object_get(body, "error");
	const char *code = "", *message = "";
	if (cf_json_get_string(err, "code", &code) != CF_OK)
		code = "";
	if (cf_json_get_string(err, "message", &message) != CF_OK)
		message = "";
	if (message[0])
		client_error(c, status, code, "%s", message);
	else
		client_error(c, status, code, "HTTP %ld", status);
}

cf_err cf_cofferd_client_open_pem(const char *url, const void *ca_pem, size_t len,
				  cf_cofferd_client **out)
{
	size_t keep = 0;
	cf_err rc;
	if (!url || !ca_pem || len == 0 || len > CA_FILE_MAX || !out)
		return CF_ERR_ARG;
	if ((rc = cf_https_check_url(url, &keep)) != CF_OK)
		return rc;
	if ((rc = cf_https_global_init()) != CF_OK)
		return rc;
	cf_cofferd_client *c = calloc(1, sizeof(*c));
	if (!c)
		return CF_ERR_NOMEM;
	cf_buf_init(&c->reply, CF_COFFERD_MAX_REPLY, true);
	c->url = strndup(url, keep);
	c->ca_pem = malloc(len);
	c->curl = curl_easy_init();
	if (!c->url || !c->ca_pem || !c->curl) {
		cf_cofferd_client_free(c);
		return CF_ERR_NOMEM;
	}
	memcpy(c->ca_pem, ca_pem, len);
	c->ca_len = len;
	c->ca = (struct curl_blob){ .data = c->ca_pem, .len = c->ca_len, .flags = CURL_BLOB_NOCOPY };
	*out = c;
	return CF_OK;
}

/* A small file into b (whose max bounds it). */
static cf_err read_small(const char *path, cf_buf *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? CF_ERR_NOT_FOUND : CF_ERR_IO;
	cf_fd_io io = { fd };
	cf_reader r = cf_fd_reader(&io);
	cf_err rc = CF_OK;
	uint8_t chunk[4096];
	for (;;) {
		size_t got = 0;
		if ((rc = r.read(r.ctx, chunk, sizeof(chunk), &got)) != CF_OK || got == 0)
			break;
		if ((rc = cf_buf_append(b, chunk, got)) != CF_OK)
			break;
	}
	cf_wipe(chunk, sizeof(chunk));
	close(fd);
	return rc;
}

cf_err cf_cofferd_client_open(const char *url, const char *ca_pem_path, cf_cofferd_client **out)
{
	if (!ca_pem_path)
		return CF_ERR_ARG;
	cf_buf pem;
	cf_buf_init(&pem, CA_FILE_MAX, false);
	cf_err rc = read_small(ca_pem_path, &pem);
	if (rc == CF_OK && pem.len == 0)
		rc = CF_ERR_PARSE;
	if (rc == CF_OK)
		rc = cf_cofferd_client_open_pem(url, pem.data, pem.len, out);
	cf_buf_free(&pem);
	return rc;
}

void cf_cofferd_client_free(cf_cofferd_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->url);
	free(c->ca_pem);
	cf_buf_free(&c->reply);
	cf_wipe(c->token, sizeof(c->token));
	free(c);
}

const char *cf_cofferd_client_url(const cf_cofferd_client *c)
{
	return c->url;
}

const cf_cofferd_error *cf_cofferd_client_error(const cf_cofferd_client *c)
{
	return &c->err;
}

cf_err cf_cofferd_set_token(cf_cofferd_client *c, const char *token)
{
	if (!c)
		return CF_ERR_ARG;
	if (token && !cf_cofferd_valid_token(token))
		return CF_ERR_ARG;
	cf_wipe(c->token, sizeof(c->token));
	if (token)
		snprintf(c->token, sizeof(c->token), "%s", token);
	return CF_OK;
}

bool cf_cofferd_has_token(const cf_cofferd_client *c)
{
	return c && c->token[0] != '\0';
}

/* A path of printable ASCII without spaces, starting with '/'. */
static bool valid_path(const char *path)
{
	if (!path || path[0] != '/')
		return false;
	size_t n = strlen(path);
	if (n > CF_COFFERD_MAX_PATH)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)path[i];
		if (ch <= 0x20 || ch >= 0x7f || ch == '#' || ch == '\\')
			return false;
	}
	return true;
}

/* Frees a header list after wiping it: one of its lines carries the token. */
static void free_headers(struct curl_slist *h)
{
	for (struct curl_slist *p = h; p; p = p->next) {
		if (p->data)
			cf_wipe(p->data, strlen(p->data));
	}
	curl_slist_free_all(h);
}

/* Accept, the bearer token (if any) and content_type (if non-NULL); NULL if out of memory. */
static struct curl_slist *make_headers(const cf_cofferd_client *c, const char *accept,
				       const char *content_type)
{
	char line[CF_COFFERD_TOKEN_MAX + 64];
	struct curl_slist *h = NULL, *next;
	snprintf(line, sizeof(line), "Accept: %s", accept);
	if (!(h = curl_slist_append(h, line)))
		return NULL;
	/* No "100 continue" round trip before each body. */
	if (!(next = curl_slist_append(h, "Expect:")))
		goto fail;
	h = next;
	if (content_type) {
		snprintf(line, sizeof(line), "Content-Type: %s", content_type);
		if (!(next = curl_slist_append(h, line)))
			goto fail;
		h = next;
	}
	if (c->token[0]) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", c->token);
		next = curl_slist_append(h, line);
		cf_wipe(line, sizeof(line));
		if (!next)
			goto fail;
		h = next;
	}
	return h;
fail:
	free_headers(h);
	return NULL;
}

static size_t on_reply(char *ptr, size_t size, size_t nmemb, void *arg)
{
	cf_cofferd_client *c = arg;
	size_t n = size * nmemb;
	if (cf_buf_append(&c->reply, ptr, n) != CF_OK) {
		c->reply_too_big = true;
		return 0; /* aborts the transfer */
	}
	return n;
}

/*
 * Resets the handle to the shared policy (connections survive) and
 * points it at base + path.
 */
static cf_err prepare(cf_cofferd_client *c, const char *path, const char *query)
{
	char url[CF_HTTPS_MAX_URL + CF_COFFERD_MAX_PATH + 64];
	if (c->busy)
		return CF_ERR_ARG;
	memset(&c->err, 0, sizeof(c->err));
	if (!valid_path(path)) {
		client_error(c, 0, NULL, "not a request path");
		return CF_ERR_ARG;
	}
	snprintf(url, sizeof(url), "%s%s%s", c->url, path, query ? query : "");
	c->curl_error[0] = '\0';
	curl_easy_reset(c->curl);
	CURLcode e = cf_https_pin(c->curl, &c->ca, c->curl_error);
	if (!e) e = curl_easy_setopt(c->curl, CURLOPT_URL, url);
	if (e) {
		client_error(c, 0, NULL, "%s", curl_easy_strerror(e));
		return e == CURLE_OUT_OF_MEMORY ? CF_ERR_NOMEM : CF_ERR_UNSUPPORTED;
	}
	return CF_OK;
}

/* The transport's failure, with the reason in the client. */
static cf_err transport_error(cf_cofferd_client *c, CURLcode e)
{
	client_error(c, 0, NULL, "%s: %s", c->url,
		     c->curl_error[0] ? c->curl_error : curl_easy_strerror(e));
	return CF_ERR_IO;
}

/* Progress of one transfer, reported as base + bytes moved so far, of total. */
struct xfer_progress {
	cf_cofferd_progress_fn fn;
	void *ctx;
	uint64_t base, total;
	bool upload;
};

static int on_xferinfo(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	(void)dltotal;
	(void)ultotal;
	struct xfer_progress *p = arg;
	curl_off_t now = p->upload ? ulnow : dlnow;
	p->fn(p->ctx, p->base + (uint64_t)(now > 0 ? now : 0), p->total);
	return 0;
}

/*
 * One exchange whose answer is JSON. body/len is sent as is (NULL: no
 * body) as content_type, query (may be NULL) follows the path.
 */
static cf_err exchange(cf_cofferd_client *c, const char *method, const char *path,
		       const char *query, const void *body, size_t len, const char *content_type,
		       struct xfer_progress *xp, json_t **reply, long *status)
{
	struct curl_slist *headers = NULL;
	long code = 0;
	cf_err rc;
	*reply = NULL;
	*status = 0;
	if ((rc = prepare(c, path, query)) != CF_OK)
		return rc;
	cf_buf_reset(&c->reply);
	c->reply_too_big = false;
	CURL *h = c->curl;
	headers = make_headers(c, "application/json", body ? content_type : NULL);
	if (!headers) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	CURLcode e = curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	if (!e) e = curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CF_COFFERD_MAX_REPLY);
	if (!e) e = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_reply);
	if (!e) e = curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	if (strcmp(method, "GET") == 0) {
		if (!e) e = curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else {
		if (!e && strcmp(method, "POST") != 0)
			e = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		if (body) {
			if (!e) e = curl_easy_setopt(h, CURLOPT_POST, 1L);
			if (!e) e = curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
			if (!e) e = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		}
	}
	if (xp) {
		if (!e) e = curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		if (!e) e = curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
		if (!e) e = curl_easy_setopt(h, CURLOPT_XFERINFODATA, xp);
	}
	/* A part of 8 MiB may crawl; a JSON call should not. */
	if (len > CF_COFFERD_MAX_REPLY) {
		if (!e) e = curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_BYTES);
		if (!e) e = curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_SECONDS);
	} else {
		if (!e) e = curl_easy_setopt(h, CURLOPT_TIMEOUT, JSON_TIMEOUT);
	}
	if (e) {
		client_error(c, 0, NULL, "%s", curl_easy_strerror(e));
		rc = e == CURLE_OUT_OF_MEMORY ? CF_ERR_NOMEM : CF_ERR_UNSUPPORTED;
		goto out;
	}
	e = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (c->reply_too_big || e == CURLE_FILESIZE_EXCEEDED) {
		client_error(c, code, NULL, "the answer is larger than 1 MiB");
		rc = CF_ERR_TOO_BIG;
		goto out;
	}
	if (e != CURLE_OK) {
		rc = transport_error(c, e);
		goto out;
	}
	*status = code;
	if (cf_json_parse(c->reply.data ? (const char *)c->reply.data : "", c->reply.len, NULL,
			  reply) != CF_OK) {
		if (code >= 200 && code < 300) {
			client_error(c, code, NULL, "the answer is not JSON");
			rc = CF_ERR_PARSE;
		} else {
			client_error(c, code, NULL, "HTTP %ld (the answer is not JSON)", code);
			rc = status_err(code);
		}
		goto out;
	}
	if (code < 200 || code >= 300)
		keep_refusal(c, code, *reply);
	rc = CF_OK;
out:
	/* Nothing of this request outlives it in the handle: the next one resets it. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, NULL);
	free_headers(headers);
	cf_buf_reset(&c->reply);
	return rc;
}

/* Serialises body (or "{}" for POST and PUT) into *text; NULL for none. */
static cf_err body_text(const char *method, const json_t *body, char **text, size_t *len)
{
	*text = NULL;
	*len = 0;
	bool sends = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0;
	if (!sends)
		return body ? CF_ERR_ARG : CF_OK;
	if (!body) {
		*text = strdup("{}");
		*len = 2;
		return *text ? CF_OK : CF_ERR_NOMEM;
	}
	cf_err rc = cf_json_canonical(body, text, len);
	if (rc == CF_OK && *len > CF_COFFERD_MAX_REPLY) {
		free(*text);
		*text = NULL;
		return CF_ERR_TOO_BIG;
	}
	return rc;
}

static bool known_method(const char *m)
{
	return m && (strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 ||
		     strcmp(m, "DELETE") == 0);
}

cf_err cf_cofferd_request(cf_cofferd_client *c, const char *method, const char *path,
			  const json_t *body, json_t **reply, long *status)
{
	char *text = NULL;
	size_t len = 0;
	if (!c || !reply || !status)
		return CF_ERR_ARG;
	*reply = NULL;
	*status = 0;
	if (!known_method(method))
		return CF_ERR_ARG;
	cf_err rc = body_text(method, body, &text, &len);
	if (rc == CF_ERR_TOO_BIG)
		client_error(c, 0, NULL, "the request is larger than 1 MiB");
	if (rc == CF_OK)
		rc = exchange(c, method, path, NULL, text, len, "application/json", NULL, reply,
			      status);
	/* A request may carry a password or a signature: wipe the text. */
	if (text) {
		cf_wipe(text, len);
		free(text);
	}
	return rc;
}

/* Maps a non-2xx answer or a non-object to an error; keeps *reply only on success. */
static cf_err expect_object(cf_cofferd_client *c, cf_err rc, long status, json_t **r)
{
	if (rc != CF_OK)
		return rc;
	if (status < 200 || status >= 300) {
		json_decref(*r);
		*r = NULL;
		return status_err(status);
	}
	if (!json_is_object(*r)) {
		client_error(c, status, NULL, "the answer is not a JSON object");
		json_decref(*r);
		*r = NULL;
		return CF_ERR_PARSE;
	}
	return CF_OK;
}

cf_err cf_cofferd_call(cf_cofferd_client *c, const char *method, const char *path,
		       const json_t *body, json_t **reply)
{
	json_t *r = NULL;
	long status = 0;
	if (reply)
		*reply = NULL;
	cf_err rc = cf_cofferd_request(c, method, path, body, &r, &status);
	rc = expect_object(c, rc, status, &r);
	if (rc == CF_OK && reply)
		*reply = r;
	else
		json_decref(r);
	return rc;
}

/* Wipes a string member's bytes in place before the object is freed. */
static void wipe_member(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	if (json_is_string(v))
		cf_wipe((char *)json_string_value(v), json_string_length(v));
}

cf_err cf_cofferd_login(cf_cofferd_client *c, const char *username, const uint8_t *password,
			size_t passlen, cf_buf *token, long long *expires)
{
	json_t *body = NULL, *reply = NULL;
	const char *t;
	cf_err rc;
	if (!c || !username || !password)
		return CF_ERR_ARG;
	memset(&c->err, 0, sizeof(c->err));
	/* json_stringn refuses bytes that are not UTF-8 and embedded NULs only with the check below. */
	if (memchr(password, 0, passlen)) {
		rc = CF_ERR_ARG;
		goto out;
	}
	body = json_pack("{s:s, s:s%}", "username", username, "password", (const char *)password,
			 passlen);
	if (!body) {
		rc = CF_ERR_ARG;
		goto out;
	}
	/* Any token held before is not sent with a login. */
	if ((rc = cf_cofferd_set_token(c, NULL)) != CF_OK)
		goto out;
	if ((rc = cf_cofferd_call(c, "POST", "/v1/login", body, &reply)) != CF_OK)
		goto out;
	if (cf_json_get_string(reply, "token", &t) != CF_OK || !cf_cofferd_valid_token(t)) {
		client_error(c, 200, NULL, "the answer carries no valid token");
		rc = CF_ERR_PARSE;
		goto out;
	}
	if ((rc = cf_cofferd_set_token(c, t)) != CF_OK)
		goto out;
	if (token && ((rc = cf_buf_append_str(token, t)) != CF_OK ||
		      (rc = cf_buf_terminate(token)) != CF_OK))
		goto out;
	if (expires && cf_json_get_int(reply, "expires", expires) != CF_OK)
		*expires = 0;
out:
	if (body) {
		wipe_member(body, "password");
		json_decref(body);
	}
	if (reply) {
		wipe_member(reply, "token");
		json_decref(reply);
	}
	if (rc != CF_OK)
		cf_wipe(c->token, sizeof(c->token));
	return rc;
}

/* --- blobs --- */

cf_err cf_cofferd_upload(cf_cofferd_client *c, const char *path, cf_reader in, uint64_t size,
			 cf_cofferd_progress_fn progress, void *ctx, uint8_t sha256[CF_SHA256_LEN])
{
	uint8_t *part = NULL;
	cf_hash_ctx *h = NULL;
	json_t *reply = NULL;
	uint64_t offset = 0;
	cf_err rc;
	if (!c || !path || !in.read)
		return CF_ERR_ARG;
	memset(&c->err, 0, sizeof(c->err));
	if ((rc = cf_hash_new(CF_SHA256, &h)) != CF_OK)
		goto out;
	if (!(part = malloc(CF_COFFERD_PART_MAX))) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	if (progress)
		progress(ctx, 0, size);
	while (offset < size) {
		uint64_t left = size - offset;
		size_t want = left < CF_COFFERD_PART_MAX ? (size_t)left : CF_COFFERD_PART_MAX;
		size_t got = 0;
		char query[48];
		long status = 0;
		long long received;
		if ((rc = cf_read_full(in, part, want, &got)) != CF_OK)
			goto out;
		if (got < want) {
			client_error(c, 0, NULL, "the input ended after %" PRIu64 " of %" PRIu64 " bytes",
				     offset + got, size);
			rc = CF_ERR_TRUNCATED;
			goto out;
		}
		if ((rc = cf_hash_update(h, part, got)) != CF_OK)
			goto out;
		snprintf(query, sizeof(query), "?offset=%" PRIu64, offset);
		struct xfer_progress xp = { progress, ctx, offset, size, true };
		rc = exchange(c, "PUT", path, query, part, got, "application/octet-stream",
			      progress ? &xp : NULL, &reply, &status);
		if ((rc = expect_object(c, rc, status, &reply)) != CF_OK)
			goto out;
		if (cf_json_get_int(reply, "received", &received) != CF_OK || received < 0 ||
		    (uint64_t)received != offset + got) {
			client_error(c, status, NULL,
				     "cofferd acknowledged another byte count than the %" PRIu64
				     " sent so far",
				     offset + got);
			rc = CF_ERR_PARSE;
			goto out;
		}
		json_decref(reply);
		reply = NULL;
		offset += got;
		if (progress)
			progress(ctx, offset, size);
	}
	/* Exactly size bytes: one more would mean the source changed under us. */
	uint8_t extra;
	size_t more = 0;
	if ((rc = cf_read_full(in, &extra, 1, &more)) != CF_OK)
		goto out;
	if (more) {
		client_error(c, 0, NULL, "the input holds more than the %" PRIu64 " bytes declared",
			     size);
		rc = CF_ERR_TRAILING;
		goto out;
	}
	uint8_t digest[CF_SHA256_LEN];
	if ((rc = cf_hash_final(h, digest)) != CF_OK)
		goto out;
	if (sha256)
		memcpy(sha256, digest, CF_SHA256_LEN);
out:
	json_decref(reply);
	cf_hash_free(h);
	free(part);
	return rc;
}

struct cf_cofferd_stream {
	cf_cofferd_client *c;
	CURLM *multi;
	bool attached;
	struct curl_slist *headers;
	cf_buf pending;        /* received, not yet read */
	size_t off;
	cf_buf errbody;        /* the body of a refusal */
	bool status_known, refused, paused, done, too_big, finished;
	long status;
	CURLcode result;
	uint64_t count, max;
	cf_hash_ctx *sha;
	uint8_t digest[CF_SHA256_LEN];
};

static size_t on_stream_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	cf_cofferd_stream *s = arg;
	size_t n = size * nmemb;
	if (!s->status_known) {
		curl_easy_getinfo(s->c->curl, CURLINFO_RESPONSE_CODE, &s->status);
		s->status_known = true;
		s->refused = s->status < 200 || s->status >= 300;
	}
	if (s->refused)
		return cf_buf_append(&s->errbody, ptr, n) == CF_OK ? n : 0;
	/* Far enough ahead of the reader: curl keeps this data and calls again after unpausing. */
	if (s->pending.len - s->off >= STREAM_HIGH_WATER) {
		s->paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (n > s->max - s->count) {
		s->too_big = true;
		return 0;
	}
	if (s->off == s->pending.len) {
		cf_buf_reset(&s->pending);
		s->off = 0;
	}
	if (cf_buf_append(&s->pending, ptr, n) != CF_OK ||
	    (s->sha && cf_hash_update(s->sha, ptr, n) != CF_OK)) {
		s->too_big = true;
		return 0;
	}
	s->count += n;
	return n;
}

/* One step of the transfer: runs curl, waits up to a second for the socket if nothing came. */
static void stream_pump(cf_cofferd_stream *s)
{
	int running = 0;
	CURLMcode m = curl_multi_perform(s->multi, &running);
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(s->multi, &left)) != NULL) {
		if (msg->msg == CURLMSG_DONE) {
			s->done = true;
			s->result = msg->data.result;
		}
	}
	if (m != CURLM_OK && !s->done) {
		s->done = true;
		s->result = CURLE_FAILED_INIT;
	}
	if (!s->done && s->pending.len == s->off && !s->paused)
		curl_multi_poll(s->multi, NULL, 0, 1000, NULL);
}

/* The error of a finished transfer (CF_OK if it ended well). */
static cf_err stream_result(cf_cofferd_stream *s)
{
	cf_cofferd_client *c = s->c;
	if (!s->status_known) {
		curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &s->status);
		s->status_known = s->status != 0;
		s->refused = s->status_known && (s->status < 200 || s->status >= 300);
	}
	if (s->too_big) {
		client_error(c, s->status, NULL, "the answer is larger than the %" PRIu64
				" bytes expected", s->max);
		return CF_ERR_TOO_BIG;
	}
	if (s->refused) {
		json_t *body = NULL;
		if (cf_json_parse(s->errbody.data ? (const char *)s->errbody.data : "",
				  s->errbody.len, NULL, &body) == CF_OK)
			keep_refusal(c, s->status, body);
		else
			client_error(c, s->status, NULL, "HTTP %ld (the answer is not JSON)",
				     s->status);
		json_decref(body);
		return status_err(s->status);
	}
	if (s->result != CURLE_OK)
		return transport_error(c, s->result);
	return CF_OK;
}

static cf_err stream_read(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
	cf_cofferd_stream *s = ctx;
	*got = 0;
	while (s->pending.len == s->off && !s->done) {
		if (s->paused) {
			s->paused = false;
			/* May call on_stream_data at once with the data it held back. */
			curl_easy_pause(s->c->curl, CURLPAUSE_CONT);
			continue;
		}
		stream_pump(s);
	}
	size_t avail = s->pending.len - s->off;
	if (avail == 0) {
		cf_err rc = stream_result(s);
		if (rc != CF_OK)
			return rc;
		if (!s->finished) {
			s->finished = true;
			if (s->sha && (rc = cf_hash_final(s->sha, s->digest)) != CF_OK)
				return rc;
		}
		return CF_OK; /* the end */
	}
	size_t n = avail < cap ? avail : cap;
	memcpy(buf, s->pending.data + s->off, n);
	s->off += n;
	*got = n;
	return CF_OK;
}

void cf_cofferd_stream_free(cf_cofferd_stream *s)
{
	if (!s)
		return;
	if (s->attached) {
		curl_multi_remove_handle(s->multi, s->c->curl);
		curl_easy_setopt(s->c->curl, CURLOPT_HTTPHEADER, NULL);
	}
	if (s->multi)
		curl_multi_cleanup(s->multi);
	if (s->c)
		s->c->busy = false;
	free_headers(s->headers);
	cf_hash_free(s->sha);
	cf_buf_free(&s->pending);
	cf_buf_free(&s->errbody);
	free(s);
}

cf_err cf_cofferd_stream_open(cf_cofferd_client *c, const char *path, uint64_t max, bool sha256,
			      cf_cofferd_stream **out)
{
	cf_cofferd_stream *s = NULL;
	cf_err rc;
	if (!c || !out)
		return CF_ERR_ARG;
	*out = NULL;
	if ((rc = prepare(c, path, NULL)) != CF_OK)
		return rc;
	if (!(s = calloc(1, sizeof(*s))))
		return CF_ERR_NOMEM;
	s->c = c;
	s->max = max;
	cf_buf_init(&s->pending, STREAM_BUF_MAX, false);
	cf_buf_init(&s->errbody, ERROR_BODY_MAX, false);
	if (sha256 && (rc = cf_hash_new(CF_SHA256, &s->sha)) != CF_OK)
		goto out;
	s->headers = make_headers(c, "application/octet-stream, application/json", NULL);
	s->multi = curl_multi_init();
	if (!s->headers || !s->multi) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	CURL *h = c->curl;
	CURLcode e = curl_easy_setopt(h, CURLOPT_HTTPHEADER, s->headers);
	if (!e) e = curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	if (!e) e = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_stream_data);
	if (!e) e = curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
	/* A large blob has no deadline, but a stalled one does. */
	if (!e) e = curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_BYTES);
	if (!e) e = curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_SECONDS);
	if (e) {
		client_error(c, 0, NULL, "%s", curl_easy_strerror(e));
		rc = e == CURLE_OUT_OF_MEMORY ? CF_ERR_NOMEM : CF_ERR_UNSUPPORTED;
		goto out;
	}
	if (curl_multi_add_handle(s->multi, h) != CURLM_OK) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	s->attached = true;
	c->busy = true;
	/* Until the status is known: a refusal is reported here, before any byte is read. */
	while (!s->done && !(s->status_known && !s->refused))
		stream_pump(s);
	if (s->done && (rc = stream_result(s)) != CF_OK)
		goto out;
	*out = s;
	s = NULL;
	rc = CF_OK;
out:
	cf_cofferd_stream_free(s);
	return rc;
}

cf_reader cf_cofferd_stream_reader(cf_cofferd_stream *s)
{
	return (cf_reader){ stream_read, s };
}

uint64_t cf_cofferd_stream_count(const cf_cofferd_stream *s)
{
	return s->count;
}

cf_err cf_cofferd_stream_sha256(cf_cofferd_stream *s, uint8_t out[CF_SHA256_LEN])
{
	if (!s || !s->finished || !s->sha)
		return CF_ERR_ARG;
	memcpy(out, s->digest, CF_SHA256_LEN);
	return CF_OK;
}

cf_err cf_cofferd_expect_check(const cf_cofferd_expect *expect, uint64_t size,
			       const uint8_t sha256[CF_SHA256_LEN])
{
	if (!expect)
		return CF_OK;
	if (expect->size != UINT64_MAX && size != expect->size)
		return size < expect->size ? CF_ERR_TRUNCATED : CF_ERR_TOO_BIG;
	/* Public values (cofferd's metadata): a plain comparison is fine. */
	if (expect->sha256 && memcmp(expect->sha256, sha256, CF_SHA256_LEN) != 0)
		return CF_ERR_AUTH;
	return CF_OK;
}

cf_err cf_cofferd_download(cf_cofferd_client *c, const char *path, cf_writer out,
			   const cf_cofferd_expect *expect, uint64_t max,
			   cf_cofferd_progress_fn progress, void *ctx, uint64_t *size,
			   uint8_t sha256[CF_SHA256_LEN])
{
	cf_cofferd_stream *s = NULL;
	uint8_t *chunk = NULL;
	uint8_t digest[CF_SHA256_LEN];
	uint64_t limit = expect && expect->size != UINT64_MAX ? expect->size : max;
	uint64_t total = expect && expect->size != UINT64_MAX ? expect->size : 0;
	cf_err rc;
	if (!c || !out.write)
		return CF_ERR_ARG;
	if ((rc = cf_cofferd_stream_open(c, path, limit, true, &s)) != CF_OK)
		goto out;
	if (!(chunk = malloc(COPY_CHUNK))) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	cf_reader r = cf_cofferd_stream_reader(s);
	for (;;) {
		size_t got = 0;
		if ((rc = r.read(r.ctx, chunk, COPY_CHUNK, &got)) != CF_OK)
			goto out;
		if (got == 0)
			break;
		if ((rc = out.write(out.ctx, chunk, got)) != CF_OK)
			goto out;
		if (progress)
			progress(ctx, s->count, total);
	}
	if ((rc = cf_cofferd_stream_sha256(s, digest)) != CF_OK)
		goto out;
	if (size)
		*size = s->count;
	if (sha256)
		memcpy(sha256, digest, CF_SHA256_LEN);
	if ((rc = cf_cofferd_expect_check(expect, s->count, digest)) != CF_OK) {
		char want[2 * CF_SHA256_LEN + 1] = "", gothex[2 * CF_SHA256_LEN + 1];
		cf_hex_encode(digest, CF_SHA256_LEN, gothex);
		if (expect->sha256)
			cf_hex_encode(expect->sha256, CF_SHA256_LEN, want);
		if (rc == CF_ERR_AUTH)
			client_error(c, 0, NULL, "the bytes hash to %s, not the declared %s", gothex,
				     want);
		else
			client_error(c, 0, NULL, "%" PRIu64 " bytes arrived, not the declared %" PRIu64,
				     s->count, expect->size);
	}
out:
	free(chunk);
	cf_cofferd_stream_free(s);
	return rc;
}

/* --- the profile --- */

/* profile dir + "/" + name, or name itself if absolute. */
static cf_err profile_path(const char *dir, const char *name, char *out, size_t cap)
{
	int n = name[0] == '/' ? snprintf(out, cap, "%s", name)
			       : snprintf(out, cap, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= cap ? CF_ERR_TOO_BIG : CF_OK;
}

cf_err cf_cofferd_profile_load(cf_cofferd_profile *p)
{
	char path[4200];
	cf_buf text;
	json_t *j = NULL;
	const char *url, *ca, *user, *token_file;
	size_t keep;
	cf_err rc;
	memset(p, 0, sizeof(*p));
	cf_buf_init(&text, PROFILE_FILE_MAX, false);
	if ((rc = cf_profile_dir(p->dir, sizeof(p->dir))) != CF_OK)
		goto out;
	if ((rc = profile_path(p->dir, CF_COFFERD_PROFILE, path, sizeof(path))) != CF_OK)
		goto out;
	if ((rc = read_small(path, &text)) != CF_OK)
		goto out;
	if (cf_json_parse(text.data ? (const char *)text.data : "", text.len, NULL, &j) != CF_OK ||
	    !json_is_object(j) || cf_json_get_string(j, "url", &url) != CF_OK ||
	    cf_https_check_url(url, &keep) != CF_OK || strlen(url) >= sizeof(p->url)) {
		rc = CF_ERR_PARSE;
		goto out;
	}
	switch (cf_json_get_string(j, "ca", &ca)) {
	case CF_OK: break;
	case CF_ERR_NOT_FOUND: ca = CF_COFFERD_CA_FILE; break;
	default: rc = CF_ERR_PARSE; goto out;
	}
	switch (cf_json_get_string(j, "token_file", &token_file)) {
	case CF_OK: break;
	case CF_ERR_NOT_FOUND: token_file = CF_COFFERD_TOKEN_FILE; break;
	default: rc = CF_ERR_PARSE; goto out;
	}
	switch (cf_json_get_string(j, "user", &user)) {
	case CF_OK: break;
	case CF_ERR_NOT_FOUND: user = ""; break;
	default: rc = CF_ERR_PARSE; goto out;
	}
	if (!*ca || !*token_file || strlen(user) >= sizeof(p->user)) {
		rc = CF_ERR_PARSE;
		goto out;
	}
	snprintf(p->url, sizeof(p->url), "%.*s", (int)keep, url);
	snprintf(p->user, sizeof(p->user), "%s", user);
	if ((rc = profile_path(p->dir, ca, p->ca_path, sizeof(p->ca_path))) != CF_OK ||
	    (rc = profile_path(p->dir, token_file, p->token_path, sizeof(p->token_path))) != CF_OK)
		goto out;
out:
	json_decref(j);
	cf_buf_free(&text);
	return rc;
}

/* Writes a whole file atomically (temporary name, fsync, rename) with mode 0600. */
static cf_err write_atomic(const char *path, const void *data, size_t len)
{
	cf_outfile of;
	cf_err rc = cf_outfile_open(&of, path, 0600);
	if (rc != CF_OK)
		return rc;
	cf_writer w = cf_outfile_writer(&of);
	if ((rc = w.write(w.ctx, data, len)) != CF_OK) {
		cf_outfile_abort(&of);
		return rc;
	}
	if ((rc = cf_outfile_commit(&of)) != CF_OK)
		return rc;
	return cf_fsync_parent(path);
}

/* True if the PEM holds at least one certificate. */
static bool pem_has_cert(const void *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	bool ok = x != NULL;
	X509_free(x);
	BIO_free(bio);
	return ok;
}

cf_err cf_cofferd_profile_save(const char *url, const char *user, const void *ca_pem,
			       size_t ca_len, cf_cofferd_profile *p)
{
	char dir[4096], path[4200];
	json_t *j = NULL;
	char *text = NULL;
	size_t keep;
	cf_err rc;
	if (!url || !user || !ca_pem || ca_len == 0 || ca_len > CA_FILE_MAX ||
	    cf_https_check_url(url, &keep) != CF_OK || !cf_kms_valid_name(user))
		return CF_ERR_ARG;
	if (!pem_has_cert(ca_pem, ca_len))
		return CF_ERR_PARSE;
	if ((rc = cf_profile_mkdir(dir, sizeof(dir))) != CF_OK)
		goto out;
	if ((rc = profile_path(dir, CF_COFFERD_CA_FILE, path, sizeof(path))) != CF_OK ||
	    (rc = write_atomic(path, ca_pem, ca_len)) != CF_OK)
		goto out;
	j = json_pack("{s:s%, s:s, s:s, s:s}", "url", url, keep, "ca", CF_COFFERD_CA_FILE, "user",
		      user, "token_file", CF_COFFERD_TOKEN_FILE);
	text = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	if (!text) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	size_t tl = strlen(text);
	text[tl] = '\n'; /* replaces the NUL: written with its length */
	if ((rc = profile_path(dir, CF_COFFERD_PROFILE, path, sizeof(path))) != CF_OK ||
	    (rc = write_atomic(path, text, tl + 1)) != CF_OK)
		goto out;
	if (p)
		rc = cf_cofferd_profile_load(p);
out:
	free(text);
	json_decref(j);
	return rc;
}

cf_err cf_cofferd_token_write(const char *path, const char *token)
{
	char line[CF_COFFERD_TOKEN_MAX + 2];
	if (!path || !cf_cofferd_valid_token(token))
		return CF_ERR_ARG;
	int n = snprintf(line, sizeof(line), "%s\n", token);
	cf_err rc = write_atomic(path, line, (size_t)n);
	cf_wipe(line, sizeof(line));
	return rc;
}

cf_err cf_cofferd_token_read(const char *path, cf_buf *token)
{
	struct stat st;
	uint8_t chunk[TOKEN_FILE_MAX + 1];
	size_t len = 0;
	cf_err rc = CF_OK;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? CF_ERR_NOT_FOUND : CF_ERR_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = CF_ERR_IO;
		goto out;
	}
	if (st.st_mode & 077) {
		rc = CF_ERR_AUTH; /* a token others can read is theirs too */
		goto out;
	}
	cf_fd_io io = { fd };
	if ((rc = cf_read_full(cf_fd_reader(&io), chunk, sizeof(chunk), &len)) != CF_OK)
		goto out;
	if (len > TOKEN_FILE_MAX) {
		rc = CF_ERR_PARSE;
		goto out;
	}
	while (len && (chunk[len - 1] == '\n' || chunk[len - 1] == '\r'))
		len--;
	chunk[len] = '\0';
	if (!cf_cofferd_valid_token((const char *)chunk)) {
		rc = CF_ERR_PARSE;
		goto out;
	}
	cf_buf_reset(token);
	if ((rc = cf_buf_append(token, chunk, len)) == CF_OK)
		rc = cf_buf_terminate(token);
out:
	cf_wipe(chunk, sizeof(chunk));
	close(fd);
	return rc;
}

cf_err cf_cofferd_client_open_profile(const char *url, const char *ca_pem_path, bool with_token,
				      cf_cofferd_client **out)
{
	cf_cofferd_profile p;
	cf_buf token;
	cf_cofferd_client *c = NULL;
	cf_err rc;
	cf_buf_init(&token, TOKEN_FILE_MAX + 1, true);
	*out = NULL;
	if (url && ca_pem_path && !with_token) {
		rc = cf_cofferd_client_open(url, ca_pem_path, out);
		goto out;
	}
	if ((rc = cf_cofferd_profile_load(&p)) != CF_OK)
		goto out;
	if ((rc = cf_cofferd_client_open(url ? url : p.url, ca_pem_path ? ca_pem_path : p.ca_path,
					 &c)) != CF_OK)
		goto out;
	if (with_token) {
		if ((rc = cf_cofferd_token_read(p.token_path, &token)) != CF_OK)
			goto out;
		if ((rc = cf_cofferd_set_token(c, (const char *)token.data)) != CF_OK)
			goto out;
	}
	*out = c;
	c = NULL;
out:
	cf_cofferd_client_free(c);
	cf_buf_free(&token);
	return rc;
}
