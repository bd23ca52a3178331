/*
 * kms_client: the client side of coffer-kms (docs/kms.md), and the
 * signing rules it shares with the KMS.
 *
 * Three layers. The pure functions (signatures under a context string,
 * task digests and approvals, the report_data of a release or a
 * certification) are what the KMS computes too: the server calls these
 * same functions, so the two sides cannot drift apart. The HTTPS client
 * speaks JSON to one KMS over TLS 1.3, trusting only the CA pinned by
 * `coffer attest` (never the system's CAs), and refuses replies over
 * 1 MiB. On top of it, signed organisation requests and the enclave's
 * side of a key release.
 *
 * A refusal by the KMS ({"error": {"check", "message"}}) is kept in the
 * client (cf_kms_client_error) so that a caller can say which check
 * refused it. Secrets (seeds, file keys, the ephemeral wrapping key) are
 * wiped on every path and never appear in an error.
 */
#ifndef COFFER_KMS_CLIENT_H
#define COFFER_KMS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "coffer/age.h"
#include "coffer/crypto.h"
#include "coffer/err.h"
#include "coffer/tee.h"

/* Signature contexts (docs/kms.md, "Signatures"): the message is context || bytes. */
#define CF_KMS_CTX_ENROLL "coffer-enroll-v1:"
#define CF_KMS_CTX_REQUEST "coffer-kms-request-v1:"
#define CF_KMS_CTX_APPROVAL "coffer-task-approval-v1:"
#define CF_KMS_CTX_RECIPIENTS "coffer-kms-recipients-v1:"
#define CF_KMS_CTX_OUTPUT_KEY "coffer-kms-output-key-v1:"
/* An output, signed by the enclave with its release's output key (cf_kms_output_sign). */
#define CF_KMS_CTX_OUTPUT "coffer-output-v1:"

/* report_data contexts: SHA-512(context || 0x00 || fields). */
#define CF_KMS_RD_RELEASE "coffer-release-v1"
#define CF_KMS_RD_CERTIFY "coffer-certify-v1"

#define CF_KMS_SIG_B64_LEN 88        /* padded base64 of 64 bytes */
#define CF_KMS_PUB_B64_LEN 44        /* padded base64 of 32 bytes */
#define CF_KMS_NONCE_LEN 32
#define CF_KMS_REQUEST_ID_LEN 16     /* bytes; 32 hex digits on the wire */
#define CF_KMS_MAX_REPLY (1u << 20)  /* bytes of one answer */
#define CF_KMS_MAX_ORG_NAME 64
#define CF_KMS_MAX_OUTPUT_NAME 128   /* bytes of an output's name (cofferd's limit) */

/* --- names --- */

/* An organisation (or dataset) name: 1 to 64 characters of [a-z0-9-]. */
bool cf_kms_valid_name(const char *s);

/* --- signatures under a context --- */

/*
 * Signs context || canonical JSON of obj with an Ed25519 seed; sig_b64
 * gets the padded base64 of the signature (NUL-terminated).
 */
cf_err cf_kms_sign(const uint8_t seed[static CF_ED25519_SEED_LEN], const char *context,
		   const json_t *obj, char sig_b64[static CF_KMS_SIG_B64_LEN + 1]) CF_WUR;
/*
 * Verifies such a signature. CF_ERR_AUTH if it does not verify,
 * CF_ERR_ENCODING if sig_b64 is not the padded base64 of 64 bytes,
 * CF_ERR_ARG if obj or sig_b64 is NULL.
 */
cf_err cf_kms_verify_sig(const uint8_t pub[static CF_ED25519_PUB_LEN], const char *context,
			 const json_t *obj, const char *sig_b64) CF_WUR;

/* The enrollment token's signature by the platform admin (CF_KMS_CTX_ENROLL). */
cf_err cf_enroll_token_sign(const uint8_t admin_seed[static CF_ED25519_SEED_LEN],
			    const json_t *token, char sig_b64[static CF_KMS_SIG_B64_LEN + 1]) CF_WUR;
/*
 * Builds {"org", "sign_pub", "age_recipient", "expires"} after checking
 * each member: a valid name, 32 bytes of base64, a parseable age1
 * recipient. CF_ERR_ARG names none of them: the CLI checks them first.
 */
cf_err cf_enroll_token_make(const char *org, const char *sign_pub_b64, const char *age_recipient,
			    long long expires, json_t **token) CF_WUR;

