/*
 * evidence_bench: verifications per second of each evidence kind, one core,
 * over the real published samples in tests/data (soft: a report signed
 * here). Every iteration is a full cf_evidence_verify + policy; the result
 * must be the documented one, or the benchmark fails.
 *
 *   evidence_bench TESTDATA_DIR [SECONDS_PER_KIND]
 * Prints one line per kind: "kind=snp per_s=N outcome=verified".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coffer/evidence.h"
#include "coffer/soft.h"

static cf_blob slurp(const char *dir, const char *rel)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "evidence_bench: %s: cannot open\n", path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *p = malloc((size_t)n + 1);
	if (!p || fread(p, 1, (size_t)n, f) != (size_t)n)
		exit(1);
	p[n] = 0;
	fclose(f);
	return (cf_blob){ p, (size_t)n };
}

static time_t utc(int y, int m, int d)
{
	struct tm tm = { 0 };
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	return timegm(&tm);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void run(const char *name, const cf_evidence_input *in, bool want_ok, double seconds)
{
	long n = 0;
	bool ok = false;
	double t0 = now(), t;
	do {
		cf_verdict v;
		if (cf_evidence_verify(in, &v) != CF_OK) {
			fprintf(stderr, "evidence_bench: %s: internal error\n", name);
			exit(1);
		}
		if (cf_policy_apply(NULL, in->at, &v) != CF_OK)
			exit(1);
		ok = cf_verdict_ok(&v);
		cf_verdict_free(&v);
		n++;
		t = now();
	} while (t - t0 < seconds);
	if (ok != want_ok) {
		fprintf(stderr, "evidence_bench: %s: verdict %s, expected %s\n", name,
			ok ? "verified" : "refused", want_ok ? "verified" : "refused");
		exit(1);
	}
	printf("kind=%s per_s=%.0f outcome=%s\n", name, (double)n / (t - t0),
	       ok ? "verified" : "refused");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: evidence_bench TESTDATA_DIR [SECONDS]\n");
		return 2;
	}
	const char *td = argv[1];
	double secs = argc > 2 ? atof(argv[2]) : 2.0;
	cf_evidence_input in;

	/* soft: a report signed by a throwaway platform */
	char dir[] = "/tmp/coffer-bench-XXXXXX", pdir[4200];
	if (!mkdtemp(dir))
		return 1;
	snprintf(pdir, sizeof(pdir), "%s/p", dir);
	cf_soft_platform plat;
	cf_buf cert;
	cf_buf_init(&cert, 1 << 16, false);
	if (cf_soft_platform_init(pdir, "bench", false) != CF_OK ||
	    cf_soft_platform_load(pdir, &plat) != CF_OK || cf_soft_platform_cert(pdir, &cert) != CF_OK)
		return 1;
	cf_soft_report r;
	memset(&r, 0, sizeof(r));
	r.version = 1;
	memcpy(r.platform_id, plat.platform_id, 32);
	strcpy(r.launcher_version, "bench");
	static uint8_t report[CF_SOFT_REPORT_LEN];
	if (cf_soft_report_sign(plat.key, &r, report) != CF_OK)
		return 1;
	memset(&in, 0, sizeof(in));
	in.kind = CF_TEE_SOFT;
	in.at = time(NULL);
	in.evidence = (cf_blob){ report, sizeof(report) };
	in.platform_cert = (cf_blob){ cert.data, cert.len };
	run("soft", &in, true, secs);
	char cmd[4300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;

	memset(&in, 0, sizeof(in));
	in.kind = CF_TEE_SNP;
	in.at = utc(2025, 1, 1);
	/* S2 (trustee): S1 is a debug guest, which the default policy refuses. */
	in.evidence = slurp(td, "snp/trustee/test-report.bin");
	in.vcek = slurp(td, "snp/trustee/test-vcek.der");
	in.snp_chain = slurp(td, "snp/trustee/certs/milan_ask_ark_asvk.pem");
	run("snp", &in, true, secs);

	memset(&in, 0, sizeof(in));
	in.kind = CF_TEE_TDX;
	in.at = utc(2025, 7, 1);
	in.evidence = slurp(td, "tdx/dcap-qvl/tdx_quote");
	in.collateral = slurp(td, "tdx/dcap-qvl/tdx_quote_collateral.json");
	run("tdx", &in, true, secs);

	memset(&in, 0, sizeof(in));
	in.kind = CF_TEE_SGX;
	in.at = utc(2025, 7, 1);
	in.evidence = slurp(td, "sgx/dcap-qvl/sgx_quote");
	in.collateral = slurp(td, "sgx/dcap-qvl/sgx_quote_collateral.json");
	/* G1's TCB is ConfigurationAndSWHardeningNeeded: signatures verify, status is reported. */
	run("sgx", &in, true, secs);

	memset(&in, 0, sizeof(in));
	in.kind = CF_TEE_CSV;
	in.at = time(NULL);
	in.evidence = slurp(td, "csv/csv-rs/report.cert");
	in.hrk = slurp(td, "csv/csv-rs/hrk.cert");
	in.hsk_cek = slurp(td, "csv/csv-rs/hsk_cek.cert");
	run("csv", &in, true, secs);
	return 0;
}
