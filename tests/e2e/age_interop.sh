#!/bin/sh
# Interoperability of `coffer age` with the stock age 1.x tools (age,
# age-keygen): files made by either one open with the other, binary and
# armored, for chunk-boundary sizes, several recipients, recipients files,
# each tool's identity files, and passphrases (stock age reads those only
# from a terminal, so it is driven through a pseudo-terminal by python3).
#
# Run as `sh age_interop.sh` with COFFER_BIN set to the folder holding
# `coffer`. POSIX sh; prints one "ok - ..." / "not ok - ..." line per check
# and exits 1 if any check failed.
set -eu
LC_ALL=C
export LC_ALL

: "${COFFER_BIN:=$(cd "$(dirname "$0")/../.." && pwd)/build/bin}"
COFFER=$COFFER_BIN/coffer
AGE=${AGE:-age}
AGE_KEYGEN=${AGE_KEYGEN:-age-keygen}

T=$(mktemp -d "${TMPDIR:-/tmp}/coffer-interop.XXXXXX")
trap 'rm -rf "$T"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
umask 022

npass=0
nfail=0
nskip=0

ok() {
	npass=$((npass + 1))
	echo "ok - $1"
}

skip() {
	nskip=$((nskip + 1))
	echo "ok - $1 # SKIP $2"
}

# not_ok DESC: reports the failure with the stderr of the steps of the check.
not_ok() {
	nfail=$((nfail + 1))
	echo "not ok - $1"
	if [ -s "$T/step.log" ]; then
		head -n 6 "$T/step.log" | sed 's/^/#   /'
	fi
}

# check DESC CMD...: one check line; ok when CMD succeeds.
check() {
	_desc=$1
	shift
	: >"$T/step.log"
	if "$@"; then ok "$_desc"; else not_ok "$_desc"; fi
}

# c ARGS...: coffer, stdin from /dev/null, stderr to the step log.
c() {
	_rc=0
	timeout 120 "$COFFER" "$@" </dev/null 2>>"$T/step.log" || _rc=$?
	[ "$_rc" -eq 0 ] || echo "coffer $* -> exit $_rc" >>"$T/step.log"
	return "$_rc"
}

# cin INPUT ARGS...: coffer with stdin from INPUT.
cin() {
	_in=$1
	shift
	_rc=0
	timeout 120 "$COFFER" "$@" <"$_in" 2>>"$T/step.log" || _rc=$?
	[ "$_rc" -eq 0 ] || echo "coffer $* <$_in -> exit $_rc" >>"$T/step.log"
	return "$_rc"
}

# a ARGS...: stock age. Its -d -o creates no file for an empty plaintext
# (it opens the output lazily), so decryptions here write to stdout.
a() {
	_rc=0
	timeout 120 "$AGE" "$@" </dev/null 2>>"$T/step.log" || _rc=$?
	[ "$_rc" -eq 0 ] || echo "age $* -> exit $_rc" >>"$T/step.log"
	return "$_rc"
}

same() {
	cmp "$1" "$2" >>"$T/step.log" 2>&1
}

pubkey_of() { sed -n 's/^# public key: //p' "$1"; }

if [ ! -x "$COFFER" ]; then
	echo "not ok - coffer executable at $COFFER"
	echo "age_interop: 0 passed, 1 failed"
	exit 1
fi
if ! command -v "$AGE" >/dev/null 2>&1 || ! command -v "$AGE_KEYGEN" >/dev/null 2>&1; then
	echo "not ok - stock age and age-keygen on PATH (Debian package 'age')"
	echo "age_interop: 0 passed, 1 failed"
	exit 1
fi

# ---------------------------------------------------------------- identities
# C1, C3 from coffer keygen; A2, A4 from age-keygen.
c age keygen -o "$T/c1.key" 2>/dev/null || true
c age keygen -o "$T/c3.key" 2>/dev/null || true
"$AGE_KEYGEN" -o "$T/a2.key" 2>/dev/null
"$AGE_KEYGEN" -o "$T/a4.key" 2>/dev/null
C1=$(pubkey_of "$T/c1.key" 2>/dev/null || true)
C3=$(pubkey_of "$T/c3.key" 2>/dev/null || true)
A2=$(pubkey_of "$T/a2.key")
A4=$(pubkey_of "$T/a4.key")

age_y_of_coffer_key() {
	[ -n "$C1" ] && [ "$("$AGE_KEYGEN" -y "$T/c1.key" 2>>"$T/step.log")" = "$C1" ]
}
check "age-keygen -y reads a coffer identity file and agrees with its public key" age_y_of_coffer_key

coffer_recipient_of_age_key() {
	[ "$(c age recipient "$T/a2.key")" = "$A2" ]
}
check "coffer age recipient reads an age-keygen identity file" coffer_recipient_of_age_key

