/*
 * Hygon CSV attestation report (V1) verifier.
 *
 * Chain: HRK (pinned, self-signed) -> HSK -> CEK (both from the Hygon
 * KDS as HSK || CEK) -> PEK (inside the report) -> report. Every link is
 * SM2 with SM3, the signer's user_id as the distinguishing ID. The
 * report's signer block (PEK || chip serial || reserved) is bound to the
 * signed part by HMAC-SM3 keyed with the mnonce.
 *
 * Note on anonce: the firmware XORs the TEE info and the signer block
 * with a 4-byte anonce that is not itself signed. The decoded mnonce is
 * therefore only as trustworthy as anonce; a relying party that sent an
 * mnonce passes it as in->mnonce: the "mnonce" check then pins anonce
 * too. Without it that check is "not checked".
 */
#include <stdio.h>
#include <string.h>

#include "coffer/crypto.h"
#include "coffer/enc.h"
#include "coffer/evidence.h"

#include "csv_internal.h"

/*
 * SHA-256 of the Hygon Root Key certificate (832 bytes): wojiaohanliyang/csv-rs
 * src/certs/builtin/hrk.cert at b35dd21be9cf, byte-identical to trustee
 * deps/verifier/src/csv/hrk.cert (staged as testdata/csv/csv-rs/hrk.cert).
 * Its key id is 3ae86a9701355cce333a589de21583d7, user id "HYGON-SSD-HRK".
 */
static const uint8_t hrk_sha256[CF_SHA256_LEN] = {
	0x29, 0x6e, 0xfa, 0x97, 0x58, 0x04, 0x64, 0xac, 0xa0, 0xab, 0x5e, 0xef, 0xe4, 0x21, 0x99, 0xee,
	0x05, 0x86, 0x21, 0x82, 0x50, 0x8d, 0x16, 0x29, 0xf2, 0x9c, 0xf4, 0xdc, 0x17, 0x5b, 0x10, 0xcd,
};

/* A user id for display: printable ASCII kept, anything else as '?'. */
static const char *uid_text(const uint8_t *uid, uint16_t len, char out[static 64])
{
	size_t n = len < 63 ? len : 63;
	for (size_t i = 0; i < n; i++)
		out[i] = uid[i] >= 0x20 && uid[i] < 0x7f && uid[i] != '"' ? (char)uid[i] : '?';
	out[n] = '\0';
	return out;
}

static const char *sig_outcome(cf_err rc)
{
	switch (rc) {
	case CF_OK:
		return "valid";
	case CF_ERR_AUTH:
		return "signature does not verify";
	case CF_ERR_PARSE:
		return "the signer's public key is not a point on the SM2 curve";
	default:
		return cf_strerror(rc);
	}
}

