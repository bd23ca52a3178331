/*
 * cofferd_client: the pure helpers (ids, tokens, sizes, path segments,
 * download checks), then the client against a local TLS 1.3 server in a
 * thread playing cofferd: JSON calls and the error mapping, hostile
 * answers (not JSON, huge, wrong types, the token echoed back), login,
 * uploads in 8 MiB parts at the right offsets, streamed downloads with
 * their size and SHA-256 checked, pinning, and the profile.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "coffer/buf.h"
#include "coffer/cofferd_client.h"
#include "coffer/crypto.h"
#include "coffer/enc.h"
#include "coffer/io.h"
#include "coffer/json.h"

#define TOKEN "cft_Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"
#define MiB (1u << 20)
#define TOKEN_BIG 1100 /* over the 1 KiB a token file may hold */

static char tmpdir[64];

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static void sha256(const void *p, size_t n, uint8_t out[32])
{
	unsigned int len = 0;
	assert_int_equal(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL), 1);
}

/* --- pure helpers --- */

static void test_valid_id(void **state)
{
	(void)state;
	assert_true(cf_cofferd_valid_id("task-0123456789abcdef", "task"));
	assert_true(cf_cofferd_valid_id("ds-ffffffffffffffff", "ds"));
	assert_false(cf_cofferd_valid_id("task-0123456789ABCDEF", "task"));
	assert_false(cf_cofferd_valid_id("task-0123456789abcde", "task"));
	assert_false(cf_cofferd_valid_id("task-0123456789abcdef0", "task"));
	assert_false(cf_cofferd_valid_id("run-0123456789abcdef", "task"));
	assert_false(cf_cofferd_valid_id("task0123456789abcdef", "task"));
	assert_false(cf_cofferd_valid_id("task-0123456789abcdeg", "task"));
	assert_false(cf_cofferd_valid_id("task-../../v1/audit00", "task"));
	assert_false(cf_cofferd_valid_id("task-0123456789abcde?", "task"));
	assert_false(cf_cofferd_valid_id("tas-0123456789abcdef", "task"));
	assert_false(cf_cofferd_valid_id("", "task"));
	assert_false(cf_cofferd_valid_id(NULL, "task"));
	assert_false(cf_cofferd_valid_id("task-0123456789abcdef", ""));
	assert_false(cf_cofferd_valid_id("task-0123456789abcdef", NULL));
}

static void test_valid_token(void **state)
{
	(void)state;
	char long_token[CF_COFFERD_TOKEN_MAX + 2];
	assert_true(cf_cofferd_valid_token(TOKEN));
	assert_true(cf_cofferd_valid_token("a"));
	memset(long_token, 'a', sizeof(long_token));
	long_token[CF_COFFERD_TOKEN_MAX] = '\0';
	assert_true(cf_cofferd_valid_token(long_token));
	long_token[CF_COFFERD_TOKEN_MAX] = 'a';
	long_token[CF_COFFERD_TOKEN_MAX + 1] = '\0';
	assert_false(cf_cofferd_valid_token(long_token));
	/* Nothing that could end or add a header line. */
	static const char *const bad[] = { "", "cft_a b", "cft_a\r\nX-Evil: 1", "cft_a:b",
					   "cft_=", "cft_+/", "cft_\xc3\xa9", "cft_a\t" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(cf_cofferd_valid_token(bad[i]));
	assert_false(cf_cofferd_valid_token(NULL));
}

static void test_parse_size(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{ "1", 1 },
		{ "1048576", 1048576 },
		{ "512M", 512ull << 20 },
		{ "512m", 512ull << 20 },
		{ "2G", 2ull << 30 },
		{ "2GiB", 2ull << 30 },
		{ "2gb", 2ull << 30 },
		{ "4K", 4096 },
		{ "1T", 1ull << 40 },
		{ "100B", 100 },
		{ "8388608T", 1ull << 63 },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uint64_t v = 0;
		assert_int_equal(cf_cofferd_parse_size(good[i].s, &v), CF_OK);
		assert_true(v == good[i].v);
	}
	static const char *const bad[] = {
		"", "0", "0M", "-1", "+1", " 1", "1 ", "1.5G", "1X", "1MM", "M", "1Mi",
		"8388609T", "99999999999999999999", "18446744073709551615",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 7;
		assert_int_equal(cf_cofferd_parse_size(bad[i], &v), CF_ERR_ARG);
		assert_true(v == 7);
	}
	uint64_t v;
	assert_int_equal(cf_cofferd_parse_size(NULL, &v), CF_ERR_ARG);
}

static void test_format_size(void **state)
{
	(void)state;
	char s[32];
	cf_cofferd_format_size(0, s, sizeof(s));
	assert_string_equal(s, "0 B");
	cf_cofferd_format_size(1023, s, sizeof(s));
	assert_string_equal(s, "1023 B");
	cf_cofferd_format_size(1536, s, sizeof(s));
	assert_string_equal(s, "1.5 KiB");
	cf_cofferd_format_size(3ull << 30, s, sizeof(s));
	assert_string_equal(s, "3.0 GiB");
	cf_cofferd_format_size(UINT64_MAX, s, sizeof(s));
	assert_string_equal(s, "16.0 EiB");
	char tiny[4];
	cf_cofferd_format_size(123456789, tiny, sizeof(tiny));
	assert_int_equal(strlen(tiny), 3);
}

static void test_path_segment(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(cf_cofferd_path_segment("result", out, sizeof(out)), CF_OK);
	assert_string_equal(out, "result");
	assert_int_equal(cf_cofferd_path_segment("a-b_c.d~E9", out, sizeof(out)), CF_OK);
	assert_string_equal(out, "a-b_c.d~E9");
	assert_int_equal(cf_cofferd_path_segment("../x?y#z /\xff", out, sizeof(out)), CF_OK);
	assert_string_equal(out, "..%2Fx%3Fy%23z%20%2F%FF");
	assert_int_equal(cf_cofferd_path_segment("..", out, sizeof(out)), CF_OK);
	assert_string_equal(out, "%2E%2E");
	assert_int_equal(cf_cofferd_path_segment(".", out, sizeof(out)), CF_OK);
	assert_string_equal(out, "%2E");
	assert_int_equal(cf_cofferd_path_segment("", out, sizeof(out)), CF_ERR_ARG);
	assert_int_equal(cf_cofferd_path_segment(NULL, out, sizeof(out)), CF_ERR_ARG);
	char small[4];
	assert_int_equal(cf_cofferd_path_segment("abcd", small, sizeof(small)), CF_ERR_TOO_BIG);
	assert_int_equal(cf_cofferd_path_segment("a/", small, sizeof(small)), CF_ERR_TOO_BIG);
	assert_int_equal(cf_cofferd_path_segment("abc", small, sizeof(small)), CF_OK);
}

static void test_state_final(void **state)
{
	(void)state;
	assert_true(cf_cofferd_state_final("succeeded"));
	assert_true(cf_cofferd_state_final("failed"));
	assert_true(cf_cofferd_state_final("cancelled"));
	assert_false(cf_cofferd_state_final("running"));
	assert_false(cf_cofferd_state_final("pending"));
	assert_false(cf_cofferd_state_final("approved"));
	assert_false(cf_cofferd_state_final("Succeeded"));
	assert_false(cf_cofferd_state_final(""));
	assert_false(cf_cofferd_state_final(NULL));
}

