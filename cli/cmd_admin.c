/*
 * coffer admin: the platform admin's key and the enrollment tokens it
 * signs for organisations (docs/kms.md, "Enrollment").
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "coffer/age.h"
#include "coffer/crypto.h"
#include "coffer/enc.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"

#define DEFAULT_EXPIRY (7LL * 24 * 3600)
#define MAX_EXPIRY (366LL * 24 * 3600)

static const char admin_usage[] =
	"usage: coffer admin COMMAND [OPTIONS]\n\n"
	"The platform admin's Ed25519 key; coffer-kms trusts it (--admin-pub) to sign\n"
	"organisations' enrollment tokens.\n\n"
	"commands:\n"
	"  keygen        make the admin key and print its public key\n"
	"  enroll-token  sign an organisation's enrollment token\n";

static const char keygen_usage[] =
	"usage: coffer admin keygen [--out FILE] [--json]\n\n"
	"Makes an Ed25519 admin key in FILE (default admin.key in the profile,\n"
	"$COFFER_HOME or ~/.config/coffer), mode 0600, never over an existing file,\n"
	"and prints its public key in base64 on standard output: the file to give\n"
	"coffer-kms with --admin-pub at its first start.\n\n"
	"  --out FILE  where to write the key\n"
	"  --json      print {\"admin_pub\", \"file\"} instead\n";

static const char token_usage[] =
	"usage: coffer admin enroll-token (--org NAME --sign-pub B64 --age-recipient AGE1 |\n"
	"                                  --from FILE) [--expires DURATION] [--key FILE]\n\n"
	"Prints the enrollment token {\"token\": {\"org\", \"sign_pub\", \"age_recipient\",\n"
	"\"expires\"}, \"token_sig\"} for an organisation's public keys, signed with the\n"
	"admin key. The organisation registers with it (coffer org register --token).\n\n"
	"  --org NAME            the organisation (1 to 64 characters of [a-z0-9-])\n"
	"  --sign-pub B64        its Ed25519 public key (base64)\n"
	"  --age-recipient AGE1  its age recipient (age1...)\n"
	"  --from FILE           read the three from the output of coffer org keygen\n"
	"  --expires DURATION    validity: N followed by s, m, h or d (default 7d, at\n"
	"                        most 366d)\n"
	"  --key FILE            the admin key (default admin.key in the profile)\n";

static cf_err parse_duration(const char *s, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || v <= 0 || s[0] == '-' || s[0] == '+')
		return CF_ERR_ARG;
	long long unit = 1;
	if (*end) {
		if (end[1])
			return CF_ERR_ARG;
		switch (*end) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		default: return CF_ERR_ARG;
		}
	}
	if (v > MAX_EXPIRY / unit)
		return CF_ERR_ARG;
	*out = v * unit;
	return CF_OK;
}

static int default_key_path(bool create, char *out, size_t cap)
{
	char dir[4096];
	int status = cli_profile(create, dir, sizeof(dir));
	if (status != CLI_OK)
		return status;
	if ((size_t)snprintf(out, cap, "%s/admin.key", dir) >= cap)
		return cli_fail("finding the admin key failed", "the profile path is too long");
	return CLI_OK;
}

static int admin_keygen(int argc, char **argv)
{
	enum { O_OUT = 256, O_JSON };
	static const struct option opts[] = {
		{ "out", required_argument, NULL, O_OUT },
		{ "json", no_argument, NULL, O_JSON },
		{ NULL, 0, NULL, 0 },
	};
	const char *out_path = NULL;
	bool json = false;
	int c;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case O_OUT: out_path = optarg; break;
		case O_JSON: json = true; break;
		default: return cli_bad_option("admin keygen", c, argv);
		}
	}
	if (optind != argc)
		return cli_usage("admin keygen", "unexpected argument '%s'", argv[optind]);

	char path[4200];
	uint8_t seed[CF_ED25519_SEED_LEN], pub[CF_ED25519_PUB_LEN];
	char pub_b64[CF_KMS_PUB_B64_LEN + 1];
	json_t *o = NULL;
	int status = CLI_OK;
	if (out_path)
		snprintf(path, sizeof(path), "%s", out_path);
	else if ((status = default_key_path(true, path, sizeof(path))) != CLI_OK)
		return status;
	status = CLI_FAIL;
	cf_err rc = cf_ed25519_keygen(seed, pub);
	if (rc != CF_OK) {
		cli_fail("making the admin key failed", "%s", cf_strerror(rc));
		goto out;
	}
	rc = cf_sigkey_write(path, seed, "coffer platform admin key (Ed25519)");
	if (rc != CF_OK) {
		cli_fail("writing the admin key failed", "%s: %s", path,
			 rc == CF_ERR_ARG ? "file exists (not overwritten)" : strerror(errno));
		goto out;
	}
	cf_b64_encode(pub, sizeof(pub), true, pub_b64);
	if (json) {
		o = json_pack("{s:s, s:s}", "admin_pub", pub_b64, "file", path);
		status = o ? cli_print_json(o) : cli_fail("printing failed", "out of memory");
	} else {
		printf("%s\n", pub_b64);
		status = CLI_OK;
	}
out:
	json_decref(o);
	cf_wipe(seed, sizeof(seed));
	return status;
}

/* The three public parts from coffer org keygen's output. */
static int read_from(const char *path, char *org, size_t orgcap, char *pub, size_t pubcap,
		     char *rcpt, size_t rcptcap)
{
	cf_buf b;
	json_t *j = NULL;
	const char *o, *p, *r;
	int status = CLI_FAIL;
	cf_buf_init(&b, 64 * 1024, false);
	cf_err rc = cli_read_file(path, b.max, &b);
	if (rc != CF_OK) {
		cli_fail("reading the organisation's keys failed", "%s: %s", path,
			 rc == CF_ERR_IO || rc == CF_ERR_NOT_FOUND ? strerror(errno)
								     : cf_strerror(rc));
		goto out;
	}
	if (cf_json_parse((const char *)b.data, b.len, NULL, &j) != CF_OK ||
	    cf_json_get_string(j, "org", &o) != CF_OK ||
	    cf_json_get_string(j, "sign_pub", &p) != CF_OK ||
	    cf_json_get_string(j, "age_recipient", &r) != CF_OK || strlen(o) >= orgcap ||
	    strlen(p) >= pubcap || strlen(r) >= rcptcap) {
		cli_fail("reading the organisation's keys failed",
			 "%s: not {\"org\", \"sign_pub\", \"age_recipient\"}", path);
		goto out;
	}
	snprintf(org, orgcap, "%s", o);
	snprintf(pub, pubcap, "%s", p);
	snprintf(rcpt, rcptcap, "%s", r);
	status = CLI_OK;
out:
	json_decref(j);
	cf_buf_free(&b);
	return status;
}

