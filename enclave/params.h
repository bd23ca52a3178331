/*
 * params: the run parameters coffer-enclave reads on standard input.
 *
 * cofferd starts every run with the same fixed arguments, so that the
 * measurement of coffer-enclave is the same for every run (the task's
 * tee.measurements); what differs between runs arrives as one JSON
 * object on stdin (docs/api.md):
 *
 *   {"cofferd": URL, "cofferd_ca": PEM, "kms": URL, "kms_ca": PEM,
 *    "platform_cert": PEM, "run": "run-...", "token": "cft_..."}
 *
 * A PEM member holds the PEM text itself or, if it does not start with
 * "-----BEGIN", the absolute path of a file holding it. cofferd,
 * cofferd_ca, run and token are required; kms, kms_ca and platform_cert
 * may be absent or null (cofferd has no KMS configured): the enclave then
 * reports that to cofferd instead of exiting unheard. None of these is
 * trusted: cofferd wrote them. The KMS is verified by its attested CA and
 * by what it can do (release the real file keys), everything else by the
 * KMS's answer. The token is secret and wiped on free.
 */
#ifndef COFFER_ENCLAVE_PARAMS_H
#define COFFER_ENCLAVE_PARAMS_H

#include <stddef.h>

#include "coffer/buf.h"
#include "coffer/err.h"

#define CF_PARAMS_MAX (1u << 20)   /* bytes on stdin */
#define CF_PARAMS_MAX_PEM (1u << 20)

typedef struct cf_run_params {
	char *cofferd;
	char *kms;             /* NULL if absent */
	char *run;
	char *token;           /* secret */
	cf_buf cofferd_ca;     /* PEM bytes */
	cf_buf kms_ca;         /* empty if absent */
	cf_buf platform_cert;  /* empty if absent */
} cf_run_params;

/* Parses the JSON text (unknown members refused); why says what is wrong. */
cf_err cf_run_params_parse(const char *text, size_t len, cf_run_params *out, char *why,
			   size_t whylen) CF_WUR;
void cf_run_params_free(cf_run_params *p);

#endif
