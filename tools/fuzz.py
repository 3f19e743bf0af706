"""Fuzzing at scale (host only).

    fuzz.py long --seconds N   coverage-guided (atheris/libFuzzer) fuzz of every
                               surface in host_tests/fuzz_targets.py, N seconds
                               in all, one process per surface, --jobs at once;
                               prints inputs, coverage and findings per surface
                               and keeps a small corpus (its smallest inputs) in
                               host_tests/fuzz_corpus/<surface>/
    fuzz.py quick --examples E the hypothesis fuzz tests (`make fuzz`), the
                               station's examples split over two processes;
                               prints the inputs each test got
    fuzz.py run SURFACE ...    one surface in this process (what `long` starts)

A surface that breaks its invariant is a finding: the input and traceback go
to .fuzz/findings/<surface>/ and fuzzing goes on (one file per distinct place).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "host_tests", "fuzz_corpus")
WORK = os.path.join(ROOT, ".fuzz")
MAX_LEN = {"station": 1024, "jsonstream": 2048, "ws": 4096, "http": 4096, "pki": 2048,
           "fwimage": 2048, "flash": 1024}
KEEP_BYTES = 32 * 1024  # kept corpus per surface (seven surfaces: under 250 KB)
KEEP_FILES = 150


def _paths() -> None:
    for p in (os.path.join(ROOT, "firmware"), ROOT, os.path.join(ROOT, "tools"), os.path.join(ROOT, "host_tests")):
        if p not in sys.path:
            sys.path.insert(0, p)


def _signature(exc: BaseException) -> str:
    """Where it broke: the exception type and the innermost frame in our code."""
    tb = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in tb if "/firmware/" in f.filename or "/boards/" in f.filename] or tb[-1:]
    f = ours[-1] if ours else None
    where = "%s:%d" % (os.path.basename(f.filename), f.lineno or 0) if f else "?"
    return type(exc).__name__ + "@" + where


def _instrument() -> None:
    """Import every firmware module with atheris' coverage hooks in it."""
    import atheris
    _paths()
    with atheris.instrument_imports(include=["evse", "boards"]):
        import evse
        top = os.path.dirname(evse.__file__)
        for d, _, names in sorted(os.walk(top)):
            pkg = "evse" + d[len(top):].replace(os.sep, ".")
            for name in sorted(names):
                if name.endswith(".py") and name != "__init__.py":
                    __import__(pkg + "." + name[:-3])
        import boards.sim.board  # noqa: F401


def run(surface: str, seconds: int, corpus: str, findings: str) -> None:
    import atheris
    _instrument()
    import fuzz_targets
    target = fuzz_targets.TARGETS[surface]
    seen: set[str] = set()
    os.makedirs(findings, exist_ok=True)

    def one(data: bytes) -> None:
        try:
            target(data)
        except Exception as e:  # noqa: BLE001 - every escape is a finding
            sig = _signature(e)
            if sig in seen:
                return
            seen.add(sig)
            name = re.sub(r"[^A-Za-z0-9_.@-]", "_", sig)
            with open(os.path.join(findings, name + ".bin"), "wb") as f:
                f.write(data)
            with open(os.path.join(findings, name + ".txt"), "w") as f:
                f.write("".join(traceback.format_exception(e))[-4000:])
            print("FINDING %s %s" % (surface, sig), file=sys.stderr, flush=True)

    argv = [sys.argv[0], corpus, "-max_total_time=%d" % seconds, "-max_len=%d" % MAX_LEN[surface],
            "-timeout=30", "-rss_limit_mb=1536", "-print_final_stats=1",
            "-artifact_prefix=" + findings + "/"]
    atheris.Setup(argv, one)
    atheris.Fuzz()


