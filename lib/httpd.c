/*
 * The HTTPS server shared by coffer-kms and cofferd (include/coffer/httpd.h):
 * one listener, N evhttp event loops on it, TLS bufferevents, signals,
 * limits, and the two ways of answering (JSON in one piece, a file
 * streamed in bounded pieces).
 */
#define CF_LOG_MODULE "httpd"

#include "coffer/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

#include "coffer/log.h"

const char *cf_httpd_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

void cf_httpd_send_json(struct evhttp_request *req, int status, const json_t *body)
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
	evhttp_send_reply(req, status, cf_httpd_reason(status), buf);
	free(text);
	if (buf)
		evbuffer_free(buf);
}

/* --- streaming a file --- */

typedef struct file_stream {
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	int fd;
	uint64_t offset;
	uint64_t left;
} file_stream;

static void stream_free(file_stream *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

/*
 * The client went away mid-stream. evhttp has detached the request from
 * the dying connection (so it is ours to free, by ending it) unless the
 * whole server is being freed, in which case the connection frees it.
 */
static void stream_closed(struct evhttp_connection *evcon, void *arg)
{
	file_stream *s = arg;
	if (!evhttp_request_get_connection(s->req))
		evhttp_send_reply_end(s->req);
	stream_free(s);
}

static void stream_piece(file_stream *s);

static void stream_written(struct evhttp_connection *evcon, void *arg)
{
	file_stream *s = arg;
	if (s->left > 0) {
		stream_piece(s);
		return;
	}
	evhttp_connection_set_closecb(s->evcon, NULL, NULL);
	evhttp_send_reply_end(s->req);
	stream_free(s);
}

/* Reads the next piece and hands it to the connection; drops it on a short file. */
static void stream_piece(file_stream *s)
{
	size_t want = s->left < CF_HTTPD_STREAM_PIECE ? (size_t)s->left : CF_HTTPD_STREAM_PIECE;
	struct evbuffer *buf = evbuffer_new();
	struct evbuffer_iovec v;
	ssize_t n = -1;
	if (buf && evbuffer_reserve_space(buf, (ev_ssize_t)want, &v, 1) >= 1) {
		do
			n = pread(s->fd, v.iov_base, want, (off_t)s->offset);
		while (n < 0 && errno == EINTR);
		v.iov_len = n > 0 ? (size_t)n : 0;
		if (n > 0 && evbuffer_commit_space(buf, &v, 1) != 0)
			n = -1;
	}
	if (n <= 0) {
		log_warn("streaming a file failed at offset %llu: %s", (unsigned long long)s->offset,
			 n == 0 ? "the file is shorter than announced" : strerror(errno));
		if (buf)
			evbuffer_free(buf);
		/* The status line is out: only dropping the connection tells the client. */
		struct evhttp_connection *evcon = s->evcon;
		evhttp_connection_set_closecb(evcon, NULL, NULL);
		stream_free(s);
		evhttp_connection_free(evcon);
		return;
	}
	s->offset += (uint64_t)n;
	s->left -= (uint64_t)n;
	evhttp_send_reply_chunk_with_cb(s->req, buf, stream_written, s);
	evbuffer_free(buf);
}

void cf_httpd_send_file(struct evhttp_request *req, int fd, uint64_t offset, uint64_t length,
			const char *content_type)
{
	char len[32];
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	snprintf(len, sizeof(len), "%llu", (unsigned long long)length);
	evhttp_add_header(h, "Content-Type", content_type ? content_type : "application/octet-stream");
	evhttp_add_header(h, "Cache-Control", "no-store");
	/* With a length evhttp sends the body as is, not chunked. */
	evhttp_add_header(h, "Content-Length", len);
	file_stream *s = calloc(1, sizeof(*s));
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (!s || !evcon) {
		free(s);
		close(fd);
		evhttp_remove_header(h, "Content-Length");
		cf_httpd_send_json(req, 500, NULL);
		return;
	}
	*s = (file_stream){ .req = req, .evcon = evcon, .fd = fd, .offset = offset, .left = length };
	evhttp_send_reply_start(req, 200, "OK");
	if (length == 0) {
		evhttp_send_reply_end(req);
		stream_free(s);
		return;
	}
	evhttp_connection_set_closecb(evcon, stream_closed, s);
	stream_piece(s);
}

/* --- the server --- */

typedef struct loop {
	struct event_base *base;
	struct evhttp *http;
	SSL_CTX *ssl;
	cf_httpd_handler handler;
	void *arg;
	pthread_t thread;
	bool started;
	sem_t *done;
} loop;

static struct bufferevent *make_tls_bev(struct event_base *base, void *arg)
{
	loop *l = arg;
	SSL *ssl = SSL_new(l->ssl);
	if (!ssl)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					      BEV_OPT_CLOSE_ON_FREE);
}

static void dispatch(struct evhttp_request *req, void *arg)
{
	loop *l = arg;
	l->handler(req, l->arg);
}

static void *loop_main(void *arg)
{
	loop *l = arg;
	event_base_dispatch(l->base);
	sem_post(l->done);
	return NULL;
}

