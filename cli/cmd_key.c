/*
 * coffer key: an organisation's dataset keys, held by the KMS
 * (docs/kms.md, "Org requests"). Every command is a request signed with
 * the organisation's key; the key material never comes back.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "coffer/age.h"
#include "coffer/enc.h"
#include "coffer/io.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"

#define POLICY_FILE_MAX (64u * 1024)
#define IDENTITY_FILE_MAX (64u * 1024)
#define WRAPPED_MAX (16u * 1024)

static const char key_usage[] =
	"usage: coffer key COMMAND [OPTIONS]\n\n"
	"Dataset keys held by the KMS for this profile's organisation. A key is an age\n"
	"X25519 identity; encrypt datasets to its recipient (coffer age encrypt -r, or\n"
	"stock age -r) and register them with coffer dataset register.\n\n"
	"commands:\n"
	"  create   make a key in the KMS\n"
	"  import   hand an existing age identity to the KMS\n"
	"  rotate   add a version (older versions only decrypt)\n"
	"  disable  stop releasing the key\n"
	"  enable   release it again\n"
	"  destroy  wipe every version of the key (cannot be undone)\n"
	"  policy   set the key's own evidence policy\n"
	"  list     list the organisation's keys\n\n"
	"Every command takes --kms URL and --cacert FILE to override the KMS pinned\n"
	"by coffer attest.\n";

static const char create_usage[] =
	"usage: coffer key create [--policy FILE] [--json] [--kms URL --cacert FILE]\n\n"
	"Makes a key in the KMS and prints its id, version and recipient (age1...).\n\n"
	"  --policy FILE  an evidence policy (docs/evidence.md) every release of this\n"
	"                 key must also satisfy\n"
	"  --json         print {\"key\", \"version\", \"recipient\"}\n";

static const char import_usage[] =
	"usage: coffer key import FILE [--policy FILE] [--json] [--kms URL --cacert FILE]\n\n"
	"Hands the age identity in FILE (one AGE-SECRET-KEY-1..., e.g. from age-keygen)\n"
	"to the KMS: it is encrypted to the KMS's transport recipient (GET /v1/info)\n"
	"and sent as key.import. Prints the key's id, version and recipient.\n\n"
	"  --policy FILE  an evidence policy every release of this key must satisfy\n"
	"  --json         print {\"key\", \"version\", \"recipient\"}\n";

static const char rotate_usage[] =
	"usage: coffer key rotate ID [--json] [--kms URL --cacert FILE]\n\n"
	"Adds a version to key ID and prints its recipient. Older versions are kept\n"
	"to decrypt datasets already registered; new datasets use the new one.\n";

static const char state_usage[] =
	"usage: coffer key (disable | enable) ID [--json] [--kms URL --cacert FILE]\n"
	"       coffer key destroy ID --yes [--json] [--kms URL --cacert FILE]\n\n"
	"disable stops releases of key ID, enable allows them again. destroy wipes the\n"
	"material of every version in the KMS: datasets encrypted to it can never be\n"
	"decrypted again. It needs --yes.\n";

static const char policy_usage[] =
	"usage: coffer key policy ID FILE [--json] [--kms URL --cacert FILE]\n\n"
	"Sets the evidence policy (docs/evidence.md, JSON in FILE) every release of\n"
	"key ID must satisfy, on top of the task's own measurements.\n";

static const char list_usage[] =
	"usage: coffer key list [--json] [--kms URL --cacert FILE]\n\n"
	"Lists the organisation's keys: id, state, current version, its recipient and\n"
	"whether a policy is set. With --json, the KMS's metadata as is.\n";

enum { O_JSON = 256, O_KMS, O_CACERT, O_POLICY, O_YES };

static const struct option common_opts[] = {
	{ "json", no_argument, NULL, O_JSON },
	{ "kms", required_argument, NULL, O_KMS },
	{ "cacert", required_argument, NULL, O_CACERT },
	{ "policy", required_argument, NULL, O_POLICY },
	{ "yes", no_argument, NULL, O_YES },
	{ NULL, 0, NULL, 0 },
};

typedef struct key_args {
	const char *cmd;
	bool json, yes;
	const char *url, *cacert, *policy;
	const char *pos[2];
	int npos;
} key_args;

/* Parses the common options; allowed lists which of policy/yes this command takes. */
static int parse_args(int argc, char **argv, const char *cmd, int npos, bool allow_policy,
		      bool allow_yes, key_args *a)
{
	memset(a, 0, sizeof(*a));
	a->cmd = cmd;
	int c;
	while ((c = cli_getopt(argc, argv, "", common_opts)) != -1) {
		switch (c) {
		case O_JSON: a->json = true; break;
		case O_KMS: a->url = optarg; break;
		case O_CACERT: a->cacert = optarg; break;
		case O_POLICY:
			if (!allow_policy)
				return cli_usage(cmd, "unknown option '--policy'");
			a->policy = optarg;
			break;
		case O_YES:
			if (!allow_yes)
				return cli_usage(cmd, "unknown option '--yes'");
			a->yes = true;
			break;
		default: return cli_bad_option(cmd, c, argv);
		}
	}
	if (argc - optind != npos) {
		if (argc - optind > npos)
			return cli_usage(cmd, "unexpected argument '%s'", argv[optind + npos]);
		return cli_usage(cmd, "expected %d argument%s", npos, npos == 1 ? "" : "s");
	}
	for (int i = 0; i < npos; i++)
		a->pos[i] = argv[optind + i];
	a->npos = npos;
	return CLI_OK;
}

