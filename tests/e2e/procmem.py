#!/usr/bin/env python3
"""Memory-dump helpers for the end-to-end tests (what an attacker with root
on the host, but without kernel code execution, can read).

  procmem.py dump PID OUT      read every readable mapping in /proc/PID/maps
                               from /proc/PID/mem into OUT; ranges the kernel
                               refuses (secretmem, guard pages) are skipped.
                               Prints "bytes=N mappings=M skipped=K"
                               (K: unreadable pages).
  procmem.py count FILE PAT... print "PAT N" per pattern: how many times the
                               bytes PAT occur in FILE. "le64:V" stands for
                               the 8 bytes of the integer V in little-endian
                               order (how Redis keeps an integer value).

Exit status 0, or 2 on a usage or access error (no /proc/PID/mem at all).
"""
import os
import sys

CHUNK = 1 << 20
PAGE = 4096


def dump(pid, out):
    total = mappings = skipped = 0
    with open(f"/proc/{pid}/maps") as maps:
        lines = maps.read().splitlines()
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        with open(out, "wb") as dst:
            for line in lines:
                fields = line.split()
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                if not fields[1].startswith("r") or "[vsyscall]" in line:
                    continue
                mappings += 1
                addr = lo
                while addr < hi:
                    n = min(CHUNK, hi - addr)
                    try:
                        data = os.pread(fd, n, addr)
                    except OSError:
                        data = b""
                    if data:
                        dst.write(data)
                        total += len(data)
                        addr += len(data)
                        continue
                    # Refused (EIO for secretmem): go page by page through
                    # this chunk, keeping whatever is readable.
                    end = addr + n
                    while addr < end:
                        try:
                            page = os.pread(fd, PAGE, addr)
                        except OSError:
                            page = b""
                        if page:
                            dst.write(page)
                            total += len(page)
                        else:
                            skipped += 1
                        addr += PAGE
    finally:
        os.close(fd)
    print(f"bytes={total} mappings={mappings} skipped={skipped}")


def count(path, patterns):
    pats = [int(p[5:]).to_bytes(8, "little") if p.startswith("le64:") else p.encode()
            for p in patterns]
    counts = [0] * len(pats)
    keep = max(len(p) for p in pats) - 1
    tail = b""
    with open(path, "rb") as src:
        while True:
            block = src.read(CHUNK)
            if not block:
                break
            buf = tail + block
            for i, p in enumerate(pats):
                # Count matches that end inside the new block only.
                start = 0
                while True:
                    j = buf.find(p, start)
                    if j < 0:
                        break
                    if j + len(p) > len(tail):
                        counts[i] += 1
                    start = j + 1
            tail = buf[-keep:] if keep else b""
    for p, c in zip(patterns, counts):
        print(f"{p} {c}")


def main(argv):
    try:
        if len(argv) == 4 and argv[1] == "dump":
            dump(int(argv[2]), argv[3])
        elif len(argv) >= 4 and argv[1] == "count":
            count(argv[2], argv[3:])
        else:
            sys.stderr.write(__doc__)
            return 2
    except (OSError, ValueError) as e:
        sys.stderr.write(f"procmem.py: {e}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
