#!/bin/sh
# `coffer evidence verify` on every real published set (tests/data/README.md)
# gives its documented outcome: exit status, verdict and the deciding check.
set -eu
bin=${COFFER_BIN:?}
td=${COFFER_TESTDATA:?}
coffer=$bin/coffer
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
failed=0
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failed=1; }

# expect NAME STATUS CHECK_OR_- ARGS...: exit STATUS; when STATUS is 1, the
# one-line reason names CHECK (the first failed check).
expect() {
	name=$1 want=$2 check=$3
	shift 3
	set +e
	"$coffer" evidence verify "$@" >"$tmp/out.json" 2>"$tmp/err"
	rc=$?
	set -e
	if [ "$rc" != "$want" ]; then
		not_ok "$name: exit $rc, want $want ($(cat "$tmp/err"))"
		return
	fi
	if [ "$check" != - ] && ! grep -q "^coffer: not verified: $check:" "$tmp/err"; then
		not_ok "$name: reason is not '$check': $(cat "$tmp/err")"
		return
	fi
	if ! python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert isinstance(d['verified'], bool) and d['checks']" "$tmp/out.json" 2>/dev/null; then
		not_ok "$name: output is not a verdict"
		return
	fi
	ok "$name"
}
# field NAME PYEXPR VALUE: a value of the last verdict
field() {
	got=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$tmp/out.json")
	[ "$got" = "$3" ] && ok "$1" || not_ok "$1 (got '$got', want '$3')"
}

snp=$td/snp
expect "S2 snp verifies" 0 - --type snp --evidence "$snp/trustee/test-report.bin" \
	--vcek "$snp/trustee/test-vcek.der" --chain "$snp/trustee/certs/milan_ask_ark_asvk.pem" --at 2025-06-01T00:00:00Z
field "S2 claims a measurement" "len(d['claims']['measurements']['measurement'])" 96
expect "S1 snp is a debug guest: refused" 1 debug --type snp --evidence "$snp/go-sev-guest/attestation.bin" \
	--vcek "$snp/go-sev-guest/vcek.testcer" --chain "$snp/go-sev-guest/trust/ask_ark_milan.pem" --at 2025-06-01T00:00:00Z
echo '{"allow_debug": true}' >"$tmp/debug-ok.json"
expect "S1 with a policy allowing debug" 0 - --type snp --evidence "$snp/go-sev-guest/attestation.bin" \
	--vcek "$snp/go-sev-guest/vcek.testcer" --chain "$snp/go-sev-guest/trust/ask_ark_milan.pem" \
	--at 2025-06-01T00:00:00Z --policy "$tmp/debug-ok.json"
expect "S3 snp VLEK verifies in its window" 0 - --type snp --evidence "$snp/trustee/test-vlek-report.bin" \
	--vcek "$snp/trustee/test-vlek.der" --chain "$snp/trustee/certs/milan_ask_ark_asvk.pem" --at 2025-06-01T00:00:00Z
expect "S3 after the VLEK expired" 1 cert_validity --type snp --evidence "$snp/trustee/test-vlek-report.bin" \
	--vcek "$snp/trustee/test-vlek.der" --chain "$snp/trustee/certs/milan_ask_ark_asvk.pem" --at 2026-06-01T00:00:00Z
python3 -c "import sys; open(sys.argv[2],'wb').write(bytes.fromhex(open(sys.argv[1]).read().strip()))" \
	"$snp/virtee-sev/report_milan.hex" "$tmp/s6.bin"
expect "S6 snp verifies" 0 - --type snp --evidence "$tmp/s6.bin" \
	--vcek "$snp/virtee-sev/vcek_milan.der" --chain "$snp/virtee-sev/cert_chain_milan" --at 2025-06-01T00:00:00Z
for bad in legacy new; do
	expect "broken VCEK ($bad) refused" 1 vcek_signature --type snp --evidence "$snp/trustee/test-report.bin" \
		--vcek "$snp/trustee/test-vcek-invalid-$bad.der" --chain "$snp/trustee/certs/milan_ask_ark_asvk.pem" --at 2025-06-01T00:00:00Z
done
python3 -c "import sys; d=bytearray(open(sys.argv[1],'rb').read()); d[0x90]^=1; open(sys.argv[2],'wb').write(d)" \
	"$snp/trustee/test-report.bin" "$tmp/s2-flip.bin"
expect "S2 with a flipped measurement bit" 1 report_signature --type snp --evidence "$tmp/s2-flip.bin" \
	--vcek "$snp/trustee/test-vcek.der" --chain "$snp/trustee/certs/milan_ask_ark_asvk.pem" --at 2025-06-01T00:00:00Z
echo '{"measurements": {"measurement": ["00"]}}' >"$tmp/wrong-m.json"
expect "S2 with a wrong reference measurement" 1 policy_measurement_measurement --type snp \
	--evidence "$snp/trustee/test-report.bin" --vcek "$snp/trustee/test-vcek.der" \
	--chain "$snp/trustee/certs/milan_ask_ark_asvk.pem" --at 2025-06-01T00:00:00Z --policy "$tmp/wrong-m.json"