static void test_expect_check(void **state)
{
	(void)state;
	uint8_t a[32], b[32];
	memset(a, 1, 32);
	memset(b, 1, 32);
	b[31] = 2;
	cf_cofferd_expect e = { 10, a };
	assert_int_equal(cf_cofferd_expect_check(&e, 10, a), CF_OK);
	assert_int_equal(cf_cofferd_expect_check(&e, 10, b), CF_ERR_AUTH);
	assert_int_equal(cf_cofferd_expect_check(&e, 9, a), CF_ERR_TRUNCATED);
	assert_int_equal(cf_cofferd_expect_check(&e, 11, a), CF_ERR_TOO_BIG);
	e.size = UINT64_MAX;
	assert_int_equal(cf_cofferd_expect_check(&e, 12345, a), CF_OK);
	e.sha256 = NULL;
	assert_int_equal(cf_cofferd_expect_check(&e, 1, b), CF_OK);
	assert_int_equal(cf_cofferd_expect_check(NULL, 1, b), CF_OK);
}

/* --- a local TLS server playing cofferd --- */

typedef struct http_req {
	char method[16];
	char path[1100];
	char auth[512];
	char content_type[128];
	const uint8_t *body;
	size_t len;
} http_req;

typedef struct http_reply {
	int status;
	uint8_t *body; /* malloc'd */
	size_t len;
	unsigned drip; /* if non-zero, write the body in pieces of this size, slowly */
	bool lie_length; /* announce one byte more than sent, then hang up */
} http_reply;

typedef void (*handler_fn)(const http_req *req, http_reply *out);

#define LOG_MAX 64

static struct {
	int listen_fd;
	unsigned port;
	SSL_CTX *ctx;
	pthread_t thread;
	volatile int stop;
	handler_fn handler;
	int requests;
	struct {
		char method[16];
		char path[1100];
		char auth[512];
		char content_type[128];
		size_t len;
	} log[LOG_MAX];
	char last_body[1 << 16];
} srv;

static struct {
	EVP_PKEY *ca_key, *leaf_key, *other_ca_key;
	X509 *ca, *leaf, *other_ca;
	char ca_path[128];
	cf_buf ca_pem;
} pki;

static X509 *make_cert(EVP_PKEY *key, EVP_PKEY *signer, X509 *issuer, const char *cn, bool ca)
{
	X509 *x = X509_new();
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(random() & 0x7fffffff));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	const char *exts[][2] = {
		{ "basicConstraints", ca ? "critical,CA:TRUE" : "critical,CA:FALSE" },
		{ "keyUsage", ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature" },
		{ "subjectAltName", ca ? NULL : "DNS:localhost,IP:127.0.0.1" },
	};
	for (size_t i = 0; i < 3; i++) {
		if (!exts[i][1])
			continue;
		X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1]);
		assert_non_null(e);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(x, signer, EVP_sha256()) > 0);
	return x;
}

static int pki_setup(void)
{
	pki.ca_key = EVP_EC_gen("P-256");
	pki.leaf_key = EVP_EC_gen("P-256");
	pki.other_ca_key = EVP_EC_gen("P-256");
	if (!pki.ca_key || !pki.leaf_key || !pki.other_ca_key)
		return -1;
	pki.ca = make_cert(pki.ca_key, pki.ca_key, NULL, "test cofferd CA", true);
	pki.leaf = make_cert(pki.leaf_key, pki.ca_key, pki.ca, "localhost", false);
	pki.other_ca = make_cert(pki.other_ca_key, pki.other_ca_key, NULL, "test cofferd CA", true);
	snprintf(pki.ca_path, sizeof(pki.ca_path), "%s/ca.pem", tmpdir);
	cf_buf_init(&pki.ca_pem, 1 << 16, false);
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(b, pki.ca);
	char *p;
	long n = BIO_get_mem_data(b, &p);
	if (cf_buf_append(&pki.ca_pem, p, (size_t)n) != CF_OK)
		return -1;
	BIO_free(b);
	FILE *f = fopen(pki.ca_path, "w");
	if (!f)
		return -1;
	fwrite(pki.ca_pem.data, 1, pki.ca_pem.len, f);
	fclose(f);
	return 0;
}

static void pki_free(void)
{
	X509_free(pki.ca);
	X509_free(pki.leaf);
	X509_free(pki.other_ca);
	EVP_PKEY_free(pki.ca_key);
	EVP_PKEY_free(pki.leaf_key);
	EVP_PKEY_free(pki.other_ca_key);
	cf_buf_free(&pki.ca_pem);
}

/* The value of header name (with its ": ") in the head, or "". */
static void header_value(const char *head, const char *name, char *out, size_t cap)
{
	out[0] = '\0';
	const char *at = strcasestr(head, name);
	if (!at)
		return;
	at += strlen(name);
	size_t n = strcspn(at, "\r\n");
	snprintf(out, cap, "%.*s", (int)n, at);
}

static bool ssl_read_request(SSL *ssl, http_req *req, cf_buf *body)
{
	char head[8192];
	size_t n = 0;
	char *end = NULL;
	while (!end) {
		if (n == sizeof(head) - 1)
			return false;
		int r = SSL_read(ssl, head + n, (int)(sizeof(head) - 1 - n));
		if (r <= 0)
			return false;
		n += (size_t)r;
		head[n] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	*end = '\0';
	if (sscanf(head, "%15s %1099s", req->method, req->path) != 2)
		return false;
	header_value(head, "\r\nAuthorization: ", req->auth, sizeof(req->auth));
	header_value(head, "\r\nContent-Type: ", req->content_type, sizeof(req->content_type));
	char cl[32];
	header_value(head, "\r\nContent-Length: ", cl, sizeof(cl));
	size_t clen = strtoul(cl, NULL, 10);
	size_t have = n - (size_t)(end + 4 - head);
	if (cf_buf_append(body, end + 4, have) != CF_OK)
		return false;
	while (body->len < clen) {
		char chunk[16384];
		int r = SSL_read(ssl, chunk, sizeof(chunk));
		if (r <= 0 || cf_buf_append(body, chunk, (size_t)r) != CF_OK)
			return false;
	}
	return cf_buf_terminate(body) == CF_OK;
}

static void ssl_write_all(SSL *ssl, const uint8_t *p, size_t len, unsigned piece)
{
	size_t off = 0;
	while (off < len) {
		size_t n = len - off;
		if (piece && n > piece)
			n = piece;
		int w = SSL_write(ssl, p + off, (int)n);
		if (w <= 0)
			break;
		off += (size_t)w;
		if (piece)
			usleep(2000);
	}
}

static void serve_one(int fd)
{
	SSL *ssl = SSL_new(srv.ctx);
	http_req req;
	cf_buf body;
	memset(&req, 0, sizeof(req));
	cf_buf_init(&body, 10 * MiB, false);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) == 1 && ssl_read_request(ssl, &req, &body)) {
		http_reply rep = { 500, NULL, 0, 0, false };
		int i = srv.requests % LOG_MAX;
		snprintf(srv.log[i].method, sizeof(srv.log[i].method), "%s", req.method);
		snprintf(srv.log[i].path, sizeof(srv.log[i].path), "%s", req.path);
		snprintf(srv.log[i].auth, sizeof(srv.log[i].auth), "%s", req.auth);
		snprintf(srv.log[i].content_type, sizeof(srv.log[i].content_type), "%s",
			 req.content_type);
		srv.log[i].len = body.len;
		snprintf(srv.last_body, sizeof(srv.last_body), "%s",
			 body.data ? (const char *)body.data : "");
		srv.requests++;
		req.body = body.data;
		req.len = body.len;
		srv.handler(&req, &rep);
		char head[256];
		int hl = snprintf(head, sizeof(head),
				  "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
				  "Content-Length: %zu\r\nConnection: close\r\n\r\n",
				  rep.status, rep.len + (rep.lie_length ? 1 : 0));
		SSL_write(ssl, head, hl);
		ssl_write_all(ssl, rep.body, rep.len, rep.drip);
		free(rep.body);
		SSL_shutdown(ssl);
	}
	SSL_free(ssl);
	cf_buf_free(&body);
	close(fd);
}

