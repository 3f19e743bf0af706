"""evse.fwimage: the streamed installer, the A/B slots and their boot rules,
power cuts between any two file operations, and the same code in the
MicroPython VM (with the heap of a streamed ~100 KB download + install)."""
import base64
import builtins
import hashlib
import json
import os
import shutil

import mpvm
import pytest
from evse import fwimage
from evse.fwimage import ImageError, Slots, header, manifest

FILES = [
    ("main.mpy", b"M" * 300),
    ("evse/__init__.mpy", b""),
    ("evse/station.mpy", bytes(range(256)) * 9),
    ("boards/__init__.mpy", b"\x00"),
    ("boards/sim/board.mpy", b"board" * 100),
]


def image(files=FILES, version="2.0.0", board="sim", entries=None, head=None):
    """Image bytes; `entries` (manifest file lines) or `head` (its first line) override."""
    raw = manifest(version, board, [(p, len(d), hashlib.sha256(d).hexdigest()) for p, d in files])
    lines = raw.decode().splitlines(True)
    if head is not None:
        lines[0] = head + "\n"
    if entries is not None:
        lines[1:] = [e + "\n" for e in entries]
    raw = "".join(lines).encode()
    return header(raw) + raw + b"".join(d for _, d in files)


def install(slots, img, step=4096, verify=None):
    inst = slots.begin_install(verify=verify)
    for i in range(0, len(img), step):
        inst.feed(img[i:i + step])
    return inst, inst.finish()


def read_tree(d):
    out = {}
    for base, _dirs, names in os.walk(d):
        for n in names:
            p = os.path.join(base, n)
            out[os.path.relpath(p, d)] = open(p, "rb").read()
    return out


@pytest.mark.parametrize("step", [1, 7, 13, 4096, 1 << 20])
def test_install_streamed_in_odd_pieces(tmp_path, step):
    s = Slots(str(tmp_path), "sim")
    inst, err = install(s, image(), step)
    assert err is None and inst.slot == "a"
    tree = read_tree(tmp_path / "slot_a")
    assert {k: v for k, v in tree.items() if k not in ("slot.json", "manifest.txt")} == dict(FILES)
    assert tree["manifest.txt"] == image()[12:12 + len(tree["manifest.txt"])]
    assert s.verify_slot("a") is None
    assert s.info("a")["version"] == "2.0.0"
    assert s.info("a")["sha256"] == hashlib.sha256(image()).hexdigest()
    assert s.status()["slots"] == {"a": "2.0.0", "b": None}


def test_verify_gets_the_image_digest(tmp_path):
    seen = []
    s = Slots(str(tmp_path), "sim")
    _, err = install(s, image(), verify=lambda d: seen.append(d) or True)
    assert err is None and seen == [hashlib.sha256(image()).digest()]


def flip(img, at):
    """img with one bit of byte `at` flipped."""
    b = bytearray(img)
    b[at] ^= 1
    return bytes(b)


H = "0" * 64


def one(path):
    return image(files=[(path, b"x")], entries=[f"{hashlib.sha256(b'x').hexdigest()} 1 {path}"])


