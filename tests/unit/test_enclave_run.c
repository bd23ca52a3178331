/*
 * enclave/run: the enclave's side of cofferd's run endpoints against a
 * local TLS 1.3 server in a thread: the spec with the bearer token,
 * errors mapped and described, a blob streamed through the reader
 * (several MiB, read in small pieces by a slow reader, so the transfer
 * pauses and resumes), an error answer refused before any byte, blob
 * URLs reduced to their path (the token only ever goes to the run's
 * cofferd), an output uploaded in 8 MiB parts at the right offsets and
 * committed with its size, SHA-256 and an attestation that verifies for a
 * recipient (and for that output only), finish, and a server whose
 * certificate is not from the pinned CA.
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
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "coffer/buf.h"
#include "coffer/crypto.h"
#include "coffer/enc.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"
#include "run.h"

#define RUN "run-0123456789abcdef"
#define TOKEN "cft_0123456789abcdefghijklmnopqrstuvwxyzABCDE"
#define BLOB_LEN (3u * 1024u * 1024u + 12345u)

/* --- certificates --- */

static struct {
	EVP_PKEY *key, *other_key;
	X509 *cert, *other;
	cf_buf pem;
} pki;

static X509 *self_signed(EVP_PKEY *key)
{
	X509 *x = X509_new();
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(random() & 0x7fffffff));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"cofferd", -1,
				   -1, 0);
	X509_set_issuer_name(x, name);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, "subjectAltName", "IP:127.0.0.1");
	assert_non_null(e);
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

/* --- a local TLS server, one request per connection --- */

typedef struct request {
	char method[16];
	char path[256];
	char auth[128];
	size_t len;
	uint8_t sha256[32];
	char body[1024]; /* the start of it, NUL-terminated */
} request;

static struct {
	int listen_fd;
	unsigned port;
	SSL_CTX *ctx;
	pthread_t thread;
	volatile int stop;
	request log[16];
	int nlog;
	uint8_t *blob;
} srv;

static bool read_request(SSL *ssl, request *rq, cf_buf *body)
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
	if (sscanf(head, "%15s %255s", rq->method, rq->path) != 2)
		return false;
	const char *a = strcasestr(head, "\r\nAuthorization: ");
	if (a)
		sscanf(a + 17, "%127[^\r]", rq->auth);
	size_t clen = 0;
	const char *cl = strcasestr(head, "\r\nContent-Length:");
	if (cl)
		clen = strtoul(cl + 17, NULL, 10);
	if (cf_buf_append(body, end + 4, n - (size_t)(end + 4 - head)) != CF_OK)
		return false;
	while (body->len < clen) {
		char chunk[65536];
		int r = SSL_read(ssl, chunk, sizeof(chunk));
		if (r <= 0 || cf_buf_append(body, chunk, (size_t)r) != CF_OK)
			return false;
	}
	rq->len = body->len;
	snprintf(rq->body, sizeof(rq->body), "%.*s", (int)(body->len < 1000 ? body->len : 1000),
		 body->data ? (const char *)body->data : "");
	return cf_hash(CF_SHA256, body->data ? body->data : (const uint8_t *)"", body->len,
		       rq->sha256) == CF_OK;
}

static void respond(SSL *ssl, int status, const void *body, size_t len)
{
	char head[256];
	int hl = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n"
			  "Connection: close\r\n\r\n", status, len);
	SSL_write(ssl, head, hl);
	size_t off = 0;
	while (off < len) {
		/* Small writes: the client sees the blob arrive in pieces. */
		size_t k = len - off < 16384 ? len - off : 16384;
		int w = SSL_write(ssl, (const uint8_t *)body + off, (int)k);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
}

