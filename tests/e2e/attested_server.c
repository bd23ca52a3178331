/*
 * attested_server: a stand-in for coffer-kms's TLS front, for
 * tests/e2e/attest.sh. It makes the KMS CA (kms/ca.c) with evidence from
 * the soft TEE, so it only starts under coffer-launch, issues itself a
 * leaf for localhost and 127.0.0.1, and answers every TLS 1.3 connection
 * on 127.0.0.1:PORT with "HTTP/1.1 200" and "hello". It also issues
 * certificates for CSRs given on the command line, so that the test can
 * inspect them with stock openssl.
 *
 *   attested_server PORT READY_FILE [--ca-key FILE] [--issue CSR OUT]...
 *   attested_server --selftest
 *
 * PORT 0 picks a free port; the port is written to READY_FILE once the
 * server listens. --ca-key keeps the CA key in FILE (loaded if present):
 * the real KMS seals it, this test keeps it in a 0600 file. --issue
 * writes OUT (PEM), OUT.keyhash (hex SHA-256 of the CSR's key) or
 * OUT.err (the error's name). --selftest checks what kms/ca.c refuses
 * (bad keys, names, lifetimes, misuse) with stand-in evidence, needs no
 * TEE and serves nothing: ca.c has no unit test program of its own.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "ca.h"
#include "coffer/buf.h"
#include "coffer/enc.h"
#include "coffer/io.h"
#include "coffer/tee.h"

#define MAX_ISSUE 8
#define CSR_MAX (64u * 1024u)

static const char response[] = "HTTP/1.1 200 OK\r\n"
			       "Content-Type: text/plain\r\n"
			       "Content-Length: 6\r\n"
			       "Connection: close\r\n"
			       "\r\n"
			       "hello\n";

static const char *const names[] = { "localhost", "127.0.0.1" };

static int fail(const char *what, const char *why)
{
	fprintf(stderr, "attested_server: %s: %s\n", what, why);
	return 1;
}

static cf_err read_file(const char *path, size_t max, cf_buf *b)
{
	cf_err rc;
	FILE *f = fopen(path, "rbe");
	if (!f)
		return errno == ENOENT ? CF_ERR_NOT_FOUND : CF_ERR_IO;
	uint8_t chunk[4096];
	size_t n;
	rc = CF_OK;
	while (rc == CF_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc = cf_buf_append(b, chunk, n);
	if (rc == CF_OK && ferror(f))
		rc = CF_ERR_IO;
	cf_wipe(chunk, sizeof(chunk)); /* it may have held the CA key */
	fclose(f);
	return rc;
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

/* The CA key from path if it exists, else a new one saved there. */
static cf_err open_ca(const char *path, kms_ca **ca)
{
	cf_buf der;
	cf_buf_init(&der, 4096, true);
	cf_err rc = path ? read_file(path, der.max, &der) : CF_ERR_NOT_FOUND;
	if (rc == CF_OK) {
		rc = kms_ca_load(der.data, der.len, ca);
	} else if (rc == CF_ERR_NOT_FOUND) {
		rc = kms_ca_generate(ca);
		if (rc == CF_OK && path && (rc = kms_ca_export_key(*ca, &der)) == CF_OK)
			rc = write_file(path, der.data, der.len, 0600);
		if (rc != CF_OK) {
			kms_ca_free(*ca);
			*ca = NULL;
		}
	}
	cf_buf_free(&der);
	return rc;
}

static cf_err soft_evidence(void *arg, const uint8_t rd[CF_REPORT_DATA_LEN], cf_buf *out)
{
	const cf_tee_provider *tee = arg;
	return tee->evidence(rd, out);
}

static cf_err issue(kms_ca *ca, const char *csr_path, const char *out_path)
{
	cf_err rc;
	cf_buf csr;
	uint8_t h[32];
	char hex[65], side[4096];
	X509 *cert = NULL;
	BIO *b = NULL;
	char *p;

	cf_buf_init(&csr, CSR_MAX, false);
	if ((rc = read_file(csr_path, csr.max, &csr)) != CF_OK)
		goto out;
	if ((rc = kms_ca_csr_key_hash(csr.data, csr.len, h)) != CF_OK)
		goto out;
	cf_hex_encode(h, sizeof(h), hex);
	snprintf(side, sizeof(side), "%s.keyhash", out_path);
	if ((rc = write_file(side, hex, 64, 0644)) != CF_OK)
		goto out;
	if ((rc = kms_ca_issue_csr(ca, csr.data, csr.len, "enclave-test", names, 2, time(NULL), 0,
				   &cert)) != CF_OK)
		goto out;
	long n;
	if (!(b = BIO_new(BIO_s_mem())) || PEM_write_bio_X509(b, cert) != 1 ||
	    (n = BIO_get_mem_data(b, &p)) <= 0) {
		rc = CF_ERR_CRYPTO;
		goto out;
	}
	rc = write_file(out_path, p, (size_t)n, 0644);
out:
	if (rc != CF_OK) {
		snprintf(side, sizeof(side), "%s.err", out_path);
		const char *name = cf_errname(rc);
		if (write_file(side, name, strlen(name), 0644) != CF_OK)
			fprintf(stderr, "attested_server: cannot write %s\n", side);
	}
	BIO_free(b);
	X509_free(cert);
	cf_buf_free(&csr);
	return rc;
}