/* A JSON object from a file. */
static int read_policy(const char *path, json_t **out)
{
	cf_buf b;
	cf_buf_init(&b, POLICY_FILE_MAX, false);
	int status = CLI_OK;
	cf_err rc = cli_read_file(path, b.max, &b);
	if (rc != CF_OK) {
		status = cli_fail("reading the policy failed", "%s: %s", path,
				  rc == CF_ERR_IO || rc == CF_ERR_NOT_FOUND ? strerror(errno)
									      : cf_strerror(rc));
	} else if (cf_json_parse((const char *)b.data, b.len, NULL, out) != CF_OK ||
		   !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		status = cli_fail("reading the policy failed", "%s: not a JSON object", path);
	}
	cf_buf_free(&b);
	return status;
}

/* Prints {key, version, recipient} or {key, state} or {key}. */
static int print_key_reply(const key_args *a, const json_t *reply)
{
	if (a->json)
		return cli_print_json(reply);
	const char *key = "?", *s;
	long long version;
	if (cf_json_get_string(reply, "key", &key) != CF_OK)
		key = "?";
	printf("key %s", key);
	if (cf_json_get_int(reply, "version", &version) == CF_OK)
		printf(" version %lld", version);
	if (cf_json_get_string(reply, "state", &s) == CF_OK)
		printf(" %s", s);
	if (cf_json_get_string(reply, "recipient", &s) == CF_OK)
		printf("\nrecipient %s", s);
	printf("\n");
	return CLI_OK;
}

static int key_create(int argc, char **argv)
{
	key_args a;
	json_t *fields = NULL, *policy = NULL, *reply = NULL;
	int status = parse_args(argc, argv, "key create", 0, true, false, &a);
	if (status != CLI_OK)
		return status;
	if (a.policy && (status = read_policy(a.policy, &policy)) != CLI_OK)
		return status;
	fields = policy ? json_pack("{s:O}", "policy", policy) : json_object();
	if (!fields) {
		status = cli_fail("creating a key failed", "out of memory");
		goto out;
	}
	status = cli_org_request("creating a key failed", a.url, a.cacert, "key.create", fields,
				 &reply);
	if (status == CLI_OK)
		status = print_key_reply(&a, reply);
out:
	json_decref(reply);
	json_decref(fields);
	json_decref(policy);
	return status;
}

