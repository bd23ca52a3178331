/*
 * The KMS's HTTPS server: evhttp with TLS 1.3 bufferevents, one event
 * loop, JSON in and out. Keep-alive connections make a release one round
 * trip after the first handshake.
 */
#define CF_LOG_MODULE "kms"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/ssl.h>

#include "coffer/json.h"
#include "coffer/log.h"
#include "server.h"

#define MAX_BODY (1u << 20)
#define MAX_HEADERS (16u * 1024u)
#define IO_TIMEOUT 30

typedef struct server {
	kms *k;
	SSL_CTX *ctx;
	struct event_base *base;
} server;

static struct bufferevent *make_tls_bev(struct event_base *base, void *arg)
{
	server *s = arg;
	SSL *ssl = SSL_new(s->ctx);
	if (!ssl)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					      BEV_OPT_CLOSE_ON_FREE);
}

static void reply(struct evhttp_request *req, int status, json_t *body)
{
	struct evbuffer *buf = evbuffer_new();
	char *text = body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (buf && text) {
		evbuffer_add(buf, text, strlen(text));
		evbuffer_add(buf, "\n", 1);
	}
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, status,
			  status == 200 ? "OK" : status == 400 ? "Bad Request"
					 : status == 403 ? "Forbidden" : status == 404 ? "Not Found"
					 : status == 409 ? "Conflict" : status == 413 ? "Payload Too Large"
									: "Error",
			  buf);
	free(text);
	if (buf)
		evbuffer_free(buf);
}

static void handle(struct evhttp_request *req, void *arg)
{
	server *s = arg;
	json_t *in = NULL, *out = NULL;
	int status;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	if (!path)
		path = "/";

	if (method == EVHTTP_REQ_GET) {
		if (strcmp(path, "/v1/info") == 0)
			status = kms_info(s->k, &out);
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
		status = kms_enroll(s->k, in, &out);
	else if (strcmp(path, "/v1/request") == 0)
		status = kms_request(s->k, in, &out);
	else if (strcmp(path, "/v1/nonce") == 0)
		status = kms_nonce(s->k, &out);
	else if (strcmp(path, "/v1/release") == 0)
		status = kms_release(s->k, in, &out);
	else if (strcmp(path, "/v1/certify") == 0)
		status = kms_certify(s->k, in, &out);
	else
		status = kms_fail(&out, 404, "path", "no such resource");
send:
	reply(req, status, out);
	json_decref(in);
	json_decref(out);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	server *s = arg;
	log_info("signal %d: stopping", (int)sig);
	event_base_loopexit(s->base, NULL);
}

cf_err kms_serve(kms *k, const char *host, unsigned port, int ready_fd)
{
	server s = { .k = k, .ctx = kms_ssl_ctx(k) };
	struct evhttp *http = NULL;
	struct event *sigint = NULL, *sigterm = NULL;
	cf_err rc = CF_ERR_IO;
	signal(SIGPIPE, SIG_IGN);
	s.base = event_base_new();
	if (!s.base)
		return CF_ERR_NOMEM;
	http = evhttp_new(s.base);
	if (!http)
		goto out;
	evhttp_set_bevcb(http, make_tls_bev, &s);
	evhttp_set_gencb(http, handle, &s);
	evhttp_set_max_body_size(http, MAX_BODY);
	evhttp_set_max_headers_size(http, MAX_HEADERS);
	evhttp_set_timeout(http, IO_TIMEOUT);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(http, host, (ev_uint16_t)port);
	if (!bound) {
		log_error("cannot listen on %s:%u", host, port);
		goto out;
	}
	/*
	 * Answers leave as several small TLS records: without NODELAY, Nagle
	 * holds the last one for the client's delayed ACK (40 ms a request).
	 * Accepted sockets inherit the option from the listener on Linux.
	 */
	int one = 1;
	setsockopt(evhttp_bound_socket_get_fd(bound), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	unsigned actual = port;
	if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sl) == 0)
		actual = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							: ((struct sockaddr_in *)&ss)->sin_port);
	sigint = evsignal_new(s.base, SIGINT, on_signal, &s);
	sigterm = evsignal_new(s.base, SIGTERM, on_signal, &s);
	if (!sigint || !sigterm || event_add(sigint, NULL) || event_add(sigterm, NULL))
		goto out;
	log_info("listening on https://%s:%u", host, actual);
	if (ready_fd >= 0) {
		dprintf(ready_fd, "%u\n", actual);
		close(ready_fd);
	}
	rc = event_base_dispatch(s.base) == 0 || event_base_got_exit(s.base) ? CF_OK : CF_ERR_IO;
out:
	if (sigint)
		event_free(sigint);
	if (sigterm)
		event_free(sigterm);
	if (http)
		evhttp_free(http);
	event_base_free(s.base);
	return rc;
}