def _seed(surface: str, work: str) -> None:
    """The kept corpus, and for an empty one a few valid inputs to start from."""
    keep = os.path.join(CORPUS, surface)
    if os.path.isdir(keep):
        for name in os.listdir(keep):
            shutil.copy(os.path.join(keep, name), os.path.join(work, name))
    if os.listdir(work):
        return
    _paths()
    import fuzz_targets as ft
    seeds = [b"\x00" * 8, bytes(range(64))]
    if surface == "fwimage":
        seeds.append(b"\x00" + ft.image([("a.py", b"print(1)\n"), ("lib/b.py", b"")]))
    if surface == "pki":
        ft._roots()
        seeds += [b"\x02" + d for d in ft._PKI_SEEDS]
    if surface == "station":
        seeds += [bytes([k]) + b"\x00\x05" + b"\x01" * 40 for k in range(8)]
    for i, s in enumerate(seeds):
        with open(os.path.join(work, "seed%d" % i), "wb") as f:
            f.write(s)


def _stats(text: str) -> dict[str, int]:
    out = {"inputs": 0, "cov": 0, "ft": 0}
    for m in re.finditer(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+)", text):
        out = {"inputs": int(m.group(1)), "cov": int(m.group(2)), "ft": int(m.group(3))}
    units = re.search(r"stat::number_of_executed_units: (\d+)", text)
    if units:
        out["inputs"] = max(out["inputs"], int(units.group(1)))
    return out


