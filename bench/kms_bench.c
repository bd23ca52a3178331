/*
 * kms_bench: release latency and throughput of a running coffer-kms, and
 * the cost of an attested TLS handshake against a plain one.
 *
 *   kms_bench --kms URL --cacert CA.pem --platform-dir DIR --measurement HEX
 *             --task TASK.json --approvals FILE [--seconds N] [--threads N]
 *
 * The load generator plays many enclaves: it signs soft TEE reports with
 * the platform key in DIR exactly as coffer-launch does (reading it needs
 * root, as the launcher does), so that the launcher's signing is not what
 * is measured. Each release is complete on the KMS's side: nonce
 * consumed, evidence verified, report_data, measurement, approvals,
 * recipients, keys unwrapped and wrapped, audit entry fsynced.
 *
 * Output: key=value lines for bench/kms.sh.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include "coffer/age.h"
#include "coffer/enc.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"
#include "coffer/ratls.h"
#include "coffer/soft.h"

#define BATCH 400

static const char *url, *cacert, *pdir, *meas_hex;
static json_t *task, *approvals;
static uint8_t measurement[48], digest[32];
static cf_soft_platform platform;
static pthread_mutex_t sign_lock = PTHREAD_MUTEX_INITIALIZER;
/* Every connection prepares its batch, then all fire together. */
static pthread_barrier_t fire;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "kms_bench: %s\n", what);
	exit(1);
}

/* A release request ready to send: nonce fetched, evidence signed. */
static json_t *prepare(cf_kms_client *c)
{
	json_t *reply = NULL, *empty = json_object();
	long status = 0;
	if (cf_kms_post(c, "/v1/nonce", empty, &reply, &status) != CF_OK || status != 200) {
		fprintf(stderr, "kms_bench: %s\n", cf_kms_client_error(c)->message);
		die("nonce request failed");
	}
	json_decref(empty);
	const char *nh = json_string_value(json_object_get(reply, "nonce"));
	uint8_t nonce[32], rd[64];
	size_t got;
	if (!nh || cf_hex_decode(nh, 64, nonce, 32, &got) != CF_OK)
		die("bad nonce");
	cf_age_x25519_key wrap;
	char wrap_rcpt[CF_AGE_RECIPIENT_STRLEN + 1];
	if (cf_age_keygen(&wrap) != CF_OK || cf_age_recipient_format(wrap.pub, wrap_rcpt) != CF_OK ||
	    cf_release_report_data(nonce, digest, wrap.pub, rd) != CF_OK)
		die("key");
	cf_age_key_wipe(&wrap);
	cf_soft_report r = { .version = CF_SOFT_REPORT_VERSION, .launch_time = (uint64_t)time(NULL) };
	memcpy(r.measurement, measurement, 48);
	memcpy(r.report_data, rd, 64);
	memcpy(r.platform_id, platform.platform_id, 32);
	snprintf(r.launcher_version, sizeof(r.launcher_version), "bench");
	uint8_t ev[CF_SOFT_REPORT_LEN];
	char ev64[CF_SOFT_REPORT_LEN * 2];
	pthread_mutex_lock(&sign_lock);
	cf_err rc = cf_soft_report_sign(platform.key, &r, ev);
	pthread_mutex_unlock(&sign_lock);
	if (rc != CF_OK)
		die("signing a report");
	cf_b64_encode(ev, sizeof(ev), true, ev64);
	json_t *req = json_pack("{s:s,s:s,s:s,s:O,s:O,s:s}", "nonce", nh, "tee", "soft", "evidence",
				ev64, "task", task, "approvals", approvals, "wrap_recipient", wrap_rcpt);
	json_decref(reply);
	return req;
}

