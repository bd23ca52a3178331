/*
 * Fuzzes the Intel DCAP verifier end to end: the input is a quote,
 * verified in full (strict parse, PCK chain to the pinned root, CRLs, TCB
 * Info and QE Identity signatures and windows, QE report, binding, quote
 * signature, TCB level) - as TDX with set T1's collateral when its TEE
 * type says TDX, else as SGX with set G1's - at a time inside both sets'
 * windows. The collateral is read once, from $COFFER_TESTDATA or else from
 * the shared test data beside the source tree (found from the corpus
 * directory's path, which is how the replay test and scripts/fuzz.sh
 * run this target); without it only the collateral-free checks run.
 *
 * The parsed collateral is cached once (warm_up, which also checks that
 * sets T1 and G1 verify); certificates and signature results are not kept
 * from one input to the next.
 *
 * Invariant: a quote that verifies has the signed header and body of one
 * of the staged genuine quotes (anything else would be a forgery). The
 * seed corpus is every staged quote plus hand-mutated ones
 * (tests/fuzz/corpus/evidence_dcap/).
 */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "coffer/crypto.h"
#include "coffer/evidence.h"

#include "../../lib/evidence/dcap_internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 2025-07-01T00:00:00Z: inside T1's and G1's collateral windows. */
#define FUZZ_TIME ((time_t)1751328000)

static cf_blob tdx_collateral, sgx_collateral;

static const char *const genuine_quotes[] = {
	"tdx/dcap-qvl/tdx_quote", "tdx/dcap-qvl/tdx_quote_outdated", "tdx/trustee/tdx_quote_4.dat",
	"tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat", "tdx/go-tdx-guest/cos-113-tdx-quote.dat",
	"sgx/dcap-qvl/sgx_quote", "sgx/trustee/occlum_quote.dat",
};
#define NGENUINE (sizeof(genuine_quotes) / sizeof(genuine_quotes[0]))
static uint8_t genuine_signed[NGENUINE][32];
static size_t ngenuine_loaded;

static bool read_file(const char *dir, const char *rel, cf_blob *out)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, rel) >= (int)sizeof(path))
		return false;
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
	uint8_t *d = n > 0 && fseek(f, 0, SEEK_SET) == 0 ? malloc((size_t)n) : NULL;
	bool ok = d && fread(d, 1, (size_t)n, f) == (size_t)n;
	fclose(f);
	if (!ok) {
		free(d);
		return false;
	}
	*out = (cf_blob){ d, (size_t)n };
	return true;
}

static bool signed_hash(const uint8_t *data, size_t size, uint8_t out[32])
{
	dcap_quote q;
	char why[200];
	return dcap_quote_parse(data, size, &q, why, sizeof(why)) == CF_OK &&
	       cf_hash(CF_SHA256, q.signed_data, q.signed_len, out) == CF_OK;
}

/* The genuine T1 and G1 quotes verify; their collateral is now cached. */
static void warm_up(const char *dir)
{
	static const char *const quotes[2] = { "tdx/dcap-qvl/tdx_quote", "sgx/dcap-qvl/sgx_quote" };
	for (int i = 0; i < 2; i++) {
		cf_blob q;
		cf_verdict v;
		cf_evidence_input in;
		memset(&in, 0, sizeof(in));
		if (!read_file(dir, quotes[i], &q))
			abort();
		in.kind = i ? CF_TEE_SGX : CF_TEE_TDX;
		in.evidence = q;
		in.collateral = i ? sgx_collateral : tdx_collateral;
		in.at = FUZZ_TIME;
		if (cf_evidence_verify(&in, &v) != CF_OK || !cf_verdict_ok(&v))
			abort();
		cf_verdict_free(&v);
		free((void *)q.data);
	}
	dcap_cache_flush_certs();
}

static bool load_testdata(const char *dir)
{
	if (!read_file(dir, "tdx/dcap-qvl/tdx_quote_collateral.json", &tdx_collateral))
		return false;
	if (!read_file(dir, "sgx/dcap-qvl/sgx_quote_collateral.json", &sgx_collateral))
		return false;
	for (size_t i = 0; i < NGENUINE; i++) {
		cf_blob q;
		if (!read_file(dir, genuine_quotes[i], &q))
			return false;
		if (!signed_hash(q.data, q.len, genuine_signed[ngenuine_loaded]))
			abort(); /* a staged quote must parse */
		ngenuine_loaded++;
		free((void *)q.data);
	}
	warm_up(dir);
	return true;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *env = getenv("COFFER_TESTDATA");
	if (env && load_testdata(env))
		return 0;
	/* A corpus directory <src>/tests/fuzz/corpus/<name>: <src>/../shared/testdata. */
	for (int i = 1; i < *argc; i++) {
		const char *a = (*argv)[i];
		char dir[PATH_MAX];
		if (a[0] == '-' || !strstr(a, "tests/fuzz/corpus"))
			continue;
		if (snprintf(dir, sizeof(dir), "%s/../../../../../shared/testdata", a) >=
		    (int)sizeof(dir))
			continue;
		if (load_testdata(dir))
			return 0;
	}
	fprintf(stderr, "fuzz_evidence_dcap: no test data found (set COFFER_TESTDATA): "
			"running without collateral\n");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cf_evidence_input in;
	cf_verdict v;
	memset(&in, 0, sizeof(in));
	bool tdx = size >= 8 && data[4] == 0x81 && data[5] == 0 && data[6] == 0 && data[7] == 0;
	in.kind = tdx ? CF_TEE_TDX : CF_TEE_SGX;
	in.evidence = (cf_blob){ data, size };
	in.collateral = tdx ? tdx_collateral : sgx_collateral;
	in.at = FUZZ_TIME;
	if (cf_evidence_verify(&in, &v) != CF_OK)
		abort(); /* only internal failures (out of memory) return an error */

	/* The verdict serialises, whatever it says. */
	json_t *j = cf_verdict_json(&v, cf_verdict_ok(&v));
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (!s)
		abort();
	free(s);
	json_decref(j);

	if (cf_verdict_ok(&v) && ngenuine_loaded) {
		uint8_t h[32];
		bool known = false;
		if (!signed_hash(data, size, h))
			abort(); /* verified but does not parse? */
		for (size_t i = 0; i < ngenuine_loaded; i++)
			known |= memcmp(h, genuine_signed[i], 32) == 0;
		if (!known)
			abort(); /* a forgery verified */
	}
	cf_verdict_free(&v);
	/* Certificates and signature results start cold for every input, so
	 * what an input allocates it frees and libFuzzer's per-input leak
	 * detection stays on; the collateral (the same for every input) stays
	 * cached from warm_up(). */
	dcap_cache_flush_certs();
	return 0;
}
