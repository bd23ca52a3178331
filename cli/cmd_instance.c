/*
 * coffer instance: the TEE instances cofferd runs tasks in (docs/api.md,
 * "Hosts and instances"). With the soft driver an instance is a
 * reservation of cores, memory and enclave size on cofferd's host.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "coffer/cofferd_client.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"

#define DEFAULT_CORES 1u
#define DEFAULT_MEMORY (1ull << 30)
#define DEFAULT_ENCLAVE (256ull << 20)
#define MAX_CORES 4096u

static const char instance_usage[] =
	"usage: coffer instance COMMAND [OPTIONS]\n\n"
	"TEE instances on cofferd's hosts (create, start, stop and delete need the\n"
	"operator or admin role).\n\n"
	"commands:\n"
	"  create  reserve an instance\n"
	"  list    list the instances and what they run\n"
	"  start   start an instance\n"
	"  stop    stop an instance\n"
	"  delete  delete an instance\n"
	"  hosts   show cofferd's host: TEE kinds and capacity\n";

static const char create_usage[] =
	"usage: coffer instance create NAME [--cores N] [--memory SIZE] [--enclave-size SIZE]\n"
	"                              [--tee KIND] [--json]\n\n"
	"Creates instance NAME (POST /v1/instances), checked by cofferd against its\n"
	"host's capacity. A run on it gets these limits. SIZE is bytes or a number\n"
	"with K, M, G or T (binary: 512M is 512 MiB). Prints the instance's id.\n\n"
	"  --cores N           CPU cores (default 1)\n"
	"  --memory SIZE       memory (default 1G)\n"
	"  --enclave-size SIZE the enclave's secret heap, the EPC size analogue\n"
	"                      (default 256M)\n"
	"  --tee KIND          the TEE kind (default soft)\n"
	"  --json              print cofferd's answer {\"id\"}\n";

static const char list_usage[] =
	"usage: coffer instance list [--json]\n\n"
	"Lists the instances (GET /v1/instances): id, name, TEE, cores, memory, enclave\n"
	"size, state and the run on it.\n";

static const char start_usage[] =
	"usage: coffer instance start ID [--json]\n"
	"       coffer instance stop ID [--json]\n\n"
	"Starts or stops instance ID and prints its new state.\n";

static const char delete_usage[] =
	"usage: coffer instance delete ID\n\n"
	"Deletes instance ID (DELETE /v1/instances/ID), releasing its reservation.\n";

static const char hosts_usage[] =
	"usage: coffer instance hosts [--json]\n\n"
	"Shows cofferd's host (GET /v1/hosts): its TEE kinds, cores, memory and\n"
	"enclave memory.\n";

enum { O_CORES = 256, O_MEMORY, O_ENCLAVE, O_TEE, O_JSON };

/* A size member for people: "1.0 GiB", or "-". */
static void put_size(const json_t *obj, const char *key, int width)
{
	long long v;
	char s[32] = "-";
	if (cf_json_get_int(obj, key, &v) == CF_OK && v >= 0)
		cf_cofferd_format_size((uint64_t)v, s, sizeof(s));
	printf("%-*s", width, s);
}

