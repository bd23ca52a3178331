/*
 * Fuzzes the KMS's request handlers: the first byte picks the entry
 * point (enroll, request, release, certify), the rest is the JSON body
 * as the HTTPS server would pass it after cf_json_parse. One KMS is set
 * up per process, in a scratch directory under /dev/shm (audit entries
 * are fsynced), with one enrolled organisation and a dataset, so that
 * inputs shaped like the corpus reach the lookups behind the signatures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coffer/age.h"
#include "coffer/enc.h"
#include "coffer/io.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"
#include "coffer/soft.h"
#include "kms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static kms *the_kms;
static cf_soft_platform platform;
static char dir[64];

static cf_err evidence(void *arg, const uint8_t rd[CF_REPORT_DATA_LEN], cf_buf *out)
{
	cf_soft_report r = { .version = CF_SOFT_REPORT_VERSION, .launch_time = 1800000000 };
	memcpy(r.report_data, rd, 64);
	memcpy(r.platform_id, platform.platform_id, 32);
	uint8_t bytes[CF_SOFT_REPORT_LEN];
	cf_err rc = cf_soft_report_sign(platform.key, &r, bytes);
	return rc == CF_OK ? cf_buf_append(out, bytes, sizeof(bytes)) : rc;
}

static void cleanup(void)
{
	kms_close(the_kms);
	cf_soft_platform_free(&platform);
	char cmd[96];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_kms_request: could not remove %s\n", dir);
}

static void setup(void)
{
	static cf_buf cert;
	char pdir[96], sdir[96];
	uint8_t admin_seed[32], admin_pub[32], seal[32] = { 1 }, meas[48] = { 2 };
	snprintf(dir, sizeof(dir), "/dev/shm/coffer-fuzz-kms-XXXXXX");
	if (!mkdtemp(dir)) {
		snprintf(dir, sizeof(dir), "/tmp/coffer-fuzz-kms-XXXXXX");
		if (!mkdtemp(dir))
			abort();
	}
	snprintf(pdir, sizeof(pdir), "%s/platform", dir);
	snprintf(sdir, sizeof(sdir), "%s/state", dir);
	cf_buf_init(&cert, 1 << 16, false);
	if (cf_soft_platform_init(pdir, "fuzz", false) != CF_OK ||
	    cf_soft_platform_load(pdir, &platform) != CF_OK || cf_soft_platform_cert(pdir, &cert) != CF_OK ||
	    cf_ed25519_keygen(admin_seed, admin_pub) != CF_OK)
		abort();
	kms_config cfg = { .state_dir = sdir, .admin_pub = admin_pub };
	cfg.collateral.platform_cert = (cf_blob){ cert.data, cert.len };
	if (kms_open(&cfg, seal, CF_TEE_SOFT, meas, evidence, NULL, &the_kms) != CF_OK)
		abort();

	/* Organisation "org-a" with a fixed key, so corpus requests can be signed. */
	static const uint8_t org_seed[32] = "coffer kms fuzz org-a key v1...";
	uint8_t org_pub[32];
	char pub64[64], sig[CF_KMS_SIG_B64_LEN + 1], rcpt[CF_AGE_RECIPIENT_STRLEN + 1];
	cf_age_x25519_key age;
	json_t *token = NULL, *out = NULL;
	if (cf_ed25519_public(org_seed, org_pub) != CF_OK || cf_age_keygen(&age) != CF_OK ||
	    cf_age_recipient_format(age.pub, rcpt) != CF_OK)
		abort();
	cf_b64_encode(org_pub, 32, true, pub64);
	if (cf_enroll_token_make("org-a", pub64, rcpt, 4000000000LL, &token) != CF_OK ||
	    cf_enroll_token_sign(admin_seed, token, sig) != CF_OK)
		abort();
	json_t *req = json_pack("{s:o,s:s}", "token", token, "token_sig", sig);
	if (kms_enroll(the_kms, req, &out) != 200)
		abort();
	json_decref(req);
	json_decref(out);
	cf_age_key_wipe(&age);
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!the_kms)
		setup();
	if (size < 1)
		return 0;
	json_t *in = NULL, *out = NULL;
	if (cf_json_parse((const char *)data + 1, size - 1, NULL, &in) != CF_OK)
		return 0;
	if (json_is_object(in)) {
		int status;
		switch (data[0] % 4) {
		case 0: status = kms_enroll(the_kms, in, &out); break;
		case 1: status = kms_request(the_kms, in, &out); break;
		case 2: status = kms_release(the_kms, in, &out); break;
		default: status = kms_certify(the_kms, in, &out); break;
		}
		/* Every answer is a status and a JSON object; refusals name a check. */
		if (!json_is_object(out) || status < 200 || status > 599)
			abort();
		if (status != 200 &&
		    !json_is_string(json_object_get(json_object_get(out, "error"), "check")))
			abort();
	}
	json_decref(in);
	json_decref(out);
	return 0;
}