/* --- tasks and approvals --- */

/* SHA-256 of the canonical JSON of the task (any JSON value). */
cf_err cf_task_digest(const json_t *task, uint8_t out[static CF_SHA256_LEN]) CF_WUR;
/*
 * Checks the members the KMS reads (docs/kms.md, "Task and release"):
 * inputs is a non-empty object of {"dataset": "ORG/NAME"}, outputs an
 * array of {"name", "recipients": [{"org", "recipient"}]}, tee.kinds and
 * tee.measurements non-empty arrays of strings. CF_ERR_PARSE if not;
 * why (if non-NULL) gets a short reason.
 */
cf_err cf_task_check(const json_t *task, char *why, size_t whylen) CF_WUR;
/* {"org": org, "sig": b64 of Ed25519(seed, CF_KMS_CTX_APPROVAL || digest)}. */
cf_err cf_task_approve(const uint8_t seed[static CF_ED25519_SEED_LEN],
		       const uint8_t digest[static CF_SHA256_LEN], const char *org,
		       json_t **approval) CF_WUR;
/*
 * Verifies an approval object's "sig" over digest under pub. CF_ERR_AUTH
 * if the signature does not verify, CF_ERR_PARSE if the object is
 * malformed. The caller looks up pub by the approval's "org".
 */
cf_err cf_task_approval_verify(const uint8_t pub[static CF_ED25519_PUB_LEN],
			       const uint8_t digest[static CF_SHA256_LEN],
			       const json_t *approval) CF_WUR;

/* --- report_data --- */

/* SHA-512("coffer-release-v1" || 0x00 || nonce || task digest || wrap public key). */
cf_err cf_release_report_data(const uint8_t nonce[static CF_KMS_NONCE_LEN],
			      const uint8_t digest[static CF_SHA256_LEN],
			      const uint8_t wrap_pub[static CF_X25519_LEN],
			      uint8_t out[static CF_REPORT_DATA_LEN]) CF_WUR;
/* SHA-512("coffer-certify-v1" || 0x00 || nonce || SHA-256(CSR's SubjectPublicKeyInfo)). */
cf_err cf_certify_report_data(const uint8_t nonce[static CF_KMS_NONCE_LEN],
			      const uint8_t spki_sha256[static CF_SHA256_LEN],
			      uint8_t out[static CF_REPORT_DATA_LEN]) CF_WUR;

/* --- signing key files --- */

/*
 * An Ed25519 seed on disk: '#' comment lines (the caller's, then
 * "# public key: B64"), and one line with the padded base64 of the
 * seed. Written with mode 0600, never over an existing file
 * (CF_ERR_ARG if it exists). Read back refusing a group- or
 * world-readable file (CF_ERR_AUTH) and any other content (CF_ERR_PARSE).
 */
cf_err cf_sigkey_write(const char *path, const uint8_t seed[static CF_ED25519_SEED_LEN],
		       const char *comment) CF_WUR;
cf_err cf_sigkey_read(const char *path, uint8_t seed[static CF_ED25519_SEED_LEN]) CF_WUR;

/* --- the HTTPS JSON client --- */

typedef struct cf_kms_client cf_kms_client;

/* What the last call learnt about a failure. */
typedef struct cf_kms_error {
	long status;        /* HTTP status; 0 if no answer arrived */
	char check[64];     /* the KMS's "check", "" if none */
	char message[512];  /* the KMS's message, or the transport's error */
} cf_kms_error;

/*
 * A client for url ("https://HOST:PORT", no path) trusting only the CA
 * certificate(s) in the PEM file ca_pem_path. TLS 1.3 only, no
 * redirects, no protocol but https.
 */
cf_err cf_kms_client_open(const char *url, const char *ca_pem_path, cf_kms_client **out) CF_WUR;
/* The same with the PEM bytes in memory (copied). */
cf_err cf_kms_client_open_pem(const char *url, const void *ca_pem, size_t len,
			      cf_kms_client **out) CF_WUR;
void cf_kms_client_free(cf_kms_client *c);
const char *cf_kms_client_url(const cf_kms_client *c);
/* The failure of the last call (status 0 and "" after a success). */
const cf_kms_error *cf_kms_client_error(const cf_kms_client *c);