static void *server_main(void *arg)
{
	(void)arg;
	while (!srv.stop) {
		struct pollfd p = { .fd = srv.listen_fd, .events = POLLIN };
		if (poll(&p, 1, 50) <= 0)
			continue;
		int fd = accept(srv.listen_fd, NULL, NULL);
		if (fd >= 0)
			serve_one(fd);
	}
	return NULL;
}

static void server_start(handler_fn h, bool other_ca)
{
	memset(&srv, 0, sizeof(srv));
	srv.handler = h;
	srv.ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(srv.ctx);
	if (other_ca) {
		X509 *leaf = make_cert(pki.leaf_key, pki.other_ca_key, pki.other_ca, "localhost", false);
		assert_int_equal(SSL_CTX_use_certificate(srv.ctx, leaf), 1);
		X509_free(leaf);
	} else {
		assert_int_equal(SSL_CTX_use_certificate(srv.ctx, pki.leaf), 1);
	}
	assert_int_equal(SSL_CTX_use_PrivateKey(srv.ctx, pki.leaf_key), 1);
	srv.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(srv.listen_fd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(bind(srv.listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(srv.listen_fd, 8), 0);
	socklen_t alen = sizeof(a);
	assert_int_equal(getsockname(srv.listen_fd, (struct sockaddr *)&a, &alen), 0);
	srv.port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&srv.thread, NULL, server_main, NULL), 0);
}

static void server_stop(void)
{
	srv.stop = 1;
	pthread_join(srv.thread, NULL);
	close(srv.listen_fd);
	SSL_CTX_free(srv.ctx);
}

static void url_of(char *out, size_t cap)
{
	snprintf(out, cap, "https://localhost:%u", srv.port);
}

static void reply_text(http_reply *out, int status, const char *text)
{
	out->status = status;
	out->body = (uint8_t *)strdup(text);
	out->len = strlen(text);
}

static void reply_json(http_reply *out, int status, json_t *v)
{
	out->status = status;
	out->body = (uint8_t *)json_dumps(v, JSON_COMPACT);
	out->len = out->body ? strlen((char *)out->body) : 0;
	json_decref(v);
}

static void reply_error(http_reply *out, int status, const char *code, const char *message)
{
	reply_json(out, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message));
}

static cf_cofferd_client *open_client(void)
{
	char url[64];
	cf_cofferd_client *c = NULL;
	url_of(url, sizeof(url));
	assert_int_equal(cf_cofferd_client_open(url, pki.ca_path, &c), CF_OK);
	return c;
}

/* Neither the error's code nor its message holds the token. */
static void assert_no_token(const cf_cofferd_client *c)
{
	const cf_cofferd_error *e = cf_cofferd_client_error(c);
	assert_null(strstr(e->message, TOKEN));
	assert_null(strstr(e->code, TOKEN));
	assert_null(strstr(e->message, &TOKEN[4]));
}

/* --- JSON calls --- */

static void h_api(const http_req *req, http_reply *out)
{
	const char *p = req->path;
	if (strcmp(p, "/v1/me") == 0) {
		if (strcmp(req->auth, "Bearer " TOKEN) != 0)
			reply_error(out, 401, "unauthenticated", "no valid token");
		else
			reply_json(out, 200, json_pack("{s:s,s:s,s:s}", "user", "alice", "org", "a",
						       "role", "analyst"));
	} else if (strcmp(p, "/v1/echo") == 0) {
		reply_json(out, 200, json_pack("{s:s,s:s,s:I}", "method", req->method, "type",
					       req->content_type, "len", (json_int_t)req->len));
	} else if (strncmp(p, "/v1/status/", 11) == 0) {
		int st = atoi(p + 11);
		static const char *const codes[] = { "bad_request", "unauthenticated", "forbidden",
						     "not_found", "conflict", "too_large", "internal" };
		const char *code = st == 400 ? codes[0] : st == 401 ? codes[1] : st == 403 ? codes[2]
				 : st == 404 ? codes[3] : st == 409 ? codes[4] : st == 413 ? codes[5]
										    : codes[6];
		reply_error(out, st, code, "refused\nfor a reason");
	} else if (strcmp(p, "/v1/text") == 0) {
		reply_text(out, 200, "<html>ok</html>");
	} else if (strcmp(p, "/v1/text502") == 0) {
		reply_text(out, 502, "bad gateway");
	} else if (strcmp(p, "/v1/array") == 0) {
		reply_text(out, 200, "[1, 2, 3]");
	} else if (strcmp(p, "/v1/empty") == 0) {
		reply_text(out, 200, "");
	} else if (strcmp(p, "/v1/deep") == 0) {
		char text[200];
		memset(text, '[', 100);
		memset(text + 100, ']', 100);
		out->status = 200;
		out->body = malloc(sizeof(text));
		memcpy(out->body, text, sizeof(text));
		out->len = sizeof(text);
	} else if (strcmp(p, "/v1/big") == 0) {
		size_t n = CF_COFFERD_MAX_REPLY + 16;
		out->status = 200;
		out->body = malloc(n);
		memset(out->body, 'a', n);
		out->body[0] = '"';
		out->body[n - 1] = '"';
		out->len = n;
	} else if (strcmp(p, "/v1/wrongtypes") == 0) {
		reply_text(out, 403, "{\"error\": {\"code\": 5, \"message\": [\"x\"]}}");
	} else if (strcmp(p, "/v1/errnotobject") == 0) {
		reply_text(out, 409, "{\"error\": \"conflict\"}");
	} else if (strcmp(p, "/v1/echotoken") == 0) {
		/* A hostile server quotes the caller's Authorization back. */
		char msg[700];
		snprintf(msg, sizeof(msg), "bad token %s (%s)", req->auth, req->auth + 7);
		reply_error(out, 401, TOKEN, msg);
	} else if (strcmp(p, "/v1/login") == 0) {
		json_t *b = NULL;
		assert_int_equal(cf_json_parse((const char *)req->body, req->len, NULL, &b), CF_OK);
		const char *u = json_string_value(json_object_get(b, "username"));
		const char *pw = json_string_value(json_object_get(b, "password"));
		assert_string_equal(req->auth, ""); /* no token with a login */
		if (u && pw && strcmp(u, "alice") == 0 && strcmp(pw, "correct horse battery") == 0)
			reply_json(out, 200, json_pack("{s:s,s:I,s:s}", "token", TOKEN, "expires",
						       (json_int_t)1700043200, "user", "alice"));
		else if (u && strcmp(u, "badtoken") == 0)
			reply_json(out, 200, json_pack("{s:s}", "token", "cft_has space"));
		else if (u && strcmp(u, "numtoken") == 0)
			reply_json(out, 200, json_pack("{s:i}", "token", 7));
		else
			reply_error(out, 401, "unauthenticated", "wrong user name or password");
		json_decref(b);
	} else {
		reply_error(out, 404, "not_found", "no such path");
	}
}

