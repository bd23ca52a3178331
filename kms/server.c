/*
 * The KMS's HTTPS front end: routes each request to its entry point in
 * kms.h, JSON in and out, on the shared server of lib/httpd.c (N event
 * loops, TLS 1.3 from the KMS's own context, worker stacks from the heap
 * so that under coffer-launch they are secretmem like the rest of the
 * KMS's memory: a release has file keys on its stack). Keep-alive
 * connections make a release one round trip after the first handshake.
 */
#define CF_LOG_MODULE "kms"

#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "coffer/httpd.h"
#include "coffer/json.h"
#include "coffer/log.h"
#include "server.h"

#define MAX_BODY (1u << 20)
#define MAX_HEADERS (16u * 1024u)
#define IO_TIMEOUT 30

static void handle(struct evhttp_request *req, void *arg)
{
	kms *k = arg;
	json_t *in = NULL, *out = NULL;
	int status;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	if (!path)
		path = "/";

	if (method == EVHTTP_REQ_GET) {
		if (strcmp(path, "/v1/info") == 0)
			status = kms_info(k, &out);
		else
			status = kms_fail(&out, 404, "path", "no such resource");
		goto send;
	}
	if (method != EVHTTP_REQ_POST) {
		status = kms_fail(&out, 405, "method", "GET or POST only");
		goto send;
	}

	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(body);
	if (len > MAX_BODY) {
		status = kms_fail(&out, 413, "request", "bodies are at most 1 MiB");
		goto send;
	}
	const char *text = len ? (const char *)evbuffer_pullup(body, -1) : "{}";
	cf_err rc = cf_json_parse(text, len ? len : 2, NULL, &in);
	if (rc != CF_OK || !json_is_object(in)) {
		status = kms_fail(&out, 400, "request", "the body is not a JSON object (%s)",
				  rc != CF_OK ? cf_strerror(rc) : "other JSON value");
		goto send;
	}
	if (strcmp(path, "/v1/enroll") == 0)
		status = kms_enroll(k, in, &out);
	else if (strcmp(path, "/v1/request") == 0)
		status = kms_request(k, in, &out);
	else if (strcmp(path, "/v1/nonce") == 0)
		status = kms_nonce(k, &out);
	else if (strcmp(path, "/v1/release") == 0)
		status = kms_release(k, in, &out);
	else if (strcmp(path, "/v1/certify") == 0)
		status = kms_certify(k, in, &out);
	else
		status = kms_fail(&out, 404, "path", "no such resource");
send:
	cf_httpd_send_json(req, status, out);
	json_decref(in);
	json_decref(out);
}

cf_err kms_serve(kms *k, const char *host, unsigned port, int ready_fd, unsigned nthreads)
{
	cf_httpd_config cfg = {
		.host = host,
		.port = port,
		.ssl = kms_ssl_ctx(k),
		.threads = nthreads,
		.ready_fd = ready_fd,
		.max_body = MAX_BODY,
		.max_headers = MAX_HEADERS,
		.timeout = IO_TIMEOUT,
		.methods = EVHTTP_REQ_GET | EVHTTP_REQ_POST,
		.heap_stacks = true,
	};
	return cf_httpd_serve(&cfg, handle, k);
}
