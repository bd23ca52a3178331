/*
 * The KMS's HTTPS server: evhttp with TLS 1.3 bufferevents, one event
 * loop, JSON in and out. Keep-alive connections make a release one round
 * trip after the first handshake.
 */
#define CF_LOG_MODULE "kms"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <semaphore.h>
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
#include <event2/thread.h>
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

/* One event loop: its own base and evhttp, accepting on the shared listener. */
typedef struct worker {
	server srv;
	struct evhttp *http;
	pthread_t thread;
	sem_t *done;
} worker;

static void *worker_main(void *arg)
{
	worker *w = arg;
	event_base_dispatch(w->srv.base);
	sem_post(w->done);
	return NULL;
}

typedef struct stopper {
	worker *workers;
	size_t n;
} stopper;

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	stopper *st = arg;
	log_info("signal %d: stopping", (int)sig);
	for (size_t i = 0; i < st->n; i++)
		event_base_loopexit(st->workers[i].srv.base, NULL);
}

static int listen_on(const char *host, unsigned port, unsigned *actual)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	char ps[16];
	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(host, ps, &hints, &ai) != 0 || !ai)
		return -1;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	/*
	 * Answers leave as several small TLS records: without NODELAY, Nagle
	 * holds the last one for the client's delayed ACK (40 ms a request).
	 * Accepted sockets inherit the option from the listener on Linux.
	 */
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 512) != 0) {
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	*actual = port;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		*actual = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							 : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/*
 * Worker threads' stacks come from the heap, which under coffer-launch is
 * secretmem like the rest of the KMS's memory: a release has file keys on
 * its stack. They are never joined (the kernel's wake-up on thread exit
 * cannot reach secretmem); each says it is done through a semaphore.
 */
#define WORKER_STACK (1u << 20)

cf_err kms_serve(kms *k, const char *host, unsigned port, int ready_fd, unsigned nthreads)
{
	cf_err rc = CF_ERR_IO;
	unsigned actual = 0;
	size_t started = 0;
	struct event *sigint = NULL, *sigterm = NULL;
	static sem_t done; /* in .bss: futexes on secretmem are not all served */
	if (nthreads < 1 || nthreads > 64)
		return CF_ERR_ARG;
	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads() != 0 || sem_init(&done, 0, 0) != 0)
		return CF_ERR_IO;
	int fd = listen_on(host, port, &actual);
	if (fd < 0) {
		log_error("cannot listen on %s:%u: %s", host, port, strerror(errno));
		return CF_ERR_IO;
	}
	worker *w = calloc(nthreads, sizeof(*w));
	stopper st = { w, nthreads };
	if (!w)
		goto out;
	for (size_t i = 0; i < nthreads; i++) {
		w[i].srv = (server){ .k = k, .ctx = kms_ssl_ctx(k), .base = event_base_new() };
		w[i].done = &done;
		if (!w[i].srv.base || !(w[i].http = evhttp_new(w[i].srv.base)))
			goto out;
		evhttp_set_bevcb(w[i].http, make_tls_bev, &w[i].srv);
		evhttp_set_gencb(w[i].http, handle, &w[i].srv);
		evhttp_set_max_body_size(w[i].http, MAX_BODY);
		evhttp_set_max_headers_size(w[i].http, MAX_HEADERS);
		evhttp_set_timeout(w[i].http, IO_TIMEOUT);
		evhttp_set_allowed_methods(w[i].http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
		if (!evhttp_accept_socket_with_handle(w[i].http, fd))
			goto out;
	}
	sigint = evsignal_new(w[0].srv.base, SIGINT, on_signal, &st);
	sigterm = evsignal_new(w[0].srv.base, SIGTERM, on_signal, &st);
	if (!sigint || !sigterm || event_add(sigint, NULL) || event_add(sigterm, NULL))
		goto out;
	for (size_t i = 1; i < nthreads; i++) {
		pthread_attr_t attr;
		void *stack = aligned_alloc(4096, WORKER_STACK);
		if (!stack || pthread_attr_init(&attr) != 0)
			goto out;
		int e = pthread_attr_setstack(&attr, stack, WORKER_STACK);
		if (e == 0)
			e = pthread_create(&w[i].thread, &attr, worker_main, &w[i]);
		pthread_attr_destroy(&attr);
		if (e != 0) {
			free(stack);
			goto out;
		}
		pthread_detach(w[i].thread);
		started++;
	}
	log_info("listening on https://%s:%u (%u threads)", host, actual, nthreads);
	if (ready_fd >= 0) {
		dprintf(ready_fd, "%u\n", actual);
		close(ready_fd);
	}
	rc = event_base_dispatch(w[0].srv.base) == 0 || event_base_got_exit(w[0].srv.base) ? CF_OK
											  : CF_ERR_IO;
out:
	/* Stop the other loops and wait until each has left its base. */
	for (size_t i = 1; w && i <= started; i++)
		event_base_loopexit(w[i].srv.base, NULL);
	for (size_t i = 0; i < started; i++) {
		while (sem_wait(&done) != 0 && errno == EINTR)
			;
	}
	if (sigint)
		event_free(sigint);
	if (sigterm)
		event_free(sigterm);
	for (size_t i = 0; w && i < nthreads; i++) {
		if (w[i].http)
			evhttp_free(w[i].http);
		if (w[i].srv.base)
			event_base_free(w[i].srv.base);
	}
	free(w);
	close(fd);
	sem_destroy(&done);
	return rc;
}
