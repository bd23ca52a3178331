/*
 * The enclave side of the soft TEE protocol. Deliberately free of OpenSSL
 * and of malloc, so small test programs and the runtime can use it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coffer/soft.h"

#define MAX_MSG 512

cf_err cf_soft_fd(int *fd)
{
	const char *s = getenv(CF_SOFT_FD_ENV);
	if (!s || !*s)
		return CF_ERR_NOT_FOUND;
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || v < 0 || v > 65535)
		return CF_ERR_PARSE;
	*fd = (int)v;
	return CF_OK;
}

cf_err cf_soft_call(int fd, enum cf_soft_msg type, const void *req, size_t reqlen, void *reply,
		    size_t replycap, size_t *replylen)
{
	uint8_t msg[MAX_MSG];
	if (reqlen > MAX_MSG - 2)
		return CF_ERR_TOO_BIG;
	msg[0] = CF_SOFT_PROTO_VERSION;
	msg[1] = (uint8_t)type;
	if (reqlen)
		memcpy(msg + 2, req, reqlen);
	ssize_t n;
	do {
		n = send(fd, msg, reqlen + 2, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)(reqlen + 2))
		return CF_ERR_IO;
	/*
	 * MSG_TRUNC: the kernel reports a datagram's real length, so a reply
	 * longer than msg is refused instead of silently cut to its first bytes.
	 */
	do {
		n = recv(fd, msg, sizeof(msg), MSG_TRUNC);
	} while (n < 0 && errno == EINTR);
	if (n < 1)
		return CF_ERR_IO;
	if ((size_t)n > sizeof(msg)) {
		memset(msg, 0, sizeof(msg));
		__asm__ __volatile__("" : : "r"(msg) : "memory");
		return CF_ERR_TOO_BIG;
	}
	if (msg[0] != 0) {
		cf_err rc = (cf_err)msg[0];
		return rc == CF_OK ? CF_ERR_PARSE : rc;
	}
	size_t len = (size_t)n - 1;
	if (len > replycap) {
		memset(msg, 0, sizeof(msg));
		return CF_ERR_TOO_BIG;
	}
	if (len)
		memcpy(reply, msg + 1, len); /* reply may be NULL when replycap is 0 */
	/* The reply may be a sealing key. */
	memset(msg, 0, sizeof(msg));
	__asm__ __volatile__("" : : "r"(msg) : "memory");
	*replylen = len;
	return CF_OK;
}