static void test_calls(void **state)
{
	(void)state;
	server_start(h_api, false);
	cf_cofferd_client *c = open_client();
	json_t *reply = NULL, *body = json_pack("{s:[i,i]}", "x", 1, 2);
	long status = 0;

	/* Without a token: cofferd says who is missing. */
	assert_false(cf_cofferd_has_token(c));
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/me", NULL, &reply), CF_ERR_AUTH);
	assert_null(reply);
	assert_int_equal(cf_cofferd_client_error(c)->status, 401);
	assert_string_equal(cf_cofferd_client_error(c)->code, "unauthenticated");
	assert_string_equal(srv.log[0].auth, "");

	/* With it: the bearer header. */
	assert_int_equal(cf_cofferd_set_token(c, TOKEN), CF_OK);
	assert_true(cf_cofferd_has_token(c));
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/me", NULL, &reply), CF_OK);
	assert_string_equal(json_string_value(json_object_get(reply, "org")), "a");
	assert_string_equal(srv.log[1].auth, "Bearer " TOKEN);
	assert_int_equal(cf_cofferd_client_error(c)->status, 0);
	json_decref(reply);
	/* reply may be NULL when the answer is not wanted. */
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/me", NULL, NULL), CF_OK);

	/* Methods and bodies: canonical JSON; POST and PUT without one send {}. */
	assert_int_equal(cf_cofferd_call(c, "POST", "/v1/echo", body, &reply), CF_OK);
	assert_string_equal(srv.last_body, "{\"x\":[1,2]}");
	assert_string_equal(json_string_value(json_object_get(reply, "type")), "application/json");
	json_decref(reply);
	assert_int_equal(cf_cofferd_call(c, "POST", "/v1/echo", NULL, &reply), CF_OK);
	assert_string_equal(srv.last_body, "{}");
	json_decref(reply);
	assert_int_equal(cf_cofferd_call(c, "PUT", "/v1/echo", body, &reply), CF_OK);
	assert_string_equal(json_string_value(json_object_get(reply, "method")), "PUT");
	json_decref(reply);
	assert_int_equal(cf_cofferd_call(c, "DELETE", "/v1/echo", NULL, &reply), CF_OK);
	assert_string_equal(json_string_value(json_object_get(reply, "method")), "DELETE");
	assert_int_equal(json_integer_value(json_object_get(reply, "len")), 0);
	json_decref(reply);
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/echo", NULL, &reply), CF_OK);
	assert_string_equal(json_string_value(json_object_get(reply, "method")), "GET");
	json_decref(reply);
	/* Nothing is sent for a bad method, a body on GET, or a bad path. */
	int before = srv.requests;
	assert_int_equal(cf_cofferd_call(c, "PATCH", "/v1/echo", NULL, &reply), CF_ERR_ARG);
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/echo", body, &reply), CF_ERR_ARG);
	assert_int_equal(cf_cofferd_call(c, "DELETE", "/v1/echo", body, &reply), CF_ERR_ARG);
	assert_int_equal(cf_cofferd_call(c, "GET", "v1/echo", NULL, &reply), CF_ERR_ARG);
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/a b", NULL, &reply), CF_ERR_ARG);
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/a\r\nX: y", NULL, &reply), CF_ERR_ARG);
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/a#frag", NULL, &reply), CF_ERR_ARG);
	assert_int_equal(srv.requests, before);

	/* The error mapping, with code and message kept (one printable line). */
	static const struct {
		int status;
		cf_err rc;
		const char *code;
	} map[] = {
		{ 400, CF_ERR_PARSE, "bad_request" }, { 401, CF_ERR_AUTH, "unauthenticated" },
		{ 403, CF_ERR_AUTH, "forbidden" },    { 404, CF_ERR_NOT_FOUND, "not_found" },
		{ 409, CF_ERR_ARG, "conflict" },      { 413, CF_ERR_TOO_BIG, "too_large" },
		{ 500, CF_ERR_IO, "internal" },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		char path[64];
		snprintf(path, sizeof(path), "/v1/status/%d", map[i].status);
		assert_int_equal(cf_cofferd_call(c, "POST", path, body, &reply), map[i].rc);
		assert_null(reply);
		const cf_cofferd_error *e = cf_cofferd_client_error(c);
		assert_int_equal(e->status, map[i].status);
		assert_string_equal(e->code, map[i].code);
		assert_string_equal(e->message, "refused?for a reason");
		/* The raw request gives the error object and the status. */
		assert_int_equal(cf_cofferd_request(c, "POST", path, body, &reply, &status), CF_OK);
		assert_int_equal(status, map[i].status);
		assert_non_null(json_object_get(reply, "error"));
		json_decref(reply);
		reply = NULL;
	}
	json_decref(body);
	cf_cofferd_client_free(c);
	server_stop();
}

static void test_hostile_answers(void **state)
{
	(void)state;
	server_start(h_api, false);
	cf_cofferd_client *c = open_client();
	json_t *reply = NULL;
	long status = 0;
	assert_int_equal(cf_cofferd_set_token(c, TOKEN), CF_OK);

	/* Not JSON, a 2xx: a parse error. Not JSON, another status: that status's error. */
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/text", NULL, &reply), CF_ERR_PARSE);
	assert_string_equal(cf_cofferd_client_error(c)->message, "the answer is not JSON");
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/empty", NULL, &reply), CF_ERR_PARSE);
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/text502", NULL, &reply), CF_ERR_IO);
	assert_int_equal(cf_cofferd_client_error(c)->status, 502);
	assert_string_equal(cf_cofferd_client_error(c)->message, "HTTP 502 (the answer is not JSON)");
	/* JSON, but not an object. */
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/array", NULL, &reply), CF_ERR_PARSE);
	assert_int_equal(cf_cofferd_request(c, "GET", "/v1/array", NULL, &reply, &status), CF_OK);
	assert_true(json_is_array(reply));
	json_decref(reply);
	reply = NULL;
	/* Too deep, too big. */
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/deep", NULL, &reply), CF_ERR_PARSE);
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/big", NULL, &reply), CF_ERR_TOO_BIG);
	assert_null(reply);
	/* Error objects of the wrong shape still map by status. */
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/wrongtypes", NULL, &reply), CF_ERR_AUTH);
	assert_string_equal(cf_cofferd_client_error(c)->code, "");
	assert_string_equal(cf_cofferd_client_error(c)->message, "HTTP 403");
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/errnotobject", NULL, &reply), CF_ERR_ARG);
	assert_string_equal(cf_cofferd_client_error(c)->message, "HTTP 409");
	/* The token never comes back in an error, whatever the server says. */
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/echotoken", NULL, &reply), CF_ERR_AUTH);
	assert_no_token(c);
	assert_non_null(strstr(cf_cofferd_client_error(c)->message, "(hidden)"));
	assert_string_equal(cf_cofferd_client_error(c)->code, "(hidden)");
	/* Unknown path. */
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/nope", NULL, &reply), CF_ERR_NOT_FOUND);
	/* The client still works after all that. */
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/me", NULL, &reply), CF_OK);
	json_decref(reply);
	cf_cofferd_client_free(c);
	server_stop();
}

