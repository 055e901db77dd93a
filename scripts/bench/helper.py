#!/usr/bin/env python3
"""helper.py - small-file workloads, fio parsing and the report for bench.sh.

Python 3 standard library only. Subcommands:

  mkfiles DIR NDIRS NFILES KIB   create NFILES files of KIB KiB spread over
                                 NDIRS folders, each written and fsync()ed;
                                 prints the elapsed seconds
  readfiles DIR NDIRS NFILES     read every file made by mkfiles; prints the
                                 elapsed seconds (fails on a short read)
  mkempty DIR NDIRS NFILES       create NFILES empty files over NDIRS folders
                                 (no fsync); prints the elapsed seconds
  phases DIR NDIRS NFILES KIB    mkfiles, printing the time per file spent in
                                 open, write, fsync and close
  readphases DIR NDIRS NFILES    readfiles, printing the time per file spent
                                 in open, read and close (drop caches first)
  roundtrip FILE N               N lgetxattr(FILE, "security.selinux"): the
                                 mean time of one request on a FUSE mount
  memphase DIR NDIRS NFILES PID TARGET OUT.tsv
                                 the memory phase (see memphase())
  fioiops JSON                   read+write IOPS from fio --output-format=json
  report RAW.tsv TARGETS WORKLOADS [MEM.tsv]
                                 medians per workload and target, as Markdown
"""

import json
import os
import statistics
import sys
import time


def _name(d, i):
    return os.path.join("d%03d" % d, "f%05d" % i)


def _layout(ndirs, nfiles):
    """(dir index, file index) pairs: files dealt round-robin to folders."""
    return [(i % ndirs, i) for i in range(nfiles)]