typedef struct stopper {
	loop *loops;
	size_t n;
} stopper;

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	stopper *st = arg;
	log_info("signal %d: stopping", (int)sig);
	for (size_t i = 0; i < st->n; i++)
		event_base_loopexit(st->loops[i].base, NULL);
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
		int e = errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		errno = e;
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

#define HEAP_STACK_SIZE (1u << 20)

static int start_thread(loop *l, bool heap_stack)
{
	if (!heap_stack)
		return pthread_create(&l->thread, NULL, loop_main, l);
	pthread_attr_t attr;
	void *stack = aligned_alloc(4096, HEAP_STACK_SIZE);
	if (!stack || pthread_attr_init(&attr) != 0) {
		free(stack);
		return ENOMEM;
	}
	int e = pthread_attr_setstack(&attr, stack, HEAP_STACK_SIZE);
	if (e == 0)
		e = pthread_create(&l->thread, &attr, loop_main, l);
	pthread_attr_destroy(&attr);
	if (e != 0) {
		free(stack);
		return e;
	}
	pthread_detach(l->thread);
	return 0;
}

cf_err cf_httpd_serve(const cf_httpd_config *cfg, cf_httpd_handler handler, void *arg)
{
	cf_err rc = CF_ERR_IO;
	unsigned actual = 0;
	size_t started = 0;
	struct event *sigint = NULL, *sigterm = NULL;
	/* In .bss: futexes on secretmem (the heap under coffer-launch) are not all served. */
	static sem_t done;
	if (!cfg || !handler || !cfg->ssl || cfg->threads < 1 || cfg->threads > CF_HTTPD_MAX_THREADS)
		return CF_ERR_ARG;
	unsigned n = cfg->threads;
	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads() != 0 || sem_init(&done, 0, 0) != 0)
		return CF_ERR_IO;
	int fd = listen_on(cfg->host, cfg->port, &actual);
	if (fd < 0) {
		log_error("cannot listen on %s:%u: %s", cfg->host, cfg->port, strerror(errno));
		sem_destroy(&done);
		return CF_ERR_IO;
	}
	loop *loops = calloc(n, sizeof(*loops));
	stopper st = { loops, n };
	if (!loops)
		goto out;
	for (size_t i = 0; i < n; i++) {
		loop *l = &loops[i];
		*l = (loop){ .ssl = cfg->ssl, .handler = handler, .arg = arg, .done = &done };
		if (!(l->base = event_base_new()) || !(l->http = evhttp_new(l->base)))
			goto out;
		evhttp_set_bevcb(l->http, make_tls_bev, l);
		evhttp_set_gencb(l->http, dispatch, l);
		evhttp_set_max_body_size(l->http, (ev_ssize_t)cfg->max_body);
		evhttp_set_max_headers_size(l->http, (ev_ssize_t)cfg->max_headers);
		evhttp_set_timeout(l->http, cfg->timeout);
		evhttp_set_allowed_methods(l->http, (ev_uint16_t)cfg->methods);
		if (!evhttp_accept_socket_with_handle(l->http, fd))
			goto out;
	}
	sigint = evsignal_new(loops[0].base, SIGINT, on_signal, &st);
	sigterm = evsignal_new(loops[0].base, SIGTERM, on_signal, &st);
	if (!sigint || !sigterm || event_add(sigint, NULL) || event_add(sigterm, NULL))
		goto out;
	for (size_t i = 1; i < n; i++) {
		int e = start_thread(&loops[i], cfg->heap_stacks);
		if (e != 0) {
			log_error("cannot start an event loop thread: %s", strerror(e));
			goto out;
		}
		loops[i].started = true;
		started++;
	}
	if (cfg->on_listen)
		cfg->on_listen(cfg->on_listen_arg, actual);
	log_info("listening on https://%s:%u (%u threads)", cfg->host, actual, n);
	if (cfg->ready_fd >= 0) {
		dprintf(cfg->ready_fd, "%u\n", actual);
		close(cfg->ready_fd);
	}
	rc = event_base_dispatch(loops[0].base) == 0 || event_base_got_exit(loops[0].base) ? CF_OK
											      : CF_ERR_IO;
out:
	/* Stop the other loops and wait until each has left its base. */
	for (size_t i = 1; loops && i < n; i++) {
		if (loops[i].started)
			event_base_loopexit(loops[i].base, NULL);
	}
	for (size_t i = 0; i < started; i++) {
		while (sem_wait(&done) != 0 && errno == EINTR)
			;
	}
	for (size_t i = 1; loops && !cfg->heap_stacks && i < n; i++) {
		if (loops[i].started)
			pthread_join(loops[i].thread, NULL);
	}
	if (sigint)
		event_free(sigint);
	if (sigterm)
		event_free(sigterm);
	for (size_t i = 0; loops && i < n; i++) {
		if (loops[i].http)
			evhttp_free(loops[i].http);
		if (loops[i].base)
			event_base_free(loops[i].base);
	}
	free(loops);
	close(fd);
	sem_destroy(&done);
	return rc;
}
