"""How many of the PSF's 8,976 docs-redirect spec requests nginxsim answers as nginx 1.22.1 does.

Routes every request of the psf-docs-redirects hurl specs (../shared/corpus) through nginxsim and
prints ``N/8976 agree``, the disagreements by spec file and by kind (status, Location, other), and
a few examples with `Decision.explain()`. With ``--nginx``, also replays them against the real
binary (nginxsim.oracle) and counts how many nginx itself passes.

Run: python benchmarks/psf_specs.py [--examples N] [--nginx]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from corpus import PSF_VARIABLES, load_psf, missing_message, psf_spec_files, simulate  # noqa: E402
from corpus.hurl import Entry, Mismatch, check, parse_file  # noqa: E402


def kind_of(mismatches: list[Mismatch]) -> str:
    """One kind per disagreeing request: status first, then Location, else the first other check."""
    kinds = [m.kind for m in mismatches]
    if "status" in kinds:
        return "status"
    if "header Location" in kinds:
        return "Location"
    return f"other ({kinds[0]})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=3, help="disagreements to explain (default 3)")
    ap.add_argument("--nginx", action="store_true", help="also run every request against real nginx")
    args = ap.parse_args(argv)
    msg = missing_message()
    if msg is not None:
        print(msg, file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    specs = {f: parse_file(f, PSF_VARIABLES) for f in psf_spec_files()}
    t_parse = time.perf_counter() - t0
    entries = [e for es in specs.values() for e in es]
    t0 = time.perf_counter()
    cfg = load_psf()
    t_load = time.perf_counter() - t0

    t0 = time.perf_counter()
    failures: list[tuple[Entry, list[Mismatch]]] = []
    for e in entries:
        ms = check(e, simulate(cfg, e)[0])
        if ms:
            failures.append((e, ms))
    t_route = time.perf_counter() - t0

    total = len(entries)
    print(f"nginxsim: {total - len(failures)}/{total} agree "
          f"({len(specs)} spec files; parse {t_parse:.2f}s, load {t_load:.3f}s, "
          f"route {t_route:.2f}s = {t_route / max(total, 1) * 1e6:.0f} us/request)")
    if failures:
        by_file = Counter(e.file.name for e, _ in failures)
        per_file = Counter(e.file.name for e in entries)
        print("\ndisagreements by spec file:")
        for name, n in by_file.most_common():
            print(f"  {name:<32} {n:>5}/{per_file[name]}")
        print("\ndisagreements by kind:")
        for kind, n in Counter(kind_of(ms) for _, ms in failures).most_common():
            print(f"  {kind:<32} {n:>5}")
        print("\nfailed checks (a request can fail several):")
        for kind, n in Counter(m.kind for _, ms in failures for m in ms).most_common():
            print(f"  {kind:<32} {n:>5}")
        shown: set[str] = set()
        examples = []
        for e, ms in failures:  # one example per (file, kind) first
            key = f"{e.file.name} {kind_of(ms)}"
            if key not in shown:
                shown.add(key)
                examples.append((e, ms))
        for e, ms in examples[: args.examples]:
            print(f"\n--- {e}")
            for m in ms:
                print(f"    {m}")
            print(simulate(cfg, e, trace=True)[1].explain())

    if args.nginx:
        return _nginx(entries)
    return 0


def _nginx(entries: list[Entry]) -> int:
    """Replay every request against real nginx 1.22.1 and count how many pass their spec."""
    from corpus import run_on_nginx

    t0 = time.perf_counter()
    results = run_on_nginx(entries)
    elapsed = time.perf_counter() - t0
    bad = [(e, ms) for e, ms in results if ms]
    print(f"\nreal nginx: {len(entries) - len(bad)}/{len(entries)} agree with the specs ({elapsed:.1f}s)")
    for e, ms in bad[:5]:
        print(f"  {e}: " + "; ".join(str(m) for m in ms))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
