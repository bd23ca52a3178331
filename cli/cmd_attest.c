/*
 * coffer attest: verify a service's attested CA once over TLS, then pin
 * it, so that coffer, curl --cacert and openssl -CAfile reach the service
 * (and every enclave it certified) over ordinary TLS afterwards.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "cli.h"
#include "coffer/enc.h"
#include "coffer/evidence.h"
#include "coffer/io.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"
#include "coffer/ratls.h"
#include "coffer/soft.h"

#define INPUT_MAX (16u << 20)
#define DEFAULT_PORT "8443"
#define DEFAULT_TIMEOUT 10
#define PROFILE_CA "kms-ca.pem"
#define PROFILE_JSON "kms.json"

static const char attest_usage[] =
	"usage: coffer attest URL [--policy FILE] [--ca-out FILE] [--json] [--timeout S]\n"
	"                     [COLLATERAL...]\n\n"
	"Connects to URL (https://HOST[:PORT], default port " DEFAULT_PORT ") over TLS 1.3 and\n"
	"verifies the service's CA certificate as an RA-TLS certificate: its TEE\n"
	"evidence, the policy, and that the evidence binds the CA's own key; then that\n"
	"the server's certificate was issued by that CA for HOST. Prints the claims and\n"
	"the CA's SHA-256 fingerprint. When verified, writes the CA (PEM) to --ca-out\n"
	"and pins it in the client profile ($COFFER_HOME, default ~/.config/coffer:\n"
	PROFILE_CA " and " PROFILE_JSON "), for coffer, curl --cacert and openssl -CAfile.\n"
	"Exit 0 verified and pinned; 1 not verified or unreachable (nothing pinned); 2 usage.\n\n"
	"collateral (as for 'coffer evidence verify'):\n"
	"  soft     --platform-cert PEM (default: $COFFER_PLATFORM_DIR/cert.pem, else\n"
	"           " CF_SOFT_DEFAULT_PLATFORM_DIR "/cert.pem, if present)\n"
	"  snp      --vcek DER|PEM  --chain PEM (ASK or ASVK, then ARK)\n"
	"  sgx/tdx  --collateral JSON, or --tcb-info JSON --qe-identity JSON --tcb-chain PEM\n"
	"           [--pck-crl F] [--root-crl F]; --root-ca F overrides the Intel root\n"
	"  csv      --hrk FILE --hsk-cek FILE\n\n"
	"  --policy F    JSON policy (docs/evidence.md): tee, measurements, min_tcb_status,\n"
	"                allow_debug, max_age_seconds; without \"tee\", soft is accepted\n"
	"  --ca-out F    also write the verified CA certificate (PEM) to F\n"
	"  --json        print the verdict as JSON, with url, ca_sha256 and pinned\n"
	"  --timeout S   seconds for connecting and the handshake (default 10)\n";

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

/* --- the URL --- */

struct url {
	char host[256]; /* a DNS name or an IP address, without brackets */
	char port[6];
	char norm[300]; /* https://HOST:PORT, what is pinned */
	bool is_ip;
};

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.';
}

/* https://HOST[:PORT][/]: no user, path, query or fragment to misread. */
static bool parse_url(const char *s, struct url *u)
{
	unsigned char addr[16];
	const char *p, *end;
	memset(u, 0, sizeof(*u));
	if (strncasecmp(s, "https://", 8) != 0)
		return false;
	p = s + 8;
	if (*p == '[') {
		if (!(end = strchr(p, ']')) || (size_t)(end - p - 1) >= sizeof(u->host))
			return false;
		memcpy(u->host, p + 1, (size_t)(end - p - 1));
		if (inet_pton(AF_INET6, u->host, addr) != 1)
			return false;
		u->is_ip = true;
		p = end + 1;
	} else {
		end = p;
		while (host_char(*end))
			end++;
		if (end == p || (size_t)(end - p) >= sizeof(u->host))
			return false;
		memcpy(u->host, p, (size_t)(end - p));
		u->is_ip = inet_pton(AF_INET, u->host, addr) == 1;
		p = end;
	}
	snprintf(u->port, sizeof(u->port), DEFAULT_PORT);
	if (*p == ':') {
		char *e;
		errno = 0;
		long port = strtol(p + 1, &e, 10);
		if (e == p + 1 || errno || port < 1 || port > 65535 || e - (p + 1) > 5)
			return false;
		snprintf(u->port, sizeof(u->port), "%ld", port);
		p = e;
	}
	if (*p == '/')
		p++;
	if (*p)
		return false;
	snprintf(u->norm, sizeof(u->norm), "https://%s%s%s:%s", strchr(u->host, ':') ? "[" : "",
		 u->host, strchr(u->host, ':') ? "]" : "", u->port);
	return true;
}