static void route(SSL *ssl, const request *rq)
{
	static const char outputs[] = "/v1/runs/" RUN "/outputs/";
	char want_auth[160];
	snprintf(want_auth, sizeof(want_auth), "Bearer %s", TOKEN);
	if (strcmp(rq->auth, want_auth) != 0) {
		const char *e = "{\"error\": {\"code\": \"unauthenticated\", \"message\": \"bad\\ntoken\"}}";
		respond(ssl, 401, e, strlen(e));
	} else if (strcmp(rq->path, "/v1/runs/" RUN "/spec") == 0) {
		const char *s = "{\"task\": {\"version\": 1}, \"approvals\": [], \"inputs\": []}";
		respond(ssl, 200, s, strlen(s));
	} else if (strcmp(rq->path, "/v1/datasets/ds-1/blob") == 0) {
		respond(ssl, 200, srv.blob, BLOB_LEN);
	} else if (strncmp(rq->path, outputs, sizeof(outputs) - 1) == 0 &&
		   strcmp(rq->method, "PUT") == 0) {
		char ok[64];
		const char *q = strstr(rq->path, "?offset=");
		int k = snprintf(ok, sizeof(ok), "{\"received\": %llu}",
				 (q ? strtoull(q + 8, NULL, 10) : 0) + (unsigned long long)rq->len);
		respond(ssl, 200, ok, (size_t)k);
	} else if (strncmp(rq->path, outputs, sizeof(outputs) - 1) == 0 ||
		   strcmp(rq->path, "/v1/runs/" RUN "/finish") == 0) {
		const char *ok = "{}";
		respond(ssl, 200, ok, 2);
	} else if (strcmp(rq->path, "/v1/runs/" RUN "/text") == 0) {
		respond(ssl, 200, "not json", 8);
	} else {
		const char *e = "{\"error\": {\"code\": \"not_found\", \"message\": \"no such thing\"}}";
		respond(ssl, 404, e, strlen(e));
	}
}

