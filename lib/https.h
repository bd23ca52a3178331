/*
 * https (internal to libcoffer): the TLS policy every coffer HTTPS
 * client shares, on libcurl. kms_client.c and cofferd_client.c each do
 * their own requests; what they must never differ on lives here: the
 * shape of a service URL, and a handle that trusts only one pinned CA
 * (no system store), speaks TLS 1.3 and https only, and never follows
 * a redirect.
 */
#ifndef COFFER_LIB_HTTPS_H
#define COFFER_LIB_HTTPS_H

#include <stddef.h>

#include <curl/curl.h>

#include "coffer/err.h"

#define CF_HTTPS_MAX_URL 2048u
#define CF_HTTPS_CONNECT_TIMEOUT 15L

/* curl_global_init, once per process. CF_ERR_IO if it failed. */
cf_err cf_https_global_init(void) CF_WUR;

/*
 * Checks "https://HOST[:PORT]" with no path, query, fragment, user info
 * or odd bytes (trailing slashes allowed); *keep is its length without
 * them. CF_ERR_ARG otherwise.
 */
cf_err cf_https_check_url(const char *url, size_t *keep) CF_WUR;

/*
 * Sets the pinning and protocol options on h: only the CA certificates
 * in ca (the blob must outlive h's transfers), peer and host verified,
 * TLS 1.3, https only, no redirects, no signals, the connect timeout,
 * errbuf (CURL_ERROR_SIZE bytes) and the user agent. The caller adds
 * its own timeouts, size limits and callbacks. Also after
 * curl_easy_reset(), which keeps live connections.
 */
CURLcode cf_https_pin(CURL *h, struct curl_blob *ca, char *errbuf);

#endif
