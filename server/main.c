/*
 * cofferd: the control plane of coffer (docs/api.md). It is untrusted
 * for confidentiality: it stores and forwards ciphertext, signatures and
 * metadata, starts enclaves, and keeps a signed audit log.
 */
#define CF_LOG_MODULE "cofferd"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coffer/log.h"
#include "cofferd.h"
#include "http.h"

#define MAX_NAMES 8

static const char usage_text[] =
	"usage: cofferd [--state DIR] [--listen HOST:PORT] [--url URL] [--cert FILE --key FILE]\n"
	"               [--name NAME]... [--admin-password-file FILE] [--kms URL] [--kms-ca FILE]\n"
	"               [--platform-cert FILE] [--launch FILE] [--enclave FILE] [--no-warm]\n"
	"               [--max-dataset SIZE] [--threads N] [--ready-fd FD]\n"
	"               [--log-level LEVEL] [--log-json]\n\n"
	"The control plane of coffer: users, organisations, datasets (ciphertext), tasks,\n"
	"runs of enclaves in the soft TEE, and a signed audit log, over HTTPS (docs/api.md).\n\n"
	"  --state DIR           database, blobs, run logs, audit log and keys\n"
	"                        (default " COFFERD_DEFAULT_STATE ")\n"
	"  --listen HOST:PORT    where to serve HTTPS (default 127.0.0.1:8080; port 0 picks one)\n"
	"  --url URL             cofferd's URL as enclaves reach it (default https://HOST:PORT)\n"
	"  --cert FILE, --key FILE  TLS certificate and key (PEM); default a self-signed\n"
	"                        P-256 certificate made at the first start in DIR/tls.crt\n"
	"  --name NAME           DNS name or IP address of that certificate (repeatable;\n"
	"                        default localhost, 127.0.0.1 and ::1)\n"
	"  --admin-password-file FILE  the first start's admin password (first line);\n"
	"                        default a random one written to DIR/" COFFERD_ADMIN_PASSWORD_FILE "\n"
	"  --kms URL             the KMS, as enclaves reach it\n"
	"  --kms-ca FILE         the KMS's CA certificate (PEM), given to enclaves\n"
	"  --platform-cert FILE  the soft TEE platform certificate (PEM), given to enclaves\n"
	"  --launch FILE         coffer-launch (default: beside cofferd)\n"
	"  --enclave FILE        coffer-enclave (default: beside cofferd)\n"
	"  --no-warm             start each run's enclave when it runs (default: keep one\n"
	"                        launched, waiting, per instance size, as a running VM is)\n"
	"  --max-dataset SIZE    largest dataset or output (default 4G; K, M, G, T suffixes)\n"
	"  --threads N           event loops serving requests (default: one per CPU)\n"
	"  --ready-fd FD         write the listening port to FD once ready\n"
	"  --log-level LEVEL     error, warn, info (default) or debug\n"
	"  --log-json            log JSON lines\n"
	"  --version, --help\n";

static int usage_error(const char *fmt, ...) CF_PRINTF(1, 2);
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "cofferd: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (see cofferd --help)\n");
	va_end(ap);
	return 2;
}