/* --- the connection --- */

/* Connects to the first address that answers within timeout seconds. */
static int tcp_connect(const struct url *u, int timeout, char *why, size_t whylen)
{
	struct addrinfo hints, *res = NULL;
	int fd = -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = u->is_ip ? AI_NUMERICHOST : 0;
	int g = getaddrinfo(u->host, u->port, &hints, &res);
	if (g != 0) {
		snprintf(why, whylen, "cannot resolve %s: %s", u->host, gai_strerror(g));
		return -1;
	}
	snprintf(why, whylen, "no address for %s", u->host);
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0)
			continue;
		int err = 0;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			err = errno;
			if (err == EINPROGRESS) {
				struct pollfd pfd = { .fd = fd, .events = POLLOUT };
				socklen_t len = sizeof(err);
				int n = poll(&pfd, 1, timeout * 1000);
				if (n == 0)
					err = ETIMEDOUT;
				else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
					err = errno;
			}
		}
		if (err == 0) {
			/* Blocking from here on, with the same bound on each read and write. */
			struct timeval tv = { .tv_sec = timeout };
			int fl = fcntl(fd, F_GETFL);
			if (fl >= 0 && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0 &&
			    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
			    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0)
				break;
			err = errno;
		}
		snprintf(why, whylen, "connecting to port %s: %s", u->port, strerror(err));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* The last OpenSSL error of a handshake that failed before any verdict. */
static void tls_reason(SSL *ssl, int r, char *why, size_t whylen)
{
	unsigned long e = ERR_peek_last_error();
	int se = SSL_get_error(ssl, r);
	if (e)
		snprintf(why, whylen, "TLS handshake failed: %s", ERR_reason_error_string(e));
	else if (se == SSL_ERROR_SYSCALL && errno)
		snprintf(why, whylen, "TLS handshake failed: %s", strerror(errno));
	else
		snprintf(why, whylen, "TLS handshake failed: the server closed the connection");
	ERR_clear_error();
}

/* --- the profile --- */

/*
 * The profile holds the trust anchor every later command uses: it must be
 * ours and writable by nobody else.
 */
static const char *check_dir(const char *dir)
{
	struct stat st;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return "not a directory";
	if (st.st_uid != geteuid() || (st.st_mode & 022))
		return "must be owned by you and not group- or world-writable";
	return NULL;
}

static cf_err write_file(const char *path, const void *data, size_t len, unsigned mode)
{
	cf_outfile o;
	cf_err rc = cf_outfile_open(&o, path, mode);
	if (rc != CF_OK)
		return rc;
	cf_writer w = cf_outfile_writer(&o);
	if ((rc = w.write(w.ctx, data, len)) != CF_OK) {
		cf_outfile_abort(&o);
		return rc;
	}
	return cf_outfile_commit(&o);
}

/* The claim holding a kind's principal measurement. */
static const char *principal(const char *tee)
{
	if (strcmp(tee, "sgx") == 0)
		return "mr_enclave";
	if (strcmp(tee, "tdx") == 0)
		return "mr_td";
	if (strcmp(tee, "csv") == 0)
		return "digest";
	return "measurement"; /* soft, snp */
}

static const char *json_str(const json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : dflt;
}

static void rfc3339(time_t t, char out[32])
{
	struct tm tm;
	if (!gmtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, 32, "%lld", (long long)t);
}

