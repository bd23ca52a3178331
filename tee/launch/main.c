/*
 * coffer-launch: the soft TEE launcher and attestation agent.
 *
 *   coffer-launch run [OPTIONS] -- PROGRAM [ARG...]
 *   coffer-launch measure [OPTIONS] [--json] PROGRAM [ARG...]
 *   coffer-launch platform init [--dir DIR] [--force]
 *   coffer-launch platform cert [--dir DIR]
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "coffer/enc.h"
#include "coffer/soft.h"
#include "launch.h"

#define DEFAULT_ENCLAVE_SIZE (256ull << 20)
#define DEFAULT_ALLOCATOR "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2"

static const char usage_text[] =
	"usage: coffer-launch COMMAND [OPTIONS]\n\n"
	"The launcher and attestation agent of coffer's software TEE (memfd_secret).\n\n"
	"commands:\n"
	"  run       start a program in the soft TEE:  run [OPTIONS] -- PROGRAM [ARG...]\n"
	"  measure   print the measurement run would record:  measure [OPTIONS] PROGRAM [ARG...]\n"
	"  platform  manage this host's platform key:  platform init|cert [--dir DIR]\n";

static const char run_usage[] =
	"usage: coffer-launch run [--tee soft] [--enclave-size SIZE] [--cores N] [--memory SIZE]\n"
	"                         [--manifest FILE] [--user USER] [--debug] [--quiet]\n"
	"                         [--platform-dir DIR] [--runtime FILE] [--allocator FILE]\n"
	"                         -- PROGRAM [ARG...]\n\n"
	"Copies PROGRAM and the secretmem runtime into sealed memory files, measures\n"
	"them (SHA-384) with the manifest, confines the process and executes exactly\n"
	"the measured bytes. Its heap lives in one memfd_secret arena of SIZE bytes\n"
	"(default 256M). Exits with the program's status.\n\n"
	"  --tee KIND          only 'soft' on this host\n"
	"  --enclave-size SIZE secretmem arena (e.g. 512M, 2G); exceeding it is out of memory\n"
	"  --cores N           CPU limit (cgroup v1 cpu quota)\n"
	"  --memory SIZE       memory limit (cgroup v1), at least the enclave size\n"
	"  --manifest FILE     JSON: args, env (names passed through), enclave_size, cores,\n"
	"                      memory, debug; see docs/soft-tee.md\n"
	"  --user USER         run as USER, keeping only CAP_IPC_LOCK\n"
	"  --debug             mark the instance as debug in its reports\n"
	"  --platform-dir DIR  platform key (default " CF_SOFT_DEFAULT_PLATFORM_DIR
	", or $COFFER_PLATFORM_DIR)\n"
	"  --runtime FILE      secretmem runtime (default: libcoffer-soft.so beside this program)\n"
	"  --allocator FILE    malloc replacement preloaded after it (default " DEFAULT_ALLOCATOR ")\n";

static const char measure_usage[] =
	"usage: coffer-launch measure [--manifest FILE] [--enclave-size SIZE] [--cores N]\n"
	"                             [--memory SIZE] [--debug] [--runtime FILE]\n"
	"                             [--allocator FILE] [--json] PROGRAM [ARG...]\n\n"
	"Prints the SHA-384 measurement (hex) that 'run' with the same options records:\n"
	"the reference value to publish before deployment. Runs nothing.\n";

static const char platform_usage[] =
	"usage: coffer-launch platform init [--dir DIR] [--force]\n"
	"       coffer-launch platform cert [--dir DIR]\n\n"
	"init creates this host's ECDSA P-384 platform key (root-only), its self-signed\n"
	"certificate and the sealing secret. cert prints the certificate (PEM), which is\n"
	"what verifiers of this host's soft reports trust.\n";

enum { OPT_TEE = 256, OPT_ENCLAVE, OPT_CORES, OPT_MEMORY, OPT_MANIFEST, OPT_USER, OPT_DEBUG,
       OPT_PLATFORM, OPT_RUNTIME, OPT_ALLOCATOR, OPT_JSON, OPT_QUIET, OPT_DIR, OPT_FORCE,
       OPT_HELP };

static int usage_error(const char *cmd, const char *fmt, ...) CF_PRINTF(2, 3);
static int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "coffer-launch: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (see 'coffer-launch %s --help')\n", cmd);
	va_end(ap);
	return 2;
}

static const char *platform_dir_default(void)
{
	const char *d = getenv("COFFER_PLATFORM_DIR");
	return d && *d ? d : CF_SOFT_DEFAULT_PLATFORM_DIR;
}

/* libcoffer-soft.so beside our own executable. */
static char *default_runtime(void)
{
	static char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 32);
	if (n <= 0)
		return NULL;
	path[n] = 0;
	char *slash = strrchr(path, '/');
	if (!slash)
		return NULL;
	strcpy(slash + 1, "libcoffer-soft.so");
	return path;
}

