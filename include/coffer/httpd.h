/*
 * httpd: the HTTPS server of coffer's services (coffer-kms, cofferd).
 *
 * libevent's evhttp over OpenSSL bufferevents: one listening socket
 * (TCP_NODELAY, inherited by accepted sockets), N event loops each with
 * its own evhttp accepting on it, so N threads serve in parallel; the
 * TLS policy is the caller's SSL_CTX (both services allow TLS 1.3 only).
 * evhttp enforces the header and body limits and the idle timeout and
 * answers a request over them by itself (413, 400) before the handler
 * sees it. SIGINT and SIGTERM stop every loop; SIGPIPE is ignored.
 *
 * The handler runs on the loop thread that owns the connection, once per
 * complete request, and must answer it: in one piece (cf_httpd_send_json,
 * evhttp_send_reply) or streamed (cf_httpd_send_file, or
 * evhttp_send_reply_start/chunk/end itself). Handlers of different
 * connections run concurrently; whatever they share needs its own lock.
 */
#ifndef COFFER_HTTPD_H
#define COFFER_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/http.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "coffer/err.h"

#define CF_HTTPD_MAX_THREADS 64u

typedef void (*cf_httpd_handler)(struct evhttp_request *req, void *arg);

typedef struct cf_httpd_config {
	const char *host;      /* address to bind, numeric or a name */
	unsigned port;         /* 0 picks a free port */
	SSL_CTX *ssl;          /* borrowed; every connection's SSL comes from it */
	unsigned threads;      /* event loops, 1 to CF_HTTPD_MAX_THREADS */
	int ready_fd;          /* if >= 0, the bound port is written there as a line, then closed */
	size_t max_body;       /* bytes of a request body */
	size_t max_headers;    /* bytes of the request line and headers */
	int timeout;           /* seconds a connection may stay idle or stalled */
	int methods;           /* EVHTTP_REQ_* allowed; others get 405 from evhttp */
	/*
	 * Worker stacks from the heap, threads detached and never joined.
	 * Under coffer-launch the heap is secretmem, so the stacks are too;
	 * a join would sleep on a futex the kernel cannot wake there. The
	 * stacks are not freed (tolerable for a process that serves until
	 * it exits). false: ordinary stacks, joined at the end.
	 */
	bool heap_stacks;
	/* Called once with the bound port, after listening, before serving. */
	void (*on_listen)(void *arg, unsigned port);
	void *on_listen_arg;
} cf_httpd_config;

/*
 * Serves until SIGINT or SIGTERM (CF_OK), or a failure to listen or to
 * set up a loop (CF_ERR_IO, logged), or bad arguments (CF_ERR_ARG).
 * handler gets every request with arg.
 */
cf_err cf_httpd_serve(const cf_httpd_config *cfg, cf_httpd_handler handler, void *arg) CF_WUR;

/* "OK", "Not Found", ...; "Error" for a status it does not name. */
const char *cf_httpd_reason(int status);

/*
 * Answers with status and body as compact JSON with sorted keys and a
 * newline (body NULL: an empty body), Content-Type application/json,
 * Cache-Control no-store.
 */
void cf_httpd_send_json(struct evhttp_request *req, int status, const json_t *body);

/*
 * Answers 200 with length bytes of fd from offset, read in pieces of
 * CF_HTTPD_STREAM_PIECE as the connection drains, so memory stays
 * bounded whatever the size (Content-Length is set; content_type may
 * be NULL for application/octet-stream). Takes fd in every case and
 * closes it when done or when the client goes away. If the file yields
 * fewer bytes than promised, the connection is dropped (the client sees
 * a short body, never a wrong one).
 */
#define CF_HTTPD_STREAM_PIECE (256u * 1024u)
void cf_httpd_send_file(struct evhttp_request *req, int fd, uint64_t offset, uint64_t length,
			const char *content_type);

#endif