/*
 * One request. CF_OK when a JSON answer arrived, whatever its status:
 * *status is the HTTP status and *reply the parsed body (the error
 * object when the status is not 2xx; the caller frees it). Otherwise
 * CF_ERR_IO (connection, TLS, certificate), CF_ERR_TOO_BIG (answer
 * over CF_KMS_MAX_REPLY), CF_ERR_PARSE (a 2xx answer that is not JSON)
 * or, for another status whose answer is not JSON, that status's error
 * as cf_kms_call maps it; see cf_kms_client_error for the reason.
 */
cf_err cf_kms_get(cf_kms_client *c, const char *path, json_t **reply, long *status) CF_WUR;
cf_err cf_kms_post(cf_kms_client *c, const char *path, const json_t *body, json_t **reply,
		   long *status) CF_WUR;
/*
 * POST expecting 2xx: CF_OK with *reply set, or the refusal mapped to an
 * error (400 CF_ERR_PARSE, 403 CF_ERR_AUTH, 404 CF_ERR_NOT_FOUND, 409
 * CF_ERR_ARG, 413 CF_ERR_TOO_BIG, other CF_ERR_IO) with the check and
 * message in cf_kms_client_error and *reply left NULL.
 */
cf_err cf_kms_call(cf_kms_client *c, const char *path, const json_t *body, json_t **reply) CF_WUR;
/* The same for GET. */
cf_err cf_kms_call_get(cf_kms_client *c, const char *path, json_t **reply) CF_WUR;

/*
 * An organisation's request: {"request": fields + {"op", "org", "time",
 * "id"}, "sig"} to /v1/request, with a fresh 16-byte id. fields may be
 * NULL; it must not hold op, org, time or id (CF_ERR_ARG). Result as
 * cf_kms_call.
 */
cf_err cf_kms_signed_request(cf_kms_client *c, const char *org,
			     const uint8_t seed[static CF_ED25519_SEED_LEN], const char *op,
			     const json_t *fields, json_t **reply) CF_WUR;
/* The request object alone (for tests and the KMS's own tests). */
cf_err cf_kms_request_make(const char *org, const char *op, const json_t *fields, time_t now,
			   json_t **request) CF_WUR;

/* --- the enclave's side of a release --- */

typedef struct cf_kms_input {
	char *table;
	char *dataset;                              /* "ORG/NAME" */
	uint8_t file_key[CF_AGE_FILE_KEY_LEN];      /* secret */
	uint8_t header_sha256[CF_SHA256_LEN];
} cf_kms_input;

typedef struct cf_kms_release_result {
	uint8_t task_digest[CF_SHA256_LEN];
	cf_kms_input *inputs;   /* exactly one per input of the task */
	size_t ninputs;
	/* The KMS-signed statement {"task_digest", "outputs", "issued"}, verified. */
	json_t *recipients;
	/*
	 * This release's output key: the Ed25519 seed (secret: it came in the
	 * wrapped keys, so only this enclave has it) and the KMS's signed
	 * statement of its public half, {"statement": {"task_digest",
	 * "output_key", "tee", "measurement", "issued"}, "sig"}, verified: the
	 * KMS's signature, the digest, the public key (the seed's) and the TEE
	 * kind (this enclave's). The enclave signs its outputs with the seed
	 * (cf_kms_output_attestation).
	 */
	uint8_t output_seed[CF_ED25519_SEED_LEN];
	json_t *output_key;
} cf_kms_release_result;

/*
 * Asks the KMS for the keys of task's inputs: GET /v1/info (the KMS's
 * signing key), POST /v1/nonce, an ephemeral age X25519 wrapping key,
 * evidence from tee over cf_release_report_data(nonce, digest, wrap
 * public key), POST /v1/release. Then decrypts "keys" with the
 * ephemeral identity and checks that the answer is for this task: the
 * digest in the reply, in the keys file and in the recipients statement
 * (whose KMS signature must verify), and exactly one key per input of
 * the task, for the dataset the task names. approvals is the array of
 * {"org", "sig"}. A refusal is as cf_kms_call; a reply that fails the
 * checks is CF_ERR_AUTH with the reason in cf_kms_client_error (check
 * "release_reply"). The ephemeral key is wiped before return; out is
 * zeroed on failure. While the released keys are parsed, jansson's free
 * function wipes what it frees (process-wide, for that moment only).
 */
cf_err cf_kms_release(cf_kms_client *c, const cf_tee_provider *tee, const json_t *task,
		      const json_t *approvals, cf_kms_release_result *out) CF_WUR;