static void print_human(const struct url *u, const json_t *verdict, X509 *ca, const char *fp,
			const char *pinned, const char *ca_out)
{
	const json_t *claims = json_object_get(verdict, "claims");
	const char *tee = json_str(verdict, "tee", "none");
	const char *main_name = principal(tee);
	const json_t *ms = json_object_get(claims, "measurements");
	const json_t *t = json_object_get(claims, "evidence_time");
	char when[32] = "not in the evidence", subject[256];
	const char *key;
	json_t *val;

	if (json_is_integer(t))
		rfc3339((time_t)json_integer_value(t), when);
	if (!X509_NAME_oneline(X509_get_subject_name(ca), subject, sizeof(subject)))
		snprintf(subject, sizeof(subject), "?");
	printf("verified:     %s\n", u->norm);
	printf("tee:          %s%s\n", tee,
	       json_is_false(json_object_get(claims, "hardware")) ? " (software TEE: no memory "
								    "encryption, trusts the host)"
								  : "");
	printf("measurement:  %s\n", json_str(ms, main_name, "(none)"));
	json_object_foreach((json_t *)ms, key, val) {
		if (strcmp(key, main_name) != 0 && json_is_string(val))
			printf("  %s: %s\n", key, json_string_value(val));
	}
	printf("debug:        %s\n", json_is_true(json_object_get(claims, "debug")) ? "yes" : "no");
	printf("tcb_status:   %s\n",
	       json_str(claims, "tcb_status", json_str(verdict, "tcb_status", "Unknown")));
	printf("report_time:  %s\n", when);
	printf("ca:           %s\n", subject);
	printf("ca_sha256:    %s\n", fp);
	if (ca_out)
		printf("ca_out:       %s\n", ca_out);
	printf("pinned:       %s\n", pinned);
}