def _keep(surface: str, work: str) -> int:
    """Keep the smallest files of the work corpus (each one added coverage
    when libFuzzer took it, and its REDUCE steps shrank them) in
    host_tests/fuzz_corpus/<surface>/, within KEEP_BYTES and KEEP_FILES;
    the crash-* regression inputs there stay."""
    files = sorted((os.path.getsize(os.path.join(work, n)), n) for n in os.listdir(work))
    if not files:
        return 0
    dest = os.path.join(CORPUS, surface)
    os.makedirs(dest, exist_ok=True)
    for n in os.listdir(dest):
        if not n.startswith("crash-"):
            os.remove(os.path.join(dest, n))
    total = kept = 0
    for size, n in files:
        if total + size > KEEP_BYTES or kept >= KEEP_FILES:
            break
        with open(os.path.join(work, n), "rb") as f:
            data = f.read()
        with open(os.path.join(dest, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
            f.write(data)
        total += size
        kept += 1
    return kept


def plan(seconds: int, jobs: int, surfaces: list[str]) -> list[list[tuple[str, int]]]:
    """Lanes of (surface, seconds), one process at a time in each lane, every
    lane done in `seconds`: a lane with fewer surfaces gives each more time,
    so the slow ones (listed second, fourth...) go where there are fewer."""
    lanes = [surfaces[i::jobs] for i in range(jobs)]
    return [[(s, max(10, seconds // len(lane))) for s in lane] for lane in lanes if lane]


def long(seconds: int, jobs: int, surfaces: list[str], keep: bool) -> int:
    lanes = plan(seconds, jobs, surfaces)
    print("fuzz-long: %d s, %d surfaces in %d lanes: %s" % (seconds, len(surfaces), len(lanes), "; ".join(
        ", ".join("%s %d s" % t for t in lane) for lane in lanes)), flush=True)
    running: dict[str, tuple[subprocess.Popen, str, float, int, int]] = {}
    results: dict[str, dict[str, Any]] = {}
    busy = [False] * len(lanes)
    while any(lanes) or running:
        for k, lane in enumerate(lanes):
            if busy[k] or not lane:
                continue
            s, each = lane.pop(0)
            busy[k] = True
            work = os.path.join(WORK, "corpus", s)
            os.makedirs(work, exist_ok=True)
            _seed(s, work)
            log = os.path.join(WORK, s + ".log")
            fnd = os.path.join(WORK, "findings", s)
            shutil.rmtree(fnd, ignore_errors=True)  # this run's findings only
            cmd = [sys.executable, os.path.abspath(__file__), "run", s, "--seconds", str(each),
                   "--corpus", work, "--findings", fnd]
            with open(log, "w") as out:
                p = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
            running[s] = (p, log, time.time(), each, k)
        time.sleep(2)
        for s, (p, log, t0, each, k) in list(running.items()):
            if p.poll() is None:
                if time.time() - t0 > each + 600:
                    p.kill()  # hung past its time: reported, not waited for
                continue
            del running[s]
            busy[k] = False
            with open(log, errors="replace") as f:
                text = f.read()
            r: dict[str, Any] = dict(_stats(text))
            fnd = os.path.join(WORK, "findings", s)
            names = sorted(os.listdir(fnd)) if os.path.isdir(fnd) else []
            r["findings"] = [n[:-4] for n in names if n.endswith(".txt")] + [
                n for n in names if n.split("-")[0] in ("crash", "timeout", "oom", "leak")]
            r["exit"] = p.returncode
            r["each"] = each
            results[s] = r
            print("  %-10s %9d inputs in %d s  cov %5d  ft %6d  findings %d  (exit %s)" % (
                s, r["inputs"], each, r["cov"], r["ft"], len(r["findings"]), p.returncode), flush=True)
    for s in surfaces:  # after the fuzzing: a merge is one more process
        results[s]["kept"] = _keep(s, os.path.join(WORK, "corpus", s)) if keep else 0
    print("\n%-10s %10s %6s %7s %7s %6s %s" % ("surface", "inputs", "secs", "cov", "ft", "kept", "findings"))
    total = 0
    for s in surfaces:
        r = results[s]
        total += r["inputs"]
        print("%-10s %10d %6d %7d %7d %6d %s" % (s, r["inputs"], r["each"], r["cov"], r["ft"], r["kept"],
                                              ", ".join(r["findings"]) or "none"))
    print("%-10s %10d" % ("total", total))
    return 1 if any(r["findings"] for r in results.values()) else 0


def quick(examples: int) -> int:
    """`make fuzz`: the hypothesis fuzz tests; the station's share in two processes."""
    py = [sys.executable, "-m", "pytest", "-q", "--hypothesis-show-statistics", "-p", "no:randomly"]
    half = str(max(1, examples // 2))
    runs = [
        (dict(os.environ, FUZZ_EXAMPLES=half), py + ["--hypothesis-seed=1", "host_tests/test_fuzz_station.py"]),
        (dict(os.environ, FUZZ_EXAMPLES=half), py + ["--hypothesis-seed=2", "host_tests/test_fuzz_station.py",
                                                    "host_tests/test_fuzz_corpus.py"]),
        (dict(os.environ, FUZZ_EXAMPLES=str(examples)), py + ["host_tests/test_schema.py",
                                                             "host_tests/test_pki_der.py"]),
    ]
    rc = 0
    counts: list[tuple[str, int]] = []
    for i in range(0, len(runs), 2):
        procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for env, cmd in runs[i:i + 2]]
        for p in procs:
            out, _ = p.communicate()
            rc = rc or p.returncode
            sys.stdout.write("\n".join(ln for ln in out.splitlines() if not ln.startswith("    - ")) + "\n")
            test = None
            for ln in out.splitlines():
                m = re.match(r"(\S+::\S+):$", ln.strip())
                if m:
                    test = m.group(1)
                m = re.search(r"(\d+) passing, (\d+) failing", ln)
                if m and test:
                    counts.append((test, int(m.group(1)) + int(m.group(2))))
    merged: dict[str, int] = {}
    for t, n in counts:
        t = t.split("[")[0]  # a parametrized test is one surface
        merged[t] = merged.get(t, 0) + n
    print("\ninputs per surface (hypothesis examples, all processes):")
    for t, n in merged.items():
        print("  %7d  %s" % (n, t))
    return rc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    lo = sub.add_parser("long")
    lo.add_argument("--seconds", type=int, default=600)
    lo.add_argument("--jobs", type=int, default=2)
    lo.add_argument("--surfaces", default="ws,station,http,jsonstream,pki,flash,fwimage")
    lo.add_argument("--no-keep", action="store_true", help="do not rewrite host_tests/fuzz_corpus")
    qu = sub.add_parser("quick")
    qu.add_argument("--examples", type=int, default=20000)
    ru = sub.add_parser("run")
    ru.add_argument("surface")
    ru.add_argument("--seconds", type=int, default=60)
    ru.add_argument("--corpus", default="")
    ru.add_argument("--findings", default=os.path.join(WORK, "findings", "run"))
    a, rest = ap.parse_known_args()
    if a.cmd == "long":
        return long(a.seconds, a.jobs, a.surfaces.split(","), not a.no_keep)
    if a.cmd == "quick":
        return quick(a.examples)
    run(a.surface, a.seconds, a.corpus, a.findings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