static void test_login(void **state)
{
	(void)state;
	server_start(h_api, false);
	cf_cofferd_client *c = open_client();
	cf_buf token;
	long long expires = 0;
	static const char pw[] = "correct horse battery";
	cf_buf_init(&token, 1024, true);

	/* A stale token is not sent along with a login. */
	assert_int_equal(cf_cofferd_set_token(c, "cft_stale"), CF_OK);
	assert_int_equal(cf_cofferd_login(c, "alice", (const uint8_t *)pw, strlen(pw), &token,
					  &expires),
			 CF_OK);
	assert_string_equal((const char *)token.data, TOKEN);
	assert_true(expires == 1700043200);
	assert_true(cf_cofferd_has_token(c));
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/me", NULL, NULL), CF_OK);
	assert_string_equal(srv.log[srv.requests - 1].auth, "Bearer " TOKEN);

	/* Refused: no token is kept. */
	cf_buf_reset(&token);
	assert_int_equal(cf_cofferd_login(c, "alice", (const uint8_t *)"wrong password", 14, &token,
					  NULL),
			 CF_ERR_AUTH);
	assert_false(cf_cofferd_has_token(c));
	assert_int_equal(token.len, 0);
	assert_int_equal(cf_cofferd_client_error(c)->status, 401);
	/* The server's token is malformed or of the wrong type. */
	assert_int_equal(cf_cofferd_login(c, "badtoken", (const uint8_t *)pw, strlen(pw), NULL, NULL),
			 CF_ERR_PARSE);
	assert_false(cf_cofferd_has_token(c));
	assert_int_equal(cf_cofferd_login(c, "numtoken", (const uint8_t *)pw, strlen(pw), NULL, NULL),
			 CF_ERR_PARSE);
	/* A password that is not UTF-8 or holds a NUL never leaves. */
	int before = srv.requests;
	assert_int_equal(cf_cofferd_login(c, "alice", (const uint8_t *)"\xff\xfe", 2, NULL, NULL),
			 CF_ERR_ARG);
	assert_int_equal(cf_cofferd_login(c, "alice", (const uint8_t *)"a\0b", 3, NULL, NULL),
			 CF_ERR_ARG);
	assert_int_equal(srv.requests, before);
	/* Bad tokens are refused by the client too. */
	assert_int_equal(cf_cofferd_set_token(c, "a b"), CF_ERR_ARG);
	assert_int_equal(cf_cofferd_set_token(c, NULL), CF_OK);
	cf_buf_free(&token);
	cf_cofferd_client_free(c);
	server_stop();
}

static void test_pinning(void **state)
{
	(void)state;
	cf_cofferd_client *c = NULL;
	const char pem[] = "x";
	static const char *const bad[] = { "http://localhost:1", "https://", "https://h/path",
					   "https://h?q", "https://user@h", "ftp://h" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cf_cofferd_client_open_pem(bad[i], pem, 1, &c), CF_ERR_ARG);
	assert_int_equal(cf_cofferd_client_open("https://h", "/nonexistent/ca.pem", &c),
			 CF_ERR_NOT_FOUND);
	assert_int_equal(cf_cofferd_client_open_pem("https://localhost:8080/", pem, 1, &c), CF_OK);
	assert_string_equal(cf_cofferd_client_url(c), "https://localhost:8080");
	cf_cofferd_client_free(c);

	/* A certificate from a CA the client does not pin: nothing is sent, the token neither. */
	server_start(h_api, true);
	c = open_client();
	assert_int_equal(cf_cofferd_set_token(c, TOKEN), CF_OK);
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/me", NULL, NULL), CF_ERR_IO);
	assert_int_equal(cf_cofferd_client_error(c)->status, 0);
	assert_true(strlen(cf_cofferd_client_error(c)->message) > 0);
	assert_int_equal(srv.requests, 0);
	cf_cofferd_client_free(c);
	server_stop();
}

/* --- uploads --- */

static struct {
	uint64_t received;
	EVP_MD_CTX *sha;
	int refuse_at;       /* refuse the Nth part with 409, 0: never */
	bool lie;            /* acknowledge one byte too many */
	bool wrong_type;     /* acknowledge with a string */
	int parts;
	uint64_t offsets[16];
	size_t lens[16];
	char content_type[128];
	uint64_t declared_size;
	char declared_sha[65];
} up;

static void h_upload(const http_req *req, http_reply *out)
{
	char path[1100];
	unsigned long long offset = 0;
	if (strcmp(req->path, "/v1/datasets/ds-0123456789abcdef/commit") == 0) {
		/* The declared size and digest must be what arrived (docs/api.md). */
		uint8_t got[32];
		char hex[65];
		unsigned int n = 0;
		EVP_MD_CTX *copy = EVP_MD_CTX_new();
		EVP_MD_CTX_copy_ex(copy, up.sha);
		EVP_DigestFinal_ex(copy, got, &n);
		EVP_MD_CTX_free(copy);
		cf_hex_encode(got, 32, hex);
		if (strcmp(req->method, "POST") != 0 || strcmp((const char *)req->body, "{}") != 0)
			reply_error(out, 400, "bad_request", "not a commit");
		else if (up.received != up.declared_size || strcmp(hex, up.declared_sha) != 0)
			reply_error(out, 409, "conflict", "size or sha256 differ");
		else
			reply_json(out, 200, json_pack("{s:s,s:I,s:s}", "id", "ds-0123456789abcdef",
						       "size", (json_int_t)up.received, "sha256", hex));
		return;
	}
	snprintf(path, sizeof(path), "%s", req->path);
	char *q = strchr(path, '?');
	if (strcmp(req->method, "PUT") != 0 || !q || sscanf(q, "?offset=%llu", &offset) != 1 ||
	    strncmp(path, "/v1/datasets/ds-0123456789abcdef/blob?", 38) != 0) {
		reply_error(out, 400, "bad_request", "not a part");
		return;
	}
	up.parts++;
	if (up.parts <= 16) {
		up.offsets[up.parts - 1] = offset;
		up.lens[up.parts - 1] = req->len;
	}
	snprintf(up.content_type, sizeof(up.content_type), "%s", req->content_type);
	if (up.refuse_at == up.parts) {
		reply_error(out, 409, "conflict", "offset is not the bytes received so far");
		return;
	}
	if (offset != up.received || req->len > CF_COFFERD_PART_MAX) {
		reply_error(out, 409, "conflict", "out of order");
		return;
	}
	EVP_DigestUpdate(up.sha, req->body, req->len);
	up.received += req->len;
	if (up.wrong_type)
		reply_json(out, 200, json_pack("{s:s}", "received", "all of it"));
	else
		reply_json(out, 200, json_pack("{s:I}", "received",
					       (json_int_t)(up.received + (up.lie ? 1 : 0))));
}

static void up_reset(void)
{
	EVP_MD_CTX_free(up.sha);
	memset(&up, 0, sizeof(up));
	up.sha = EVP_MD_CTX_new();
	EVP_DigestInit_ex(up.sha, EVP_sha256(), NULL);
}

static struct {
	int calls;
	uint64_t last_done, last_total;
	bool monotonic;
} prog;

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	(void)ctx;
	if (prog.calls && done < prog.last_done)
		prog.monotonic = false;
	prog.calls++;
	prog.last_done = done;
	prog.last_total = total;
}

static uint8_t *pattern(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);
	assert_non_null(p);
	uint32_t x = 2463534242u;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
	return p;
}

#define BLOB "/v1/datasets/ds-0123456789abcdef/blob"

