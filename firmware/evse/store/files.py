"""File-system helpers over the `os` subset every port has (open, rename,
remove, stat, listdir, mkdir). On littlefs (ESP32, rp2) `os.rename` over an
existing file is atomic and data is committed by close(); a power cut while a
file is open leaves its last committed state."""
import os

from evse.compat import const

_S_IFDIR = const(0x4000)


def remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def rename(src, dst):
    """Atomic on littlefs and POSIX. FAT refuses to rename over a file: there
    the target is removed first (not atomic; Snapshot.load recovers a lone .tmp)."""
    try:
        os.rename(src, dst)
    except OSError:
        os.remove(dst)
        os.rename(src, dst)


def is_dir(path):
    try:
        return bool(os.stat(path)[0] & _S_IFDIR)
    except OSError:
        return False


def ensure_dir(path):
    """mkdir -p (MicroPython has no os.makedirs)."""
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        p = "/".join(parts[:i])
        if p and not is_dir(p):
            try:
                os.mkdir(p)
            except OSError:
                if not is_dir(p):  # not a race: a file is in the way
                    raise