tdx=$td/tdx
expect "T1 tdx UpToDate" 0 - --type tdx --evidence "$tdx/dcap-qvl/tdx_quote" \
	--collateral "$tdx/dcap-qvl/tdx_quote_collateral.json" --at 2025-07-01T00:00:00Z
field "T1 tcb_status" "d['tcb_status']" UpToDate
d=$tdx/dcap-qvl/tdx_quote.collateral.derived
# PCS response bodies, as PCS and PCCS serve them, from the split-out signed bytes and signatures.
pcs_body() {
	python3 -c "import sys; raw=open(sys.argv[2]).read(); sig=open(sys.argv[3],'rb').read().hex(); open(sys.argv[4],'w').write('{\"%s\":%s,\"signature\":\"%s\"}' % (sys.argv[1], raw, sig))" "$@"
}
pcs_body tcbInfo "$d/tcb_info.json" "$d/tcb_info.sig.bin" "$tmp/tcb_info.json"
pcs_body enclaveIdentity "$d/qe_identity.json" "$d/qe_identity.sig.bin" "$tmp/qe_identity.json"
expect "T1 with split-out collateral" 0 - --type tdx --evidence "$tdx/dcap-qvl/tdx_quote" \
	--tcb-info "$tmp/tcb_info.json" --qe-identity "$tmp/qe_identity.json" --tcb-chain "$d/tcb_info_issuer_chain.pem" \
	--pck-crl "$d/pck_crl.der" --root-crl "$d/root_ca_crl.der" --at 2025-07-01T00:00:00Z
expect "T2 tdx has no matching TCB level" 1 tcb_level --type tdx --evidence "$tdx/dcap-qvl/tdx_quote_outdated" \
	--collateral "$tdx/dcap-qvl/tdx_quote_outdated_collateral.json" --at 2026-03-01T00:00:00Z
expect "T1 as sgx is the wrong kind" 1 - --type sgx --evidence "$tdx/dcap-qvl/tdx_quote" \
	--collateral "$tdx/dcap-qvl/tdx_quote_collateral.json" --at 2025-07-01T00:00:00Z
expect "T1 outside its collateral window" 1 - --type tdx --evidence "$tdx/dcap-qvl/tdx_quote" \
	--collateral "$tdx/dcap-qvl/tdx_quote_collateral.json" --at 2026-01-01T00:00:00Z

g=$tdx/go-tdx-guest
tdx_go() {
	"$@" --tcb-info "$g/sample_tcbInfo_response" --qe-identity "$g/sample_qeIdentity_response" \
		--tcb-chain "$g/tcb_info_issuer_chain.derived.pem" --pck-crl "$g/pckcrl" --root-crl "$g/rootcrl.der" \
		--root-ca "$g/trusted_root.pem" --at 2023-06-25T00:00:00Z
}
tdx_go expect "T4 tdx debug TD refused" 1 debug --type tdx --evidence "$tdx/trustee/tdx_quote_4.dat"
tdx_go expect "T5 tdx fails" 1 - --type tdx --evidence "$g/tdx_prod_quote_SPR_E4.dat"
field "T5 has no matching TCB level" "[c['result'] for c in d['checks'] if c['name']=='tcb_level'][0]" fail

sgx=$td/sgx
expect "G1 sgx verifies with its TCB status" 0 - --type sgx --evidence "$sgx/dcap-qvl/sgx_quote" \
	--collateral "$sgx/dcap-qvl/sgx_quote_collateral.json" --at 2025-07-01T00:00:00Z
field "G1 tcb_status" "d['tcb_status']" ConfigurationAndSWHardeningNeeded
field "G1 advisories" "','.join(sorted(d['claims']['advisories']))" "INTEL-SA-00289,INTEL-SA-00615"
echo '{"min_tcb_status": "UpToDate"}' >"$tmp/uptodate.json"
expect "G1 under a policy requiring UpToDate" 1 policy_tcb_status --type sgx --evidence "$sgx/dcap-qvl/sgx_quote" \
	--collateral "$sgx/dcap-qvl/sgx_quote_collateral.json" --at 2025-07-01T00:00:00Z --policy "$tmp/uptodate.json"

csv=$td/csv/csv-rs
expect "C1 csv verifies" 0 - --type csv --evidence "$csv/report.cert" --hrk "$csv/hrk.cert" --hsk-cek "$csv/hsk_cek.cert"
expect "C1 with the mnonce that was sent" 0 - --type csv --evidence "$csv/report.cert" --hrk "$csv/hrk.cert" \
	--hsk-cek "$csv/hsk_cek.cert" --mnonce 67c6697351ff4aec29cdbaabf2fbe346
expect "C1 with another mnonce" 1 mnonce --type csv --evidence "$csv/report.cert" --hrk "$csv/hrk.cert" \
	--hsk-cek "$csv/hsk_cek.cert" --mnonce 00000000000000000000000000000000

# usage errors
set +e
"$coffer" evidence verify --type nope --evidence "$csv/report.cert" 2>/dev/null; rc=$?
set -e
[ $rc = 2 ] && ok "unknown --type is a usage error" || not_ok "unknown --type is a usage error (exit $rc)"
exit $failed
