/*
 * coffer tee: inspect TEE evidence. Today: verify a soft TEE report
 * against a platform certificate (hardware formats arrive with the
 * evidence module, issue 4).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "coffer/enc.h"
#include "coffer/soft.h"

static const char tee_usage[] =
	"usage: coffer tee verify REPORT --platform-cert CERT [--report-data HEX]\n"
	"                         [--measurement HEX] [--allow-debug] [--json]\n\n"
	"Verifies a soft TEE report (352 bytes, from coffer-launch) against the\n"
	"platform certificate of the host that signed it, and prints its claims.\n"
	"With --report-data or --measurement, the report must carry those values.\n"
	"A debug report is refused unless --allow-debug.\n";

static int hex_arg(const char *what, const char *hex, uint8_t *out, size_t want)
{
	size_t n = 0;
	if (strlen(hex) != 2 * want || cf_hex_decode(hex, strlen(hex), out, want, &n) != CF_OK)
		return cli_usage("tee verify", "%s must be %zu hex digits", what, 2 * want);
	return CLI_OK;
}

static int tee_verify(int argc, char **argv)
{
	enum { O_CERT = 256, O_DATA, O_MEAS, O_DEBUG, O_JSON };
	static const struct option opts[] = {
		{ "platform-cert", required_argument, NULL, O_CERT },
		{ "report-data", required_argument, NULL, O_DATA },
		{ "measurement", required_argument, NULL, O_MEAS },
		{ "allow-debug", no_argument, NULL, O_DEBUG },
		{ "json", no_argument, NULL, O_JSON },
		{ NULL, 0, NULL, 0 },
	};
	const char *cert_path = NULL;
	uint8_t want_data[CF_REPORT_DATA_LEN], want_meas[48];
	bool check_data = false, check_meas = false, allow_debug = false, json = false;
	int c, status;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case O_CERT: cert_path = optarg; break;
		case O_DATA:
			if ((status = hex_arg("--report-data", optarg, want_data, sizeof(want_data))) != CLI_OK)
				return status;
			check_data = true;
			break;
		case O_MEAS:
			if ((status = hex_arg("--measurement", optarg, want_meas, sizeof(want_meas))) != CLI_OK)
				return status;
			check_meas = true;
			break;
		case O_DEBUG: allow_debug = true; break;
		case O_JSON: json = true; break;
		case ':': return cli_usage("tee verify", "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage("tee verify", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return cli_usage("tee verify", "expected one REPORT file");
	if (!cert_path)
		return cli_usage("tee verify", "--platform-cert is required");

	cf_buf report, cert;
	cf_buf_init(&report, 1 << 16, false);
	cf_buf_init(&cert, 1 << 16, false);
	cf_soft_report r;
	cf_err rc;
	status = CLI_FAIL;
	if ((rc = cli_read_file(argv[optind], report.max, &report)) != CF_OK) {
		cli_fail("reading the report failed", "%s: %s", argv[optind], cf_strerror(rc));
		goto out;
	}
	if ((rc = cli_read_file(cert_path, cert.max, &cert)) != CF_OK) {
		cli_fail("reading the platform certificate failed", "%s: %s", cert_path, cf_strerror(rc));
		goto out;
	}
	rc = cf_soft_report_verify(report.data, report.len, (const char *)cert.data, cert.len, &r);
	if (rc != CF_OK) {
		cli_fail("verification failed", "%s",
			 rc == CF_ERR_AUTH ? "signature does not verify with this platform certificate"
			 : rc == CF_ERR_TRUNCATED || rc == CF_ERR_TRAILING ? "not a 352-byte soft report"
			 : rc == CF_ERR_PARSE ? "malformed soft report (or certificate)"
					      : cf_strerror(rc));
		goto out;
	}
	char mhex[97], dhex[129], ihex[33], phex[65];
	cf_hex_encode(r.measurement, 48, mhex);
	cf_hex_encode(r.report_data, 64, dhex);
	cf_hex_encode(r.instance_id, 16, ihex);
	cf_hex_encode(r.platform_id, 32, phex);
	bool debug = r.flags & CF_SOFT_FLAG_DEBUG;
	if (check_meas && !cf_ct_equal(want_meas, r.measurement, 48)) {
		cli_fail("verification failed", "measurement %s is not the expected one", mhex);
		goto out;
	}
	if (check_data && !cf_ct_equal(want_data, r.report_data, 64)) {
		cli_fail("verification failed", "report_data %s is not the expected value", dhex);
		goto out;
	}
	if (debug && !allow_debug) {
		cli_fail("verification failed", "the enclave runs in debug mode (use --allow-debug)");
		goto out;
	}
	if (json) {
		json_t *o = json_pack("{s:s, s:b, s:s, s:s, s:s, s:I, s:b, s:s, s:s}", "tee", "soft",
				      "hardware", 0, "measurement", mhex, "report_data", dhex,
				      "instance_id", ihex, "launch_time", (json_int_t)r.launch_time,
				      "debug", debug, "platform_id", phex, "launcher_version",
				      r.launcher_version);
		char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(o);
	} else {
		printf("verified: soft TEE report (software TEE: no memory encryption)\n"
		       "measurement:  %s\nreport_data:  %s\ninstance_id:  %s\nlaunch_time:  %llu\n"
		       "debug:        %s\nplatform_id:  %s\nlauncher:     %s\n",
		       mhex, dhex, ihex, (unsigned long long)r.launch_time, debug ? "yes" : "no",
		       phex, r.launcher_version);
	}
	status = CLI_OK;
out:
	cf_buf_free(&report);
	cf_buf_free(&cert);
	return status;
}

int cmd_tee(int argc, char **argv)
{
	if (argc < 2) {
		fputs(tee_usage, stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(tee_usage, stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "verify") == 0) {
		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--help") == 0) {
				fputs(tee_usage, stdout);
				return CLI_OK;
			}
		}
		return tee_verify(argc - 1, argv + 1);
	}
	fprintf(stderr, "coffer: unknown tee command '%s' (see 'coffer tee --help')\n", argv[1]);
	return CLI_USAGE;
}