# ---------------------------------------------------------------- sizes
# (a) coffer encrypt -> age -d: binary to C1 (age reads coffer's identity
#     file), armored to A2.
# (b) age encrypt -> coffer decrypt: binary to A2 (coffer reads age-keygen's
#     identity file), armored to C1.
coffer_to_age() { # PT ARMOR RECIPIENT IDENTITY
	rm -f "$T/x.age" "$T/x.out"
	# shellcheck disable=SC2086
	c age encrypt $2 -r "$3" -o "$T/x.age" "$1" &&
		a -d -i "$4" "$T/x.age" >"$T/x.out" &&
		same "$1" "$T/x.out"
}

age_to_coffer() { # PT ARMOR RECIPIENT IDENTITY
	rm -f "$T/x.age" "$T/x.out"
	# shellcheck disable=SC2086
	a $2 -r "$3" -o "$T/x.age" "$1" &&
		c age decrypt -i "$4" -o "$T/x.out" "$T/x.age" &&
		same "$1" "$T/x.out"
}

age_to_coffer_stdio() { # PT ARMOR RECIPIENT IDENTITY, through stdin/stdout
	rm -f "$T/x.age" "$T/x.out"
	# shellcheck disable=SC2086
	a $2 -r "$3" -o "$T/x.age" "$1" &&
		cin "$T/x.age" age decrypt -i "$4" >"$T/x.out" &&
		same "$1" "$T/x.out"
}

coffer_to_age_stdio() { # PT ARMOR RECIPIENT IDENTITY, through stdin/stdout
	rm -f "$T/x.age" "$T/x.out"
	# shellcheck disable=SC2086
	cin "$1" age encrypt $2 -r "$3" >"$T/x.age" &&
		a -d -i "$4" "$T/x.age" >"$T/x.out" &&
		same "$1" "$T/x.out"
}

for size in 0 1 65535 65536 65537 10485760; do
	head -c "$size" /dev/urandom >"$T/pt"
	check "size $size: coffer encrypt -> age -d (binary)" coffer_to_age "$T/pt" "" "$C1" "$T/c1.key"
	check "size $size: coffer encrypt -a -> age -d (armored)" coffer_to_age "$T/pt" -a "$A2" "$T/a2.key"
	check "size $size: age -> coffer decrypt (binary)" age_to_coffer "$T/pt" "" "$A2" "$T/a2.key"
	check "size $size: age -a -> coffer decrypt (armored)" age_to_coffer "$T/pt" -a "$C1" "$T/c1.key"
done
# The last plaintext (10 MiB) is reused through stdin/stdout.
check "10 MiB: age -a -> coffer decrypt, stdin/stdout" age_to_coffer_stdio "$T/pt" -a "$A4" "$T/a4.key"
check "10 MiB: coffer encrypt stdin/stdout -> age -d" coffer_to_age_stdio "$T/pt" "" "$A4" "$T/a4.key"

# ---------------------------------------------------------------- recipients
head -c 70000 /dev/urandom >"$T/pt"

# Three recipients, from both keygens: C1 (coffer), A2 (age), C3 (coffer).
c age encrypt -r "$C1" -r "$A2" -r "$C3" -o "$T/m.age" "$T/pt" || true
three_stanzas() { [ "$(grep -a -c '^-> X25519 ' "$1" 2>>"$T/step.log")" = 3 ]; }
check "coffer encrypt to three recipients: three X25519 stanzas" three_stanzas "$T/m.age"
age_opens() { # CIPHERTEXT IDENTITY
	rm -f "$T/x.out"
	a -d -i "$2" "$1" >"$T/x.out" && same "$T/pt" "$T/x.out"
}
coffer_opens() { # CIPHERTEXT IDENTITY
	rm -f "$T/x.out"
	c age decrypt -i "$2" -o "$T/x.out" "$1" && same "$T/pt" "$T/x.out"
}
for k in c1 a2 c3; do
	check "coffer encrypt to three recipients: age -d -i $k.key" age_opens "$T/m.age" "$T/$k.key"
	check "coffer encrypt to three recipients: coffer decrypt -i $k.key" coffer_opens "$T/m.age" "$T/$k.key"
done
age_refuses() { # CIPHERTEXT IDENTITY
	! "$AGE" -d -i "$2" -o "$T/none.out" "$1" </dev/null 2>/dev/null
}
check "coffer encrypt to three recipients: age -d -i a4.key (not a recipient) fails" \
	age_refuses "$T/m.age" "$T/a4.key"

a -r "$C1" -r "$A2" -r "$C3" -o "$T/n.age" "$T/pt" || true
for k in c1 a2 c3; do
	check "age to three recipients: coffer decrypt -i $k.key" coffer_opens "$T/n.age" "$T/$k.key"
done

cat "$T/a4.key" "$T/c3.key" >"$T/two.key" 2>/dev/null || true
check "age to three recipients: coffer decrypt with a two-identity file (second matches)" \
	coffer_opens "$T/n.age" "$T/two.key"
