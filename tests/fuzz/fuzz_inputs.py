"""Long fuzz run of the property tests in ``tests/test_fuzz.py``.

Not collected by pytest (the name does not match ``test_*.py``) and not
run by CI; run it by hand::

    python tests/fuzz/fuzz_inputs.py                # about 20,000 inputs
    python tests/fuzz/fuzz_inputs.py --scale 5 --seed 1 test_measure

Every ``@given`` test of ``test_fuzz.py`` runs in a child process with its
example count times ``--scale``, so that a crash of the interpreter (a
segfault in a C extension), a hang or a runaway allocation is reported as
a finding of that test instead of ending the run. Prints the inputs tried
per test, how many were refused with :class:`ThinsegError`, time and peak
memory; exits 1 if anything was found.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
MAX_RSS_MB = 2048
"""Peak memory of one child above this is a finding (a decompression bomb
or a leak), small inputs never need it."""


def given_tests(module) -> list[str]:
    return [
        name
        for name, fn in vars(module).items()
        if name.startswith("test_") and hasattr(fn, "hypothesis")
    ]


def peak_memory_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it
    does not carry the parent's peak over a fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(name: str, seed: int, timeout: float) -> int:
    """Run one test; print one JSON line with its counts and finding."""
    faulthandler.enable()  # a segfault shows where it happened
    # a hang shows where it is stuck (and leaves its input file behind)
    faulthandler.dump_traceback_later(max(1.0, timeout - 10), exit=True)
    # tifffile logs every oddity of a damaged file: megabytes per minute
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)
    sys.path.insert(0, str(TESTS))
    import test_fuzz
    from hypothesis import seed as hypothesis_seed

    test = hypothesis_seed(seed)(getattr(test_fuzz, name))
    start = time.perf_counter()
    finding = None
    try:
        test()
    except BaseException as exc:  # a finding, whatever it is
        lines = traceback.format_exception_only(type(exc), exc)
        for sub in getattr(exc, "exceptions", ()):  # hypothesis groups
            lines += traceback.format_exception_only(type(sub), sub)
        finding = "".join(lines).strip()
    rss = peak_memory_mb()
    counts = {
        k.split(": ", 1)[1] if ": " in k else "inputs": v
        for k, v in test_fuzz.COUNTS.items()
        if k == name or k.startswith(f"{name}: ")
    }
    report = {
        "name": name,
        "counts": counts,
        "seconds": round(time.perf_counter() - start, 1),
        "max_rss_mb": round(rss),
        "finding": finding,
    }
    print("FUZZ-RESULT " + json.dumps(report), flush=True)
    return 0


def run_one(name: str, scale: float, seed: int, timeout: float) -> dict:
    # the child's scratch files go here; kept if it dies, as its input
    scratch = tempfile.mkdtemp(prefix=f"fuzz-{name}-")
    env = dict(
        os.environ,
        THINSEG_FUZZ_SCALE=str(scale),
        THINSEG_FUZZ_SLOW_S="20",
        TMPDIR=scratch,
    )
    cmd = [sys.executable, __file__, "--child", name, "--seed", str(seed)]
    cmd += ["--timeout", str(timeout)]
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            returncode = subprocess.run(
                cmd, env=env, stdout=out, stderr=err, timeout=timeout + 30
            ).returncode
        except subprocess.TimeoutExpired:
            returncode = None
        stdout, stderr = tail(out), tail(err)
    for line in stdout.splitlines():
        if line.startswith("FUZZ-RESULT "):
            report = json.loads(line.split(" ", 1)[1])
            if report["finding"]:
                # hypothesis prints the falsifying example to stdout
                report["finding"] += "\n" + stdout.split("FUZZ-RESULT")[0]
            if report["max_rss_mb"] > MAX_RSS_MB:
                report["finding"] = (
                    report["finding"] or ""
                ) + f"\npeak memory {report['max_rss_mb']} MB"
            shutil.rmtree(scratch, ignore_errors=True)
            return report
    return {
        "name": name,
        "counts": {},
        "seconds": round(time.perf_counter() - start, 1),
        "finding": (
            f"child died (exit status {returncode}; a hang is stopped "
            f"after {timeout:.0f} s); its last input file, if any, is under "
            f"{scratch}:\n{stderr or stdout}"
        ),
    }


def tail(file, size: int = 6000) -> str:
    """The last ``size`` bytes written to ``file``, as text."""
    end = file.seek(0, os.SEEK_END)
    file.seek(max(0, end - size))
    return file.read().decode("utf-8", "replace")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tests", nargs="*", help="test names (default all)")
    parser.add_argument(
        "--scale",
        type=float,
        default=12,
        help="examples per test = its count in test_fuzz.py times this",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds per test"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    seed = random.randrange(2**32) if args.seed is None else args.seed
    if args.child:
        return child(args.child, seed, args.timeout)

    sys.path.insert(0, str(TESTS))
    import test_fuzz

    names = args.tests or given_tests(test_fuzz)
    print(f"fuzzing {len(names)} tests, scale {args.scale:g}, seed {seed}")
    total, findings, start = 0, [], time.perf_counter()
    for name in names:
        r = run_one(name, args.scale, seed, args.timeout)
        n = r["counts"].get("inputs", 0)
        total += n
        outcome = ", ".join(
            f"{v} {k}" for k, v in sorted(r["counts"].items()) if k != "inputs"
        )
        print(
            f"{name:42s} {n:7d} inputs {r['seconds']:7.1f} s "
            f"{r.get('max_rss_mb', '?'):>5} MB  {outcome}",
            flush=True,
        )
        if r["finding"]:
            findings.append(r)
            print(f"  FINDING: {r['finding']}", flush=True)
    took = time.perf_counter() - start
    print(
        f"total {total} inputs in {took:.0f} s, {len(findings)} findings"
        f" (seed {seed})"
    )
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