/* Shared by run and measure, so both see the same config. */
static int parse_config(const char *cmd, int argc, char **argv, struct launch_config *c,
			bool *json)
{
	static const struct option opts[] = {
		{ "tee", required_argument, NULL, OPT_TEE },
		{ "enclave-size", required_argument, NULL, OPT_ENCLAVE },
		{ "cores", required_argument, NULL, OPT_CORES },
		{ "memory", required_argument, NULL, OPT_MEMORY },
		{ "manifest", required_argument, NULL, OPT_MANIFEST },
		{ "user", required_argument, NULL, OPT_USER },
		{ "debug", no_argument, NULL, OPT_DEBUG },
		{ "platform-dir", required_argument, NULL, OPT_PLATFORM },
		{ "runtime", required_argument, NULL, OPT_RUNTIME },
		{ "allocator", required_argument, NULL, OPT_ALLOCATOR },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *manifest = NULL;
	char why[512];
	int o;
	c->platform_dir = platform_dir_default();
	c->allocator = DEFAULT_ALLOCATOR;
	c->runtime = getenv("COFFER_RUNTIME");
	if (!c->runtime || !*c->runtime)
		c->runtime = default_runtime();
	opterr = 0;
	optind = 1;
	/* '+': stop at the program name, its options are its own. */
	while ((o = getopt_long(argc, argv, "+:", opts, NULL)) != -1) {
		switch (o) {
		case OPT_TEE:
			if (strcmp(optarg, "soft") != 0) {
				fprintf(stderr, "coffer-launch: TEE '%s' is not available on this host: "
						"coffer-launch provides only 'soft' (hardware TEEs run through "
						"their own launch paths)\n", optarg);
				return 1;
			}
			break;
		case OPT_ENCLAVE:
			if (launch_parse_size(optarg, &c->enclave_size) != CF_OK || c->enclave_size == 0)
				return usage_error(cmd, "--enclave-size '%s' is not a size", optarg);
			break;
		case OPT_MEMORY:
			if (launch_parse_size(optarg, &c->memory) != CF_OK || c->memory == 0)
				return usage_error(cmd, "--memory '%s' is not a size", optarg);
			break;
		case OPT_CORES: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 4096)
				return usage_error(cmd, "--cores '%s' is not a number of cores", optarg);
			c->cores = (unsigned)v;
			break;
		}
		case OPT_MANIFEST: manifest = optarg; break;
		case OPT_USER: c->user = optarg; break;
		case OPT_DEBUG: c->debug = true; break;
		case OPT_PLATFORM: c->platform_dir = optarg; break;
		case OPT_RUNTIME: c->runtime = optarg; break;
		case OPT_ALLOCATOR: c->allocator = optarg; break;
		case OPT_QUIET: c->quiet = true; break;
		case OPT_JSON:
			if (!json)
				return usage_error(cmd, "unknown option '%s'", "--json");
			*json = true;
			break;
		case ':':
			return usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (optind >= argc)
		return usage_error(cmd, "%s", "no PROGRAM given");
	c->program = argv[optind++];
	if ((size_t)(argc - optind) > LAUNCH_MAX_ARGS)
		return usage_error(cmd, "%s", "too many arguments");
	for (int i = optind; i < argc; i++) {
		c->args[c->nargs] = strdup(argv[i]);
		if (!c->args[c->nargs++]) {
			fprintf(stderr, "coffer-launch: out of memory\n");
			return 1;
		}
	}
	if (manifest && launch_manifest_load(c, manifest, why, sizeof(why)) != CF_OK) {
		fprintf(stderr, "coffer-launch: reading the manifest failed: %s\n", why);
		return 1;
	}
	if (c->enclave_size == 0)
		c->enclave_size = DEFAULT_ENCLAVE_SIZE;
	if (launch_config_check(c, why, sizeof(why)) != CF_OK) {
		fprintf(stderr, "coffer-launch: invalid configuration: %s\n", why);
		return 1;
	}
	if (!c->runtime) {
		fprintf(stderr, "coffer-launch: cannot find libcoffer-soft.so (use --runtime)\n");
		return 1;
	}
	return 0;
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
		if (argv[i][0] != '-')
			return false; /* the program's own --help */
	}
	return false;
}