check "coffer to three recipients: age -d with that two-identity file" age_opens "$T/m.age" "$T/two.key"

{
	echo "# recipients of the interop test"
	echo "$C1"
	echo
	echo "# from age-keygen"
	echo "$A2"
	echo
	echo "$C3"
} >"$T/recipients.txt"
c age encrypt -R "$T/recipients.txt" -o "$T/r.age" "$T/pt" || true
check "coffer encrypt -R (comments, blank lines): three stanzas" three_stanzas "$T/r.age"
for k in c1 a2 c3; do
	check "coffer encrypt -R: age -d -i $k.key" age_opens "$T/r.age" "$T/$k.key"
done
a -R "$T/recipients.txt" -o "$T/s.age" "$T/pt" || true
for k in c1 a2 c3; do
	check "age -R: coffer decrypt -i $k.key" coffer_opens "$T/s.age" "$T/$k.key"
done
a -a -R "$T/recipients.txt" -o "$T/s.asc" "$T/pt" || true
check "age -a -R: coffer decrypt -i a2.key" coffer_opens "$T/s.asc" "$T/a2.key"
c age encrypt -a -R "$T/recipients.txt" -o "$T/r.asc" "$T/pt" || true
check "coffer encrypt -a -R: age -d -i c3.key" age_opens "$T/r.asc" "$T/c3.key"

# ---------------------------------------------------------------- passphrases
# Stock age reads a passphrase only from /dev/tty; drive it through a
# pseudo-terminal: answer each "...passphrase...:" prompt with PASSPHRASE.
cat >"$T/pty_drive.py" <<'EOF'
import os, pty, select, sys, time

pw = sys.argv[1].encode()
argv = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
seen = b""
answered = 0
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    r, _, _ = select.select([fd], [], [], 0.2)
    if not r:
        continue
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    seen += data
    if (seen.lower().count(b"passphrase") > answered
            and seen.rstrip().endswith(b":")):
        answered += 1
        os.write(fd, pw + b"\n")
else:
    os.kill(pid, 9)
sys.stderr.buffer.write(seen)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
EOF

PW='correct horse battery staple'
printf '%s\n' "$PW" >"$T/pw"

# tty_age PASSPHRASE ARGS...: stock age with its terminal answered.
tty_age() {
	_pw=$1
	shift
	timeout 120 python3 "$T/pty_drive.py" "$_pw" "$AGE" "$@" >>"$T/step.log" 2>&1
}

head -c 100000 /dev/urandom >"$T/pt"
pty_ok=no
if command -v python3 >/dev/null 2>&1 &&
	tty_age "$PW" -p -o "$T/probe.age" "$T/pt" 2>/dev/null &&
	tty_age "$PW" -d -o "$T/probe.out" "$T/probe.age" 2>/dev/null &&
	cmp -s "$T/pt" "$T/probe.out"; then
	pty_ok=yes
fi

age_p_to_coffer() {
	coffer_opens_pw "$T/probe.age"
}
coffer_opens_pw() { # CIPHERTEXT
	rm -f "$T/x.out"
	c age decrypt -p --passphrase-file "$T/pw" -o "$T/x.out" "$1" && same "$T/pt" "$T/x.out"
}
coffer_p_to_age() { # ARMOR
	rm -f "$T/x.age" "$T/x.out"
	# shellcheck disable=SC2086
	c age encrypt $1 -p --passphrase-file "$T/pw" --work-factor 10 -o "$T/x.age" "$T/pt" &&
		tty_age "$PW" -d -o "$T/x.out" "$T/x.age" &&
		same "$T/pt" "$T/x.out"
}
age_rejects_wrong_pw() {
	rm -f "$T/x.age" "$T/x.out"
	c age encrypt -p --passphrase-file "$T/pw" --work-factor 10 -o "$T/x.age" "$T/pt" &&
		! tty_age "wrong $PW" -d -o "$T/x.out" "$T/x.age"
}

if [ "$pty_ok" = yes ]; then
	check "age -p (work factor 18, via pty) -> coffer decrypt -p --passphrase-file" age_p_to_coffer
	check "coffer encrypt -p --work-factor 10 -> age -d (via pty)" coffer_p_to_age ""
	check "coffer encrypt -a -p --work-factor 10 -> age -d (via pty)" coffer_p_to_age -a
	check "coffer encrypt -p -> age -d with a wrong passphrase fails" age_rejects_wrong_pw
else
	why="stock age could not be driven through a pseudo-terminal here"
	skip "age -p -> coffer decrypt -p --passphrase-file" "$why"
	skip "coffer encrypt -p -> age -d" "$why"
	skip "coffer encrypt -a -p -> age -d" "$why"
	skip "coffer encrypt -p -> age -d with a wrong passphrase fails" "$why"
fi

echo "age_interop: $npass passed, $nfail failed, $nskip skipped"
[ "$nfail" -eq 0 ]