BAD = [
    ("magic", b"XXXX" + image()[4:], "not a firmware image"),
    ("format", image(head='{"format": 2, "version": "1", "board": "sim", "files": 5}'), "unknown manifest format"),
    ("json", image(head='{"format": 1, '), "unknown manifest format"),
    ("version", image(head='{"format": 1, "board": "sim", "files": 5}'), "no version"),
    ("board", image(board="esp32"), "image is for board 'esp32'"),
    ("crc", flip(image(), 40), "manifest CRC"),
    ("hash", flip(image(), len(image()) - 1), "hash mismatch: boards/sim/board.mpy"),
    ("trailing", image() + b"x", "data after the last file"),
    ("dotdot", one("../x.mpy"), "bad manifest line"),
    ("absolute", one("/lib/x.mpy"), "bad manifest line"),
    ("marker", one("slot.json"), "bad manifest line"),
    ("manifest", one("manifest.txt"), "bad manifest line"),
    ("empty-seg", one("a//b.mpy"), "bad manifest line"),
    ("space", one("a b.mpy"), "bad manifest line"),
    ("upper-hex", image(entries=["A" * 64 + " 0 a.mpy"] * 5), "bad manifest line"),
    ("size", image(entries=[H + " -1 a.mpy"] * 5), "bad manifest line"),
    ("dup", image(files=[("a.mpy", b"x"), ("a.mpy", b"x")]), "duplicate path: a.mpy"),
    ("too-few", image(entries=[f"{H} 0 a.mpy"]), "too few files"),
    ("too-many", image(entries=[f"{H} 0 a{i}.mpy" for i in range(6)]), "too many files"),
    ("not-text", image(entries=[H + " 0 \u00e9.mpy"] * 5), "manifest is not text"),
    ("tab", image(entries=[H + "\t0 a.mpy"] * 5), "manifest is not text"),
    ("long-line", image(entries=[H + " 0 " + "a" * 300] * 5), "manifest line too long"),
    ("no-files", image(head='{"format": 1, "version": "1", "board": "sim", "files": 0}'), "no files"),
    ("empty-manifest", fwimage.struct.pack(fwimage.HEADER, b"EVFW", 1, 0, 0, 0), "not a firmware image"),
]


@pytest.mark.parametrize("name,img,msg", BAD, ids=[b[0] for b in BAD])
@pytest.mark.parametrize("step", [1, 7, 4096])
def test_bad_images_stop_at_the_first_bad_byte(tmp_path, name, img, msg, step):
    s = Slots(str(tmp_path), "sim")
    with pytest.raises(ImageError, match=msg.replace("(", r"\(")):
        install(s, img, step)
    assert s.info("a") is None and not (tmp_path / "slot_a").exists()


def test_complete_slot_survives_late_feed_and_abort(tmp_path):
    s = Slots(str(tmp_path), "sim")
    inst, err = install(s, image())
    assert err is None
    with pytest.raises(ImageError, match="already complete"):
        inst.feed(b"x")
    inst.abort()
    assert inst.finish() is None and s.verify_slot("a") is None


@pytest.mark.parametrize("cut", [0, 5, 12, 40, len(image()) - 1])
def test_truncated_image(tmp_path, cut):
    s = Slots(str(tmp_path), "sim")
    inst = s.begin_install()
    inst.feed(image()[:cut])
    assert inst.finish() == "image truncated" and s.info("a") is None


@pytest.mark.parametrize("verify", [lambda d: False, lambda d: 1 / 0])
def test_failed_signature_leaves_no_slot(tmp_path, verify):
    s = Slots(str(tmp_path), "sim")
    _, err = install(s, image(), verify=verify)
    assert err == "signature verification failed" and s.info("a") is None
    assert s.activate_trial("a") == "slot incomplete"


# -- slots and the boot choice ---------------------------------------------------

def boot(root, board="sim"):
    s = Slots(str(root), board)
    return s, s.boot_choice()


def test_trial_confirm_then_next_update_goes_to_the_other_slot(tmp_path):
    s, choice = boot(tmp_path)
    assert choice == (None, None)
    install(s, image(version="1.0"))
    assert s.activate_trial("a") is None
    s, choice = boot(tmp_path)
    assert choice == ("a", None) and s.status()["trial"] == "a"
    assert s.confirm() and not s.confirm()
    st = s.status()
    assert (st["active"], st["trial"], st["version"], st["previous"], st["running"]) == ("a", None, "1.0", None, "a")
    assert s.target() == "b"
    install(s, image(version="2.0"))
    assert s.activate_trial("b") is None
    s, choice = boot(tmp_path)
    assert choice == ("b", None) and s.confirm()
    assert (s.status()["version"], s.status()["previous"]) == ("2.0", "1.0")
    s, choice = boot(tmp_path)
    assert choice == ("b", None) and s.target() == "a"


def test_a_later_slots_object_in_the_same_boot_confirms(tmp_path):
    s, _ = boot(tmp_path)
    install(s, image(version="1.0"))
    s.activate_trial("a")
    assert not Slots(str(tmp_path), "sim").confirm()  # activated, not booted yet
    boot(tmp_path)  # the boot loader's object
    station = Slots(str(tmp_path), "sim")
    assert station.running == "a" and station.confirm()
    assert Slots(str(tmp_path), "sim").status()["active"] == "a"