/* --- --selftest --- */

static int st_failed;

#define EXPECT(cond)                                                                    \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "attested_server: selftest: line %d: %s\n", __LINE__, \
				#cond);                                                 \
			st_failed = 1;                                                  \
		}                                                                       \
	} while (0)

static cf_err fake_evidence(void *arg, const uint8_t rd[CF_REPORT_DATA_LEN], cf_buf *out)
{
	cf_err *fail_with = arg;
	if (fail_with && *fail_with != CF_OK)
		return *fail_with;
	return cf_buf_append(out, rd, CF_REPORT_DATA_LEN);
}

/* PKCS#8 DER of key into b. */
static void pkcs8_of(EVP_PKEY *key, cf_buf *b)
{
	PKCS8_PRIV_KEY_INFO *p8 = key ? EVP_PKEY2PKCS8(key) : NULL;
	unsigned char *der = NULL;
	int n = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &der) : -1;
	EXPECT(n > 0 && cf_buf_append(b, der, (size_t)n) == CF_OK);
	if (der)
		OPENSSL_clear_free(der, (size_t)n);
	PKCS8_PRIV_KEY_INFO_free(p8);
}

static cf_err issue_one(kms_ca *ca, const char *name, time_t now, long lifetime)
{
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	const char *one[1] = { name };
	cf_err rc = kms_ca_issue_server(ca, one, 1, now, lifetime, &k, &x);
	EXPECT(rc == CF_OK ? k && x : !k && !x);
	EVP_PKEY_free(k);
	X509_free(x);
	return rc;
}