static void serve_one(int fd)
{
	SSL *ssl = SSL_new(srv.ctx);
	cf_buf body;
	request rq;
	memset(&rq, 0, sizeof(rq));
	cf_buf_init(&body, 16u << 20, false);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) == 1 && read_request(ssl, &rq, &body)) {
		if (srv.nlog < 16)
			srv.log[srv.nlog++] = rq;
		route(ssl, &rq);
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

static void server_start(bool other_cert)
{
	uint8_t *blob = srv.blob;
	memset(&srv, 0, sizeof(srv));
	srv.blob = blob;
	srv.ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(srv.ctx);
	assert_int_equal(SSL_CTX_use_certificate(srv.ctx, other_cert ? pki.other : pki.cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(srv.ctx, other_cert ? pki.other_key : pki.key), 1);
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

static cf_run *client(const char *token)
{
	char url[64];
	cf_run *c = NULL;
	snprintf(url, sizeof(url), "https://127.0.0.1:%u", srv.port);
	assert_int_equal(cf_run_open(url, pki.pem.data, pki.pem.len, token, RUN, &c), CF_OK);
	return c;
}

static int group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	pki.key = EVP_EC_gen("P-256");
	pki.other_key = EVP_EC_gen("P-256");
	if (!pki.key || !pki.other_key)
		return -1;
	pki.cert = self_signed(pki.key);
	pki.other = self_signed(pki.other_key);
	cf_buf_init(&pki.pem, 1 << 16, false);
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(b, pki.cert);
	char *p;
	long n = BIO_get_mem_data(b, &p);
	if (cf_buf_append(&pki.pem, p, (size_t)n) != CF_OK)
		return -1;
	BIO_free(b);
	srv.blob = malloc(BLOB_LEN);
	if (!srv.blob)
		return -1;
	for (size_t i = 0; i < BLOB_LEN; i++)
		srv.blob[i] = (uint8_t)(i * 31 + (i >> 12));
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	X509_free(pki.cert);
	X509_free(pki.other);
	EVP_PKEY_free(pki.key);
	EVP_PKEY_free(pki.other_key);
	cf_buf_free(&pki.pem);
	free(srv.blob);
	return 0;
}

static void test_spec_and_errors(void **state)
{
	(void)state;
	server_start(false);
	cf_run *c = client(TOKEN);
	json_t *spec = NULL;
	assert_int_equal(cf_run_spec(c, &spec), CF_OK);
	assert_true(json_is_object(json_object_get(spec, "task")));
	json_decref(spec);
	assert_int_equal(srv.nlog, 1);
	assert_string_equal(srv.log[0].method, "GET");
	assert_string_equal(srv.log[0].auth, "Bearer " TOKEN);
	assert_int_equal(cf_run_finish(c, false, "output result: the query does not compile"),
			 CF_OK);
	assert_string_equal(srv.log[1].method, "POST");
	assert_string_equal(srv.log[1].path, "/v1/runs/" RUN "/finish");
	json_t *fin = NULL;
	assert_int_equal(cf_json_parse(srv.log[1].body, strlen(srv.log[1].body), NULL, &fin), CF_OK);
	assert_string_equal(json_string_value(json_object_get(fin, "status")), "failed");
	assert_string_equal(json_string_value(json_object_get(fin, "message")),
			    "output result: the query does not compile");
	json_decref(fin);
	cf_run_free(c);

	/* A refused token: the error names the status, code and message, on one line. */
	c = client("cft_wrong");
	assert_int_equal(cf_run_spec(c, &spec), CF_ERR_AUTH);
	assert_null(spec);
	const char *e = cf_run_error(c);
	assert_non_null(strstr(e, "HTTP 401: unauthenticated: bad"));
	assert_null(strchr(e, '\n'));
	cf_run_free(c);
	server_stop();

	/* A server with a certificate the client does not pin. */
	server_start(true);
	c = client(TOKEN);
	assert_int_equal(cf_run_spec(c, &spec), CF_ERR_IO);
	assert_int_equal(srv.nlog, 0);
	cf_run_free(c);
	server_stop();

	/* Arguments are checked before any connection. */
	assert_int_equal(cf_run_open("https://h", pki.pem.data, pki.pem.len, TOKEN, "run-1", &c),
			 CF_ERR_ARG);
	assert_int_equal(cf_run_open("https://h", pki.pem.data, pki.pem.len, "bad token", RUN, &c),
			 CF_ERR_ARG);
	assert_int_equal(cf_run_open("http://h", pki.pem.data, pki.pem.len, TOKEN, RUN, &c),
			 CF_ERR_ARG);
	assert_int_equal(cf_run_open("https://h/path", pki.pem.data, pki.pem.len, TOKEN, RUN, &c),
			 CF_ERR_ARG);
	assert_null(c);
}

static void test_blob_paths(void **state)
{
	(void)state;
	char path[CF_RUN_MAX_BLOB_PATH];
	assert_int_equal(cf_run_blob_path("/v1/datasets/ds-1/blob", path, sizeof(path)), CF_OK);
	assert_string_equal(path, "/v1/datasets/ds-1/blob");
	/* Whatever host cofferd names, only the path is used: the token stays with the run's cofferd. */
	assert_int_equal(cf_run_blob_path("https://cofferd.example:8080/v1/datasets/ds-1/blob", path,
					  sizeof(path)), CF_OK);
	assert_string_equal(path, "/v1/datasets/ds-1/blob");
	assert_int_equal(cf_run_blob_path("https://evil.example/v1/x", path, sizeof(path)), CF_OK);
	assert_string_equal(path, "/v1/x");
	assert_int_equal(cf_run_blob_path("https://evil.example", path, sizeof(path)), CF_ERR_ARG);
	assert_int_equal(cf_run_blob_path("https://h/other", path, sizeof(path)), CF_ERR_ARG);
	assert_int_equal(cf_run_blob_path("http://h/v1/x", path, sizeof(path)), CF_ERR_ARG);
	assert_int_equal(cf_run_blob_path("v1/relative", path, sizeof(path)), CF_ERR_ARG);
	assert_int_equal(cf_run_blob_path(NULL, path, sizeof(path)), CF_ERR_ARG);
	assert_int_equal(cf_run_blob_path("/v1/datasets/ds-1/blob", path, 8), CF_ERR_TOO_BIG);
}

static void test_blob(void **state)
{
	(void)state;
	server_start(false);
	cf_run *c = client(TOKEN);
	cf_cofferd_stream *b = NULL;
	uint8_t digest[32], want[32];
	cf_hash_ctx *h = NULL;
	assert_int_equal(cf_run_blob_open(c, "/v1/datasets/ds-1/blob", BLOB_LEN, &b), CF_OK);
	cf_reader r = cf_cofferd_stream_reader(b);
	assert_int_equal(cf_hash_new(CF_SHA256, &h), CF_OK);
	size_t total = 0, got = 0;
	uint8_t chunk[1000];
	int slow = 0;
	do {
		assert_int_equal(r.read(r.ctx, chunk, sizeof(chunk), &got), CF_OK);
		assert_int_equal(cf_hash_update(h, chunk, got), CF_OK);
		total += got;
		/* A slow reader early on: the transfer must hold, not drop bytes. */
		if (slow++ == 10)
			usleep(200000);
	} while (got > 0);
	assert_int_equal(total, BLOB_LEN);
	assert_int_equal(cf_hash_final(h, digest), CF_OK);
	cf_hash_free(h);
	assert_int_equal(cf_hash(CF_SHA256, srv.blob, BLOB_LEN, want), CF_OK);
	assert_memory_equal(digest, want, 32);
	cf_cofferd_stream_free(b);

	/* By the URL cofferd writes in the spec. */
	char url[96];
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/v1/datasets/ds-1/blob", srv.port);
	assert_int_equal(cf_run_blob_open(c, url, UINT64_MAX, &b), CF_OK);
	r = cf_cofferd_stream_reader(b);
	assert_int_equal(cf_read_full(r, chunk, sizeof(chunk), &got), CF_OK);
	assert_memory_equal(chunk, srv.blob, sizeof(chunk));
	cf_cofferd_stream_free(b);
	/* A blob larger than cofferd said stops the transfer. */
	cf_err rc = cf_run_blob_open(c, "/v1/datasets/ds-1/blob", 5000, &b);
	if (rc == CF_OK) {
		r = cf_cofferd_stream_reader(b);
		do
			rc = r.read(r.ctx, chunk, sizeof(chunk), &got);
		while (rc == CF_OK && got > 0);
	}
	assert_int_equal(rc, CF_ERR_TOO_BIG);
	cf_cofferd_stream_free(b);
	b = NULL;

	/* An error answer is refused before any byte, never taken for ciphertext. */
	assert_int_equal(cf_run_blob_open(c, "/v1/datasets/ds-2/blob", UINT64_MAX, &b),
			 CF_ERR_NOT_FOUND);
	assert_null(b);
	assert_non_null(strstr(cf_run_error(c), "404"));
	assert_int_equal(cf_run_blob_open(c, "/v1/a b", UINT64_MAX, &b), CF_ERR_ARG);
	assert_int_equal(cf_run_blob_open(c, "/elsewhere", UINT64_MAX, &b), CF_ERR_ARG);
	cf_run_free(c);
	server_stop();
}

/* A release as cf_kms_release leaves it: digest, output seed, the KMS's statement of its key. */
static void fake_release(cf_kms_release_result *rel, uint8_t kms_pub[32])
{
	uint8_t kms_seed[32], opub[32];
	char hex[65], pub64[45], sig[CF_KMS_SIG_B64_LEN + 1];
	memset(rel, 0, sizeof(*rel));
	for (int i = 0; i < 32; i++)
		rel->task_digest[i] = (uint8_t)(i * 5);
	assert_int_equal(cf_ed25519_keygen(kms_seed, kms_pub), CF_OK);
	assert_int_equal(cf_ed25519_keygen(rel->output_seed, opub), CF_OK);
	cf_hex_encode(rel->task_digest, 32, hex);
	cf_b64_encode(opub, 32, true, pub64);
	json_t *st = json_pack("{s:s,s:s,s:s,s:s,s:I}", "task_digest", hex, "output_key", pub64,
			       "tee", "soft", "measurement", "aa", "issued", (json_int_t)1);
	assert_int_equal(cf_kms_sign(kms_seed, CF_KMS_CTX_OUTPUT_KEY, st, sig), CF_OK);
	rel->output_key = json_pack("{s:o,s:s}", "statement", st, "sig", sig);
	assert_non_null(rel->output_key);
}

static void test_upload(void **state)
{
	(void)state;
	server_start(false);
	cf_run *c = client(TOKEN);
	cf_kms_release_result rel;
	uint8_t kms_pub[32];
	fake_release(&rel, kms_pub);
	const size_t len = 2 * CF_COFFERD_PART_MAX + 4321;
	uint8_t *data = malloc(len), want[32];
	assert_non_null(data);
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	/* Without the release's output key nothing is sent. */
	cf_kms_release_result none;
	memset(&none, 0, sizeof(none));
	assert_int_equal(cf_run_output_put(c, "result", data, len, NULL), CF_ERR_ARG);
	assert_int_equal(cf_run_output_put(c, "result", data, len, &none), CF_ERR_ARG);
	assert_int_equal(srv.nlog, 0);
	assert_int_equal(cf_run_output_put(c, "result", data, len, &rel), CF_OK);
	assert_int_equal(srv.nlog, 4);
	char path[128];
	for (int i = 0; i < 3; i++) {
		size_t n = i < 2 ? CF_COFFERD_PART_MAX : 4321;
		snprintf(path, sizeof(path), "/v1/runs/" RUN "/outputs/result?offset=%zu",
			 (size_t)i * CF_COFFERD_PART_MAX);
		assert_string_equal(srv.log[i].method, "PUT");
		assert_string_equal(srv.log[i].path, path);
		assert_int_equal(srv.log[i].len, n);
		uint8_t part[32];
		assert_int_equal(cf_hash(CF_SHA256, data + (size_t)i * CF_COFFERD_PART_MAX, n, part),
				 CF_OK);
		assert_memory_equal(srv.log[i].sha256, part, 32);
	}
	assert_string_equal(srv.log[3].method, "POST");
	assert_string_equal(srv.log[3].path, "/v1/runs/" RUN "/outputs/result/commit");
	char hex[65];
	json_t *commit = NULL;
	assert_int_equal(cf_hash(CF_SHA256, data, len, want), CF_OK);
	cf_hex_encode(want, 32, hex);
	assert_int_equal(cf_json_parse(srv.log[3].body, strlen(srv.log[3].body), NULL, &commit),
			 CF_OK);
	assert_string_equal(json_string_value(json_object_get(commit, "sha256")), hex);
	assert_int_equal(json_integer_value(json_object_get(commit, "size")), (json_int_t)len);
	/* The attestation: a recipient verifies it over the bytes it will download. */
	const json_t *att = json_object_get(commit, "attestation");
	char why[200];
	cf_kms_output_origin origin;
	assert_int_equal(cf_kms_output_verify(kms_pub, att, rel.task_digest, "result", want, &origin,
					      why, sizeof(why)),
			 CF_OK);
	assert_string_equal(origin.tee, "soft");
	/* ...and not as another output, nor over other bytes. */
	assert_int_equal(cf_kms_output_verify(kms_pub, att, rel.task_digest, "other", want, NULL, why,
					      sizeof(why)),
			 CF_ERR_AUTH);
	want[0] ^= 1;
	assert_int_equal(cf_kms_output_verify(kms_pub, att, rel.task_digest, "result", want, NULL,
					      why, sizeof(why)),
			 CF_ERR_AUTH);
	json_decref(commit);

	/* Names that would leave the output's path are refused before anything is sent. */
	srv.nlog = 0;
	assert_int_equal(cf_run_output_put(c, "../x", data, 10, &rel), CF_ERR_ARG);
	assert_int_equal(cf_run_output_put(c, "a?b", data, 10, &rel), CF_ERR_ARG);
	assert_int_equal(cf_run_output_put(c, "", data, 10, &rel), CF_ERR_ARG);
	assert_int_equal(srv.nlog, 0);
	cf_run_free(c);
	/* A refused part stops the upload: no commit follows. */
	c = client("cft_wrong");
	assert_int_equal(cf_run_output_put(c, "result", data, 10, &rel), CF_ERR_AUTH);
	assert_int_equal(srv.nlog, 1);
	cf_run_free(c);
	cf_kms_release_result_free(&rel);
	free(data);
	server_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_and_errors),
		cmocka_unit_test(test_blob_paths),
		cmocka_unit_test(test_blob),
		cmocka_unit_test(test_upload),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