/* The identity in path as one "AGE-SECRET-KEY-1...\n" line, wrapped to recipient. */
static int wrap_identity(const char *path, const char *recipient, cf_buf *wrapped)
{
	cf_buf text, line;
	cf_age_identity *ids = NULL;
	size_t nids = 0, bad_line = 0;
	char identity[CF_AGE_IDENTITY_STRLEN + 1];
	cf_age_recipient r = { .kind = CF_AGE_X25519 };
	int status = CLI_FAIL;
	cf_buf_init(&text, IDENTITY_FILE_MAX, true);
	cf_buf_init(&line, 256, true);
	memset(identity, 0, sizeof(identity));
	cf_err rc = cli_read_file(path, text.max, &text);
	if (rc != CF_OK) {
		cli_fail("reading the identity failed", "%s: %s", path,
			 rc == CF_ERR_IO || rc == CF_ERR_NOT_FOUND ? strerror(errno)
								     : cf_strerror(rc));
		goto out;
	}
	rc = cf_age_identities_parse((const char *)text.data, text.len, &ids, &nids, &bad_line);
	if (rc != CF_OK || nids != 1 || ids[0].kind != CF_AGE_X25519) {
		if (rc == CF_OK)
			cli_fail("reading the identity failed",
				 "%s: the file must hold exactly one AGE-SECRET-KEY-1 identity", path);
		else if (rc == CF_ERR_NOT_FOUND)
			cli_fail("reading the identity failed", "%s: no identity in the file", path);
		else
			cli_fail("reading the identity failed", "%s:%zu: %s", path, bad_line,
				 rc == CF_ERR_UNSUPPORTED ? "unsupported identity type"
							  : cf_strerror(rc));
		goto out;
	}
	if ((rc = cf_age_recipient_parse(recipient, r.pub)) != CF_OK) {
		cli_fail("importing the key failed",
			 "the KMS's transport_recipient is not an age recipient");
		goto out;
	}
	if ((rc = cf_age_identity_format(&ids[0].key, identity)) != CF_OK ||
	    (rc = cf_buf_printf(&line, "%s\n", identity)) != CF_OK) {
		cli_fail("importing the key failed", "%s", cf_strerror(rc));
		goto out;
	}
	cf_mem_reader m = { .data = line.data, .len = line.len };
	rc = cf_age_encrypt(&r, 1, NULL, cf_mem_reader_of(&m), cf_buf_writer(wrapped));
	if (rc != CF_OK) {
		cli_fail("importing the key failed", "wrapping the identity: %s", cf_strerror(rc));
		goto out;
	}
	status = CLI_OK;
out:
	cf_age_identities_free(ids, nids);
	cf_wipe(identity, sizeof(identity));
	cf_buf_free(&line);
	cf_buf_free(&text);
	return status;
}

static int key_import(int argc, char **argv)
{
	key_args a;
	cli_org org;
	json_t *fields = NULL, *policy = NULL, *reply = NULL, *info = NULL;
	cf_kms_client *c = NULL;
	cf_buf wrapped;
	char *b64 = NULL;
	const char *transport;
	memset(&org, 0, sizeof(org));
	cf_buf_init(&wrapped, WRAPPED_MAX, false);
	int status = parse_args(argc, argv, "key import", 1, true, false, &a);
	if (status != CLI_OK)
		goto out;
	if (a.policy && (status = read_policy(a.policy, &policy)) != CLI_OK)
		goto out;
	if ((status = cli_org_load(&org)) != CLI_OK)
		goto out;
	/* The transport recipient of the KMS this request goes to. */
	if ((status = cli_kms_connect(a.url, a.cacert, &c)) != CLI_OK)
		goto out;
	cf_err rc = cf_kms_call_get(c, "/v1/info", &info);
	if (rc != CF_OK) {
		status = cli_kms_fail("asking the KMS for its transport recipient failed", c, rc);
		goto out;
	}
	if (cf_json_get_string(info, "transport_recipient", &transport) != CF_OK) {
		status = cli_fail("importing the key failed",
				  "the KMS's /v1/info has no transport_recipient");
		goto out;
	}
	if ((status = wrap_identity(a.pos[0], transport, &wrapped)) != CLI_OK)
		goto out;
	b64 = malloc(cf_b64_encoded_len(wrapped.len, true) + 1);
	if (!b64) {
		status = cli_fail("importing the key failed", "out of memory");
		goto out;
	}
	cf_b64_encode(wrapped.data, wrapped.len, true, b64);
	fields = json_pack("{s:s}", "wrapped", b64);
	if (!fields || (policy && json_object_set(fields, "policy", policy))) {
		status = cli_fail("importing the key failed", "out of memory");
		goto out;
	}
	rc = cf_kms_signed_request(c, org.name, org.seed, "key.import", fields, &reply);
	if (rc != CF_OK) {
		status = cli_kms_fail("importing the key failed", c, rc);
		goto out;
	}
	status = print_key_reply(&a, reply);
out:
	free(b64);
	cf_buf_free(&wrapped);
	cf_kms_client_free(c);
	cli_org_wipe(&org);
	json_decref(info);
	json_decref(reply);
	json_decref(fields);
	json_decref(policy);
	return status;
}

