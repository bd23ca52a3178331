/*
 * http: cofferd's HTTPS front end on the shared server (lib/httpd.c).
 * Each request becomes a cofferd_request; the answer goes back as JSON
 * or streamed from a file in bounded pieces.
 */
#ifndef COFFERD_HTTP_H
#define COFFERD_HTTP_H

#include "cofferd.h"

typedef struct cofferd_listen {
	const char *host;
	unsigned port;        /* 0 picks one */
	int ready_fd;         /* if >= 0, the port is written there once listening */
	unsigned threads;
	const char *public_url; /* what enclaves are told; NULL: https://HOST:PORT */
} cofferd_listen;

/* Serves d until SIGINT or SIGTERM. */
cf_err cofferd_serve(cofferd *d, const cofferd_listen *l) CF_WUR;

#endif
