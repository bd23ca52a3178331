/*
 * cofferd over HTTPS: evhttp requests in, cofferd_handle() answers out.
 */
#define CF_LOG_MODULE "cofferd"

#include "http.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "coffer/buf.h"
#include "coffer/httpd.h"
#include "coffer/log.h"

#define MAX_HEADERS (16u * 1024u)
#define IO_TIMEOUT 60

typedef struct front {
	cofferd *d;
	const cofferd_listen *l;
} front;

static cofferd_method method_of(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET: return COFFERD_GET;
	case EVHTTP_REQ_POST: return COFFERD_POST;
	case EVHTTP_REQ_PUT: return COFFERD_PUT;
	case EVHTTP_REQ_DELETE: return COFFERD_DELETE;
	default: return COFFERD_OTHER;
	}
}

static void handle(struct evhttp_request *req, void *arg)
{
	front *f = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	uint8_t *body = len ? evbuffer_pullup(in, -1) : NULL;
	cofferd_request r = {
		.method = method_of(evhttp_request_get_command(req)),
		.path = uri ? evhttp_uri_get_path(uri) : NULL,
		.query = uri ? evhttp_uri_get_query(uri) : NULL,
		.authorization = evhttp_find_header(evhttp_request_get_input_headers(req),
						    "Authorization"),
		.body = body,
		.body_len = body ? len : 0,
	};
	cofferd_response resp;
	cofferd_handle(f->d, &r, &resp);
	/* JSON bodies may hold passwords: none stays in a freed buffer. */
	if (body && len <= COFFERD_MAX_JSON)
		cf_wipe(body, len);
	evhttp_add_header(evhttp_request_get_output_headers(req), "X-Content-Type-Options", "nosniff");
	if (resp.fd >= 0) {
		cf_httpd_send_file(req, resp.fd, resp.offset, resp.length, resp.content_type);
		resp.fd = -1;
	} else {
		cf_httpd_send_json(req, resp.status, resp.json);
	}
	cofferd_response_clear(&resp);
}

static void on_listen(void *arg, unsigned port)
{
	front *f = arg;
	char url[512];
	if (f->l->public_url)
		snprintf(url, sizeof(url), "%s", f->l->public_url);
	else if (strchr(f->l->host, ':'))
		snprintf(url, sizeof(url), "https://[%s]:%u", f->l->host, port);
	else
		snprintf(url, sizeof(url), "https://%s:%u", f->l->host, port);
	cofferd_set_url(f->d, url);
}

cf_err cofferd_serve(cofferd *d, const cofferd_listen *l)
{
	front f = { d, l };
	cf_httpd_config cfg = {
		.host = l->host,
		.port = l->port,
		.ssl = cofferd_ssl_ctx(d),
		.threads = l->threads,
		.ready_fd = l->ready_fd,
		.max_body = COFFERD_MAX_PART,
		.max_headers = MAX_HEADERS,
		.timeout = IO_TIMEOUT,
		.methods = EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE,
		.heap_stacks = false,
		.on_listen = on_listen,
		.on_listen_arg = &f,
	};
	return cf_httpd_serve(&cfg, handle, &f);
}