static int selftest(void)
{
	kms_ca *ca = NULL, *again = NULL, *other = NULL;
	cf_buf der, plain, bad;
	EVP_PKEY *k = NULL, *k2 = NULL;
	X509 *x = NULL, *x2 = NULL;
	SSL_CTX *ctx = NULL;
	time_t now = time(NULL);
	cf_err fail_with = CF_ERR_IO;
	char long_name[300];

	cf_buf_init(&der, 4096, true);
	cf_buf_init(&plain, 4096, false);
	cf_buf_init(&bad, 4096, true);
	/* The key: exported only into secret buffers, and loaded back exactly. */
	EXPECT(kms_ca_generate(&ca) == CF_OK);
	EXPECT(kms_ca_export_key(ca, &plain) == CF_ERR_ARG && plain.len == 0);
	EXPECT(kms_ca_export_key(ca, &der) == CF_OK);
	EXPECT(kms_ca_load(der.data, der.len, &again) == CF_OK);
	EXPECT(cf_buf_append(&bad, der.data, der.len) == CF_OK && cf_buf_append_byte(&bad, 0) == CF_OK);
	EXPECT(kms_ca_load(bad.data, bad.len, &other) == CF_ERR_PARSE && !other);
	EXPECT(kms_ca_load(der.data, der.len - 1, &other) == CF_ERR_PARSE && !other);
	EXPECT(kms_ca_load(der.data, 0, &other) == CF_ERR_ARG);
	cf_buf_reset(&bad);
	EVP_PKEY *p384 = EVP_EC_gen("P-384");
	pkcs8_of(p384, &bad);
	EVP_PKEY_free(p384);
	EXPECT(kms_ca_load(bad.data, bad.len, &other) == CF_ERR_UNSUPPORTED && !other);
	cf_buf_reset(&bad);
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	pkcs8_of(ed, &bad);
	EVP_PKEY_free(ed);
	EXPECT(kms_ca_load(bad.data, bad.len, &other) == CF_ERR_UNSUPPORTED && !other);

	/* Nothing is issued before the CA certifies itself. */
	EXPECT(kms_ca_cert(ca) == NULL);
	EXPECT(issue_one(ca, "localhost", now, 0) == CF_ERR_ARG);
	EXPECT(kms_ca_certify_self(ca, CF_TEE_NONE, fake_evidence, NULL, now) == CF_ERR_UNSUPPORTED);
	EXPECT(kms_ca_certify_self(ca, CF_TEE_SOFT, fake_evidence, &fail_with, now) == CF_ERR_IO);
	EXPECT(kms_ca_cert(ca) == NULL);
	EXPECT(kms_ca_certify_self(ca, CF_TEE_SOFT, fake_evidence, NULL, now) == CF_OK);
	EXPECT(kms_ca_certify_self(again, CF_TEE_SOFT, fake_evidence, NULL, now) == CF_OK);
	/* Same key, same subject: a reloaded CA is the same CA. */
	EXPECT(EVP_PKEY_eq(X509_get0_pubkey(kms_ca_cert(ca)), X509_get0_pubkey(kms_ca_cert(again))) == 1);
	EXPECT(X509_NAME_cmp(X509_get_subject_name(kms_ca_cert(ca)),
			     X509_get_subject_name(kms_ca_cert(again))) == 0);

	/* Names: DNS names and addresses only, as given. */
	static const char *const good[] = { "localhost", "127.0.0.1", "::1", "kms.example.com",
					    "a-b.c0", "10.0.0.1" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		EXPECT(issue_one(ca, good[i], now, 0) == CF_OK);
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = 0;
	static const char *const bad_names[] = { "", "a,b", "DNS:x", "-x.com", "x-.com",
						 "*.example.com", "1.2.3", "a..b", "x.", ".x",
						 "a b", "x\n", "300.1.1.1" };
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
		EXPECT(issue_one(ca, bad_names[i], now, 0) == CF_ERR_ARG);
	EXPECT(issue_one(ca, long_name, now, 0) == CF_ERR_ARG);
	long_name[64] = 0; /* one label of 64 */
	EXPECT(issue_one(ca, long_name, now, 0) == CF_ERR_ARG);
	long_name[63] = 0;
	EXPECT(issue_one(ca, long_name, now, 0) == CF_OK);
	const char *many[KMS_CA_MAX_NAMES + 1];
	for (size_t i = 0; i <= KMS_CA_MAX_NAMES; i++)
		many[i] = "localhost";
	EXPECT(kms_ca_issue_server(ca, many, 0, now, 0, &k, &x) == CF_ERR_ARG);
	EXPECT(kms_ca_issue_server(ca, many, KMS_CA_MAX_NAMES + 1, now, 0, &k, &x) == CF_ERR_ARG);

	/* Lifetimes: bounded, defaulted, and never past the CA's own end. */
	EXPECT(issue_one(ca, "localhost", now, -1) == CF_ERR_ARG);
	EXPECT(issue_one(ca, "localhost", now, KMS_CA_MAX_LEAF_LIFETIME + 1) == CF_ERR_ARG);
	EXPECT(kms_ca_issue_server(ca, good, 2, now, 0, &k, &x) == CF_OK);
	EXPECT(x && ASN1_TIME_cmp_time_t(X509_get0_notAfter(x), now + KMS_CA_SERVER_LIFETIME) == 0);
	time_t late = now + KMS_CA_LIFETIME - 3600;
	EXPECT(kms_ca_issue_server(ca, good, 2, late, KMS_CA_MAX_LEAF_LIFETIME, &k2, &x2) == CF_OK);
	EXPECT(x2 && ASN1_TIME_compare(X509_get0_notAfter(x2),
				       X509_get0_notAfter(kms_ca_cert(ca))) == 0);
	EXPECT(issue_one(ca, "localhost", now + KMS_CA_LIFETIME, 0) == CF_ERR_ARG);

	/* CSRs: the caller's CN must be sane; size is bounded before parsing. */
	static const uint8_t junk[] = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
				      "-----END CERTIFICATE REQUEST-----\n";
	X509 *cx = NULL;
	uint8_t h[32];
	EXPECT(kms_ca_issue_csr(ca, junk, sizeof(junk) - 1, "", good, 1, now, 0, &cx) == CF_ERR_ARG);
	EXPECT(kms_ca_issue_csr(ca, junk, sizeof(junk) - 1, "a\nb", good, 1, now, 0, &cx) ==
	       CF_ERR_ARG);
	EXPECT(kms_ca_issue_csr(ca, junk, sizeof(junk) - 1, "ok", good, 1, now, 0, &cx) ==
	       CF_ERR_PARSE);
	EXPECT(kms_ca_csr_key_hash(junk, KMS_CA_MAX_CSR + 1, h) == CF_ERR_TOO_BIG);
	EXPECT(kms_ca_csr_key_hash(junk, 0, h) == CF_ERR_ARG);
	EXPECT(!cx);

	/* TLS: the leaf must be this CA's. */
	EXPECT(kms_ca_ssl_ctx(ca, k, x, &ctx) == CF_OK && ctx);
	SSL_CTX_free(ctx);
	ctx = NULL;
	EXPECT(kms_ca_generate(&other) == CF_OK);
	EXPECT(kms_ca_certify_self(other, CF_TEE_SOFT, fake_evidence, NULL, now) == CF_OK);
	EXPECT(kms_ca_ssl_ctx(other, k, x, &ctx) == CF_ERR_ARG && !ctx);

	EVP_PKEY_free(k);
	X509_free(x);
	EVP_PKEY_free(k2);
	X509_free(x2);
	kms_ca_free(ca);
	kms_ca_free(again);
	kms_ca_free(other);
	cf_buf_free(&der);
	cf_buf_free(&plain);
	cf_buf_free(&bad);
	ERR_clear_error();
	if (!st_failed)
		printf("selftest: ok\n");
	return st_failed;
}

/* One request, one answer; a client that only attests and leaves is fine too. */
static void serve(SSL_CTX *ctx, int fd)
{
	char req[8192];
	size_t got = 0;
	SSL *ssl = SSL_new(ctx);
	if (!ssl || SSL_set_fd(ssl, fd) != 1)
		goto out;
	if (SSL_accept(ssl) != 1) {
		unsigned long e = ERR_peek_last_error();
		fprintf(stderr, "attested_server: handshake failed: %s\n",
			e ? ERR_reason_error_string(e) : "connection closed");
		goto out;
	}
	while (got < sizeof(req) - 1) {
		int n = SSL_read(ssl, req + got, (int)(sizeof(req) - 1 - got));
		if (n <= 0)
			goto out;
		got += (size_t)n;
		req[got] = 0;
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	if (SSL_write(ssl, response, (int)strlen(response)) > 0)
		SSL_shutdown(ssl);
out:
	ERR_clear_error();
	SSL_free(ssl);
	close(fd);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ca-key", required_argument, NULL, 'k' },
		{ "issue", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ca_key = NULL, *csrs[MAX_ISSUE], *outs[MAX_ISSUE];
	size_t nissue = 0;
	kms_ca *ca = NULL;
	EVP_PKEY *key = NULL;
	X509 *leaf = NULL;
	SSL_CTX *ctx = NULL;
	int c, lfd = -1, status = 1;
	cf_err rc;

	if (argc == 2 && strcmp(argv[1], "--selftest") == 0)
		return selftest();
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'k') {
			ca_key = optarg;
		} else if (c == 'i' && optind < argc && nissue < MAX_ISSUE) {
			csrs[nissue] = optarg;
			outs[nissue++] = argv[optind++];
		} else {
			fprintf(stderr, "usage: attested_server PORT READY_FILE [--ca-key FILE] "
					"[--issue CSR OUT]...\n");
			return 2;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "usage: attested_server PORT READY_FILE [--ca-key FILE] "
				"[--issue CSR OUT]...\n");
		return 2;
	}
	long port = strtol(argv[optind], NULL, 10);
	const char *ready = argv[optind + 1];
	if (port < 0 || port > 65535)
		return fail("bad port", argv[optind]);
	signal(SIGPIPE, SIG_IGN); /* a client that hangs up is not our death */

	/* Evidence or nothing: an unattested CA is worthless, so do not start. */
	const cf_tee_provider *tee = cf_tee_provider_of(CF_TEE_SOFT);
	if (tee->detect() != CF_OK)
		return fail("no TEE", "not running under coffer-launch (no soft TEE socket)");
	if ((rc = open_ca(ca_key, &ca)) != CF_OK) {
		fail("opening the CA key failed", cf_strerror(rc));
		goto out;
	}
	if ((rc = kms_ca_certify_self(ca, CF_TEE_SOFT, soft_evidence, (void *)tee, time(NULL))) !=
	    CF_OK) {
		fail("getting TEE evidence for the CA failed", cf_strerror(rc));
		goto out;
	}
	if ((rc = kms_ca_issue_server(ca, names, 2, time(NULL), 0, &key, &leaf)) != CF_OK ||
	    (rc = kms_ca_ssl_ctx(ca, key, leaf, &ctx)) != CF_OK) {
		fail("issuing the server certificate failed", cf_strerror(rc));
		goto out;
	}
	for (size_t i = 0; i < nissue; i++) {
		if (issue(ca, csrs[i], outs[i]) != CF_OK)
			fprintf(stderr, "attested_server: refused to certify %s\n", csrs[i]);
	}

	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	int one = 1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 16) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0) {
		fail("listening failed", strerror(errno));
		goto out;
	}
	char portstr[8];
	int plen = snprintf(portstr, sizeof(portstr), "%u\n", ntohs(sa.sin_port));
	if ((rc = write_file(ready, portstr, (size_t)plen, 0644)) != CF_OK) {
		fail("writing the ready file failed", cf_strerror(rc));
		goto out;
	}
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fail("accept failed", strerror(errno));
			goto out;
		}
		/* A silent client must not stall everyone else. */
		struct timeval tv = { .tv_sec = 5 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		serve(ctx, fd);
	}
out:
	if (lfd >= 0)
		close(lfd);
	SSL_CTX_free(ctx);
	X509_free(leaf);
	EVP_PKEY_free(key);
	kms_ca_free(ca);
	return status;
}
