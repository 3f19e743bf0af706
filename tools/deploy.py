"""Put a board package on a device with mpremote; check a frozen image.

  deploy.py deploy --board esp32 --port /dev/ttyUSB0 [--config cfg.json] [--core] [--dry-run]
      compile the board's modules (boards/<board>/, boards/drivers/,
      boards/hal.py and whatever boards module they import) with mpy-cross,
      ask the device for the sha256 of its files, copy only what differs
      (plus /main.py, /board.txt and, with --config, /config.json written as
      a CRC'd snapshot), remove stale modules under /lib/boards, then reset.
      --core copies the station core too (a device without the frozen image).
      --dry-run prints the mpremote commands instead of running them; the
      device then counts as empty (or as --device-listing describes it).
  deploy.py repl --port /dev/ttyUSB0 [--dry-run]
  deploy.py image --board esp32
      check that firmware/manifest.py freezes every core module the board
      imports, and print how to build and flash that MicroPython image.
  deploy.py package-json      rewrite firmware/package.json (mip) from the sources
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import shlex
import subprocess
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import build  # noqa: E402

MPREMOTE = os.path.join(os.path.dirname(sys.executable), "mpremote")
MANIFEST = os.path.join(ROOT, "firmware", "manifest.py")
PACKAGE_JSON = os.path.join(ROOT, "firmware", "package.json")
VERSION = "0.1.0"
# MicroPython port and board of each station board, for `image`.
MP_TARGETS = {"esp32": ("esp32", "ESP32_GENERIC"), "picow": ("rp2", "RPI_PICO_W")}

# -- what a board needs


def module_index() -> dict[str, tuple[str, str]]:
    """Module name -> (source path, path under the device's /lib) of every
    module that may go on a device."""
    out = {}
    for src, rel in build.sources(image=True):
        name = rel[:-3].replace("/", ".")
        out[name[:-9] if name.endswith(".__init__") else name] = (src, rel)
    return out


def _imports(src: str, name: str, is_pkg: bool) -> set[str]:
    """Modules `src` imports, function-level imports included. Dynamic
    `__import__("pkg." + name)` counts as every module of pkg."""
    with open(src, encoding="utf-8") as f:
        tree = ast.parse(f.read(), src)
    pkg = name if is_pkg else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out.add(base)
            out.update(base + "." + a.name for a in node.names)  # maybe submodules
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id == "__import__" and node.args and isinstance(node.args[0], ast.BinOp)
              and isinstance(node.args[0].left, ast.Constant) and isinstance(node.args[0].right, ast.Name)):
            out.add(str(node.args[0].left.value) + "*")
    return out


def closure(roots: list[str], index: dict[str, tuple[str, str]]) -> tuple[set[str], set[str]]:
    """(project modules, other modules) reachable from `roots`; a module
    brings its parent packages along."""
    seen: set[str] = set()
    other: set[str] = set()
    todo = list(roots)
    while todo:
        m = todo.pop()
        if m.endswith("*"):
            todo += [n for n in index if n.startswith(m[:-1]) and "." not in n[len(m) - 1:]]
            continue
        if m in seen or m in other:
            continue
        if m not in index:
            if m.split(".")[0] not in index:  # else a "from pkg.mod import name" guess
                other.add(m.split(".")[0])
            continue
        seen.add(m)
        src, rel = index[m]
        todo += _imports(src, m, rel.endswith("__init__.py"))
        todo += [m.rsplit(".", i)[0] for i in range(1, m.count(".") + 1)]
    return seen, other


def board_modules(board: str, index: dict[str, tuple[str, str]]) -> list[str]:
    """The board package as deployed: boards/<board>/, boards/drivers/,
    boards/hal.py and every boards module their imports reach."""
    if "boards." + board + ".board" not in index:
        raise SystemExit(f"no board package boards/{board}/board.py")
    mods = {m for m in index if m in ("boards", "boards.hal")
            or m.startswith(("boards.drivers", "boards." + board + "."))
            or m == "boards." + board}
    reached, _ = closure(sorted(mods), index)
    return sorted(mods | {m for m in reached if m.split(".")[0] == "boards"})


# -- the manifest


class _Options:
    """manifestfile.py's IncludeOptions: include()'s keywords; None for any other."""

    def __init__(self, kw: dict[str, Any]) -> None:
        self.__dict__.update(kw)

    def __getattr__(self, name: str) -> Any:
        return None


def frozen_modules(path: str | None = None) -> tuple[set[str], list[str]]:
    """(module names a MicroPython manifest freezes, what it leaves to the
    port: includes under $(PORT_DIR) and require() packages). Evaluates the
    manifest with the functions of MicroPython's tools/manifestfile.py."""
    mods: set[str] = set()
    port: list[str] = []

    def run(p: str, kw: dict[str, Any] | None = None) -> None:
        if os.path.isdir(p):
            p = os.path.join(p, "manifest.py")
        here = os.path.dirname(os.path.abspath(p))

        def package(name, files=None, base_path=".", opt=None):
            top = os.path.join(here, base_path, *name.split("."))
            for base, _d, names in os.walk(top):
                for n in names:
                    rel = os.path.relpath(os.path.join(base, n), os.path.join(here, base_path))
                    if n.endswith(".py") and (files is None or os.path.relpath(rel, name) in files):
                        mod = rel[:-3].replace(os.sep, ".")
                        mods.add(mod[:-9] if mod.endswith(".__init__") else mod)

        def module(name, base_path=".", opt=None):
            mods.add(name[:-3].replace("/", "."))

        def include(q, **opts):
            if q.startswith("$("):
                port.append(q)
            else:
                run(os.path.join(here, q), opts)

        env = {"metadata": lambda **kw: None, "package": package, "module": module, "include": include,
               "require": lambda name, **kw: port.append("require " + name), "options": _Options(kw or {})}
        with open(p, encoding="utf-8") as f:
            exec(compile(f.read(), p, "exec"), env)

    run(path or MANIFEST)
    return mods, port


def image(board: str, manifest: str | None = None) -> int:
    """Check the manifest against the board's needs; print the build steps."""
    manifest = manifest or MANIFEST
    index = module_index()
    needed, other = closure(["main", "boards." + board + ".board"], index)
    frozen, port = frozen_modules(manifest)
    core = sorted(m for m in needed if m.split(".")[0] == "evse")
    missing = [m for m in core if m not in frozen]
    boards = board_modules(board, index)
    print(f"board {board}: {len(core)} core modules needed, {len(frozen)} frozen by {os.path.relpath(manifest)}")
    print(f"  left to the port ({', '.join(port)}): {', '.join(sorted(other))}")
    print(f"  copied by `make deploy`: main.py and {len(boards)} board modules")
    if missing:
        print("NOT FROZEN (add them to the manifest): " + ", ".join(missing))
        return 1
    mp_port, mp_board = MP_TARGETS.get(board, ("<port>", "<BOARD>"))
    out = "build-" + mp_board
    print(f"""
# Build MicroPython with the station core frozen (bytecode runs from flash):
git clone --depth 1 https://github.com/micropython/micropython
make -C micropython/mpy-cross
make -C micropython/ports/{mp_port} BOARD={mp_board} submodules
make -C micropython/ports/{mp_port} BOARD={mp_board} FROZEN_MANIFEST={manifest}""")
    if mp_port == "esp32":  # the ESP-IDF version is in ports/esp32/README.md
        print(f"make -C micropython/ports/esp32 BOARD={mp_board} PORT=/dev/ttyUSB0 erase deploy")
    elif mp_port == "rp2":
        print(f"# hold BOOTSEL, plug in, copy micropython/ports/rp2/{out}/firmware.uf2 to the drive")
    print(f"# then: make deploy BOARD={board} PORT=<serial port> CONFIG=<config.json>")
    return 0


# -- deploy


def _sha(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def stage(board: str, core: bool, config: str | None, out: str) -> dict[str, str]:
    """Build what goes on the device into `out`: device path -> local file."""
    index = module_index()
    mods = board_modules(board, index) + (sorted(m for m in index if m.split(".")[0] == "evse") if core else [])
    files = {"/main.py": index["main"][0]}
    for m in mods:
        src, rel = index[m]
        dst = os.path.join(out, "lib", rel[:-3] + ".mpy")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.exists(dst) or os.path.getmtime(dst) < os.path.getmtime(src):
            p = subprocess.run([build.MPY_CROSS, "-o", dst, src], capture_output=True, text=True)
            if p.returncode:
                raise SystemExit(f"mpy-cross {rel}: {p.stderr.strip()}")
        files["/lib/" + rel[:-3] + ".mpy"] = dst
    files["/board.txt"] = _write(os.path.join(out, "board.txt"), (board + "\n").encode())
    if config:
        files["/config.json"] = _config(config, os.path.join(out, "config.json"))
    return files


def _write(path: str, data: bytes, mode: int = 0o644) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def _config(src: str, dst: str) -> str:
    """The device config as main.load_config reads it (evse.store.snapshot format)."""
    with open(src, encoding="utf-8") as f:
        cfg = json.load(f)
    if not isinstance(cfg, dict) or not cfg.get("url") or not cfg.get("id"):
        raise SystemExit(f"{src}: needs at least \"url\" and \"id\" (see firmware/main.py)")
    sys.path.insert(0, os.path.join(ROOT, "firmware"))
    from evse.store.snapshot import Snapshot

    Snapshot(dst).save(cfg)  # written beside as .tmp, renamed over dst
    os.chmod(dst, 0o600)
    return dst


DEVICE_SCRIPT = """import os, hashlib, binascii
def h(p):
    d = hashlib.sha256()
    with open(p, 'rb') as f:
        while True:
            b = f.read(512)
            if not b:
                break
            d.update(b)
    return binascii.hexlify(d.digest()).decode()
def w(p):
    try:
        es = list(os.ilistdir(p))
    except OSError:
        return
    print('D', p)
    for e in es:
        q = p + '/' + e[0]
        if e[1] & 0x4000:
            w(q)
        else:
            print('F', q, h(q))
for p in %r:
    w(p)
for p in %r:
    try:
        print('F', p, h(p))
    except OSError:
        pass
for p in %r:
    try:
        if os.stat(p)[0] & 0x4000:
            print('D', p)
    except OSError:
        pass
"""


def listing_script(walk: list[str], files: list[str], dirs: list[str]) -> str:
    """MicroPython code that prints `D dir` for the existing directories of
    `walk` (recursively) and `dirs`, and `F path sha256` for the files in
    the `walk` trees and the existing ones of `files`."""
    return DEVICE_SCRIPT % (walk, files, dirs)


def parse_listing(text: str) -> tuple[dict[str, str], set[str]]:
    files, dirs = {}, set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "F":
            files[parts[1]] = parts[2]
        elif len(parts) == 2 and parts[0] == "D":
            dirs.add(parts[1])
    return files, dirs


def plan(local: dict[str, str], device_files: dict[str, str], device_dirs: set[str],
         managed: list[str]) -> list[list[str]]:
    """mpremote subcommands that make the device match `local`: mkdir the
    missing directories, copy changed files, remove stale files under the
    `managed` directories (a stale .py would shadow its .mpy), reset."""
    cmds: list[list[str]] = []
    have = set(device_dirs) | {"/"}
    for p in list(device_files) + list(device_dirs):  # their parents exist too
        have.update(p[:i] for i in range(1, len(p)) if p[i] == "/")
    for path in sorted(local):
        d = os.path.dirname(path)
        chain = [d[:i] for i in range(1, len(d) + 1) if i == len(d) or d[i] == "/"]
        for sub in chain:
            if sub not in have:
                cmds.append(["fs", "mkdir", ":" + sub])
                have.add(sub)
        if device_files.get(path) != _sha(local[path]):
            cmds.append(["fs", "cp", "-f", os.path.relpath(local[path]), ":" + path])
    for path in sorted(device_files):
        if path not in local and any(path.startswith(m + "/") for m in managed):
            cmds.append(["fs", "rm", ":" + path])
    return cmds + [["reset"]] if cmds else []


def mpremote(port: str, cmds: list[list[str]]) -> list[str]:
    """One mpremote invocation running `cmds` in order (joined with +)."""
    argv = [os.path.relpath(MPREMOTE), "connect", port]
    for i, c in enumerate(cmds):
        argv += (["+"] if i else []) + c
    return argv


def deploy(board: str, port: str, config: str | None = None, core: bool = False, dry_run: bool = False,
           listing: str | None = None, out: str | None = None) -> int:
    out = out or os.path.join(ROOT, "build", "deploy", board)
    local = stage(board, core, config, out)
    managed = ["/lib/boards"] + (["/lib/evse"] if core else [])
    dirs = sorted({os.path.dirname(p) for p in local if p.count("/") > 1} | {"/lib"})
    script = _write(os.path.join(out, "listing.py"),
                    listing_script(managed, [p for p in local if p.count("/") == 1], dirs).encode())
    query = mpremote(port, [["run", os.path.relpath(script)]])
    if listing is not None:
        with open(listing, encoding="utf-8") as f:
            text = f.read()
    elif dry_run:
        print("# list the device's files with their sha256:\n" + shlex.join(query))
        print("# dry run: the device counts as empty")
        text = ""
    else:
        p = subprocess.run(query, capture_output=True, text=True)
        if p.returncode:
            raise SystemExit("mpremote: " + (p.stderr or p.stdout).strip())
        text = p.stdout
    files, have = parse_listing(text)
    cmds = plan(local, files, have, managed)
    if not cmds:
        print(f"{board} on {port}: up to date ({len(local)} files)")
        return 0
    argv = mpremote(port, cmds)
    if dry_run:
        print(shlex.join(argv))
        return 0
    print(f"{board} on {port}: {sum(c[:2] == ['fs', 'cp'] for c in cmds)} of {len(local)} files changed")
    return subprocess.run(argv).returncode


def repl(port: str, dry_run: bool = False) -> int:
    argv = mpremote(port, [["repl"]])
    if dry_run:
        print(shlex.join(argv))
        return 0
    return subprocess.run(argv).returncode


def package_json() -> dict:
    """mip's package.json for the core: mip.install("github:<owner>/<repo>/firmware/package.json")
    puts firmware/evse into the device's /lib (URLs relative to the json)."""
    urls = [[rel, rel] for _src, rel in build.sources(image=True) if rel.startswith("evse/")]
    return {"urls": urls, "deps": [], "version": VERSION}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("deploy")
    d.add_argument("--board", required=True)
    d.add_argument("--port", required=True)
    d.add_argument("--config")
    d.add_argument("--core", action="store_true")
    d.add_argument("--dry-run", action="store_true")
    d.add_argument("--device-listing", help="file with the device's D/F lines (tests, offline)")
    r = sub.add_parser("repl")
    r.add_argument("--port", required=True)
    r.add_argument("--dry-run", action="store_true")
    sub.add_parser("image").add_argument("--board", required=True)
    sub.add_parser("package-json")
    a = ap.parse_args()
    if a.cmd == "deploy":
        return deploy(a.board, a.port, a.config, a.core, a.dry_run, a.device_listing)
    if a.cmd == "repl":
        return repl(a.port, a.dry_run)
    if a.cmd == "image":
        return image(a.board)
    pkg = package_json()
    urls = ",\n".join("  " + json.dumps(u) for u in pkg.pop("urls"))
    with open(PACKAGE_JSON, "w", encoding="utf-8") as f:  # one file a line: readable diffs
        f.write('{"urls": [\n%s\n ],\n "deps": [],\n "version": "%s"}\n' % (urls, pkg["version"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
