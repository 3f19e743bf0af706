"""tools/mkimage.py, run as its command line: the image installs with
evse.fwimage, holds what a device needs, and --sign prints what openssl
prints (RSA) or a signature openssl and cryptography accept (ECDSA)."""
import base64
import os
import subprocess
import sys

import mkimage
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from evse.fwimage import ImageError, Slots

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "mkimage.py")


def cli(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, cwd=ROOT)


def write_key(path, key):
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return str(path)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    r = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    e = ec.generate_private_key(ec.SECP256R1())
    return d, (write_key(d / "rsa.pem", r), r), (write_key(d / "ec.pem", e), e)


@pytest.fixture(scope="module")
def rsa_image(keys):
    d, (pem, _key), _ = keys
    out = d / "fw-rsa.img"
    p = cli("--board", "sim", "--version", "1.2.3-rc1", "--out", str(out), "--sign", pem)
    assert p.returncode == 0, p.stderr
    return out, p


def test_image_installs_and_holds_the_device_modules(rsa_image, tmp_path):
    out, p = rsa_image
    assert p.stderr.startswith(f"mkimage: {out}: sim 1.2.3-rc1, ")
    s = Slots(str(tmp_path), "sim")
    inst = s.begin_install()
    data = out.read_bytes()
    for i in range(0, len(data), 777):
        inst.feed(data[i:i + 777])
    assert inst.finish() is None and s.verify_slot("a") is None
    assert s.info("a")["version"] == "1.2.3-rc1"
    names = [ln.split(" ", 2)[2] for ln in (tmp_path / "slot_a" / "manifest.txt").read_text().splitlines()[1:]]
    assert {"main.mpy", "evse/station.mpy", "evse/fwimage.mpy", "boards/__init__.mpy", "boards/hal.mpy",
            "boards/sim/board.mpy"} <= set(names)
    assert not [n for n in names if n.startswith(("boards/esp32/", "boards/picow/")) or n == "boards/fakes.mpy"]
    assert all(n.endswith(".mpy") for n in names) and names == sorted(names)
    # .mpy files as mpy-cross makes them (magic 'M', bytecode version 6)
    assert (tmp_path / "slot_a" / "evse" / "station.mpy").read_bytes()[:2] == b"M\x06"
    with pytest.raises(ImageError, match="image is for board 'sim'"):
        Slots(str(tmp_path / "other"), "esp32").begin_install().feed(data[:4096])


def test_board_selection_without_compiling():
    esp = [rel for _src, rel in mkimage.modules("esp32")]
    assert "boards/esp32/board.py" in esp and "boards/drivers/pilot.py" in esp
    assert not [r for r in esp if r.startswith(("boards/sim/", "boards/picow/", "boards/cp_"))]
    assert {"esp32", "picow", "sim"} <= set(mkimage.board_names())


def test_rsa_signature_is_what_openssl_prints(rsa_image, keys):
    out, p = rsa_image
    _, (pem, key), _ = keys
    sig = p.stdout.strip()
    assert p.stdout.count("\n") == 1
    o = subprocess.run(f"openssl dgst -sha256 -sign {pem} {out} | base64 -w0", shell=True,
                       capture_output=True, text=True, check=True)
    assert sig == o.stdout.strip()
    key.public_key().verify(base64.b64decode(sig), out.read_bytes(), padding.PKCS1v15(), hashes.SHA256())


def stub_compile(tmp_path, monkeypatch):
    """mkimage in-process with one stand-in module: the compile step is covered above."""
    src = tmp_path / "m.mpy"
    src.write_bytes(b"M\x06fake")
    monkeypatch.setattr(mkimage, "compile_files", lambda board, d: [(str(src), "main.mpy")])


def test_ecdsa_signature_verifies_with_openssl_and_cryptography(keys, tmp_path, monkeypatch, capsys):
    _, _, (pem, key) = keys
    stub_compile(tmp_path, monkeypatch)
    out = tmp_path / "fw-ec.img"
    assert mkimage.main(["--board", "sim", "--version", "2.0", "--out", str(out), "--sign", pem]) == 0
    sig = base64.b64decode(capsys.readouterr().out.strip(), validate=True)
    key.public_key().verify(sig, out.read_bytes(), ec.ECDSA(hashes.SHA256()))
    (tmp_path / "sig.der").write_bytes(sig)
    (tmp_path / "pub.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    v = subprocess.run(["openssl", "dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.der", str(out)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert v.returncode == 0 and "Verified OK" in v.stdout


def test_without_sign_stdout_is_empty(tmp_path, monkeypatch, capsys):
    stub_compile(tmp_path, monkeypatch)
    assert mkimage.main(["--board", "sim", "--version", "0.1", "--out", str(tmp_path / "a.img")]) == 0
    out = capsys.readouterr()
    assert out.out == "" and out.err.startswith("mkimage: ") and "1 files" in out.err
    s = Slots(str(tmp_path / "root"), "sim")
    inst = s.begin_install()
    inst.feed((tmp_path / "a.img").read_bytes())
    assert inst.finish() is None


@pytest.mark.parametrize("args,msg", [
    ([], "the following arguments are required"),
    (["--board", "nope", "--version", "1", "--out", "x.img"], "unknown board 'nope'"),
    (["--board", "sim", "--version", "", "--out", "x.img"], "--version must be"),
    (["--board", "sim", "--version", "v" * 51, "--out", "x.img"], "--version must be"),
    (["--board", "sim", "--version", "1", "--out", "/no/such/dir/x.img"], "no such directory"),
    (["--board", "sim", "--version", "1", "--out", "."], "--out is a directory"),
    (["--board", "sim", "--version", "1", "--out", "x.img", "--sign", "/no/key.pem"], "--sign /no/key.pem"),
    (["--board", "sim", "--version", "1", "--out", "x.img", "--sign", TOOL], "--sign"),
    (["--board", "sim", "--version", "1", "--out", "x.img", "--bogus"], "unrecognized arguments"),
])
def test_bad_arguments_one_line(args, msg, tmp_path):
    p = subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("mkimage: ") and msg in p.stderr
    assert not (tmp_path / "x.img").exists()