static int admin_enroll_token(int argc, char **argv)
{
	enum { O_ORG = 256, O_PUB, O_RCPT, O_FROM, O_EXPIRES, O_KEY };
	static const struct option opts[] = {
		{ "org", required_argument, NULL, O_ORG },
		{ "sign-pub", required_argument, NULL, O_PUB },
		{ "age-recipient", required_argument, NULL, O_RCPT },
		{ "from", required_argument, NULL, O_FROM },
		{ "expires", required_argument, NULL, O_EXPIRES },
		{ "key", required_argument, NULL, O_KEY },
		{ NULL, 0, NULL, 0 },
	};
	const char *org = NULL, *pub = NULL, *rcpt = NULL, *from = NULL, *key_path = NULL;
	long long lifetime = DEFAULT_EXPIRY;
	int c;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case O_ORG: org = optarg; break;
		case O_PUB: pub = optarg; break;
		case O_RCPT: rcpt = optarg; break;
		case O_FROM: from = optarg; break;
		case O_KEY: key_path = optarg; break;
		case O_EXPIRES:
			if (parse_duration(optarg, &lifetime) != CF_OK)
				return cli_usage("admin enroll-token",
						 "--expires wants N followed by s, m, h or d, at "
						 "most 366d (got '%s')",
						 optarg);
			break;
		default: return cli_bad_option("admin enroll-token", c, argv);
		}
	}
	if (optind != argc)
		return cli_usage("admin enroll-token", "unexpected argument '%s'", argv[optind]);
	if (from && (org || pub || rcpt))
		return cli_usage("admin enroll-token",
				 "give either --from FILE or --org, --sign-pub and --age-recipient");
	if (!from && (!org || !pub || !rcpt))
		return cli_usage("admin enroll-token",
				 "--org, --sign-pub and --age-recipient are all needed");

	char f_org[128], f_pub[128], f_rcpt[128], path[4200];
	uint8_t seed[CF_ED25519_SEED_LEN], bytes[CF_ED25519_PUB_LEN + 3], apub[32];
	char sig[CF_KMS_SIG_B64_LEN + 1];
	json_t *token = NULL, *o = NULL;
	size_t got = 0;
	int status;
	memset(seed, 0, sizeof(seed));
	if (from) {
		if ((status = read_from(from, f_org, sizeof(f_org), f_pub, sizeof(f_pub), f_rcpt,
					sizeof(f_rcpt))) != CLI_OK)
			return status;
		org = f_org;
		pub = f_pub;
		rcpt = f_rcpt;
	}
	if (!cf_kms_valid_name(org))
		return cli_usage("admin enroll-token",
				 "an organisation name is 1 to 64 characters of [a-z0-9-]");
	if (strlen(pub) != CF_KMS_PUB_B64_LEN ||
	    cf_b64_decode(pub, strlen(pub), true, bytes, sizeof(bytes), &got) != CF_OK ||
	    got != CF_ED25519_PUB_LEN)
		return cli_usage("admin enroll-token",
				 "--sign-pub must be an Ed25519 public key in base64 (44 characters)");
	if (cf_age_recipient_parse(rcpt, apub) != CF_OK)
		return cli_usage("admin enroll-token",
				 "--age-recipient must be an age X25519 recipient (age1...)");

	if (key_path)
		snprintf(path, sizeof(path), "%s", key_path);
	else if ((status = default_key_path(false, path, sizeof(path))) != CLI_OK)
		return status;
	status = CLI_FAIL;
	cf_err rc = cf_sigkey_read(path, seed);
	if (rc != CF_OK) {
		cli_fail("reading the admin key failed", "%s: %s", path,
			 rc == CF_ERR_NOT_FOUND ? "no such file (coffer admin keygen makes one)"
			 : rc == CF_ERR_AUTH	? "readable by others (chmod 600 it)"
			 : rc == CF_ERR_PARSE	? "not a coffer signing key file"
						: strerror(errno));
		goto out;
	}
	long long expires = (long long)time(NULL) + lifetime;
	if ((rc = cf_enroll_token_make(org, pub, rcpt, expires, &token)) != CF_OK ||
	    (rc = cf_enroll_token_sign(seed, token, sig)) != CF_OK) {
		cli_fail("signing the enrollment token failed", "%s", cf_strerror(rc));
		goto out;
	}
	o = json_pack("{s:O, s:s}", "token", token, "token_sig", sig);
	status = o ? cli_print_json(o) : cli_fail("printing failed", "out of memory");
out:
	json_decref(o);
	json_decref(token);
	cf_wipe(seed, sizeof(seed));
	return status;
}

int cmd_admin(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
		{ "keygen", admin_keygen, keygen_usage },
		{ "enroll-token", admin_enroll_token, token_usage },
	};
	return cli_dispatch("admin", admin_usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
