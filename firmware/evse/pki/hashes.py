"""Hash objects by OCPP name: hashlib where the port has it, pure Python otherwise."""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SIZES = {"SHA256": 32, "SHA384": 48, "SHA512": 64}


def new(alg: str, data: "Any" = b""):
    """A hash object with update()/digest() for "SHA256", "SHA384" or "SHA512"."""
    if alg not in SIZES:
        raise ValueError("hash: unsupported " + str(alg))
    if alg == "SHA256":  # CircuitPython's hashlib has only new()
        from evse.compat import sha256_hasher
        return sha256_hasher(data)
    import hashlib
    fn = getattr(hashlib, alg.lower(), None)
    if fn is None:  # MicroPython ports usually have only sha256 (and sha1)
        from evse.pki import sha512
        fn = sha512.SHA384 if alg == "SHA384" else sha512.SHA512
    h = fn()
    if data:
        h.update(data)
    return h


def digest(alg: str, data: "Any") -> bytes:
    return new(alg, data).digest()
