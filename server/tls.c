/*
 * cofferd's certificate and TLS context (tls.h).
 */
#define CF_LOG_MODULE "cofferd"

#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "coffer/log.h"

#define CERT_DAYS 3650

static cf_err add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	int ok = e && X509_add_ext(x, e, -1) == 1;
	X509_EXTENSION_free(e);
	return ok ? CF_OK : CF_ERR_CRYPTO;
}

/* An IP address, or a DNS name of letters, digits, dots and dashes. */
static cf_err add_san(X509 *x, const char *const *names, size_t n)
{
	cf_err rc = CF_OK;
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	if (!gens)
		return CF_ERR_NOMEM;
	for (size_t i = 0; rc == CF_OK && i < n; i++) {
		GENERAL_NAME *gn = GENERAL_NAME_new();
		ASN1_OCTET_STRING *ip = gn ? a2i_IPADDRESS(names[i]) : NULL;
		ERR_clear_error();
		if (!gn) {
			rc = CF_ERR_NOMEM;
		} else if (ip) {
			GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
		} else {
			size_t len = strlen(names[i]);
			ASN1_IA5STRING *dns = NULL;
			if (len == 0 || len > 253 || strspn(names[i], "abcdefghijklmnopqrstuvwxyz"
								  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != len) {
				log_error("--name %s: neither an IP address nor a DNS name", names[i]);
				rc = CF_ERR_ARG;
			} else if (!(dns = ASN1_IA5STRING_new()) ||
				   !ASN1_STRING_set(dns, names[i], (int)len)) {
				ASN1_IA5STRING_free(dns);
				rc = CF_ERR_NOMEM;
			} else {
				GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
			}
		}
		if (rc == CF_OK && !sk_GENERAL_NAME_push(gens, gn))
			rc = CF_ERR_NOMEM;
		if (rc != CF_OK)
			GENERAL_NAME_free(gn);
	}
	if (rc == CF_OK && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0) != 1)
		rc = CF_ERR_CRYPTO;
	GENERAL_NAMES_free(gens);
	return rc;
}

/* A self-signed P-256 certificate for names, valid CERT_DAYS. */
static cf_err make_cert(const char *const *names, size_t n, EVP_PKEY **key_out, X509 **cert_out)
{
	cf_err rc = CF_ERR_CRYPTO;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	BIGNUM *serial = BN_new();
	X509_NAME *name = X509_NAME_new();
	if (!key || !x || !serial || !name)
		goto out;
	if (!BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
	    !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) || !X509_set_version(x, 2) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"cofferd",
					-1, -1, 0) ||
	    !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), (long)CERT_DAYS * 24 * 3600) ||
	    !X509_set_pubkey(x, key))
		goto out;
	/* Its own trust anchor: clients put exactly this certificate in their CA file. */
	if ((rc = add_ext(x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0")) != CF_OK ||
	    (rc = add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign")) != CF_OK ||
	    (rc = add_ext(x, NID_ext_key_usage, "serverAuth")) != CF_OK ||
	    (rc = add_ext(x, NID_subject_key_identifier, "hash")) != CF_OK ||
	    (rc = add_san(x, names, n)) != CF_OK)
		goto out;
	rc = X509_sign(x, key, EVP_sha256()) > 0 ? CF_OK : CF_ERR_CRYPTO;
	if (rc == CF_OK) {
		*key_out = key;
		*cert_out = x;
		key = NULL;
		x = NULL;
	}
out:
	EVP_PKEY_free(key);
	X509_free(x);
	BN_free(serial);
	X509_NAME_free(name);
	return rc;
}

static cf_err write_pem(const char *path, EVP_PKEY *key, X509 *cert)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, key ? 0600 : 0644);
	if (fd < 0)
		return CF_ERR_IO;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(path);
		return CF_ERR_IO;
	}
	int ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
		     : PEM_write_X509(f, cert);
	ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok)
		unlink(path);
	return ok ? CF_OK : CF_ERR_IO;
}

static cf_err load(const char *cert_path, const char *key_path, EVP_PKEY **key, X509 **cert)
{
	FILE *f = fopen(cert_path, "r");
	if (!f) {
		log_error("cannot read %s: %s", cert_path, strerror(errno));
		return CF_ERR_IO;
	}
	*cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	struct stat st;
	if (!(f = fopen(key_path, "r"))) {
		log_error("cannot read %s: %s", key_path, strerror(errno));
		return CF_ERR_IO;
	}
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
		log_warn("%s is readable by others", key_path);
	*key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!*cert || !*key) {
		log_error("%s or %s is not PEM", cert_path, key_path);
		return CF_ERR_PARSE;
	}
	return CF_OK;
}

cf_err tls_setup(cofferd *d, const cofferd_config *cfg)
{
	static const char *const default_names[] = { "localhost", "127.0.0.1", "::1" };
	char cert_path[COFFERD_PATH_MAX + 16], key_path[COFFERD_PATH_MAX + 16];
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	BIO *mem = NULL;
	cf_err rc;
	if (cfg->cert_path) {
		snprintf(cert_path, sizeof(cert_path), "%s", cfg->cert_path);
		snprintf(key_path, sizeof(key_path), "%s", cfg->key_path);
	} else {
		snprintf(cert_path, sizeof(cert_path), "%s/tls.crt", d->state_dir);
		snprintf(key_path, sizeof(key_path), "%s/tls.key", d->state_dir);
		if (access(cert_path, F_OK) != 0 && access(key_path, F_OK) != 0) {
			rc = make_cert(cfg->nnames ? cfg->names : default_names,
				       cfg->nnames ? cfg->nnames : 3, &key, &cert);
			if (rc == CF_OK && (rc = write_pem(key_path, key, NULL)) == CF_OK &&
			    (rc = write_pem(cert_path, NULL, cert)) != CF_OK)
				unlink(key_path);
			if (rc != CF_OK) {
				log_error("cannot make the TLS certificate %s: %s", cert_path,
					  cf_strerror(rc));
				goto out;
			}
			log_info("made a self-signed TLS certificate %s (clients pin it)", cert_path);
			EVP_PKEY_free(key);
			X509_free(cert);
			key = NULL;
			cert = NULL;
		}
	}
	if ((rc = load(cert_path, key_path, &key, &cert)) != CF_OK)
		goto out;
	rc = CF_ERR_CRYPTO;
	SSL_CTX *sc = SSL_CTX_new(TLS_server_method());
	d->ssl = sc;
	if (!sc || !SSL_CTX_set_min_proto_version(sc, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(sc, TLS1_3_VERSION) ||
	    SSL_CTX_use_certificate(sc, cert) != 1 || SSL_CTX_use_PrivateKey(sc, key) != 1 ||
	    SSL_CTX_check_private_key(sc) != 1) {
		log_error("%s and %s do not make a TLS server", cert_path, key_path);
		goto out;
	}
	/* The certificate in PEM: what enclaves are given to pin cofferd. */
	BUF_MEM *bm = NULL;
	if (!(mem = BIO_new(BIO_s_mem())) || !PEM_write_bio_X509(mem, cert))
		goto out;
	BIO_get_mem_ptr(mem, &bm);
	/* Not NUL-terminated: copied by its length. */
	if (!(d->cert_pem = malloc(bm->length + 1))) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	memcpy(d->cert_pem, bm->data, bm->length);
	d->cert_pem[bm->length] = 0;
	rc = CF_OK;
out:
	BIO_free(mem);
	EVP_PKEY_free(key);
	X509_free(cert);
	return rc;
}