static void test_upload(void **state)
{
	(void)state;
	size_t n = 2 * CF_COFFERD_PART_MAX + 12345;
	uint8_t *data = pattern(n + 1);
	uint8_t want[32], got[32], server_sha[32];
	unsigned int sl = 0;
	sha256(data, n, want);
	server_start(h_upload, false);
	cf_cofferd_client *c = open_client();
	assert_int_equal(cf_cofferd_set_token(c, TOKEN), CF_OK);

	/* Three parts: 8 MiB, 8 MiB, the rest, each at the bytes sent so far. */
	up_reset();
	memset(&prog, 0, sizeof(prog));
	prog.monotonic = true;
	cf_mem_reader m = { .data = data, .len = n, .max_read = 100000 };
	assert_int_equal(cf_cofferd_upload(c, BLOB, cf_mem_reader_of(&m), n, on_progress, NULL, got),
			 CF_OK);
	assert_memory_equal(got, want, 32);
	assert_int_equal(up.parts, 3);
	assert_true(up.offsets[0] == 0);
	assert_true(up.offsets[1] == CF_COFFERD_PART_MAX);
	assert_true(up.offsets[2] == 2ull * CF_COFFERD_PART_MAX);
	assert_int_equal(up.lens[0], CF_COFFERD_PART_MAX);
	assert_int_equal(up.lens[1], CF_COFFERD_PART_MAX);
	assert_int_equal(up.lens[2], 12345);
	assert_string_equal(up.content_type, "application/octet-stream");
	assert_true(up.received == n);

	/* The commit: cofferd compares what arrived with what was declared. */
	json_t *reply = NULL;
	up.declared_size = n;
	cf_hex_encode(want, 32, up.declared_sha);
	assert_int_equal(cf_cofferd_call(c, "POST", "/v1/datasets/ds-0123456789abcdef/commit", NULL,
					 &reply),
			 CF_OK);
	assert_string_equal(json_string_value(json_object_get(reply, "sha256")), up.declared_sha);
	json_decref(reply);
	up.declared_sha[0] ^= 1;
	assert_int_equal(cf_cofferd_call(c, "POST", "/v1/datasets/ds-0123456789abcdef/commit", NULL,
					 &reply),
			 CF_ERR_ARG);
	assert_string_equal(cf_cofferd_client_error(c)->code, "conflict");
	EVP_DigestFinal_ex(up.sha, server_sha, &sl);
	assert_memory_equal(server_sha, want, 32);
	assert_string_equal(srv.log[0].auth, "Bearer " TOKEN);
	assert_true(prog.calls >= 4);
	assert_true(prog.monotonic);
	assert_true(prog.last_done == n && prog.last_total == n);

	/* Exactly one part of exactly 8 MiB. */
	up_reset();
	m = (cf_mem_reader){ .data = data, .len = CF_COFFERD_PART_MAX };
	assert_int_equal(cf_cofferd_upload(c, BLOB, cf_mem_reader_of(&m), CF_COFFERD_PART_MAX, NULL,
					   NULL, NULL),
			 CF_OK);
	assert_int_equal(up.parts, 1);

	/* Nothing at all: no part. */
	up_reset();
	m = (cf_mem_reader){ .data = data, .len = 0 };
	assert_int_equal(cf_cofferd_upload(c, BLOB, cf_mem_reader_of(&m), 0, NULL, NULL, got),
			 CF_OK);
	assert_int_equal(up.parts, 0);
	sha256("", 0, want);
	assert_memory_equal(got, want, 32);

	/* The source is shorter, or longer, than declared. */
	up_reset();
	m = (cf_mem_reader){ .data = data, .len = 1000 };
	assert_int_equal(cf_cofferd_upload(c, BLOB, cf_mem_reader_of(&m), 1001, NULL, NULL, got),
			 CF_ERR_TRUNCATED);
	assert_int_equal(up.parts, 0);
	m = (cf_mem_reader){ .data = data, .len = 1001 };
	assert_int_equal(cf_cofferd_upload(c, BLOB, cf_mem_reader_of(&m), 1000, NULL, NULL, got),
			 CF_ERR_TRAILING);

	/* Refused mid-way: cofferd's conflict, and no more parts. */
	up_reset();
	up.refuse_at = 2;
	m = (cf_mem_reader){ .data = data, .len = n };
	assert_int_equal(cf_cofferd_upload(c, BLOB, cf_mem_reader_of(&m), n, NULL, NULL, got),
			 CF_ERR_ARG);
	assert_int_equal(up.parts, 2);
	assert_int_equal(cf_cofferd_client_error(c)->status, 409);
	assert_string_equal(cf_cofferd_client_error(c)->code, "conflict");

	/* An acknowledgement of another count, or of no count. */
	up_reset();
	up.lie = true;
	m = (cf_mem_reader){ .data = data, .len = 5000 };
	assert_int_equal(cf_cofferd_upload(c, BLOB, cf_mem_reader_of(&m), 5000, NULL, NULL, got),
			 CF_ERR_PARSE);
	up_reset();
	up.wrong_type = true;
	m = (cf_mem_reader){ .data = data, .len = 5000 };
	assert_int_equal(cf_cofferd_upload(c, BLOB, cf_mem_reader_of(&m), 5000, NULL, NULL, got),
			 CF_ERR_PARSE);
	assert_no_token(c);

	EVP_MD_CTX_free(up.sha);
	up.sha = NULL;
	cf_cofferd_client_free(c);
	server_stop();
	free(data);
}

/* --- downloads --- */

static struct {
	uint8_t *data;
	size_t len;
	unsigned drip;
	bool cut; /* announce one byte more than sent */
} dl;

static void h_download(const http_req *req, http_reply *out)
{
	if (strcmp(req->path, "/v1/tasks/task-0123456789abcdef/outputs/result") == 0) {
		out->status = 200;
		out->body = malloc(dl.len ? dl.len : 1);
		memcpy(out->body, dl.data, dl.len);
		out->len = dl.len;
		out->drip = dl.drip;
		out->lie_length = dl.cut;
	} else if (strcmp(req->path, "/v1/forbidden") == 0) {
		reply_error(out, 403, "forbidden", "not a recipient of this output");
	} else if (strcmp(req->path, "/v1/html") == 0) {
		reply_text(out, 502, "<html>bad gateway</html>");
	} else if (strcmp(req->path, "/v1/huge-error") == 0) {
		/* A refusal whose body never ends (well, 1 MiB): not kept whole. */
		out->status = 500;
		out->len = MiB;
		out->body = malloc(out->len);
		memset(out->body, 'x', out->len);
	} else {
		reply_error(out, 404, "not_found", "no such output");
	}
}

#define OUT "/v1/tasks/task-0123456789abcdef/outputs/result"

/* A writer that counts and hashes, and can fail. */
static struct {
	uint64_t n;
	EVP_MD_CTX *sha;
	bool fail;
	bool slow;
} sink;

static cf_err sink_write(void *ctx, const uint8_t *buf, size_t len)
{
	(void)ctx;
	if (sink.fail)
		return CF_ERR_IO;
	if (sink.slow)
		usleep(200);
	sink.n += len;
	EVP_DigestUpdate(sink.sha, buf, len);
	return CF_OK;
}

static void sink_reset(void)
{
	EVP_MD_CTX_free(sink.sha);
	memset(&sink, 0, sizeof(sink));
	sink.sha = EVP_MD_CTX_new();
	EVP_DigestInit_ex(sink.sha, EVP_sha256(), NULL);
}