static int attest(int argc, char **argv)
{
	enum { O_POLICY = 256, O_CAOUT, O_JSON, O_TIMEOUT, O_PCERT, O_VCEK, O_CHAIN, O_ROOT, O_TCB,
	       O_QE, O_TCBCHAIN, O_PCKCRL, O_ROOTCRL, O_COLL, O_HRK, O_HSKCEK };
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, O_POLICY },
		{ "ca-out", required_argument, NULL, O_CAOUT },
		{ "json", no_argument, NULL, O_JSON },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
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
		{ NULL, 0, NULL, 0 },
	};
	static const char *cmd = "attest";
	struct loaded l = { .n = 0 };
	struct url u;
	cf_ratls_verifier cfg;
	json_t *policy = NULL, *out_json = NULL, *pin = NULL;
	const char *policy_path = NULL, *ca_out = NULL;
	bool json = false;
	long timeout = DEFAULT_TIMEOUT;
	int status = CLI_FAIL, c, fd = -1;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	BIO *pem = NULL;
	char what[340], why[512], dir[4096], path[4200];
	char fp[2 * 32 + 1], when[32];
	char *pin_text = NULL;
	cf_buf pin_buf;
	cf_err rc;

	cf_buf_init(&pin_buf, 1u << 16, false);
	memset(&cfg, 0, sizeof(cfg));
	snprintf(what, sizeof(what), "attest");
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		cf_blob *slot = NULL;
		switch (c) {
		case O_POLICY: policy_path = optarg; break;
		case O_CAOUT: ca_out = optarg; break;
		case O_JSON: json = true; break;
		case O_TIMEOUT: {
			char *e;
			timeout = strtol(optarg, &e, 10);
			if (*e || e == optarg || timeout < 1 || timeout > 600) {
				status = cli_usage(cmd, "--timeout must be 1 to 600 seconds");
				goto out;
			}
			break;
		}
		case O_PCERT: slot = &cfg.collateral.platform_cert; break;
		case O_VCEK: slot = &cfg.collateral.vcek; break;
		case O_CHAIN: slot = &cfg.collateral.snp_chain; break;
		case O_ROOT: slot = &cfg.collateral.root_ca; break;
		case O_TCB: slot = &cfg.collateral.tcb_info; break;
		case O_QE: slot = &cfg.collateral.qe_identity; break;
		case O_TCBCHAIN: slot = &cfg.collateral.tcb_chain; break;
		case O_PCKCRL: slot = &cfg.collateral.pck_crl; break;
		case O_ROOTCRL: slot = &cfg.collateral.root_crl; break;
		case O_COLL: slot = &cfg.collateral.collateral; break;
		case O_HRK: slot = &cfg.collateral.hrk; break;
		case O_HSKCEK: slot = &cfg.collateral.hsk_cek; break;
		case ':':
			status = cli_usage(cmd, "option '%s' needs a value", argv[optind - 1]);
			goto out;
		default:
			status = cli_usage(cmd, "unknown option '%s'", argv[optind - 1]);
			goto out;
		}
		if (slot && (rc = load(&l, optarg, slot)) != CF_OK) {
			cli_fail("reading collateral failed", "%s: %s", optarg, cf_strerror(rc));
			goto out;
		}
	}
	if (optind != argc - 1) {
		status = cli_usage(cmd, optind == argc ? "a URL is required"
						       : "exactly one URL is expected");
		goto out;
	}
	if (!parse_url(argv[optind], &u)) {
		status = cli_usage(cmd, "'%s' is not https://HOST[:PORT]", argv[optind]);
		goto out;
	}
	snprintf(what, sizeof(what), "attest %s", u.norm);
	if (!cfg.collateral.platform_cert.data) {
		/* The host's own platform, as coffer-launch finds it: a soft TEE on this machine. */
		const char *pd = getenv("COFFER_PLATFORM_DIR");
		snprintf(path, sizeof(path), "%s/cert.pem",
			 pd && *pd ? pd : CF_SOFT_DEFAULT_PLATFORM_DIR);
		if (access(path, R_OK) == 0 &&
		    (rc = load(&l, path, &cfg.collateral.platform_cert)) != CF_OK) {
			cli_fail("reading collateral failed", "%s: %s", path, cf_strerror(rc));
			goto out;
		}
	}
	if (policy_path) {
		cf_blob p;
		if ((rc = load(&l, policy_path, &p)) != CF_OK) {
			cli_fail("reading the policy failed", "%s: %s", policy_path, cf_strerror(rc));
			goto out;
		}
		if (cf_json_parse((const char *)p.data, p.len, NULL, &policy) != CF_OK ||
		    !json_is_object(policy)) {
			cli_fail("reading the policy failed", "%s: not a JSON object", policy_path);
			goto out;
		}
		cfg.policy = policy;
	}
	/* Where the pin goes is settled before anything is fetched. */
	if ((rc = cf_profile_dir(dir, sizeof(dir))) != CF_OK) {
		cli_fail(what, "finding the profile failed: %s",
			 rc == CF_ERR_NOT_FOUND ? "set COFFER_HOME or HOME" : cf_strerror(rc));
		goto out;
	}

	if ((fd = tcp_connect(&u, (int)timeout, why, sizeof(why))) < 0) {
		cli_fail(what, "%s", why);
		goto out;
	}
	if (!(ctx = SSL_CTX_new(TLS_client_method())) ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    cf_ratls_ssl_ctx_setup_ca(ctx, &cfg) != CF_OK || !(ssl = SSL_new(ctx)) ||
	    cf_ratls_ssl_set_host(ssl, u.host) != CF_OK ||
	    (!u.is_ip && SSL_set_tlsext_host_name(ssl, u.host) != 1) || SSL_set_fd(ssl, fd) != 1) {
		cli_fail(what, "setting up TLS failed");
		goto out;
	}
	int r = SSL_connect(ssl);
	const json_t *verdict = cf_ratls_last_verdict(ssl);
	if (r != 1 || !cf_ratls_peer_ca(ssl)) {
		if (json && verdict) {
			out_json = json_deep_copy(verdict);
			json_object_set_new(out_json, "url", json_string(u.norm));
			json_object_set_new(out_json, "pinned", json_null());
			char *s = json_dumps(out_json, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			if (s)
				printf("%s\n", s);
			free(s);
		}
		if (cf_ratls_last_error(ssl))
			cli_fail(what, "%s", cf_ratls_last_error(ssl));
		else {
			tls_reason(ssl, r, why, sizeof(why));
			cli_fail(what, "%s", why);
		}
		goto out;
	}
	X509 *ca = cf_ratls_peer_ca(ssl);
	uint8_t digest[32];
	unsigned int dlen = 0;
	char *pem_data = NULL;
	long pem_len;
	if (X509_digest(ca, EVP_sha256(), digest, &dlen) != 1 || dlen != 32 ||
	    !(pem = BIO_new(BIO_s_mem())) || PEM_write_bio_X509(pem, ca) != 1 ||
	    (pem_len = BIO_get_mem_data(pem, &pem_data)) <= 0) {
		cli_fail(what, "encoding the CA certificate failed");
		goto out;
	}
	cf_hex_encode(digest, 32, fp);
	SSL_shutdown(ssl); /* we are done with the server; its answer does not matter */

	/* Verified: write the CA, then the pin that names it. */
	if (ca_out && (rc = write_file(ca_out, pem_data, (size_t)pem_len, 0644)) != CF_OK) {
		cli_fail(what, "writing %s failed: %s", ca_out, cf_strerror(rc));
		goto out;
	}
	if ((rc = cf_profile_mkdir(dir, sizeof(dir))) != CF_OK) {
		cli_fail(what, "pinning failed: %s: %s", dir,
			 rc == CF_ERR_IO ? strerror(errno) : cf_strerror(rc));
		goto out;
	}
	const char *bad = check_dir(dir);
	if (bad) {
		cli_fail(what, "pinning failed: %s: %s", dir, bad);
		goto out;
	}
	const json_t *claims = json_object_get(verdict, "claims");
	const char *tee = json_str(verdict, "tee", "none");
	rfc3339(time(NULL), when);
	pin = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "url", u.norm, "ca", PROFILE_CA,
			"ca_sha256", fp, "tee", tee, "measurement",
			json_str(json_object_get(claims, "measurements"), principal(tee), ""),
			"attested_at", when);
	if (!pin || !(pin_text = json_dumps(pin, JSON_INDENT(2) | JSON_PRESERVE_ORDER))) {
		cli_fail(what, "pinning failed: out of memory");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/" PROFILE_CA, dir);
	if ((rc = write_file(path, pem_data, (size_t)pem_len, 0600)) != CF_OK) {
		cli_fail(what, "pinning failed: %s: %s", path, cf_strerror(rc));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/" PROFILE_JSON, dir);
	if ((rc = cf_buf_append_str(&pin_buf, pin_text)) != CF_OK ||
	    (rc = cf_buf_append_byte(&pin_buf, '\n')) != CF_OK ||
	    (rc = write_file(path, pin_buf.data, pin_buf.len, 0600)) != CF_OK) {
		cli_fail(what, "pinning failed: %s: %s", path, cf_strerror(rc));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/" PROFILE_CA, dir);

	if (json) {
		out_json = json_deep_copy(verdict);
		json_object_set_new(out_json, "url", json_string(u.norm));
		json_object_set_new(out_json, "ca_sha256", json_string(fp));
		json_object_set_new(out_json, "pinned", json_string(path));
		char *s = json_dumps(out_json, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (!s) {
			cli_fail(what, "printing failed: out of memory");
			goto out;
		}
		printf("%s\n", s);
		free(s);
	} else {
		print_human(&u, verdict, ca, fp, path, ca_out);
	}
	status = CLI_OK;
out:
	cf_buf_free(&pin_buf);
	free(pin_text);
	json_decref(pin);
	json_decref(out_json);
	BIO_free(pem);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	json_decref(policy);
	for (size_t i = 0; i < l.n; i++)
		cf_buf_free(&l.bufs[i]);
	return status;
}

int cmd_attest(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(attest_usage, stdout);
			return CLI_OK;
		}
	}
	if (argc < 2) {
		fputs(attest_usage, stderr);
		return CLI_USAGE;
	}
	return attest(argc, argv);
}