/* Records a signature check of msg by (key, uid) and returns whether it passed. */
static bool check_sig(cf_verdict *v, const char *name, const char *signer, const csv_pubkey *key,
		      const uint8_t *uid, uint16_t uidlen, const uint8_t *msg, size_t msglen,
		      const csv_sig *sig, bool memo, cf_err *internal)
{
	char expected[256], u[64];
	cf_err rc = csv_sm2_verify(key, uid, uidlen, msg, msglen, sig, memo);
	if (rc == CF_ERR_NOMEM || rc == CF_ERR_ARG)
		*internal = rc;
	snprintf(expected, sizeof(expected), "SM2/SM3 signature by the %s (ID \"%s\")", signer,
		 uid_text(uid, uidlen, u));
	cf_verdict_expect(v, name, rc == CF_OK, expected, "%s", sig_outcome(rc));
	return rc == CF_OK;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static void policy_claims(cf_verdict *v, uint32_t p)
{
	json_t *o = json_object();
	if (!o)
		return;
	json_object_set_new(o, "value", json_integer(p));
	json_object_set_new(o, "nodbg", json_boolean(p & CSV_POLICY_NODBG));
	json_object_set_new(o, "noks", json_boolean(p & CSV_POLICY_NOKS));
	json_object_set_new(o, "es", json_boolean(p & CSV_POLICY_ES));
	json_object_set_new(o, "nosend", json_boolean(p & CSV_POLICY_NOSEND));
	json_object_set_new(o, "domain", json_boolean(p & CSV_POLICY_DOMAIN));
	json_object_set_new(o, "csv", json_boolean(p & CSV_POLICY_CSV));
	json_object_set_new(o, "csv3", json_boolean(p & CSV_POLICY_CSV3));
	json_object_set_new(o, "asid_reuse", json_boolean(p & CSV_POLICY_ASID_REUSE));
	json_object_set_new(o, "hsk_version", json_integer((p >> 8) & 0xf));
	json_object_set_new(o, "cek_version", json_integer((p >> 12) & 0xf));
	json_object_set_new(o, "api_major", json_integer((p >> 16) & 0xff));
	json_object_set_new(o, "api_minor", json_integer((p >> 24) & 0xff));
	cf_claims_set(v, "policy", o);
}

static void report_claims(cf_verdict *v, const csv_report *r)
{
	char text[64];
	cf_claims_set(v, "report_version", json_integer(1));
	cf_claims_measurement(v, "digest", r->measure, sizeof(r->measure));
	cf_claims_measurement(v, "vm_id", r->vm_id, sizeof(r->vm_id));
	cf_claims_measurement(v, "vm_version", r->vm_version, sizeof(r->vm_version));
	cf_claims_measurement(v, "user_pubkey_digest", r->user_pubkey_digest,
			      sizeof(r->user_pubkey_digest));
	cf_claims_set_hex(v, "report_data", r->report_data, sizeof(r->report_data));
	cf_claims_set_hex(v, "mnonce", r->mnonce, sizeof(r->mnonce));
	uint8_t anonce[4] = { (uint8_t)r->anonce, (uint8_t)(r->anonce >> 8),
			      (uint8_t)(r->anonce >> 16), (uint8_t)(r->anonce >> 24) };
	cf_claims_set_hex(v, "anonce", anonce, sizeof(anonce)); /* as stored (LE) */
	policy_claims(v, r->policy);
	snprintf(text, sizeof(text), "%u.%u", r->pek.fw_major, r->pek.fw_minor);
	cf_claims_set(v, "pek_firmware_version", json_string(text));
	v->debug = !(r->policy & CSV_POLICY_NODBG);
	cf_claims_set(v, "debug", json_boolean(v->debug));
}

cf_err cf_evidence_verify_csv(const cf_evidence_input *in, cf_verdict *v)
{
	cf_err internal = CF_OK;
	char why[CSV_WHY_LEN], hex[2 * CF_SHA256_LEN + 1], want[2 * CF_SHA256_LEN + 1];
	char sn[2 * CSV_SN_LEN + 1];
	csv_report rep;
	csv_ca_cert hrk, hsk;
	csv_cert cek;
	bool have_rep = false, have_hrk = false, have_hsk = false, have_cek = false;
	cf_err rc;

	if (!in || !v)
		return CF_ERR_ARG;
	cf_verdict_init(v, CF_TEE_CSV);
	if (!v->claims)
		return CF_ERR_NOMEM;
	v->tcb_status = CF_TCB_UNKNOWN;
	cf_claims_set(v, "tcb_status", json_string(cf_tcb_status_name(CF_TCB_UNKNOWN)));

	/* 1. The report itself. */
	rc = csv_report_parse(in->evidence.data, in->evidence.len, &rep, why);
	if (rc == CF_OK) {
		have_rep = true;
		cf_verdict_pass(v, "format", "a %d-byte CSV attestation report V1 (raw firmware form)",
				CSV_REPORT_V1_LEN);
		report_claims(v, &rep);
	} else {
		cf_verdict_fail(v, "format", "a 2548-byte CSV attestation report V1 (raw firmware form)",
				"%s", why);
	}

	/* 2. HRK: pinned and self-signed. */
	cf_hex_encode(hrk_sha256, sizeof(hrk_sha256), want);
	if (!in->hrk.data || !in->hrk.len) {
		cf_verdict_fail(v, "hrk_pinned", want, "%s",
				"no HRK given (the 832-byte Hygon Root Key certificate)");
		cf_verdict_skip(v, "hrk_self_signature", "no HRK given");
	} else {
		uint8_t got[CF_SHA256_LEN];
		if ((rc = cf_hash(CF_SHA256, in->hrk.data, in->hrk.len, got)) != CF_OK)
			return rc;
		cf_hex_encode(got, sizeof(got), hex);
		cf_verdict_expect(v, "hrk_pinned", cf_ct_equal(got, hrk_sha256, sizeof(got)), want,
				  "%s", hex);
		rc = csv_ca_cert_parse(in->hrk.data, in->hrk.len, CSV_USAGE_HRK, &hrk, why);
		if (rc != CF_OK) {
			cf_verdict_fail(v, "hrk_self_signature", "a well-formed self-signed HRK",
					"malformed HRK: %s", why);
		} else if (memcmp(hrk.sig_id, hrk.key_id, CSV_KEY_ID_LEN) != 0) {
			have_hrk = true;
			cf_verdict_fail(v, "hrk_self_signature", "certifying key id == key id",
					"%s", "the HRK names another key as its signer");
		} else {
			have_hrk = true;
			check_sig(v, "hrk_self_signature", "HRK itself", &hrk.key, hrk.uid, hrk.uid_len,
				  hrk.body, CSV_CA_BODY_LEN, &hrk.sig, true, &internal);
		}
	}

	/* 3. HSK <- HRK and CEK <- HSK, from HSK || CEK. */
	if (!in->hsk_cek.data || !in->hsk_cek.len) {
		cf_verdict_fail(v, "hsk_signature", "HSK || CEK (2916 bytes, Hygon KDS)", "%s",
				"none given");
		cf_verdict_skip(v, "cek_signature", "no CEK given");
	} else {
		const uint8_t *p = in->hsk_cek.data;
		size_t len = in->hsk_cek.len;
		size_t hsk_len = len < CSV_CA_CERT_LEN ? len : CSV_CA_CERT_LEN;

		rc = csv_ca_cert_parse(p, hsk_len, CSV_USAGE_HSK, &hsk, why);
		if (rc != CF_OK) {
			cf_verdict_fail(v, "hsk_signature", "a well-formed HSK signed by the HRK",
					"malformed HSK: %s", why);
		} else {
			have_hsk = true;
			if (!have_hrk) {
				cf_verdict_skip(v, "hsk_signature", "no usable HRK");
			} else if (memcmp(hsk.sig_id, hrk.key_id, CSV_KEY_ID_LEN) != 0) {
				cf_hex_encode(hrk.key_id, CSV_KEY_ID_LEN, want);
				cf_hex_encode(hsk.sig_id, CSV_KEY_ID_LEN, hex);
				cf_verdict_fail(v, "hsk_signature", want,
						"HSK certifying key id %s is not the HRK's", hex);
			} else {
				check_sig(v, "hsk_signature", "HRK", &hrk.key, hrk.uid, hrk.uid_len,
					  hsk.body, CSV_CA_BODY_LEN, &hsk.sig, true, &internal);
			}
		}

		rc = csv_cert_parse(p + hsk_len, len - hsk_len, CSV_USAGE_CEK, &cek, why);
		if (rc != CF_OK) {
			cf_verdict_fail(v, "cek_signature", "a well-formed CEK signed by the HSK",
					"malformed CEK (HSK || CEK byte %zu on): %s", hsk_len, why);
		} else {
			const csv_sig_slot *slot = csv_cert_slot(&cek, CSV_USAGE_HSK);
			have_cek = true;
			if (!have_hsk) {
				cf_verdict_skip(v, "cek_signature", "no usable HSK");
			} else if (!slot) {
				cf_verdict_fail(v, "cek_signature",
						"a signature slot of usage 0x0013 (HSK)", "%s", "none");
			} else if (!all_zero(cek.sid, CSV_KEY_ID_LEN) &&
				   memcmp(cek.sid, hsk.key_id, CSV_KEY_ID_LEN) != 0) {
				cf_hex_encode(hsk.key_id, CSV_KEY_ID_LEN, want);
				cf_hex_encode(cek.sid, CSV_KEY_ID_LEN, hex);
				cf_verdict_fail(v, "cek_signature", want,
						"CEK signer id %s is not the HSK's", hex);
			} else {
				check_sig(v, "cek_signature", "HSK", &hsk.key, hsk.uid, hsk.uid_len,
					  cek.body, CSV_CERT_BODY_LEN, &slot->sig, true, &internal);
			}
			snprintf(why, sizeof(why), "%u.%u", cek.fw_major, cek.fw_minor);
			cf_claims_set(v, "cek_firmware_version", json_string(why));
		}
	}
	if (have_hsk)
		cf_claims_set_hex(v, "hsk_key_id", hsk.key_id, CSV_KEY_ID_LEN);

	/* 4. PEK <- CEK, report <- PEK, signer MAC. */
	if (!have_rep) {
		cf_verdict_skip(v, "pek_signature", "the report did not parse");
		cf_verdict_skip(v, "report_signature", "the report did not parse");
		cf_verdict_skip(v, "signer_mac", "the report did not parse");
	} else {
		const csv_sig_slot *slot = csv_cert_slot(&rep.pek, CSV_USAGE_CEK);
		uint8_t mac[CSV_MAC_LEN];

		if (!have_cek)
			cf_verdict_skip(v, "pek_signature", "no usable CEK");
		else if (!slot)
			cf_verdict_fail(v, "pek_signature", "a signature slot of usage 0x1004 (CEK)",
					"%s", "none");
		else
			check_sig(v, "pek_signature", "CEK", &cek.key, cek.uid, cek.uid_len,
				  rep.pek.body, CSV_CERT_BODY_LEN, &slot->sig, true, &internal);

		check_sig(v, "report_signature", "PEK", &rep.pek.key, rep.pek.uid, rep.pek.uid_len,
			  rep.signed_data, CSV_REPORT_SIGNED_LEN, &rep.sig, false, &internal);

		/* The MAC key is the mnonce the guest asked with, as the report carries it. */
		if ((rc = csv_hmac_sm3(rep.mnonce, sizeof(rep.mnonce), rep.mac_data,
				       CSV_SIGNER_MAC_DATA_LEN, mac)) != CF_OK) {
			internal = rc;
			cf_verdict_fail(v, "signer_mac", "HMAC-SM3", "%s", cf_strerror(rc));
		} else {
			cf_verdict_expect(v, "signer_mac", cf_ct_equal(mac, rep.mac, CSV_MAC_LEN),
					  "HMAC-SM3(mnonce, PEK || serial || reserved) == mac", "%s",
					  cf_ct_equal(mac, rep.mac, CSV_MAC_LEN)
						  ? "valid"
						  : "mismatch: PEK, serial or reserved bytes altered");
		}

		bool sn_ok = csv_sn_string(rep.sn, sn);
		cf_verdict_expect(v, "chip_id", sn_ok, "a printable chip serial number, NUL-padded",
				  "%s", sn);
		if (sn_ok)
			cf_claims_set(v, "chip_id", json_string(sn));

		cf_hex_encode(rep.mnonce, sizeof(rep.mnonce), hex);
		if (in->mnonce.data) {
			/* The decoded mnonce shifts with the unsigned anonce: equality pins both. */
			char sent[2 * sizeof(rep.mnonce) + 1] = "";
			bool sized = in->mnonce.len == sizeof(rep.mnonce);
			if (sized)
				cf_hex_encode(in->mnonce.data, in->mnonce.len, sent);
			cf_verdict_expect(v, "mnonce",
					  sized && cf_ct_equal(in->mnonce.data, rep.mnonce,
							       sizeof(rep.mnonce)),
					  sized ? sent : "a 16-byte mnonce", "%s", hex);
		} else {
			cf_verdict_skip(v, "mnonce",
					"no expected mnonce given (--mnonce); compare claims.mnonce "
					"(%s) with the one sent: it also pins the unsigned anonce",
					hex);
		}
	}

	/* The formats carry neither validity periods nor revocation information. */
	cf_verdict_skip(v, "cert_validity", "Hygon CSV certificates carry no validity period");
	cf_verdict_skip(v, "revocation", "no revocation list is published for HSK/CEK");
	return internal;
}
