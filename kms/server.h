/*
 * server: the KMS's HTTPS front end (libevent's evhttp over OpenSSL
 * bufferevents). It parses nothing itself but JSON, under cf_json
 * limits; evhttp enforces header and body sizes and timeouts.
 */
#ifndef COFFER_KMS_SERVER_H
#define COFFER_KMS_SERVER_H

#include "kms.h"

/*
 * Serves k on host:port with nthreads event loops (threads) until SIGINT
 * or SIGTERM. If ready_fd >= 0, the bound port is written to it as a
 * line once listening (tests pass port 0).
 */
cf_err kms_serve(kms *k, const char *host, unsigned port, int ready_fd,
		 unsigned nthreads) CF_WUR;

#endif