static void test_download(void **state)
{
	(void)state;
	uint8_t want[32], got[32], other[32];
	uint64_t size = 0;
	dl.len = 5 * MiB + 77;
	dl.data = pattern(dl.len);
	sha256(dl.data, dl.len, want);
	memcpy(other, want, 32);
	other[0] ^= 1;
	server_start(h_download, false);
	cf_cofferd_client *c = open_client();
	assert_int_equal(cf_cofferd_set_token(c, TOKEN), CF_OK);
	cf_writer w = { sink_write, NULL };

	/* The declared size and digest: accepted, every byte delivered in order. */
	sink_reset();
	memset(&prog, 0, sizeof(prog));
	prog.monotonic = true;
	cf_cofferd_expect e = { dl.len, want };
	assert_int_equal(cf_cofferd_download(c, OUT, w, &e, 0, on_progress, NULL, &size, got), CF_OK);
	assert_true(size == dl.len);
	assert_memory_equal(got, want, 32);
	assert_true(sink.n == dl.len);
	unsigned int sl = 0;
	uint8_t sunk[32];
	EVP_DigestFinal_ex(sink.sha, sunk, &sl);
	assert_memory_equal(sunk, want, 32);
	assert_string_equal(srv.log[0].auth, "Bearer " TOKEN);
	assert_true(prog.monotonic && prog.last_done == dl.len && prog.last_total == dl.len);

	/* Another digest: refused (the bytes went to the writer, which must throw them away). */
	sink_reset();
	e.sha256 = other;
	assert_int_equal(cf_cofferd_download(c, OUT, w, &e, 0, NULL, NULL, &size, got), CF_ERR_AUTH);
	assert_non_null(strstr(cf_cofferd_client_error(c)->message, "not the declared"));
	/* More bytes than declared: stopped early. Fewer: truncated. */
	e = (cf_cofferd_expect){ dl.len - 1000, want };
	sink_reset();
	assert_int_equal(cf_cofferd_download(c, OUT, w, &e, 0, NULL, NULL, NULL, NULL),
			 CF_ERR_TOO_BIG);
	assert_true(sink.n <= dl.len - 1000);
	e = (cf_cofferd_expect){ dl.len + 1, want };
	assert_int_equal(cf_cofferd_download(c, OUT, w, &e, 0, NULL, NULL, NULL, NULL),
			 CF_ERR_TRUNCATED);
	/* No expectation: max bounds it. */
	assert_int_equal(cf_cofferd_download(c, OUT, w, NULL, 4096, NULL, NULL, NULL, NULL),
			 CF_ERR_TOO_BIG);
	sink_reset();
	assert_int_equal(cf_cofferd_download(c, OUT, w, NULL, UINT64_MAX, NULL, NULL, &size, got),
			 CF_OK);
	assert_memory_equal(got, want, 32);

	/* A refusal comes back before any byte is written. */
	static const struct {
		const char *path;
		cf_err rc;
		long status;
		const char *msg;
	} refusals[] = {
		{ "/v1/forbidden", CF_ERR_AUTH, 403, "not a recipient of this output" },
		{ "/v1/nope", CF_ERR_NOT_FOUND, 404, "no such output" },
		{ "/v1/html", CF_ERR_IO, 502, "HTTP 502 (the answer is not JSON)" },
		{ "/v1/huge-error", CF_ERR_IO, 500, "HTTP 500 (the answer is not JSON)" },
	};
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		sink_reset();
		cf_cofferd_stream *s = NULL;
		assert_int_equal(cf_cofferd_stream_open(c, refusals[i].path, UINT64_MAX, true, &s),
				 refusals[i].rc);
		assert_null(s);
		assert_int_equal(cf_cofferd_client_error(c)->status, refusals[i].status);
		assert_string_equal(cf_cofferd_client_error(c)->message, refusals[i].msg);
		assert_int_equal(cf_cofferd_download(c, refusals[i].path, w, NULL, UINT64_MAX, NULL,
						     NULL, NULL, NULL),
				 refusals[i].rc);
		assert_true(sink.n == 0);
	}

	/* The writer fails: so does the download, and the client is usable afterwards. */
	sink_reset();
	sink.fail = true;
	assert_int_equal(cf_cofferd_download(c, OUT, w, NULL, UINT64_MAX, NULL, NULL, NULL, NULL),
			 CF_ERR_IO);
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/nope", NULL, NULL), CF_ERR_NOT_FOUND);

	/*
	 * A reader that reads little at a time far behind a fast server (the
	 * transfer pauses and resumes), then a server that dribbles.
	 */
	cf_cofferd_stream *s = NULL;
	assert_int_equal(cf_cofferd_stream_open(c, OUT, UINT64_MAX, true, &s), CF_OK);
	/* The client is busy while a stream holds it. */
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/nope", NULL, NULL), CF_ERR_ARG);
	assert_int_equal(cf_cofferd_stream_sha256(s, got), CF_ERR_ARG);
	cf_reader r = cf_cofferd_stream_reader(s);
	uint8_t *copy = malloc(dl.len + 1);
	size_t have = 0;
	for (int i = 0;; i++) {
		size_t n = 0;
		assert_int_equal(r.read(r.ctx, copy + have, i % 3 == 0 ? 7 : 70000, &n), CF_OK);
		if (n == 0)
			break;
		have += n;
		assert_true(have <= dl.len);
		if (i == 5)
			usleep(100000); /* let the server run far ahead */
	}
	assert_true(have == dl.len);
	assert_memory_equal(copy, dl.data, dl.len);
	assert_true(cf_cofferd_stream_count(s) == dl.len);
	assert_int_equal(cf_cofferd_stream_sha256(s, got), CF_OK);
	assert_memory_equal(got, want, 32);
	/* After the end, the end again. */
	size_t n = 1;
	assert_int_equal(r.read(r.ctx, copy, 10, &n), CF_OK);
	assert_int_equal(n, 0);
	cf_cofferd_stream_free(s);
	free(copy);

	free(dl.data);
	dl.len = 300000;
	dl.data = pattern(dl.len);
	sha256(dl.data, dl.len, want);
	dl.drip = 4000;
	e = (cf_cofferd_expect){ dl.len, want };
	sink_reset();
	assert_int_equal(cf_cofferd_download(c, OUT, w, &e, 0, NULL, NULL, NULL, NULL), CF_OK);
	assert_true(sink.n == dl.len);
	dl.drip = 0;

	/* The connection ends before the announced length: an error, not a short success. */
	dl.cut = true;
	sink_reset();
	assert_int_equal(cf_cofferd_download(c, OUT, w, NULL, UINT64_MAX, NULL, NULL, NULL, NULL),
			 CF_ERR_IO);
	dl.cut = false;

	/* An empty blob is a blob. */
	dl.len = 0;
	sha256("", 0, want);
	e = (cf_cofferd_expect){ 0, want };
	assert_int_equal(cf_cofferd_download(c, OUT, w, &e, 0, NULL, NULL, &size, got), CF_OK);
	assert_true(size == 0);
	assert_no_token(c);

	EVP_MD_CTX_free(sink.sha);
	sink.sha = NULL;
	free(dl.data);
	cf_cofferd_client_free(c);
	server_stop();
}

/* --- the profile --- */