static int instance_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cores", required_argument, NULL, O_CORES },
		{ "memory", required_argument, NULL, O_MEMORY },
		{ "enclave-size", required_argument, NULL, O_ENCLAVE },
		{ "tee", required_argument, NULL, O_TEE },
		{ "json", no_argument, NULL, O_JSON },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long cores = DEFAULT_CORES;
	uint64_t memory = DEFAULT_MEMORY, enclave = DEFAULT_ENCLAVE;
	const char *tee = "soft";
	bool json = false;
	char *end;
	int c;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case O_CORES:
			errno = 0;
			cores = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || optarg[0] == '-' || cores < 1 ||
			    cores > MAX_CORES)
				return cli_usage("instance create", "--cores is 1 to %u", MAX_CORES);
			break;
		case O_MEMORY:
			if (cf_cofferd_parse_size(optarg, &memory) != CF_OK)
				return cli_usage("instance create", "--memory '%s' is not a size "
								    "(e.g. 512M, 2G)", optarg);
			break;
		case O_ENCLAVE:
			if (cf_cofferd_parse_size(optarg, &enclave) != CF_OK)
				return cli_usage("instance create", "--enclave-size '%s' is not a "
								    "size (e.g. 256M)", optarg);
			break;
		case O_TEE: tee = optarg; break;
		case O_JSON: json = true; break;
		default: return cli_bad_option("instance create", c, argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage("instance create", "expected the instance's NAME");
	const char *name = argv[optind];
	if (!cf_kms_valid_name(name))
		return cli_usage("instance create",
				 "an instance name is 1 to 64 characters of [a-z0-9-]");
	if (!cf_kms_valid_name(tee))
		return cli_usage("instance create", "--tee is a TEE kind such as soft");
	if (memory > INT64_MAX || enclave > INT64_MAX)
		return cli_usage("instance create", "sizes are below 8 EiB");
	if (enclave > memory)
		return cli_usage("instance create", "the enclave size cannot exceed the memory");

	cf_cofferd_client *cc = NULL;
	json_t *body = NULL, *reply = NULL;
	int status = cli_cofferd_connect(&cc);
	if (status != CLI_OK)
		return status;
	body = json_pack("{s:s, s:s, s:I, s:I, s:I}", "name", name, "tee", tee, "cores",
			 (json_int_t)cores, "memory", (json_int_t)memory, "enclave_size",
			 (json_int_t)enclave);
	if (!body) {
		status = cli_fail("creating the instance failed", "out of memory");
		goto out;
	}
	if ((status = cli_cofferd_call(cc, "creating the instance failed", "POST", "/v1/instances",
				       body, &reply)) != CLI_OK)
		goto out;
	if (json) {
		status = cli_print_json(reply);
	} else {
		char m[32], e[32];
		cf_cofferd_format_size(memory, m, sizeof(m));
		cf_cofferd_format_size(enclave, e, sizeof(e));
		printf("instance ");
		cli_put_safe(stdout, cli_str(reply, "id"), 0);
		printf(" (%s): %s, %lu core%s, %s memory, %s enclave\n", name, tee, cores,
		       cores == 1 ? "" : "s", m, e);
	}
out:
	json_decref(reply);
	json_decref(body);
	cf_cofferd_client_free(cc);
	return status;
}

static int parse_json_only(const char *cmd, int argc, char **argv, int npos, bool *json)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, O_JSON },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	*json = false;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		if (c != O_JSON)
			return cli_bad_option(cmd, c, argv);
		*json = true;
	}
	if (argc - optind != npos)
		return npos ? cli_usage(cmd, "expected the instance ID")
			    : cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
	return CLI_OK;
}

static int instance_list(int argc, char **argv)
{
	bool json;
	int status = parse_json_only("instance list", argc, argv, 0, &json);
	if (status != CLI_OK)
		return status;
	cf_cofferd_client *cc = NULL;
	json_t *reply = NULL;
	const json_t *items, *it;
	size_t i;
	if ((status = cli_cofferd_connect(&cc)) != CLI_OK)
		return status;
	if ((status = cli_cofferd_call(cc, "listing the instances failed", "GET", "/v1/instances",
				       NULL, &reply)) != CLI_OK ||
	    (status = cli_items("listing the instances failed", reply, &items)) != CLI_OK)
		goto out;
	if (json) {
		status = cli_print_json(reply);
		goto out;
	}
	printf("%-22s %-20s %-5s %-5s %-10s %-10s %-9s %s\n", "ID", "NAME", "TEE", "CORES",
	       "MEMORY", "ENCLAVE", "STATE", "RUN");
	json_array_foreach(items, i, it) {
		long long cores;
		cli_put_safe(stdout, cli_str(it, "id"), 22);
		putchar(' ');
		cli_put_safe(stdout, cli_str(it, "name"), 20);
		putchar(' ');
		cli_put_safe(stdout, cli_str(it, "tee"), 5);
		if (cf_json_get_int(it, "cores", &cores) == CF_OK)
			printf(" %-5lld ", cores);
		else
			printf(" %-5s ", "-");
		put_size(it, "memory", 10);
		putchar(' ');
		put_size(it, "enclave_size", 10);
		putchar(' ');
		cli_put_safe(stdout, cli_str(it, "state"), 9);
		putchar(' ');
		cli_put_safe(stdout, cli_str(it, "run"), 0);
		putchar('\n');
	}
out:
	json_decref(reply);
	cf_cofferd_client_free(cc);
	return status;
}

