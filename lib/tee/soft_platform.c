/*
 * The soft TEE platform: the host's report-signing key and certificate,
 * and the host secret that sealing keys derive from. Only coffer-launch
 * (root) reads the secret files; they are refused if others can read them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "coffer/buf.h"
#include "coffer/crypto.h"
#include "coffer/soft.h"

#define SEAL_INFO "coffer-soft-seal-v1"

static cf_err path_join(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= cap ? CF_ERR_TOO_BIG : CF_OK;
}

/* Creates the missing parents of path (0755), as `mkdir -p $(dirname path)`. */
static cf_err mkdir_parents(const char *path)
{
	char tmp[4096];
	int n = snprintf(tmp, sizeof(tmp), "%s", path);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return CF_ERR_TOO_BIG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return CF_ERR_IO;
		*p = '/';
	}
	return CF_OK;
}

/* Writes a new file with O_EXCL and the given mode. */
static cf_err write_new(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return CF_ERR_IO;
	cf_err rc = CF_OK;
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = CF_ERR_IO;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (rc == CF_OK && (fchmod(fd, mode) != 0 || fsync(fd) != 0))
		rc = CF_ERR_IO;
	close(fd);
	if (rc != CF_OK)
		unlink(path);
	return rc;
}

static cf_err self_signed_cert(EVP_PKEY *key, const char *hostname, X509 **out)
{
	X509 *x = X509_new();
	X509_NAME *name = NULL;
	char cn[65]; /* X.520 ub-common-name: OpenSSL refuses a longer CN */
	uint8_t serial[16];
	cf_err rc = CF_ERR_CRYPTO;
	if (!x)
		return CF_ERR_NOMEM;
	/* Cut to 64 characters, and printable ASCII only: the CN is descriptive. */
	snprintf(cn, sizeof(cn), "coffer soft TEE platform %s", hostname ? hostname : "");
	for (char *q = cn; *q; q++) {
		if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
			*q = '?';
	}
	if (cf_random(serial, sizeof(serial)) != CF_OK)
		goto out;
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))) {
		BN_free(bn);
		goto out;
	}
	BN_free(bn);
	name = X509_get_subject_name(x);
	if (X509_set_version(x, 2) != 1 ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"coffer", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) ||
	    X509_set_issuer_name(x, name) != 1 || !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600) ||
	    X509_set_pubkey(x, key) != 1)
		goto out;
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	static const char *const exts[][2] = {
		{ "basicConstraints", "critical,CA:TRUE,pathlen:0" },
		{ "keyUsage", "critical,digitalSignature,keyCertSign" },
		{ "subjectKeyIdentifier", "hash" },
	};
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		X509_EXTENSION *e = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
		if (!e || X509_add_ext(x, e, -1) != 1) {
			X509_EXTENSION_free(e);
			goto out;
		}
		X509_EXTENSION_free(e);
	}
	if (X509_sign(x, key, EVP_sha384()) <= 0)
		goto out;
	*out = x;
	x = NULL;
	rc = CF_OK;
out:
	X509_free(x);
	return rc;
}

static cf_err bio_bytes(BIO *bio, cf_buf *out)
{
	char *p;
	long n = BIO_get_mem_data(bio, &p);
	return n > 0 ? cf_buf_append(out, p, (size_t)n) : CF_ERR_CRYPTO;
}

