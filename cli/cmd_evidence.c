/*
 * coffer evidence verify: offline verification of attestation evidence of
 * every kind, with the claims and an explainable verdict as JSON.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "coffer/enc.h"
#include "coffer/evidence.h"
#include "coffer/json.h"

#define INPUT_MAX (16u << 20)

static const char evidence_usage[] =
	"usage: coffer evidence verify --type soft|sgx|tdx|snp|csv --evidence FILE\n"
	"                              [--at RFC3339] [--policy FILE] [COLLATERAL...]\n\n"
	"Verifies attestation evidence offline and prints the claims and the verdict\n"
	"as JSON: verified, tee, tcb_status, claims, checks (name, pass, expected,\n"
	"actual). Exit 0 only when verified and the policy holds; otherwise exit 1\n"
	"with a one-line reason on stderr.\n\n"
	"collateral:\n"
	"  soft     --platform-cert PEM\n"
	"  snp      --vcek DER|PEM  --chain PEM (ASK or ASVK, then ARK)\n"
	"  sgx/tdx  --collateral JSON (dcap-qvl QuoteCollateralV3), or --tcb-info JSON\n"
	"           --qe-identity JSON --tcb-chain PEM [--pck-crl F] [--root-crl F];\n"
	"           --root-ca F overrides the pinned Intel SGX Root CA\n"
	"  csv      --hrk FILE --hsk-cek FILE [--mnonce HEX (the 16 bytes you sent)]\n\n"
	"  --at TIME     verify as of TIME (e.g. 2025-07-01T00:00:00Z), for old evidence\n"
	"  --policy F    JSON policy: tee, measurements, min_tcb_status, allow_debug,\n"
	"                report_data, max_age_seconds (docs/evidence.md)\n";

struct loaded {
	cf_buf bufs[16];
	size_t n;
};

static cf_err load(struct loaded *l, const char *path, cf_blob *out)
{
	if (l->n == sizeof(l->bufs) / sizeof(l->bufs[0]))
		return CF_ERR_TOO_BIG;
	cf_buf *b = &l->bufs[l->n++];
	cf_buf_init(b, INPUT_MAX, false);
	cf_err rc = cli_read_file(path, INPUT_MAX, b);
	if (rc == CF_OK) {
		out->data = b->data ? b->data : (const uint8_t *)"";
		out->len = b->len;
	}
	return rc;
}

static cf_err parse_time(const char *s, time_t *out)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		end = strptime(s, "%Y-%m-%d", &tm);
	if (!end || (*end && strcmp(end, "Z") != 0))
		return CF_ERR_ARG;
	*out = timegm(&tm);
	return CF_OK;
}

static int evidence_verify(int argc, char **argv)
{
	enum { O_TYPE = 256, O_EVIDENCE, O_AT, O_POLICY, O_PCERT, O_VCEK, O_CHAIN, O_ROOT, O_TCB,
	       O_QE, O_TCBCHAIN, O_PCKCRL, O_ROOTCRL, O_COLL, O_HRK, O_HSKCEK, O_MNONCE };
	static const struct option opts[] = {
		{ "type", required_argument, NULL, O_TYPE },
		{ "evidence", required_argument, NULL, O_EVIDENCE },
		{ "at", required_argument, NULL, O_AT },
		{ "policy", required_argument, NULL, O_POLICY },
		{ "platform-cert", required_argument, NULL, O_PCERT },
		{ "vcek", required_argument, NULL, O_VCEK },
		{ "chain", required_argument, NULL, O_CHAIN },
		{ "root-ca", required_argument, NULL, O_ROOT },
		{ "tcb-info", required_argument, NULL, O_TCB },
		{ "qe-identity", required_argument, NULL, O_QE },
		{ "tcb-chain", required_argument, NULL, O_TCBCHAIN },
		{ "pck-crl", required_argument, NULL, O_PCKCRL },
		{ "root-crl", required_argument, NULL, O_ROOTCRL },
		{ "collateral", required_argument, NULL, O_COLL },
		{ "hrk", required_argument, NULL, O_HRK },
		{ "hsk-cek", required_argument, NULL, O_HSKCEK },
		{ "mnonce", required_argument, NULL, O_MNONCE },
		{ NULL, 0, NULL, 0 },
	};
	static const char *cmd = "evidence verify";
	struct loaded l = { .n = 0 };
	cf_evidence_input in;
	cf_verdict v;
	uint8_t mnonce[16];
	size_t mnonce_len = 0;
	bool have_verdict = false;
	json_t *policy = NULL;
	const char *policy_path = NULL, *evidence_path = NULL;
	int status = CLI_FAIL, c;
	cf_err rc = CF_OK;
	memset(&in, 0, sizeof(in));
	in.kind = CF_TEE_NONE;
	in.at = time(NULL);

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		cf_blob *slot = NULL;
		switch (c) {
		case O_TYPE:
			if (cf_tee_kind_parse(optarg, &in.kind) != CF_OK || in.kind == CF_TEE_NONE) {
				status = cli_usage(cmd, "--type must be soft, sgx, tdx, snp or csv");
				goto out;
			}
			break;
		case O_EVIDENCE: evidence_path = optarg; slot = &in.evidence; break;
		case O_AT:
			if (parse_time(optarg, &in.at) != CF_OK) {
				status = cli_usage(cmd, "--at '%s' is not an RFC 3339 UTC time", optarg);
				goto out;
			}
			break;
		case O_POLICY: policy_path = optarg; break;
		case O_PCERT: slot = &in.platform_cert; break;
		case O_VCEK: slot = &in.vcek; break;
		case O_CHAIN: slot = &in.snp_chain; break;
		case O_ROOT: slot = &in.root_ca; break;
		case O_TCB: slot = &in.tcb_info; break;
		case O_QE: slot = &in.qe_identity; break;
		case O_TCBCHAIN: slot = &in.tcb_chain; break;
		case O_PCKCRL: slot = &in.pck_crl; break;
		case O_ROOTCRL: slot = &in.root_crl; break;
		case O_COLL: slot = &in.collateral; break;
		case O_HRK: slot = &in.hrk; break;
		case O_HSKCEK: slot = &in.hsk_cek; break;
		case O_MNONCE:
			if (strlen(optarg) != 32 ||
			    cf_hex_decode(optarg, 32, mnonce, sizeof(mnonce), &mnonce_len) != CF_OK) {
				status = cli_usage(cmd, "--mnonce must be 32 hex digits");
				goto out;
			}
			in.mnonce = (cf_blob){ mnonce, mnonce_len };
			break;
		case ':':
			status = cli_usage(cmd, "option '%s' needs a value", argv[optind - 1]);
			goto out;
		default:
			status = cli_usage(cmd, "unknown option '%s'", argv[optind - 1]);
			goto out;
		}
		if (slot && (rc = load(&l, optarg, slot)) != CF_OK) {
			cli_fail("reading input failed", "%s: %s", optarg, cf_strerror(rc));
			goto out;
		}
	}
	if (optind != argc) {
		status = cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (in.kind == CF_TEE_NONE || !evidence_path) {
		status = cli_usage(cmd, "--type and --evidence are required");
		goto out;
	}
	if (policy_path) {
		cf_blob p;
		if ((rc = load(&l, policy_path, &p)) != CF_OK) {
			cli_fail("reading the policy failed", "%s: %s", policy_path, cf_strerror(rc));
			goto out;
		}
		if ((rc = cf_json_parse((const char *)p.data, p.len, NULL, &policy)) != CF_OK ||
		    !json_is_object(policy)) {
			cli_fail("reading the policy failed", "%s: not a JSON object", policy_path);
			goto out;
		}
	}
	if ((rc = cf_evidence_verify(&in, &v)) != CF_OK) {
		cli_fail("verification failed", "%s", cf_strerror(rc));
		goto out;
	}
	have_verdict = true;
	if ((rc = cf_policy_apply(policy, in.at, &v)) != CF_OK) {
		cli_fail("applying the policy failed", "%s: malformed policy", policy_path);
		goto out;
	}
	bool verified = cf_verdict_ok(&v);
	json_t *out = cf_verdict_json(&v, verified);
	char *s = out ? json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	if (s)
		printf("%s\n", s);
	free(s);
	json_decref(out);
	if (verified) {
		status = CLI_OK;
	} else {
		const cf_check *f = cf_verdict_first_failure(&v);
		cli_fail("not verified", "%s: expected %s, got %s", f ? f->name : "no checks",
			 f ? f->expected : "-", f ? f->actual : "-");
	}
out:
	if (have_verdict)
		cf_verdict_free(&v);
	json_decref(policy);
	for (size_t i = 0; i < l.n; i++)
		cf_buf_free(&l.bufs[i]);
	return status;
}

int cmd_evidence(int argc, char **argv)
{
	if (argc < 2) {
		fputs(evidence_usage, stderr);
		return CLI_USAGE;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(evidence_usage, stdout);
			return CLI_OK;
		}
	}
	if (strcmp(argv[1], "verify") == 0)
		return evidence_verify(argc - 1, argv + 1);
	fprintf(stderr, "coffer: unknown evidence command '%s' (see 'coffer evidence --help')\n",
		argv[1]);
	return CLI_USAGE;
}
