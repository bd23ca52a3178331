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
                               order (how Redis keeps an integer value);
                               "hex:HH.." stands for those raw bytes.
  procmem.py find PID PAT...   where in process PID the patterns are: for
                               each readable mapping holding one, its
                               /proc/PID/maps line, then per pattern the
                               count and the first addresses, and the
                               threads whose stack pointer is in that
                               mapping ("tid T sp=..."). Prints "found N"
                               last (N: matches in all) and exits 1 when N
                               is not 0.
  procmem.py threads PID       one line per thread of PID: "tid T NAME
                               sp=0x... MAPS-LINE", with the thread's name
                               (comm, blanks as "_") and the /proc/PID/maps
                               line of the mapping its stack pointer is in
                               ("tid T NAME running" when it could not be
                               seen).

Exit status 0 (find: 1 when found), or 2 on a usage or access error (no
/proc/PID/mem at all).
"""
import os
import sys
import time

CHUNK = 1 << 20
PAGE = 4096


def readable(pid):
    """Yields (maps line, None, None) at the start of each readable mapping
    of pid, then (maps line, address, bytes) for each piece read from it,
    with bytes None for a page the kernel refused."""
    with open(f"/proc/{pid}/maps") as maps:
        lines = maps.read().splitlines()
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        for line in lines:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if not fields[1].startswith("r") or "[vsyscall]" in line:
                continue
            yield line, None, None  # a new mapping
            addr = lo
            while addr < hi:
                n = min(CHUNK, hi - addr)
                try:
                    data = os.pread(fd, n, addr)
                except OSError:
                    data = b""
                if data:
                    yield line, addr, data
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
                    yield line, addr, page or None
                    addr += PAGE
    finally:
        os.close(fd)


def dump(pid, out):
    total = mappings = skipped = 0
    with open(out, "wb") as dst:
        for _, addr, data in readable(pid):
            if addr is None:
                mappings += 1
            elif data is None:
                skipped += 1
            else:
                dst.write(data)
                total += len(data)
    print(f"bytes={total} mappings={mappings} skipped={skipped}")


def pattern_bytes(p):
    if p.startswith("le64:"):
        return int(p[5:]).to_bytes(8, "little")
    if p.startswith("hex:"):
        return bytes.fromhex(p[4:])
    return p.encode()


def thread_sps(pid):
    """{tid: stack pointer} from /proc/PID/task/TID/syscall (root only;
    threads that are running have none)."""
    sps = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return sps
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/syscall") as f:
                fields = f.read().split()
            # "NR ARG1..ARG6 SP PC" in a system call, "-1 SP PC" when
            # stopped outside one, "running" otherwise.
            if len(fields) >= 3:
                sps[int(tid)] = int(fields[-2], 16)
        except (OSError, ValueError):
            pass
    return sps


def threads(pid):
    with open(f"/proc/{pid}/maps") as maps:
        lines = maps.read().splitlines()
    ranges = [(tuple(int(x, 16) for x in line.split()[0].split("-")), line)
              for line in lines]
    sps = thread_sps(pid)
    # A running thread shows no stack pointer: look again a few times.
    for _ in range(20):
        missing = [int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) not in sps]
        if not missing:
            break
        time.sleep(0.05)
        sps.update(thread_sps(pid))
    for tid in sorted(int(t) for t in os.listdir(f"/proc/{pid}/task")):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = "_".join(f.read().split()) or "-"
        except OSError:
            name = "-"
        sp = sps.get(tid)
        if sp is None:
            print(f"tid {tid} {name} running")
            continue
        where = next((line for (lo, hi), line in ranges if lo <= sp < hi), "(unmapped)")
        print(f"tid {tid} {name} sp={sp:#x} {where}")


def find(pid, patterns):
    pats = [pattern_bytes(p) for p in patterns]
    keep = max(len(p) for p in pats) - 1
    sps = thread_sps(pid)
    total = 0
    hits = {}  # maps line -> [addresses per pattern]
    order = []
    tail = b""
    for line, addr, data in readable(pid):
        if addr is None or data is None:
            tail = b""  # matches never span mappings or unreadable pages
            continue
        buf = tail + data
        base = addr - len(tail)
        for i, p in enumerate(pats):
            start = 0
            while True:
                j = buf.find(p, start)
                if j < 0:
                    break
                if j + len(p) > len(tail):
                    if line not in hits:
                        hits[line] = [[] for _ in pats]
                        order.append(line)
                    hits[line][i].append(base + j)
                    total += 1
                start = j + 1
        tail = buf[-keep:] if keep else b""
    for line in order:
        lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
        print(line)
        for p, found in zip(patterns, hits[line]):
            if found:
                at = " ".join(f"{a:#x}" for a in found[:8])
                more = " ..." if len(found) > 8 else ""
                print(f"  {p} {len(found)} at {at}{more}")
        for tid, sp in sorted(sps.items()):
            if lo <= sp < hi:
                print(f"  tid {tid} sp={sp:#x} (a thread's stack)")
    print(f"found {total}")
    return 1 if total else 0


def count(path, patterns):
    pats = [pattern_bytes(p) for p in patterns]
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
        elif len(argv) == 3 and argv[1] == "threads":
            threads(int(argv[2]))
        elif len(argv) >= 4 and argv[1] == "find":
            return find(int(argv[2]), argv[3:])
        else:
            sys.stderr.write(__doc__)
            return 2
    except (OSError, ValueError) as e:
        sys.stderr.write(f"procmem.py: {e}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