def test_unconfirmed_trial_rolls_back_at_the_next_boot(tmp_path):
    s, _ = boot(tmp_path)
    install(s, image(version="1.0"))
    s.activate_trial("a")
    boot(tmp_path)[0].confirm()
    s, _ = boot(tmp_path)
    install(s, image(version="2.0"))
    s.activate_trial("b")
    s, choice = boot(tmp_path)
    assert choice == ("b", None)
    s, choice = boot(tmp_path)  # the trial never confirmed (crash, no BootNotification accepted)
    assert choice == ("a", "rolled back: 2.0 in slot b was not confirmed")
    assert not s.confirm()
    st = s.status()
    assert (st["active"], st["trial"], st["version"], st["failure"]) == ("a", None, "1.0", choice[1])
    assert boot(tmp_path)[1] == ("a", None)
    assert s.target() == "b"


def test_trial_rules(tmp_path):
    s, _ = boot(tmp_path)
    assert s.activate_trial("a") == "slot incomplete"
    assert s.activate_trial("c") == "not an inactive slot"
    install(s, image())
    s.activate_trial("a")
    with pytest.raises(ImageError, match="trial boot is pending"):
        s.begin_install()
    s, _ = boot(tmp_path)
    s.confirm()
    assert s.activate_trial("a") == "not an inactive slot"
    assert Slots(str(tmp_path), "esp32").boot_choice() == (None, "active slot a is incomplete: factory firmware")


def test_damaged_slot_is_refused_and_missing_active_falls_back(tmp_path):
    s, _ = boot(tmp_path)
    install(s, image())
    p = tmp_path / "slot_a" / "evse" / "station.mpy"
    p.write_bytes(b"x" + p.read_bytes()[1:])
    assert s.activate_trial("a") == "damaged: evse/station.mpy"
    p.unlink()
    assert s.activate_trial("a") == "missing: evse/station.mpy"
    (tmp_path / "slot_a" / "manifest.txt").write_text('{"format": 1}\nnot a line\n')
    assert s.verify_slot("a") == "manifest damaged"
    install(s, image())
    s.activate_trial("a")
    s, _ = boot(tmp_path)
    s.confirm()
    os.remove(tmp_path / "slot_a" / "slot.json")
    assert boot(tmp_path)[1] == (None, "active slot a is incomplete: factory firmware")


def test_corrupt_state_loads_as_factory(tmp_path):
    (tmp_path / "fwstate.json").write_bytes(b"garbage")
    assert boot(tmp_path)[1] == (None, None)


# -- download into the installer (CPython, loopback) ----------------------------------

def test_download_into_the_installer(tmp_path):
    import asyncio

    from evse.link import http
    from httpserver import HttpServer

    big = [(f"evse/m{i}.mpy", bytes((i + j) & 0xFF for j in range(3000))) for i in range(10)]
    good = image(files=big)
    with HttpServer() as srv:
        srv.files["fw.img"] = good
        srv.files["bad.img"] = flip(good, len(good) - 29000)  # inside the first file
        s = Slots(str(tmp_path), "sim")
        inst = s.begin_install()
        asyncio.run(http.get(srv.url("/files/fw.img?chunked=1&piece=999"), inst.feed, bufsize=512))
        assert inst.finish() is None and s.activate_trial("a") is None
        s = Slots(str(tmp_path), "sim")
        s.boot_choice()
        assert s.confirm()
        inst = s.begin_install()
        got = []
        with pytest.raises(ImageError, match="hash mismatch: evse/m0.mpy"):
            asyncio.run(http.get(srv.url("/files/bad.img?piece=512&delay=0.001"),
                                 lambda mv: got.append(len(mv)) or inst.feed(mv), bufsize=512))
        assert sum(got) < len(good) // 2 and inst.finish() == "hash mismatch: evse/m0.mpy"
        assert s.status()["slots"] == {"a": "2.0.0", "b": None}


# -- power cuts ---------------------------------------------------------------------

class Crash(Exception):
    """Power cut: not an OSError, so nothing swallows it."""