static void write_file(const char *path, const char *text, mode_t mode)
{
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_profile(void **state)
{
	(void)state;
	char home[128], path[300], url[64];
	cf_cofferd_profile p;
	cf_cofferd_client *c = NULL;
	cf_buf token;
	struct stat st;
	cf_buf_init(&token, 2048, true);
	snprintf(home, sizeof(home), "%s/profile-a", tmpdir);
	setenv("COFFER_HOME", home, 1);

	/* Not logged in. */
	assert_int_equal(cf_cofferd_profile_load(&p), CF_ERR_NOT_FOUND);
	assert_int_equal(cf_cofferd_client_open_profile(NULL, NULL, false, &c), CF_ERR_NOT_FOUND);
	assert_null(c);

	server_start(h_api, false);
	url_of(url, sizeof(url));
	/* Saving: the folder (0700), the CA and cofferd.json (0600). */
	assert_int_equal(cf_cofferd_profile_save("https://h/x", "alice", pki.ca_pem.data,
						 pki.ca_pem.len, &p),
			 CF_ERR_ARG);
	assert_int_equal(cf_cofferd_profile_save(url, "Alice", pki.ca_pem.data, pki.ca_pem.len, &p),
			 CF_ERR_ARG);
	assert_int_equal(cf_cofferd_profile_save(url, "alice", "not a pem", 9, &p), CF_ERR_PARSE);
	assert_int_equal(cf_cofferd_profile_save(url, "alice", pki.ca_pem.data, pki.ca_pem.len, &p),
			 CF_OK);
	assert_string_equal(p.url, url);
	assert_string_equal(p.user, "alice");
	assert_string_equal(p.dir, home);
	snprintf(path, sizeof(path), "%s/cofferd-ca.pem", home);
	assert_string_equal(p.ca_path, path);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/cofferd.token", home);
	assert_string_equal(p.token_path, path);
	snprintf(path, sizeof(path), "%s/cofferd.json", home);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(home, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	json_t *j = NULL;
	json_error_t jerr;
	j = json_load_file(path, 0, &jerr);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "url")), url);
	assert_string_equal(json_string_value(json_object_get(j, "ca")), "cofferd-ca.pem");
	assert_string_equal(json_string_value(json_object_get(j, "user")), "alice");
	assert_string_equal(json_string_value(json_object_get(j, "token_file")), "cofferd.token");
	assert_int_equal(json_object_size(j), 4);
	json_decref(j);

	/* No token yet: a client without one is fine, with one is not found. */
	assert_int_equal(cf_cofferd_client_open_profile(NULL, NULL, false, &c), CF_OK);
	assert_false(cf_cofferd_has_token(c));
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/me", NULL, NULL), CF_ERR_AUTH);
	cf_cofferd_client_free(c);
	assert_int_equal(cf_cofferd_client_open_profile(NULL, NULL, true, &c), CF_ERR_NOT_FOUND);

	/* The token: 0600, atomically replaced, read back. */
	assert_int_equal(cf_cofferd_token_write(p.token_path, "cft_old"), CF_OK);
	assert_int_equal(cf_cofferd_token_write(p.token_path, TOKEN), CF_OK);
	assert_int_equal(stat(p.token_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(cf_cofferd_token_read(p.token_path, &token), CF_OK);
	assert_string_equal((const char *)token.data, TOKEN);
	assert_int_equal(cf_cofferd_token_write(p.token_path, "bad token"), CF_ERR_ARG);
	assert_int_equal(cf_cofferd_client_open_profile(NULL, NULL, true, &c), CF_OK);
	assert_true(cf_cofferd_has_token(c));
	assert_int_equal(cf_cofferd_call(c, "GET", "/v1/me", NULL, NULL), CF_OK);
	cf_cofferd_client_free(c);

	/* A token file others can read is refused; so is anything but one token. */
	assert_int_equal(chmod(p.token_path, 0640), 0);
	assert_int_equal(cf_cofferd_token_read(p.token_path, &token), CF_ERR_AUTH);
	assert_int_equal(cf_cofferd_client_open_profile(NULL, NULL, true, &c), CF_ERR_AUTH);
	static const char *const bad_tokens[] = { "", "\n", "cft_a b\n", "cft_a\ncft_b\n",
						  "cft_\xc3\xa9\n" };
	for (size_t i = 0; i < sizeof(bad_tokens) / sizeof(bad_tokens[0]); i++) {
		write_file(p.token_path, bad_tokens[i], 0600);
		assert_int_equal(cf_cofferd_token_read(p.token_path, &token), CF_ERR_PARSE);
	}
	char big[TOKEN_BIG];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	write_file(p.token_path, big, 0600);
	assert_int_equal(cf_cofferd_token_read(p.token_path, &token), CF_ERR_PARSE);
	/* A symbolic link is not followed. */
	unlink(p.token_path);
	assert_int_equal(symlink("/etc/hostname", p.token_path), 0);
	assert_int_equal(cf_cofferd_token_read(p.token_path, &token), CF_ERR_IO);
	unlink(p.token_path);
	assert_int_equal(cf_cofferd_token_read(p.token_path, &token), CF_ERR_NOT_FOUND);

	/* Overrides: another URL or CA; both without a token need no profile at all. */
	assert_int_equal(cf_cofferd_client_open_profile("https://other:1", NULL, false, &c), CF_OK);
	assert_string_equal(cf_cofferd_client_url(c), "https://other:1");
	cf_cofferd_client_free(c);
	setenv("COFFER_HOME", "/nonexistent", 1);
	assert_int_equal(cf_cofferd_client_open_profile(url, pki.ca_path, false, &c), CF_OK);
	cf_cofferd_client_free(c);
	setenv("COFFER_HOME", home, 1);

	/* Relative and absolute names in cofferd.json; malformed ones refused. */
	snprintf(path, sizeof(path), "%s/cofferd.json", home);
	char text[600];
	snprintf(text, sizeof(text), "{\"url\": \"%s\", \"ca\": \"%s\", \"user\": \"bob\"}", url,
		 pki.ca_path);
	write_file(path, text, 0600);
	assert_int_equal(cf_cofferd_profile_load(&p), CF_OK);
	assert_string_equal(p.ca_path, pki.ca_path);
	assert_string_equal(p.user, "bob");
	static const char *const bad[] = {
		"", "[]", "{}", "{\"url\": 5}", "{\"url\": \"http://h\"}",
		"{\"url\": \"https://h/path\"}", "{\"url\": \"https://h\", \"ca\": 1}",
		"{\"url\": \"https://h\", \"ca\": \"\"}", "{\"url\": \"https://h\", \"user\": []}",
		"{\"url\": \"https://h\", \"token_file\": null}", "{\"url\": \"https://h\"} x",
		"{\"url\": \"https://h\", \"url\": \"https://i\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(path, bad[i], 0600);
		assert_int_equal(cf_cofferd_profile_load(&p), CF_ERR_PARSE);
		assert_int_equal(cf_cofferd_client_open_profile(NULL, NULL, false, &c), CF_ERR_PARSE);
	}

	/* Two users of one machine: two profiles, two tokens. */
	char home_b[128];
	snprintf(home_b, sizeof(home_b), "%s/profile-b", tmpdir);
	setenv("COFFER_HOME", home_b, 1);
	assert_int_equal(cf_cofferd_profile_save(url, "bob", pki.ca_pem.data, pki.ca_pem.len, &p),
			 CF_OK);
	assert_string_equal(p.dir, home_b);
	assert_int_equal(cf_cofferd_client_open_profile(NULL, NULL, true, &c), CF_ERR_NOT_FOUND);

	server_stop();
	unsetenv("COFFER_HOME");
	cf_buf_free(&token);
}

static int group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/coffer-test-cofferdc-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return pki_setup();
}

static int group_teardown(void **state)
{
	(void)state;
	pki_free();
	return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_id),
		cmocka_unit_test(test_valid_token),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_format_size),
		cmocka_unit_test(test_path_segment),
		cmocka_unit_test(test_state_final),
		cmocka_unit_test(test_expect_check),
		cmocka_unit_test(test_calls),
		cmocka_unit_test(test_hostile_answers),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_pinning),
		cmocka_unit_test(test_upload),
		cmocka_unit_test(test_download),
		cmocka_unit_test(test_profile),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