static void release_once(cf_kms_client *c, json_t *req)
{
	json_t *reply = NULL;
	long status = 0;
	if (cf_kms_post(c, "/v1/release", req, &reply, &status) != CF_OK || status != 200) {
		char *s = reply ? json_dumps(reply, 0) : NULL;
		fprintf(stderr, "kms_bench: release refused (%ld): %s\n", status, s ? s : "?");
		exit(1);
	}
	json_decref(reply);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

typedef struct worker {
	pthread_t t;
	int done;
	double start, end;
} worker;

static void *throughput_worker(void *arg)
{
	worker *w = arg;
	cf_kms_client *c = NULL;
	json_t **reqs = calloc(BATCH, sizeof(*reqs));
	if (!reqs || cf_kms_client_open(url, cacert, &c) != CF_OK)
		die("client");
	for (int i = 0; i < BATCH; i++)
		reqs[i] = prepare(c);
	pthread_barrier_wait(&fire);
	w->start = now_s();
	for (int i = 0; i < BATCH; i++) {
		release_once(c, reqs[i]);
		json_decref(reqs[i]);
		w->done++;
	}
	w->end = now_s();
	free(reqs);
	cf_kms_client_free(c);
	return NULL;
}

/* One TLS connection: handshake (verified as configured), then close. */
static double handshake(SSL_CTX *ctx, const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	if (getaddrinfo(host, port, &hints, &ai) != 0)
		die("resolve");
	double t0 = now_s();
	int fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
		die("connect");
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, host);
	if (cf_ratls_ssl_set_host(ssl, host) != CF_OK)
		die("host");
	if (SSL_connect(ssl) != 1)
		die("handshake failed");
	double t = now_s() - t0;
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
	freeaddrinfo(ai);
	return t;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kms", required_argument, NULL, 'k' },      { "cacert", required_argument, NULL, 'c' },
		{ "platform-dir", required_argument, NULL, 'p' },
		{ "measurement", required_argument, NULL, 'm' },
		{ "task", required_argument, NULL, 't' },     { "approvals", required_argument, NULL, 'a' },
		{ "seconds", required_argument, NULL, 's' },  { "threads", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *task_path = NULL, *appr_path = NULL;
	int seconds = 5, nthreads = 2, c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': url = optarg; break;
		case 'c': cacert = optarg; break;
		case 'p': pdir = optarg; break;
		case 'm': meas_hex = optarg; break;
		case 't': task_path = optarg; break;
		case 'a': appr_path = optarg; break;
		case 's': seconds = atoi(optarg); break;
		case 'n': nthreads = atoi(optarg); break;
		default: return 2;
		}
	}
	if (!url || !cacert || !pdir || !meas_hex || !task_path || !appr_path || nthreads < 1 ||
	    nthreads > 16)
		die("usage: see the comment at the top of bench/kms_bench.c");
	size_t got;
	if (strlen(meas_hex) != 96 || cf_hex_decode(meas_hex, 96, measurement, 48, &got) != CF_OK)
		die("--measurement wants 96 hex digits");
	if (cf_soft_platform_load(pdir, &platform) != CF_OK)
		die("cannot load the platform key (root only)");
	task = json_load_file(task_path, 0, NULL);
	approvals = json_load_file(appr_path, 0, NULL);
	if (!task || !json_is_array(approvals) || cf_task_digest(task, digest) != CF_OK)
		die("cannot read the task or approvals");

	/* Latency: one connection, one release at a time. */
	cf_kms_client *cl = NULL;
	if (cf_kms_client_open(url, cacert, &cl) != CF_OK)
		die("client");
	size_t cap = 100000, n = 0;
	double *lat = malloc(cap * sizeof(*lat)), *full = malloc(cap * sizeof(*full));
	double until = now_s() + seconds;
	while (now_s() < until && n < cap) {
		double t0 = now_s();
		json_t *req = prepare(cl);
		double t1 = now_s();
		release_once(cl, req);
		double t2 = now_s();
		json_decref(req);
		lat[n] = t2 - t1;
		full[n] = t2 - t0;
		n++;
	}
	qsort(lat, n, sizeof(*lat), cmp_double);
	qsort(full, n, sizeof(*full), cmp_double);
	printf("latency_n=%zu\nrelease_p50_ms=%.3f\nrelease_p99_ms=%.3f\n", n, lat[n / 2] * 1e3,
	       lat[n * 99 / 100] * 1e3);
	printf("cycle_p50_ms=%.3f\ncycle_p99_ms=%.3f\n", full[n / 2] * 1e3, full[n * 99 / 100] * 1e3);
	free(lat);
	free(full);
	cf_kms_client_free(cl);

	/* Throughput: nthreads connections, each firing a prepared batch. */
	worker *w = calloc((size_t)nthreads, sizeof(*w));
	pthread_barrier_init(&fire, NULL, (unsigned)nthreads);
	for (int i = 0; i < nthreads; i++)
		pthread_create(&w[i].t, NULL, throughput_worker, &w[i]);
	double first = 1e300, last = 0;
	int total = 0;
	for (int i = 0; i < nthreads; i++) {
		pthread_join(w[i].t, NULL);
		first = w[i].start < first ? w[i].start : first;
		last = w[i].end > last ? w[i].end : last;
		total += w[i].done;
	}
	printf("throughput_threads=%d\nreleases=%d\nreleases_per_s=%.0f\n", nthreads, total,
	       total / (last - first));
	free(w);

	/* Handshakes: attested (evidence in the CA checked) vs pinned CA. */
	char host[256], port[16];
	if (sscanf(url, "https://%255[^:]:%15[0-9]", host, port) != 2)
		die("url must be https://HOST:PORT");
	SSL_CTX *plain = SSL_CTX_new(TLS_client_method()), *att = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(plain, TLS1_3_VERSION);
	SSL_CTX_set_min_proto_version(att, TLS1_3_VERSION);
	SSL_CTX_set_verify(plain, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(plain, cacert, NULL) != 1)
		die("cacert");
	cf_buf pcert;
	cf_buf_init(&pcert, 1 << 16, false);
	char certpath[4096];
	snprintf(certpath, sizeof(certpath), "%s/cert.pem", pdir);
	if (cf_soft_platform_cert(pdir, &pcert) != CF_OK)
		die("platform cert");
	cf_ratls_verifier ver = { 0 };
	ver.collateral.platform_cert = (cf_blob){ pcert.data, pcert.len };
	if (cf_ratls_ssl_ctx_setup_ca(att, &ver) != CF_OK)
		die("ratls setup");
	int hs = 300;
	double tp = 0, ta = 0;
	for (int i = 0; i < hs; i++) {
		tp += handshake(plain, host, port);
		ta += handshake(att, host, port);
	}
	printf("handshake_plain_ms=%.3f\nhandshake_attested_ms=%.3f\n", tp / hs * 1e3, ta / hs * 1e3);
	SSL_CTX_free(plain);
	SSL_CTX_free(att);
	cf_buf_free(&pcert);
	cf_soft_platform_free(&platform);
	json_decref(task);
	json_decref(approvals);
	return 0;
}