class Cutter:
    """Counts file-system mutations (open for writing, each write, rename,
    remove, mkdir, rmdir) and cuts the power at mutation number `at`. A cut
    write leaves half of its bytes, a cut open an empty file."""

    def __init__(self, monkeypatch, at):
        self.n = 0
        self.at = at
        real_open = builtins.open
        cutter = self

        class F:
            def __init__(self, f):
                self.f = f

            def write(self, b):
                if cutter.tick():
                    self.f.write(bytes(b)[:len(b) // 2])
                    self.f.close()
                    raise Crash()
                return self.f.write(b)

            def close(self):
                self.f.close()

            def __enter__(self):
                return self

            def __exit__(self, *a):
                self.f.close()

        def op(*args, **kw):
            mode = args[1] if len(args) > 1 else kw.get("mode", "r")
            f = real_open(*args, **kw)
            if "w" not in mode and "a" not in mode:
                return f
            if self.tick():
                f.close()
                raise Crash()
            return F(f)
        monkeypatch.setattr(builtins, "open", op)
        for name in ("rename", "remove", "mkdir", "rmdir"):
            monkeypatch.setattr(os, name, self._wrap(getattr(os, name)))

    def tick(self):
        self.n += 1
        return self.n == self.at

    def _wrap(self, fn):
        def w(*a):
            if self.tick():
                raise Crash()
            return fn(*a)
        return w


V1 = image(version="1.0")
V2 = image(files=FILES[:2] + [("evse/new.mpy", b"new" * 500)] + FILES[2:], version="2.0")


def update(root, confirm):
    s, _ = boot(root)
    install(s, V2, step=700)
    assert s.activate_trial("b") is None
    s, _ = boot(root)
    if confirm:
        s.confirm()
    boot(root)


@pytest.fixture(scope="module")
def v1_active(tmp_path_factory):
    root = tmp_path_factory.mktemp("v1")
    s, _ = boot(root)
    install(s, V1)
    s.activate_trial("a")
    boot(root)[0].confirm()
    return root


@pytest.mark.parametrize("confirm", [True, False])
def test_power_cut_between_any_two_file_operations(tmp_path, monkeypatch, v1_active, confirm):
    root = shutil.copytree(v1_active, tmp_path / "count")
    count = Cutter(monkeypatch, 0)
    update(root, confirm)
    total = count.n
    monkeypatch.undo()
    assert total > 40
    for at in range(1, total + 1):
        root = shutil.copytree(v1_active, tmp_path / f"cut{at}")
        with monkeypatch.context() as m:
            Cutter(m, at)
            with pytest.raises(Crash):
                update(root, confirm)
        # Power back: one consistent, complete, bootable choice.
        s, (slot, _failure) = boot(root)
        assert slot in ("a", "b"), at
        assert s.verify_slot(slot) is None, at
        assert s.info(slot)["version"] == {"a": "1.0", "b": "2.0"}[slot]
        # An unconfirmed trial rolls back to 1.0 at the boot after.
        s, (slot2, _) = boot(root)
        assert slot2 == slot or (slot, slot2) == ("b", "a"), at
        # ... and the station can still update afterwards.
        if s.state["trial"] is None:
            _, err = install(s, V2, step=4096)
            assert err is None and s.activate_trial(s.target()) is None, at
        shutil.rmtree(root)


# -- the MicroPython VM -------------------------------------------------------------

VM_STEPS_HEAD = """
import gc, json
from evse.link.http import Response
from evse.fwimage import Slots
"""
VM_SETUP = """
s = Slots("/data", "sim")
print(json.dumps(s.boot_choice()))
inst = s.begin_install(verify=lambda d: len(d) == 32)
resp = Response()
buf = bytearray(BUFSIZE)
mv = memoryview(buf)
f = open("/resp.bin", "rb")
def pump(n):
    for _ in range(n):
        k = f.readinto(buf)
        if not k:
            return
        i = 0
        while i < k:
            i += resp.feed(mv[i:k], inst.feed)
"""
VM_STEP = "pump(PER)\nprint('A', gc.mem_alloc())"
VM_TAIL = """
f.close()
resp.eof()
print(json.dumps([resp.status, inst.finish(), s.activate_trial("a")]))
s = Slots("/data", "sim")
print(json.dumps(s.boot_choice()), s.confirm())
st = s.status()
print(json.dumps([st["active"], st["version"], st["slots"], s.verify_slot("a")]))
for bad in (BAD_IMAGES):
    inst = s.begin_install()
    try:
        inst.feed(bad)
        print(json.dumps(inst.finish()))
    except ValueError as e:
        print(json.dumps(str(e)))
inst = s.begin_install()
inst.feed(GOOD2)
print(json.dumps([inst.finish(), s.activate_trial("b")]))
print(json.dumps([Slots("/data", "sim").boot_choice(), Slots("/data", "sim").boot_choice()]))
"""


def _errors(images):
    """What CPython's installer says about each image."""
    import tempfile
    out = []
    with tempfile.TemporaryDirectory() as d:
        s = Slots(d, "sim")
        for img in images:
            inst = s.begin_install()
            try:
                inst.feed(img)
                out.append(inst.finish())
            except ImageError as e:
                out.append(str(e))
    return out


def chunked_response(body, piece=1000):
    out = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
    for i in range(0, len(body), piece):
        p = body[i:i + piece]
        out.append(b"%x\r\n%s\r\n" % (len(p), p))
    return b"".join(out) + b"0\r\n\r\n"


def test_streamed_download_and_install_in_the_vm_heap():
    # ~100 KB, 40 files: the size of this firmware's .mpy image.
    files = [(f"evse/m{i:02d}.mpy", bytes((i * 31 + j) & 0xFF for j in range(2500))) for i in range(40)]
    img = image(files=files, version="9.9")
    raw = chunked_response(img)
    bufsize = 1024
    steps = [VM_STEPS_HEAD, "gc.collect()", "print('BASE', gc.mem_alloc())",
             VM_SETUP.replace("BUFSIZE", str(bufsize)), "gc.collect()"]
    per = 1  # chunks per VM call: the VM collects garbage only between calls
    for _ in range(len(raw) // (per * bufsize) + 1):
        steps += [VM_STEP.replace("PER", str(per)), "gc.collect()", "print('M', gc.mem_alloc())"]
    bad = [BAD[i][1] for i in (0, 4, 6, 7, 8, 16, 18)] + [image()[:100]]
    tail = VM_TAIL.replace("BAD_IMAGES", ", ".join(repr(b) for b in bad)).replace("GOOD2", repr(image()))
    steps.append(tail)
    out = mpvm.run(steps, extra={"/resp.bin": "base64:" + base64.b64encode(raw).decode()})
    lines = out.splitlines()
    want = [str(e) for e in _errors(bad)]
    assert [json.loads(x) for x in lines[-10:-2]] == want
    assert json.loads(lines[-2]) == [None, None]
    assert json.loads(lines[-1]) == [["b", None], ["a", "rolled back: 2.0.0 in slot b was not confirmed"]]
    lines = lines[:-10]
    assert json.loads(lines[1]) == [None, None]
    assert json.loads(lines[-3]) == [200, None, None]
    assert lines[-2].split("] ") == ['["a", null', "True"]
    assert json.loads(lines[-1]) == ["a", "9.9", {"a": "9.9", "b": None}, None]
    base = int(lines[0].split()[1])
    during = [int(x.split()[1]) - base for x in lines if x.startswith("A ")]
    live = [int(x.split()[1]) - base for x in lines if x.startswith("M ")]
    print(f"\nheap above the imported modules: live max {max(live)} B, during a step at most {max(during)} B "
          f"({len(img)} B image, {bufsize} B buffer)")
    assert max(live) < 16000


def test_device_entry_runs_the_trial_slot_and_reports_its_version(tmp_path, monkeypatch):
    # firmware/main.py: the slot goes first on sys.path (its .mpy shadow the
    # factory modules) and its version becomes the board's firmwareVersion.
    import sys

    import main
    s, _ = boot(tmp_path, board="esp32")
    install(s, image(version="7.1.0", board="esp32"))
    assert s.activate_trial("a") is None
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    assert main.choose_slot("esp32", data=str(tmp_path)) == "7.1.0"
    assert sys.path[0] == s.dir("a")
    assert main.choose_slot("esp32", data=str(tmp_path / "factory")) is None  # no slot: the factory image