/* Wipes the file keys and the output seed and frees everything; out is left zeroed. */
void cf_kms_release_result_free(cf_kms_release_result *r);

/*
 * The KMS's signing key from GET /v1/info, trusted because the client's
 * channel ends at the pinned CA. A refusal or transport failure is as
 * cf_kms_call_get; an answer without a valid kms_pub is CF_ERR_AUTH
 * (check "info" in cf_kms_client_error).
 */
cf_err cf_kms_info_pub(cf_kms_client *c, uint8_t pub[static CF_ED25519_PUB_LEN]) CF_WUR;

/* --- outputs signed by the enclave (docs/kms.md, "Signed outputs") --- */

/*
 * Signs one output: Ed25519(seed, CF_KMS_CTX_OUTPUT || task digest (32
 * bytes) || name || 0x00 || SHA-256 of the output's ciphertext (32
 * bytes)). The name is 1 to CF_KMS_MAX_OUTPUT_NAME bytes (no NUL, so the
 * message parses one way only); CF_ERR_ARG otherwise.
 */
cf_err cf_kms_output_sign(const uint8_t seed[static CF_ED25519_SEED_LEN],
			  const uint8_t digest[static CF_SHA256_LEN], const char *name,
			  const uint8_t ct_sha256[static CF_SHA256_LEN],
			  char sig_b64[static CF_KMS_SIG_B64_LEN + 1]) CF_WUR;
/*
 * The attestation an enclave uploads with output name:
 * {"output_key": the release's signed statement, "sig": the enclave's
 * cf_kms_output_sign over (rel's digest, name, ct_sha256)}.
 */
cf_err cf_kms_output_attestation(const cf_kms_release_result *rel, const char *name,
				 const uint8_t ct_sha256[static CF_SHA256_LEN],
				 json_t **out) CF_WUR;

/* Where a verified output comes from, as the KMS's statement says. */
typedef struct cf_kms_output_origin {
	char tee[16];              /* the TEE kind */
	char measurement[129];     /* its principal measurement, hex */
	long long issued;          /* when the KMS released the keys (UNIX) */
	char output_key[CF_KMS_PUB_B64_LEN + 1];
} cf_kms_output_origin;

/*
 * A recipient's check of an output before it decrypts it: attestation
 * (as cofferd carries it, untrusted) must hold a statement signed by the
 * KMS key kms_pub (the pinned KMS's) for task digest `digest` (computed
 * by the caller from the task itself), naming an output key, and that
 * key's signature over (digest, name, ct_sha256). CF_OK with origin (may
 * be NULL) filled; CF_ERR_PARSE if the attestation is missing or
 * malformed, CF_ERR_AUTH if a signature or the task does not match,
 * CF_ERR_ARG for bad arguments; why (if non-NULL) says which.
 */
cf_err cf_kms_output_verify(const uint8_t kms_pub[static CF_ED25519_PUB_LEN],
			    const json_t *attestation, const uint8_t digest[static CF_SHA256_LEN],
			    const char *name, const uint8_t ct_sha256[static CF_SHA256_LEN],
			    cf_kms_output_origin *origin, char *why, size_t whylen) CF_WUR;

/* --- the client profile: $COFFER_HOME, default ~/.config/coffer --- */

/*
 * The profile folder (not created). CF_ERR_NOT_FOUND if neither
 * COFFER_HOME nor HOME is set, CF_ERR_TOO_BIG if it does not fit.
 */
cf_err cf_profile_dir(char *out, size_t cap) CF_WUR;
/* Creates the profile folder (mode 0700) if needed and writes its path. */
cf_err cf_profile_mkdir(char *out, size_t cap) CF_WUR;
/*
 * A client for the KMS pinned in the profile (kms.json {"url", "ca",
 * "ca_sha256"}, with "ca" relative to the profile): the pinned PEM must
 * hash (SHA-256 of its first certificate's DER) to ca_sha256 when that
 * is given. url and ca_pem_path, if non-NULL, override the profile's;
 * with both given no profile is needed. CF_ERR_NOT_FOUND if the profile
 * has no kms.json (not attested), CF_ERR_AUTH if the CA does not match
 * its pin, CF_ERR_PARSE if kms.json is malformed.
 */
cf_err cf_kms_client_open_profile(const char *url, const char *ca_pem_path,
				  cf_kms_client **out) CF_WUR;

#endif
