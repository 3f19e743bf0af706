"""Host crypto backend over `cryptography` for evse.pki (never on a device).

Same four methods as evse.pki.backend.Pure: lets host tools (simulator,
CSMS) run the station's PKI code at native speed, and cross-checks the pure
implementation in tests.
"""
from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

_HASHES: dict[str, hashes.HashAlgorithm] = {"SHA256": hashes.SHA256(), "SHA384": hashes.SHA384(),
                                            "SHA512": hashes.SHA512()}


def _prehashed(digest: bytes) -> Prehashed:
    return Prehashed(_HASHES[{32: "SHA256", 48: "SHA384", 64: "SHA512"}[len(digest)]])


class Host:
    """evse.pki backend on OpenSSL through `cryptography`."""

    def ec_keygen(self) -> tuple[int, tuple[int, int]]:
        key = ec.generate_private_key(ec.SECP256R1())
        nums = key.private_numbers()
        return nums.private_value, (nums.public_numbers.x, nums.public_numbers.y)

    def ec_sign(self, d: int, digest: bytes) -> bytes:
        key = ec.derive_private_key(d, ec.SECP256R1())
        return key.sign(digest, ec.ECDSA(_prehashed(digest)))

    def ec_verify(self, pub: tuple[int, int], digest: bytes, sig: bytes) -> bool:
        key = ec.EllipticCurvePublicNumbers(pub[0], pub[1], ec.SECP256R1()).public_key()
        try:
            key.verify(bytes(sig), digest, ec.ECDSA(_prehashed(digest)))
        except (InvalidSignature, ValueError):
            return False
        return True

    def rsa_verify(self, key: tuple[int, int], digest: bytes, sig: bytes, alg: str = "SHA256",
                   pss: bool = False) -> bool:
        pub = rsa.RSAPublicNumbers(key[1], key[0]).public_key()
        pads: list[padding.AsymmetricPadding] = [padding.PKCS1v15()]
        if pss:
            pads.append(padding.PSS(mgf=padding.MGF1(_HASHES[alg]), salt_length=padding.PSS.AUTO))
        for pad in pads:
            try:
                pub.verify(bytes(sig), digest, pad, Prehashed(_HASHES[alg]))
                return True
            except (InvalidSignature, ValueError):
                pass
        return False