cf_err cf_soft_platform_init(const char *dir, const char *hostname, bool force)
{
	char kpath[4096], cpath[4096], spath[4096];
	cf_err rc;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	BIO *kbio = NULL, *cbio = NULL;
	uint8_t secret[32];
	cf_buf kpem, cpem;
	cf_buf_init(&kpem, 1 << 16, true);
	cf_buf_init(&cpem, 1 << 16, false);

	if ((rc = path_join(kpath, sizeof(kpath), dir, "key.pem")) != CF_OK ||
	    (rc = path_join(cpath, sizeof(cpath), dir, "cert.pem")) != CF_OK ||
	    (rc = path_join(spath, sizeof(spath), dir, "seal.secret")) != CF_OK)
		return rc;
	if (mkdir_parents(dir) != CF_OK || (mkdir(dir, 0700) != 0 && errno != EEXIST))
		return CF_ERR_IO;
	if (!force && (access(kpath, F_OK) == 0 || access(spath, F_OK) == 0))
		return CF_ERR_ARG;
	if (force) {
		unlink(kpath);
		unlink(cpath);
		unlink(spath);
	}
	rc = CF_ERR_CRYPTO;
	key = EVP_EC_gen("P-384");
	if (!key)
		goto out;
	if ((rc = self_signed_cert(key, hostname, &cert)) != CF_OK)
		goto out;
	rc = CF_ERR_CRYPTO;
	kbio = BIO_new(BIO_s_secmem());
	cbio = BIO_new(BIO_s_mem());
	if (!kbio || !cbio || PEM_write_bio_PrivateKey(kbio, key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_X509(cbio, cert) != 1)
		goto out;
	if ((rc = bio_bytes(kbio, &kpem)) != CF_OK || (rc = bio_bytes(cbio, &cpem)) != CF_OK)
		goto out;
	if ((rc = cf_random(secret, sizeof(secret))) != CF_OK)
		goto out;
	if ((rc = write_new(spath, secret, sizeof(secret), 0600)) != CF_OK)
		goto out;
	if ((rc = write_new(kpath, kpem.data, kpem.len, 0600)) != CF_OK) {
		unlink(spath);
		goto out;
	}
	if ((rc = write_new(cpath, cpem.data, cpem.len, 0644)) != CF_OK) {
		unlink(spath);
		unlink(kpath);
		goto out;
	}
out:
	cf_wipe(secret, sizeof(secret));
	cf_buf_free(&kpem);
	cf_buf_free(&cpem);
	BIO_free(kbio);
	BIO_free(cbio);
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

/* Reads a whole small file, refusing group/world access when secret. */
static cf_err read_small(const char *path, bool secret, cf_buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? CF_ERR_NOT_FOUND : CF_ERR_IO;
	struct stat st;
	cf_err rc = CF_OK;
	if (fstat(fd, &st) != 0) {
		rc = CF_ERR_IO;
	} else if (secret && (st.st_mode & 077)) {
		rc = CF_ERR_ARG; /* a secret others can read is not a secret */
	} else {
		uint8_t chunk[4096];
		for (;;) {
			ssize_t n = read(fd, chunk, sizeof(chunk));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				rc = CF_ERR_IO;
				break;
			}
			if (n == 0 || (rc = cf_buf_append(out, chunk, (size_t)n)) != CF_OK)
				break;
		}
		cf_wipe(chunk, sizeof(chunk));
	}
	close(fd);
	return rc;
}

cf_err cf_soft_platform_cert(const char *dir, cf_buf *out)
{
	char cpath[4096];
	cf_err rc = path_join(cpath, sizeof(cpath), dir, "cert.pem");
	return rc == CF_OK ? read_small(cpath, false, out) : rc;
}

cf_err cf_soft_platform_load(const char *dir, cf_soft_platform *p)
{
	char kpath[4096], spath[4096];
	cf_buf kpem, secret, cpem;
	cf_err rc;
	memset(p, 0, sizeof(*p));
	cf_buf_init(&kpem, 1 << 16, true);
	cf_buf_init(&secret, 64, true);
	cf_buf_init(&cpem, 1 << 16, false);
	if ((rc = path_join(kpath, sizeof(kpath), dir, "key.pem")) != CF_OK ||
	    (rc = path_join(spath, sizeof(spath), dir, "seal.secret")) != CF_OK)
		goto out;
	if ((rc = read_small(kpath, true, &kpem)) != CF_OK ||
	    (rc = read_small(spath, true, &secret)) != CF_OK ||
	    (rc = cf_soft_platform_cert(dir, &cpem)) != CF_OK)
		goto out;
	if (secret.len != sizeof(p->seal_secret)) {
		rc = CF_ERR_PARSE;
		goto out;
	}
	memcpy(p->seal_secret, secret.data, secret.len);
	BIO *bio = BIO_new_mem_buf(kpem.data, (int)kpem.len);
	p->key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (!p->key || EVP_PKEY_get_base_id(p->key) != EVP_PKEY_EC ||
	    EVP_PKEY_get_bits(p->key) != 384) {
		rc = CF_ERR_PARSE;
		goto out;
	}
	/* The id must name the certificate's key: a swapped key.pem is caught here. */
	uint8_t cert_id[32], key_id[32];
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(p->key, &der);
	rc = n > 0 ? cf_hash(CF_SHA256, der, (size_t)n, key_id) : CF_ERR_CRYPTO;
	OPENSSL_free(der);
	if (rc == CF_OK)
		rc = cf_soft_cert_platform_id((const char *)cpem.data, cpem.len, cert_id);
	if (rc == CF_OK && memcmp(cert_id, key_id, 32) != 0)
		rc = CF_ERR_AUTH;
	if (rc == CF_OK)
		memcpy(p->platform_id, key_id, 32);
out:
	cf_buf_free(&kpem);
	cf_buf_free(&secret);
	cf_buf_free(&cpem);
	if (rc != CF_OK)
		cf_soft_platform_free(p);
	return rc;
}

void cf_soft_platform_free(cf_soft_platform *p)
{
	EVP_PKEY_free(p->key);
	p->key = NULL;
	cf_wipe(p->seal_secret, sizeof(p->seal_secret));
}

cf_err cf_soft_seal_key(const uint8_t seal_secret[static 32], const uint8_t measurement[static 48],
			const char *label, uint8_t key[static CF_SEAL_KEY_LEN])
{
	uint8_t info[sizeof(SEAL_INFO) - 1 + CF_SOFT_MAX_LABEL];
	size_t llen = strlen(label);
	if (llen == 0 || llen > CF_SOFT_MAX_LABEL)
		return CF_ERR_ARG;
	memcpy(info, SEAL_INFO, sizeof(SEAL_INFO) - 1);
	memcpy(info + sizeof(SEAL_INFO) - 1, label, llen);
	return cf_hkdf_sha256(seal_secret, 32, measurement, 48, info, sizeof(SEAL_INFO) - 1 + llen,
			      key, CF_SEAL_KEY_LEN);
}