/* start and stop: POST /v1/instances/ID/ACTION -> {state}. */
static int instance_action(int argc, char **argv, const char *cmd, const char *action)
{
	bool json;
	int status = parse_json_only(cmd, argc, argv, 1, &json);
	if (status != CLI_OK)
		return status;
	const char *id = argv[optind];
	if ((status = cli_check_id(cmd, id, "inst")) != CLI_OK)
		return status;
	char path[96], what[64];
	snprintf(path, sizeof(path), "/v1/instances/%s/%s", id, action);
	snprintf(what, sizeof(what), "%s the instance failed",
		 strcmp(action, "start") == 0 ? "starting" : "stopping");
	cf_cofferd_client *cc = NULL;
	json_t *reply = NULL;
	if ((status = cli_cofferd_connect(&cc)) != CLI_OK)
		return status;
	if ((status = cli_cofferd_call(cc, what, "POST", path, NULL, &reply)) == CLI_OK) {
		if (json) {
			status = cli_print_json(reply);
		} else {
			printf("instance %s ", id);
			cli_put_safe(stdout, cli_str(reply, "state"), 0);
			putchar('\n');
		}
	}
	json_decref(reply);
	cf_cofferd_client_free(cc);
	return status;
}

static int instance_start(int argc, char **argv)
{
	return instance_action(argc, argv, "instance start", "start");
}

static int instance_stop(int argc, char **argv)
{
	return instance_action(argc, argv, "instance stop", "stop");
}

static int instance_delete(int argc, char **argv)
{
	static const struct option opts[] = { { NULL, 0, NULL, 0 } };
	int c;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1)
		return cli_bad_option("instance delete", c, argv);
	if (argc - optind != 1)
		return cli_usage("instance delete", "expected the instance ID");
	const char *id = argv[optind];
	int status = cli_check_id("instance delete", id, "inst");
	if (status != CLI_OK)
		return status;
	char path[96];
	snprintf(path, sizeof(path), "/v1/instances/%s", id);
	cf_cofferd_client *cc = NULL;
	if ((status = cli_cofferd_connect(&cc)) != CLI_OK)
		return status;
	status = cli_cofferd_call(cc, "deleting the instance failed", "DELETE", path, NULL, NULL);
	if (status == CLI_OK)
		printf("deleted instance %s\n", id);
	cf_cofferd_client_free(cc);
	return status;
}

static int instance_hosts(int argc, char **argv)
{
	bool json;
	int status = parse_json_only("instance hosts", argc, argv, 0, &json);
	if (status != CLI_OK)
		return status;
	cf_cofferd_client *cc = NULL;
	json_t *reply = NULL;
	if ((status = cli_cofferd_connect(&cc)) != CLI_OK)
		return status;
	if ((status = cli_cofferd_call(cc, "asking for the hosts failed", "GET", "/v1/hosts", NULL,
				       &reply)) != CLI_OK)
		goto out;
	if (json) {
		status = cli_print_json(reply);
		goto out;
	}
	/* docs/api.md: "this host"; a list of them is shown too. */
	const json_t *items = json_object_get(reply, "items"), *h;
	size_t i, n = json_is_array(items) ? json_array_size(items) : 1;
	for (i = 0; i < n; i++) {
		h = json_is_array(items) ? json_array_get(items, i) : reply;
		long long cores;
		const json_t *kinds = json_object_get(h, "tee_kinds"), *k;
		size_t j;
		printf("host ");
		cli_put_safe(stdout, cli_str(h, "id"), 0);
		printf(" (");
		cli_put_safe(stdout, cli_str(h, "name"), 0);
		printf(")\n  tee kinds ");
		json_array_foreach(kinds, j, k) {
			if (j)
				putchar(' ');
			cli_put_safe(stdout, json_is_string(k) ? json_string_value(k) : "?", 0);
		}
		if (cf_json_get_int(h, "cores", &cores) == CF_OK)
			printf("\n  cores     %lld", cores);
		printf("\n  memory    ");
		put_size(h, "memory", 0);
		printf("\n  enclave   ");
		put_size(h, "enclave_memory", 0);
		putchar('\n');
	}
out:
	json_decref(reply);
	cf_cofferd_client_free(cc);
	return status;
}

int cmd_instance(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
		{ "create", instance_create, create_usage },
		{ "list", instance_list, list_usage },
		{ "start", instance_start, start_usage },
		{ "stop", instance_stop, start_usage },
		{ "delete", instance_delete, delete_usage },
		{ "hosts", instance_hosts, hosts_usage },
	};
	return cli_dispatch("instance", instance_usage, subs, sizeof(subs) / sizeof(subs[0]), argc,
			    argv);
}