/* rotate, disable, enable, destroy: {"key": ID}. */
static int key_change(int argc, char **argv, const char *cmd, const char *op, const char *what)
{
	key_args a;
	json_t *fields = NULL, *reply = NULL;
	bool destroy = strcmp(op, "key.destroy") == 0;
	int status = parse_args(argc, argv, cmd, 1, false, destroy, &a);
	if (status != CLI_OK)
		return status;
	if (destroy && !a.yes)
		return cli_usage(cmd, "destroying a key cannot be undone: add --yes");
	fields = json_pack("{s:s}", "key", a.pos[0]);
	if (!fields)
		return cli_fail(what, "out of memory");
	status = cli_org_request(what, a.url, a.cacert, op, fields, &reply);
	if (status == CLI_OK)
		status = print_key_reply(&a, reply);
	json_decref(reply);
	json_decref(fields);
	return status;
}

static int key_rotate(int argc, char **argv)
{
	return key_change(argc, argv, "key rotate", "key.rotate", "rotating the key failed");
}

static int key_disable(int argc, char **argv)
{
	return key_change(argc, argv, "key disable", "key.disable", "disabling the key failed");
}

static int key_enable(int argc, char **argv)
{
	return key_change(argc, argv, "key enable", "key.enable", "enabling the key failed");
}

static int key_destroy(int argc, char **argv)
{
	return key_change(argc, argv, "key destroy", "key.destroy", "destroying the key failed");
}

static int key_policy(int argc, char **argv)
{
	key_args a;
	json_t *fields = NULL, *policy = NULL, *reply = NULL;
	int status = parse_args(argc, argv, "key policy", 2, false, false, &a);
	if (status != CLI_OK)
		return status;
	if ((status = read_policy(a.pos[1], &policy)) != CLI_OK)
		return status;
	fields = json_pack("{s:s, s:O}", "key", a.pos[0], "policy", policy);
	if (!fields) {
		status = cli_fail("setting the policy failed", "out of memory");
		goto out;
	}
	status = cli_org_request("setting the policy failed", a.url, a.cacert, "key.policy", fields,
				 &reply);
	if (status == CLI_OK)
		status = print_key_reply(&a, reply);
out:
	json_decref(reply);
	json_decref(fields);
	json_decref(policy);
	return status;
}

/* The recipient of a key's current version, from its "versions". */
static const char *current_recipient(const json_t *k)
{
	long long current;
	const json_t *v;
	size_t i;
	if (cf_json_get_int(k, "current", &current) != CF_OK)
		return "-";
	json_array_foreach(json_object_get(k, "versions"), i, v) {
		long long n;
		const char *r;
		if (cf_json_get_int(v, "version", &n) == CF_OK && n == current &&
		    cf_json_get_string(v, "recipient", &r) == CF_OK)
			return r;
	}
	return "-";
}

static int key_list(int argc, char **argv)
{
	key_args a;
	json_t *reply = NULL;
	int status = parse_args(argc, argv, "key list", 0, false, false, &a);
	if (status != CLI_OK)
		return status;
	status = cli_org_request("listing the keys failed", a.url, a.cacert, "key.list", NULL,
				 &reply);
	if (status != CLI_OK)
		goto out;
	const json_t *keys = json_object_get(reply, "keys");
	if (!json_is_array(keys)) {
		status = cli_fail("listing the keys failed", "the KMS's answer has no \"keys\" array");
		goto out;
	}
	if (a.json) {
		status = cli_print_json(reply);
		goto out;
	}
	printf("%-20s %-9s %-7s %-62s %s\n", "KEY", "STATE", "VERSION", "RECIPIENT", "POLICY");
	size_t i;
	const json_t *k;
	json_array_foreach(keys, i, k) {
		const char *id = "?", *state = "?";
		long long current = 0;
		const json_t *policy = json_object_get(k, "policy");
		if (cf_json_get_string(k, "key", &id) != CF_OK)
			id = "?";
		if (cf_json_get_string(k, "state", &state) != CF_OK)
			state = "?";
		if (cf_json_get_int(k, "current", &current) != CF_OK)
			current = 0;
		printf("%-20s %-9s %-7lld %-62s %s\n", id, state, current, current_recipient(k),
		       policy && !json_is_null(policy) ? "yes" : "no");
	}
out:
	json_decref(reply);
	return status;
}

int cmd_key(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
		{ "create", key_create, create_usage },   { "import", key_import, import_usage },
		{ "rotate", key_rotate, rotate_usage },   { "disable", key_disable, state_usage },
		{ "enable", key_enable, state_usage },    { "destroy", key_destroy, state_usage },
		{ "policy", key_policy, policy_usage },   { "list", key_list, list_usage },
	};
	return cli_dispatch("key", key_usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