/* Decimal bytes with an optional K, M, G or T (binary) suffix. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned shift = 0;
	if (errno)
		return -1;
	switch (*end) {
	case 0: break;
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	case 'T': case 't': shift = 40; end++; break;
	default: return -1;
	}
	if (*end || v == 0 || v > (UINT64_MAX >> shift) >> 1)
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

int main(int argc, char **argv)
{
	enum { O_STATE = 256, O_LISTEN, O_URL, O_CERT, O_KEY, O_NAME, O_ADMINPW, O_KMS, O_KMSCA,
	       O_PCERT, O_LAUNCH, O_ENCLAVE, O_NOWARM, O_MAXDS, O_THREADS, O_READY, O_LEVEL, O_JSON, O_VERSION };
	static const struct option opts[] = {
		{ "state", required_argument, NULL, O_STATE },
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "url", required_argument, NULL, O_URL },
		{ "cert", required_argument, NULL, O_CERT },
		{ "key", required_argument, NULL, O_KEY },
		{ "name", required_argument, NULL, O_NAME },
		{ "admin-password-file", required_argument, NULL, O_ADMINPW },
		{ "kms", required_argument, NULL, O_KMS },
		{ "kms-ca", required_argument, NULL, O_KMSCA },
		{ "platform-cert", required_argument, NULL, O_PCERT },
		{ "launch", required_argument, NULL, O_LAUNCH },
		{ "enclave", required_argument, NULL, O_ENCLAVE },
		{ "no-warm", no_argument, NULL, O_NOWARM },
		{ "max-dataset", required_argument, NULL, O_MAXDS },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "ready-fd", required_argument, NULL, O_READY },
		{ "log-level", required_argument, NULL, O_LEVEL },
		{ "log-json", no_argument, NULL, O_JSON },
		{ "version", no_argument, NULL, O_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	cofferd_config cfg = { .state_dir = COFFERD_DEFAULT_STATE };
	cofferd_listen l = { .host = NULL, .port = 8080, .ready_fd = -1 };
	const char *listen = "127.0.0.1:8080";
	const char *names[MAX_NAMES];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int threads = ncpu > 0 && ncpu < 64 ? (int)ncpu : 2;
	cf_log_level level = CF_LOG_INFO;
	bool log_json = false;
	char host[256];
	cofferd *d = NULL;
	int c, status = 1;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_STATE: cfg.state_dir = optarg; break;
		case O_LISTEN: listen = optarg; break;
		case O_URL:
			if (strncmp(optarg, "https://", 8) != 0 || strlen(optarg) > 400)
				return usage_error("--url wants https://HOST:PORT, got %s", optarg);
			l.public_url = optarg;
			break;
		case O_CERT: cfg.cert_path = optarg; break;
		case O_KEY: cfg.key_path = optarg; break;
		case O_NAME:
			if (cfg.nnames == MAX_NAMES)
				return usage_error("at most %d --name", MAX_NAMES);
			names[cfg.nnames++] = optarg;
			cfg.names = names;
			break;
		case O_ADMINPW: cfg.admin_password_file = optarg; break;
		case O_KMS:
			if (strncmp(optarg, "https://", 8) != 0 || strlen(optarg) > 400)
				return usage_error("--kms wants https://HOST:PORT, got %s", optarg);
			cfg.kms_url = optarg;
			break;
		case O_KMSCA: cfg.kms_ca_path = optarg; break;
		case O_PCERT: cfg.platform_cert_path = optarg; break;
		case O_LAUNCH: cfg.launch_path = optarg; break;
		case O_ENCLAVE: cfg.enclave_path = optarg; break;
		case O_NOWARM: cfg.no_warm_spares = true; break;
		case O_MAXDS:
			if (parse_size(optarg, &cfg.max_dataset) != 0)
				return usage_error("--max-dataset wants a size such as 4G, got %s", optarg);
			break;
		case O_THREADS:
			threads = atoi(optarg);
			if (threads < 1 || threads > 64)
				return usage_error("--threads wants 1 to 64, got %s", optarg);
			break;
		case O_READY: l.ready_fd = atoi(optarg); break;
		case O_LEVEL:
			if (cf_log_level_parse(optarg, &level) != CF_OK)
				return usage_error("unknown log level %s", optarg);
			break;
		case O_JSON: log_json = true; break;
		case O_VERSION: printf("cofferd %s\n", COFFER_VERSION); return 0;
		case 'h': fputs(usage_text, stdout); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (optind != argc)
		return usage_error("unexpected argument %s", argv[optind]);
	if (!cfg.cert_path != !cfg.key_path)
		return usage_error("--cert and --key go together");
	const char *colon = strrchr(listen, ':');
	unsigned port = 0;
	char extra;
	if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof(host) ||
	    sscanf(colon + 1, "%u%c", &port, &extra) != 1 || port > 65535)
		return usage_error("--listen wants HOST:PORT, got %s", listen);
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = 0;
	/* [::1]:8080 */
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host) - 2);
		host[strlen(host) - 2] = 0;
	}
	l.host = host;
	l.port = port;
	l.threads = (unsigned)threads;
	cf_log_init("cofferd", level, log_json);

	cf_err rc = cofferd_open(&cfg, &d);
	if (rc != CF_OK) {
		fprintf(stderr, "cofferd: cannot start: %s (see the log above)\n", cf_strerror(rc));
		goto out;
	}
	log_info("state in %s", cfg.state_dir);
	rc = cofferd_serve(d, &l);
	status = rc == CF_OK ? 0 : 1;
	if (rc != CF_OK)
		fprintf(stderr, "cofferd: serving failed: %s\n", cf_strerror(rc));
out:
	cofferd_close(d);
	return status;
}
