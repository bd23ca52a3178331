/*
 * tee_probe: an enclave program for the soft TEE tests. It speaks the
 * launcher protocol through lib/tee/soft_client.c and is built without
 * sanitizers, so it can run under the secretmem runtime.
 *
 *   tee_probe report HEX64 FILE   write a report over report_data HEX64
 *   tee_probe seal LABEL          print the sealing key (hex)
 *   tee_probe info                print measurement and instance id (hex)
 *   tee_probe bad                 send a malformed request (expect refusal)
 *   tee_probe wait FILE           wait until FILE exists, then act as "info"
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "coffer/enc.h"
#include "coffer/soft.h"

static void hex(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
	printf("\n");
}

int main(int argc, char **argv)
{
	int fd;
	uint8_t reply[CF_SOFT_REPORT_LEN];
	size_t len = 0;
	if (argc < 2 || cf_soft_fd(&fd) != CF_OK) {
		fprintf(stderr, "tee_probe: not in a soft enclave\n");
		return 3;
	}
	cf_err rc;
	if (strcmp(argv[1], "report") == 0 && argc == 4) {
		uint8_t data[CF_REPORT_DATA_LEN];
		for (size_t i = 0; i < sizeof(data); i++) {
			unsigned v;
			if (strlen(argv[2]) != 128 || sscanf(argv[2] + 2 * i, "%2x", &v) != 1)
				return 2;
			data[i] = (uint8_t)v;
		}
		rc = cf_soft_call(fd, CF_SOFT_MSG_REPORT, data, sizeof(data), reply, sizeof(reply), &len);
		if (rc != CF_OK)
			return 1;
		FILE *f = fopen(argv[3], "wb");
		if (!f || fwrite(reply, 1, len, f) != len || fclose(f) != 0)
			return 1;
		return 0;
	}
	if (strcmp(argv[1], "seal") == 0 && argc == 3) {
		rc = cf_soft_call(fd, CF_SOFT_MSG_SEAL, argv[2], strlen(argv[2]), reply, sizeof(reply), &len);
		if (rc != CF_OK || len != CF_SEAL_KEY_LEN)
			return 1;
		hex(reply, len);
		return 0;
	}
	if (strcmp(argv[1], "wait") == 0 && argc == 3) {
		/* Lets a test change the program file while this instance runs. */
		for (int i = 0; i < 600; i++) {
			FILE *f = fopen(argv[2], "r");
			if (f) {
				fclose(f);
				break;
			}
			usleep(50000);
		}
		argv[1] = "info";
	}
	if (strcmp(argv[1], "info") == 0) {
		rc = cf_soft_call(fd, CF_SOFT_MSG_INFO, NULL, 0, reply, sizeof(reply), &len);
		if (rc != CF_OK || len != 64)
			return 1;
		hex(reply, 48);
		hex(reply + 48, 16);
		return 0;
	}
	if (strcmp(argv[1], "bad") == 0) {
		uint8_t data[10] = { 0 };
		rc = cf_soft_call(fd, CF_SOFT_MSG_REPORT, data, sizeof(data), reply, sizeof(reply), &len);
		printf("%s\n", rc == CF_OK ? "accepted" : "refused");
		return rc == CF_OK ? 1 : 0;
	}
	return 2;
}
