/*
 * Fuzzes the soft TEE report parser and verifier. The corpus reports were
 * signed by a throwaway platform whose certificate is below, so mutations
 * reach the signature check as well as the parser.
 */
#include <string.h>

#include "coffer/evidence.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char platform_cert[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIB7TCCAXSgAwIBAgIQZXPkluZRPU3f4eTV/Q2fFjAKBggqhkjOPQQDAzA3MQ8w\n"
	"DQYDVQQKDAZjb2ZmZXIxJDAiBgNVBAMMG2NvZmZlciBzb2Z0IFRFRSBwbGF0Zm9y\n"
	"bSB2bTAeFw0yNjExMjYxNzA3NThaFw0zNjExMjMxNzA3NThaMDcxDzANBgNVBAoM\n"
	"BmNvZmZlcjEkMCIGA1UEAwwbY29mZmVyIHNvZnQgVEVFIHBsYXRmb3JtIHZtMHYw\n"
	"EAYHKoZIzj0CAQYFK4EEACIDYgAEvASx9WCzH+OQqebR3RQhMIzbA/FaH2ZCHNBC\n"
	"HinCCPBxshDw1Wxz6efFVm+/zrIXrhihMQ0i1ANqrVjZiQK1vfY7EnM/hMm3evPh\n"
	"7mwCQOAOJnHRuP46GBlQtgKI9TOKo0UwQzASBgNVHRMBAf8ECDAGAQH/AgEAMA4G\n"
	"A1UdDwEB/wQEAwIChDAdBgNVHQ4EFgQUFnVddgG8lbgvb6/lT0Y6PyryvUowCgYI\n"
	"KoZIzj0EAwMDZwAwZAIwTc6gVv/w1XNkMQyyUhid9CR5/6J2lRyIZ9cb1axZOrsQ\n"
	"xtWgT5y/IMO+lLwdpBLZAjAeUDUE1GRWhKqlT58MmvE6uamawbHau/46t7pcMJOJ\n"
	"ELI3cJD1DlcbbHb9V/q8LEs=\n"
	"-----END CERTIFICATE-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cf_evidence_input in;
	cf_verdict v;
	memset(&in, 0, sizeof(in));
	in.kind = CF_TEE_SOFT;
	in.evidence = (cf_blob){ data, size };
	in.platform_cert = (cf_blob){ (const uint8_t *)platform_cert, sizeof(platform_cert) - 1 };
	if (cf_evidence_verify(&in, &v) != CF_OK)
		return 0;
	(void)!cf_policy_apply(NULL, 0, &v);
	(void)cf_verdict_ok(&v);
	cf_verdict_free(&v);
	return 0;
}