def mkfiles(root, ndirs, nfiles, kib, phases=None):
    """phases, when a list of 4 numbers: adds the seconds spent in open,
    write, fsync and close to it."""
    size = kib * 1024
    clock = time.perf_counter if phases is not None else (lambda: 0.0)
    # One random buffer, a different window of it per file: no two files
    # are equal and nothing is compressible, without paying for
    # os.urandom() inside the timed part.
    pool = os.urandom(size + 4096)
    t0 = time.perf_counter()
    os.makedirs(root, exist_ok=True)
    for d in range(ndirs):
        os.mkdir(os.path.join(root, "d%03d" % d))
    for d, i in _layout(ndirs, nfiles):
        off = (i * 16) % 4096
        c0 = clock()
        fd = os.open(os.path.join(root, _name(d, i)), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        c1 = clock()
        try:
            view = memoryview(pool)[off:off + size]
            while view:
                n = os.write(fd, view)
                view = view[n:]
            c2 = clock()
            os.fsync(fd)
            c3 = clock()
        finally:
            os.close(fd)
        if phases is not None:
            for k, dt in enumerate((c1 - c0, c2 - c1, c3 - c2, clock() - c3)):
                phases[k] += dt
    return time.perf_counter() - t0


def roundtrip(path, n):
    """Mean seconds of one lgetxattr(path, "security.selinux"): on a FUSE
    mount one request and its reply, whatever the answer."""
    t0 = time.perf_counter()
    for _ in range(n):
        try:
            os.getxattr(path, "security.selinux", follow_symlinks=False)
        except OSError:
            pass
    return (time.perf_counter() - t0) / n


def readfiles(root, ndirs, nfiles, phases=None):
    """phases, when a list of 3 numbers: adds the seconds spent in open,
    read and close to it."""
    clock = time.perf_counter if phases is not None else (lambda: 0.0)
    total = 0
    t0 = time.perf_counter()
    for d, i in _layout(ndirs, nfiles):
        c0 = clock()
        fd = os.open(os.path.join(root, _name(d, i)), os.O_RDONLY)
        c1 = clock()
        try:
            while True:
                b = os.read(fd, 1 << 20)
                if not b:
                    break
                total += len(b)
            c2 = clock()
        finally:
            os.close(fd)
        if phases is not None:
            for k, dt in enumerate((c1 - c0, c2 - c1, clock() - c2)):
                phases[k] += dt
    el = time.perf_counter() - t0
    return el, total


def mkempty(root, ndirs, nfiles):
    t0 = time.perf_counter()
    os.makedirs(root, exist_ok=True)
    for d in range(ndirs):
        os.mkdir(os.path.join(root, "d%03d" % d))
    for d, i in _layout(ndirs, nfiles):
        os.close(os.open(os.path.join(root, _name(d, i)), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    return time.perf_counter() - t0


def _status_kb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _nfds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def _fd_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                v = line.split()[3]
                return None if v == "unlimited" else int(v)
    return None


def _drop(level):
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("%d\n" % level)


def _slope(points):
    """Least-squares slope of y over x, or None."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sxx


def memphase(root, ndirs, nfiles, pid, target, out):
    """Create nfiles empty files in ndirs folders, drop the caches, ls -lR
    the tree; track the daemon's VmHWM, VmRSS and open descriptors.

    A daemon that keeps one descriptor per inode the kernel remembers
    (passthrough_ll, and ekycfs before b45e086) cannot hold the whole tree
    when its open-file limit is below the tree size: then, whenever it
    holds more than half its limit, the kernel's dentries and inodes are
    dropped (echo 2 > drop_caches, which makes the kernel FORGET them) and
    the tree is listed one folder at a time. The mode column says which
    happened."""
    import subprocess

    limit = _fd_limit(pid)
    need = nfiles + ndirs + 1024
    threshold = None if limit is None or limit >= need else limit // 2
    print("    %s: fd limit %s%s" % (target, limit, "" if threshold is None else
                                      ", dropping the kernel's inodes above %d open fds" % threshold),
          file=sys.stderr)
    hwm0 = _status_kb(pid, "VmHWM")
    per = [nfiles // ndirs + (1 if d < nfiles % ndirs else 0) for d in range(ndirs)]
    os.makedirs(root, exist_ok=True)
    points, drops, maxfds, secs, made = [], 0, 0, 0.0, 0
    rss0 = _status_kb(pid, "VmRSS")
    if rss0 is not None:
        points.append((0, rss0))
    for d in range(ndirs):
        t0 = time.perf_counter()
        dd = os.path.join(root, "d%03d" % d)
        try:
            os.mkdir(dd)
            for i in range(per[d]):
                os.close(os.open(os.path.join(dd, "f%06d" % i),
                                 os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                made += 1
        except OSError as e:
            print("    %s: create failed after %d files: %s" % (target, made, e), file=sys.stderr)
            break
        finally:
            secs += time.perf_counter() - t0
        fds, rss = _nfds(pid), _status_kb(pid, "VmRSS")
        if fds is None or rss is None:
            print("    %s: daemon gone" % target, file=sys.stderr)
            break
        maxfds = max(maxfds, fds)
        if drops == 0:
            points.append((made, rss))
        if threshold is not None and fds > threshold:
            _drop(2)
            drops += 1
        if (d + 1) % 20 == 0:
            print("    %s: %d files, %d fds, VmRSS %d kB" % (target, made, fds, rss), file=sys.stderr)
    hwm1 = _status_kb(pid, "VmHWM")
    _drop(3)
    listed = errors = 0
    t0 = time.perf_counter()
    # One ls -lR of the whole tree, unless the daemon needed cache drops to
    # get through the creates: then one folder at a time, dropping between.
    whole = threshold is None or drops == 0
    dirs = [root] if whole else [os.path.join(root, "d%03d" % d) for d in range(ndirs)]
    for dd in dirs:
        p = subprocess.run(["ls", "-lR", dd], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        listed += sum(1 for line in p.stdout.splitlines() if line.startswith(b"-"))
        errors += len(p.stderr.splitlines())
        fds = _nfds(pid)
        if fds is not None:
            maxfds = max(maxfds, fds)
            if threshold is not None and fds > threshold:
                _drop(2)
                drops += 1
    lsecs = time.perf_counter() - t0
    hwm2, rss = _status_kb(pid, "VmHWM"), _status_kb(pid, "VmRSS")
    slope = _slope(points)  # kB of RSS per file created, before any drop
    if not whole:
        mode = "forget at %d fds: %d cache drops, ls per folder" % (threshold, drops)
    else:
        mode = "whole tree"
    if listed != made or errors:
        print("    %s: ls -lR listed %d of %d files, %d error lines" % (target, listed, made, errors),
              file=sys.stderr)
    row = [target, made, limit if limit is not None else "unlimited", mode,
           "%.1f" % (made / secs if secs else 0), "%.3f" % lsecs, errors,
           hwm0, hwm1, hwm2, rss, maxfds, "%.0f" % (slope * 1024) if slope is not None else "NA"]
    with open(out, "a") as f:
        f.write("\t".join(str(x) for x in row) + "\n")
    print("    %s: %d files created in %.1f s, ls -lR %.1f s, %d cache drops; VmHWM %s -> %s -> %s kB, "
          "VmRSS %s kB, max %d fds, RSS +%s bytes per file created" % (
              target, made, secs, lsecs, drops, hwm0, hwm1, hwm2, rss, maxfds,
              row[-1]), file=sys.stderr)
    return 0 if made == nfiles and listed == made and not errors else 1


def fioiops(path):
    with open(path) as f:
        text = f.read()
    # fio may print notes before the JSON document.
    doc = json.loads(text[text.index("{"):])
    job = doc["jobs"][0]
    return job["read"]["iops"] + job["write"]["iops"]


# ---- report ----

LABELS = {
    "seqwrite": "sequential write {size} MiB + fsync, MiB/s",
    "seqread": "sequential read {size} MiB cold, MiB/s",
    "smallwrite": "{files} files x {kib} KiB in {dirs} dirs, create+fsync, files/s",
    "smallread": "read those {files} files cold, files/s",
    "ls": "cold `ls -lR` of the tree, entries/s ({entries} entries)",
    "rm": "`rm -rf` of the tree, entries/s ({entries} entries)",
    "randrw": "fio 4 KiB randrw psync {fio}s, IOPS (read+write)",
    "parallel": "{par} writers x {per} MiB + fsync at once, total MiB/s",
}

RATIO_REFS = ["gocryptfs", "passthrough_ll", "securefs", "passthrough_xattr"]


def fmt(v):
    if v is None:
        return "n/a"
    if v >= 1000:
        return "{:,.0f}".format(v)
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def report(raw, targets, workloads, mem=None):
    env = {
        "size": os.environ.get("SIZE_MB", "1024"),
        "files": os.environ.get("SMALL_FILES", "2000"),
        "dirs": os.environ.get("SMALL_DIRS", "20"),
        "kib": os.environ.get("SMALL_KB", "100"),
        "fio": os.environ.get("FIO_RUNTIME", "10"),
        "par": os.environ.get("PAR", "8"),
    }
    env["entries"] = int(env["files"]) + int(env["dirs"])
    env["per"] = int(env["size"]) // int(env["par"])
    vals = {}
    with open(raw) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            rnd, wl, tg, value, _unit, _secs = line.rstrip("\n").split("\t")
            if value == "NA":
                vals.setdefault((wl, tg), [])
                continue
            vals.setdefault((wl, tg), []).append(float(value))
    targets = [t for t in targets.split(",") if t]
    workloads = [w for w in workloads.split(",") if w and w in LABELS]
    out = []
    if workloads:
        main_table(out, vals, targets, workloads, env)
    if mem and os.path.exists(mem):
        mem_table(out, mem)
    print("\n".join(out))


def main_table(out, vals, targets, workloads, env):
    # Ratio columns for ekycfs, and for ekycfs_nocipher when it ran.
    mine = [t for t in ("ekycfs", "ekycfs_nocipher") if t in targets]
    refs = [r for r in RATIO_REFS if r in targets]
    pairs = [(a, r) for a in mine for r in refs]
    head = ["workload"] + targets + ["%s/%s" % p for p in pairs]
    out += ["| " + " | ".join(head) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    nrounds = {}
    for w in workloads:
        med = {}
        for t in targets:
            xs = vals.get((w, t), [])
            med[t] = statistics.median(xs) if xs else None
            nrounds[(w, t)] = len(xs)
        row = [LABELS[w].format(**env)] + [fmt(med[t]) for t in targets]
        for mt, r in pairs:
            a, b = med.get(mt), med.get(r)
            row.append("%.2f" % (a / b) if a and b else "n/a")
        out.append("| " + " | ".join(row) + " |")
    short = sorted({n for n in nrounds.values()})
    out.append("")
    out.append("Medians over %s round(s) per cell; higher is better everywhere; a ratio "
               "ekycfs/X > 1 means ekycfs is faster than X." %
               ("/".join(str(n) for n in short) if short else "0"))


def mem_table(out, mem):
    def mib(k):
        return "n/a" if k in ("NA", "None") else "%.1f MiB" % (int(k) / 1024)

    def num(x):
        try:
            return "{:,}".format(int(x))
        except ValueError:
            return x

    if out:
        out.append("")
    out.append("| daemon (memory phase) | files | fd limit | mode | create files/s | cold `ls -lR` s "
               "| ls errors | VmHWM after mount | VmHWM after creates | VmHWM after `ls -lR` "
               "| VmRSS at end | max open fds | RSS growth per file, bytes |")
    out.append("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with open(mem) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            (tg, files, lim, mode, cps, lss, errs, h0, h1, h2, rss, fds,
             kpi) = line.rstrip("\n").split("\t")
            out.append("| %s |" % " | ".join([
                tg, num(files), num(lim), mode, fmt(float(cps)), lss, errs,
                mib(h0), mib(h1), mib(h2), mib(rss), num(fds), kpi]))


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, a = argv[1], argv[2:]
    if cmd == "mkfiles":
        print("%.6f" % mkfiles(a[0], int(a[1]), int(a[2]), int(a[3])))
    elif cmd == "phases":
        ph = [0.0] * 4
        mkfiles(a[0], int(a[1]), int(a[2]), int(a[3]), ph)
        print("open %.1f  write %.1f  fsync %.1f  close %.1f  (us per file)"
              % tuple(x / int(a[2]) * 1e6 for x in ph))
    elif cmd == "readphases":
        ph = [0.0] * 3
        readfiles(a[0], int(a[1]), int(a[2]), ph)
        print("open %.1f  read %.1f  close %.1f  (us per file)"
              % tuple(x / int(a[2]) * 1e6 for x in ph))
    elif cmd == "roundtrip":
        print("%.2f us per lgetxattr" % (roundtrip(a[0], int(a[1])) * 1e6))
    elif cmd == "readfiles":
        el, total = readfiles(a[0], int(a[1]), int(a[2]))
        want = int(a[2]) * int(a[3]) * 1024 if len(a) > 3 else None
        if want is not None and total != want:
            print("readfiles: read %d bytes, expected %d" % (total, want), file=sys.stderr)
            return 1
        print("%.6f" % el)
    elif cmd == "mkempty":
        print("%.6f" % mkempty(a[0], int(a[1]), int(a[2])))
    elif cmd == "memphase":
        return memphase(a[0], int(a[1]), int(a[2]), int(a[3]), a[4], a[5])
    elif cmd == "fioiops":
        print("%.1f" % fioiops(a[0]))
    elif cmd == "report":
        report(a[0], a[1], a[2], a[3] if len(a) > 3 else None)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
