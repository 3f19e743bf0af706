"""Build a firmware image (docs/FIRMWARE_IMAGE.md) from this tree.

  mkimage.py --board sim --version 1.2.0 --out fw.img [--sign key.pem]

Compiles the device modules with mpy-cross (as tools/build.py --out lays
them out: firmware/ modules at the root of /lib, the board under boards/;
other boards' own packages are left out) and writes header + manifest +
files. With --sign it prints, alone on stdout, the base64 signature that
`openssl dgst -sha256 -sign key.pem fw.img | base64 -w0` prints (RSA
PKCS#1 v1.5 or ECDSA, DER): the `signature` of SignedUpdateFirmware.
A summary goes to stderr; bad arguments exit 2 with one line.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import os
import subprocess
import sys
import tempfile
from typing import NoReturn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build  # noqa: E402

sys.path.insert(0, os.path.join(build.ROOT, "firmware"))
from evse.fwimage import check_path, header, manifest  # noqa: E402


def board_names() -> list[str]:
    d = os.path.join(build.ROOT, "boards")
    return sorted(n for n in os.listdir(d) if os.path.isfile(os.path.join(d, n, "board.py")))


def modules(board: str) -> list[tuple[str, str]]:
    """(source, module path) of what goes on a `board` device."""
    others = [f"boards/{b}/" for b in board_names() if b != board]
    return [(src, rel) for src, rel in build.sources(image=True) if not rel.startswith(tuple(others))]


def _compile(src: str, rel: str, out_dir: str) -> tuple[str, str]:
    name = rel[:-3] + ".mpy"
    dst = os.path.join(out_dir, name)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    p = subprocess.run([build.MPY_CROSS, "-o", dst, src], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"mkimage: mpy-cross failed on {rel}: {p.stderr.strip()[-200:]}")
    return dst, name


def compile_files(board: str, out_dir: str) -> list[tuple[str, str]]:
    """Compile into out_dir; (file path, path in the image) sorted by the latter."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as ex:
        out = list(ex.map(lambda m: _compile(m[0], m[1], out_dir), modules(board)))
    return sorted(out, key=lambda x: x[1])


def pack(version: str, board: str, files: list[tuple[str, str]], out: str) -> bytes:
    """Write the image of `files` ((file path, image path), ...) to `out`; the manifest."""
    entries = []
    for path, name in files:
        if not check_path(name):
            raise SystemExit(f"mkimage: path not allowed in an image: {name}")
        with open(path, "rb") as f:
            data = f.read()
        entries.append((name, len(data), hashlib.sha256(data).hexdigest()))
    raw = manifest(version, board, entries)
    if len(raw) > 0xFFFF:
        raise SystemExit(f"mkimage: manifest is {len(raw)} bytes, the format takes 65535")
    with open(out, "wb") as f:
        f.write(header(raw))
        f.write(raw)
        for path, _name in files:
            with open(path, "rb") as src:
                f.write(src.read())
    return raw


def sign(data: bytes, key_pem: bytes) -> str:
    """Base64 of the DER signature over SHA-256(data), as openssl dgst -sign makes it."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    key = serialization.load_pem_private_key(key_pem, password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        sig = key.sign(data, ec.ECDSA(hashes.SHA256()))
    else:
        raise ValueError("the key is neither RSA nor ECDSA")
    return base64.b64encode(sig).decode()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"mkimage: {message}\n")


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = _Parser(prog="mkimage", description="Build a firmware image.")
    ap.add_argument("--board", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sign", metavar="KEY.pem")
    a = ap.parse_args(argv)
    if a.board not in board_names():
        ap.error(f"unknown board {a.board!r} (have: {', '.join(board_names())})")
    # firmwareVersion of BootNotification is CiString50.
    if not a.version or len(a.version) > 50 or not a.version.isprintable() or a.version != a.version.strip():
        ap.error("--version must be 1-50 printable characters")
    out_dir = os.path.dirname(os.path.abspath(a.out))
    if not os.path.isdir(out_dir):
        ap.error(f"no such directory for --out: {out_dir}")
    if os.path.isdir(a.out):
        ap.error(f"--out is a directory: {a.out}")
    a.key = None
    if a.sign:
        try:
            with open(a.sign, "rb") as f:
                a.key = f.read()
            sign(b"", a.key)
        except (OSError, ValueError, TypeError) as e:
            ap.error(f"--sign {a.sign}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    return a


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    with tempfile.TemporaryDirectory() as d:
        files = compile_files(a.board, d)
        pack(a.version, a.board, files, a.out)
    size = os.path.getsize(a.out)
    print(f"mkimage: {a.out}: {a.board} {a.version}, {len(files)} files, {size} bytes", file=sys.stderr)
    if a.key is not None:
        with open(a.out, "rb") as f:
            print(sign(f.read(), a.key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
