/*
 * coffer-kms: the attestation-gated key broker and CA (docs/kms.md).
 *
 * It refuses to run outside a TEE: its keys are only as safe as the memory
 * they live in, and its CA certificate must carry real evidence. On this
 * kind of host that means under coffer-launch (the soft TEE).
 */
#define CF_LOG_MODULE "kms"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coffer/enc.h"
#include "coffer/json.h"
#include "coffer/log.h"
#include "coffer/soft.h"
#include "kms.h"
#include "server.h"

#define MAX_NAMES 8
#define DEFAULT_STATE_DIR "/var/lib/coffer/kms"

static const char usage_text[] =
	"usage: coffer-kms [--state DIR] [--listen HOST:PORT] [--name NAME]...\n"
	"                  [--admin-pub FILE] [--platform-cert FILE] [--certify-policy FILE]\n"
	"                  [--ready-fd FD] [--threads N] [--log-level LEVEL] [--log-json]\n\n"
	"The key broker and CA of coffer. Run it inside a TEE, e.g.\n"
	"  coffer-launch run -- coffer-kms --admin-pub admin.pub\n\n"
	"  --state DIR           sealed state and audit log (default " DEFAULT_STATE_DIR ")\n"
	"  --listen HOST:PORT    where to serve HTTPS (default 127.0.0.1:8443; port 0 picks one)\n"
	"  --name NAME           DNS name or IP address of the TLS certificate (repeatable;\n"
	"                        default localhost and 127.0.0.1)\n"
	"  --admin-pub FILE      the platform admin's Ed25519 public key (base64), needed at\n"
	"                        the first start and checked afterwards\n"
	"  --platform-cert FILE  soft TEE platform certificate trusted for enclaves' evidence\n"
	"                        (default " CF_SOFT_DEFAULT_PLATFORM_DIR "/cert.pem)\n"
	"  --certify-policy FILE evidence policy an enclave must meet to get a certificate\n"
	"  --ready-fd FD         write the listening port to FD once ready\n"
	"  --threads N           event loops serving requests (default: one per CPU)\n";

struct evidence_arg {
	const cf_tee_provider *tee;
};

static cf_err tee_evidence(void *arg, const uint8_t report_data[CF_REPORT_DATA_LEN], cf_buf *out)
{
	const struct evidence_arg *a = arg;
	return a->tee->evidence(report_data, out);
}

static int read_text(const char *path, size_t max, cf_buf *b)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	uint8_t chunk[4096];
	size_t n;
	int rc = 0;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (cf_buf_append(b, chunk, n) != CF_OK) {
			rc = -1;
			break;
		}
	}
	if (ferror(f))
		rc = -1;
	fclose(f);
	if (rc == 0 && cf_buf_terminate(b) != CF_OK)
		rc = -1;
	return rc;
}

