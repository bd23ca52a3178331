/*
 * The TLS policy shared by coffer's HTTPS clients (https.h).
 */
#include "https.h"

#include <pthread.h>
#include <string.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

cf_err cf_https_global_init(void)
{
	pthread_once(&curl_once, curl_init);
	return curl_init_rc == CURLE_OK ? CF_OK : CF_ERR_IO;
}

cf_err cf_https_check_url(const char *url, size_t *keep)
{
	size_t len = strlen(url);
	if (len < 9 || len > CF_HTTPS_MAX_URL || strncmp(url, "https://", 8) != 0)
		return CF_ERR_ARG;
	while (len > 8 && url[len - 1] == '/')
		len--;
	for (size_t i = 8; i < len; i++) {
		unsigned char ch = (unsigned char)url[i];
		if (ch <= 0x20 || ch >= 0x7f || ch == '/' || ch == '?' || ch == '#' || ch == '@' ||
		    ch == '\\')
			return CF_ERR_ARG;
	}
	if (len == 8)
		return CF_ERR_ARG;
	*keep = len;
	return CF_OK;
}

CURLcode cf_https_pin(CURL *h, struct curl_blob *ca, char *errbuf)
{
	CURLcode e = CURLE_OK;
	/* Only the pinned CA: no file bundle, no CA directory, no system store. */
	if (!e) e = curl_easy_setopt(h, CURLOPT_CAINFO, NULL);
	if (!e) e = curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	if (!e) e = curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, ca);
	if (!e) e = curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	if (!e) e = curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (!e) e = curl_easy_setopt(h, CURLOPT_SSLVERSION,
				    (long)(CURL_SSLVERSION_TLSv1_3 | CURL_SSLVERSION_MAX_DEFAULT));
	if (!e) e = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	if (!e) e = curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	if (!e) e = curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	if (!e) e = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (!e) e = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CF_HTTPS_CONNECT_TIMEOUT);
	if (!e) e = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	if (!e) e = curl_easy_setopt(h, CURLOPT_USERAGENT, "coffer/" COFFER_VERSION);
	return e;
}