static int cmd_run(int argc, char **argv)
{
	struct launch_config c;
	if (wants_help(argc, argv)) {
		fputs(run_usage, stdout);
		return 0;
	}
	launch_config_init(&c);
	int rc = parse_config("run", argc, argv, &c, NULL);
	if (rc == 0)
		rc = launch_run(&c);
	launch_config_free(&c);
	return rc;
}

static int cmd_measure(int argc, char **argv)
{
	struct launch_config c;
	struct launch_image img;
	bool json = false;
	char why[512];
	if (wants_help(argc, argv)) {
		fputs(measure_usage, stdout);
		return 0;
	}
	launch_config_init(&c);
	int rc = parse_config("measure", argc, argv, &c, &json);
	if (rc != 0)
		goto out;
	if (launch_image_build(&c, &img, why, sizeof(why)) != CF_OK) {
		fprintf(stderr, "coffer-launch: measuring failed: %s\n", why);
		rc = 1;
		goto out;
	}
	char hex[97];
	cf_hex_encode(img.measurement, 48, hex);
	if (json) {
		json_error_t jerr;
		json_t *m = json_loadb((const char *)img.manifest.data, img.manifest.len, 0, &jerr);
		json_t *o = json_pack("{s:s, s:s, s:o*}", "tee", "soft", "measurement", hex, "manifest", m);
		char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(o);
	} else {
		printf("%s\n", hex);
	}
	launch_image_free(&img);
out:
	launch_config_free(&c);
	return rc;
}

static int cmd_platform(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, OPT_DIR },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = platform_dir_default();
	bool force = false;
	int o;
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(platform_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "init") != 0 && strcmp(sub, "cert") != 0)
		return usage_error("platform", "unknown platform command '%s'", sub);
	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc - 1, argv + 1, ":", opts, NULL)) != -1) {
		switch (o) {
		case OPT_DIR: dir = optarg; break;
		case OPT_FORCE: force = true; break;
		case OPT_HELP: fputs(platform_usage, stdout); return 0;
		case ':': return usage_error("platform", "option '%s' needs a value", argv[optind]);
		default: return usage_error("platform", "unknown option '%s'", argv[optind]);
		}
	}
	if (optind != argc - 1)
		return usage_error("platform", "unexpected argument '%s'", argv[optind + 1]);
	if (strcmp(sub, "init") == 0) {
		char host[256] = "";
		gethostname(host, sizeof(host) - 1);
		cf_err rc = cf_soft_platform_init(dir, host, force);
		if (rc != CF_OK) {
			fprintf(stderr, "coffer-launch: creating the platform key in %s failed: %s\n", dir,
				rc == CF_ERR_ARG ? "a platform key exists (use --force to replace it, "
						   "which invalidates every sealed secret)"
				: rc == CF_ERR_IO ? strerror(errno)
						  : cf_strerror(rc));
			return 1;
		}
		fprintf(stderr, "coffer-launch: platform key created in %s\n", dir);
		return 0;
	}
	cf_buf pem;
	cf_buf_init(&pem, 1 << 16, false);
	cf_err rc = cf_soft_platform_cert(dir, &pem);
	if (rc != CF_OK) {
		fprintf(stderr, "coffer-launch: reading the platform certificate in %s failed: %s\n",
			dir, rc == CF_ERR_NOT_FOUND ? "no platform (run 'coffer-launch platform init')"
						    : cf_strerror(rc));
		cf_buf_free(&pem);
		return 1;
	}
	fwrite(pem.data, 1, pem.len, stdout);
	cf_buf_free(&pem);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("coffer-launch %s\n", COFFER_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "measure") == 0)
		return cmd_measure(argc - 1, argv + 1);
	if (strcmp(argv[1], "platform") == 0)
		return cmd_platform(argc - 1, argv + 1);
	fprintf(stderr, "coffer-launch: unknown command '%s' (see 'coffer-launch --help')\n", argv[1]);
	return 2;
}
