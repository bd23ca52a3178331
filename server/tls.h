/*
 * tls: cofferd's TLS 1.3 server context. The certificate comes from
 * --cert/--key, or is a self-signed ECDSA P-256 certificate made at the
 * first start in STATE/tls.crt (key STATE/tls.key, 0600). cofferd is
 * untrusted anyway: clients pin this certificate (`--cacert
 * STATE/tls.crt`, or trust on first use) only so that nobody else can
 * pose as it and collect their tokens.
 */
#ifndef COFFERD_TLS_H
#define COFFERD_TLS_H

#include "internal.h"

/* Sets d->ssl and d->cert_pem. */
cf_err tls_setup(cofferd *d, const cofferd_config *cfg) CF_WUR;

#endif