int main(int argc, char **argv)
{
	enum { O_STATE = 256, O_LISTEN, O_NAME, O_ADMIN, O_PCERT, O_CPOL, O_READY, O_THREADS, O_LEVEL, O_JSON,
	       O_VERSION };
	static const struct option opts[] = {
		{ "state", required_argument, NULL, O_STATE },
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "name", required_argument, NULL, O_NAME },
		{ "admin-pub", required_argument, NULL, O_ADMIN },
		{ "platform-cert", required_argument, NULL, O_PCERT },
		{ "certify-policy", required_argument, NULL, O_CPOL },
		{ "ready-fd", required_argument, NULL, O_READY },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "log-level", required_argument, NULL, O_LEVEL },
		{ "log-json", no_argument, NULL, O_JSON },
		{ "version", no_argument, NULL, O_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state = DEFAULT_STATE_DIR, *listen = "127.0.0.1:8443", *admin_path = NULL;
	const char *pcert_path = CF_SOFT_DEFAULT_PLATFORM_DIR "/cert.pem", *cpol_path = NULL;
	const char *names[MAX_NAMES];
	size_t nnames = 0;
	int ready_fd = -1, status = 1, c;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int threads = ncpu > 0 && ncpu < 64 ? (int)ncpu : 2;
	cf_log_level level = CF_LOG_INFO;
	bool log_json = false;
	cf_buf admin_text, pcert, cpol_text;
	cf_buf_init(&admin_text, 4096, false);
	cf_buf_init(&pcert, 64 * 1024, false);
	cf_buf_init(&cpol_text, 64 * 1024, false);
	json_t *cpol = NULL;
	kms *k = NULL;
	uint8_t seal_key[CF_SEAL_KEY_LEN], admin[32];
	bool have_admin = false;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_STATE: state = optarg; break;
		case O_LISTEN: listen = optarg; break;
		case O_NAME:
			if (nnames == MAX_NAMES) {
				fprintf(stderr, "coffer-kms: at most %d --name\n", MAX_NAMES);
				return 2;
			}
			names[nnames++] = optarg;
			break;
		case O_ADMIN: admin_path = optarg; break;
		case O_PCERT: pcert_path = optarg; break;
		case O_CPOL: cpol_path = optarg; break;
		case O_READY: ready_fd = atoi(optarg); break;
		case O_THREADS:
			threads = atoi(optarg);
			if (threads < 1 || threads > 64) {
				fprintf(stderr, "coffer-kms: --threads wants 1 to 64\n");
				return 2;
			}
			break;
		case O_LEVEL:
			if (cf_log_level_parse(optarg, &level) != CF_OK) {
				fprintf(stderr, "coffer-kms: unknown log level %s\n", optarg);
				return 2;
			}
			break;
		case O_JSON: log_json = true; break;
		case O_VERSION: printf("coffer-kms %s\n", COFFER_VERSION); return 0;
		case 'h': fputs(usage_text, stdout); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "coffer-kms: unexpected argument %s\n%s", argv[optind], usage_text);
		return 2;
	}
	cf_log_init("coffer-kms", level, log_json);

	char host[256];
	unsigned port = 0;
	const char *colon = strrchr(listen, ':');
	if (!colon || (size_t)(colon - listen) >= sizeof(host) || sscanf(colon + 1, "%u", &port) != 1 ||
	    port > 65535) {
		fprintf(stderr, "coffer-kms: --listen wants HOST:PORT, got %s\n", listen);
		return 2;
	}
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = 0;

	if (admin_path) {
		size_t got = 0;
		if (read_text(admin_path, 4096, &admin_text) != 0) {
			fprintf(stderr, "coffer-kms: cannot read %s\n", admin_path);
			goto out;
		}
		char *t = (char *)admin_text.data;
		t[strcspn(t, "\r\n")] = 0;
		if (cf_b64_decode(t, strlen(t), true, admin, sizeof(admin), &got) != CF_OK || got != 32) {
			fprintf(stderr, "coffer-kms: %s: not a base64 Ed25519 public key\n", admin_path);
			goto out;
		}
		have_admin = true;
	}
	if (cpol_path) {
		if (read_text(cpol_path, 64 * 1024, &cpol_text) != 0 ||
		    cf_json_parse((const char *)cpol_text.data, cpol_text.len, NULL, &cpol) != CF_OK) {
			fprintf(stderr, "coffer-kms: %s: cannot read a JSON policy\n", cpol_path);
			goto out;
		}
	}

	const cf_tee_provider *tee = NULL;
	cf_tee_info info;
	if (cf_tee_detect(&tee) != CF_OK || !tee || tee->kind == CF_TEE_NONE) {
		fprintf(stderr, "coffer-kms: no TEE: run it in one, e.g. "
				"coffer-launch run -- coffer-kms ...\n");
		goto out;
	}
	if (tee->describe(&info) != CF_OK || tee->seal_key("coffer-kms/state/v1", seal_key) != CF_OK) {
		fprintf(stderr, "coffer-kms: the %s TEE gives no measurement or sealing key\n",
			cf_tee_kind_name(tee->kind));
		goto out;
	}
	/* Evidence kinds we can check: the soft platform cert is optional on hardware hosts. */
	if (read_text(pcert_path, 64 * 1024, &pcert) != 0) {
		if (tee->kind == CF_TEE_SOFT || strcmp(pcert_path, CF_SOFT_DEFAULT_PLATFORM_DIR "/cert.pem"))
			log_warn("no soft platform certificate at %s: soft enclaves cannot be verified",
				 pcert_path);
		cf_buf_reset(&pcert);
	}
	kms_config cfg = {
		.state_dir = state,
		.admin_pub = have_admin ? admin : NULL,
		.certify_policy = cpol,
		.names = names,
		.nnames = nnames,
	};
	cfg.collateral.platform_cert = (cf_blob){ pcert.data, pcert.len };
	struct evidence_arg ea = { tee };
	cf_err rc = kms_open(&cfg, seal_key, tee->kind, info.measurement, tee_evidence, &ea, &k);
	cf_wipe(seal_key, sizeof(seal_key));
	if (rc != CF_OK) {
		fprintf(stderr, "coffer-kms: cannot start: %s\n", cf_strerror(rc));
		goto out;
	}
	log_info("%s TEE, state in %s", cf_tee_kind_name(tee->kind), state);
	rc = kms_serve(k, host, port, ready_fd, (unsigned)threads);
	status = rc == CF_OK ? 0 : 1;
out:
	kms_close(k);
	json_decref(cpol);
	cf_buf_free(&admin_text);
	cf_buf_free(&pcert);
	cf_buf_free(&cpol_text);
	cf_wipe(seal_key, sizeof(seal_key));
	return status;
}
