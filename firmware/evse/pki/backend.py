"""The crypto backend seam: pure Python by default.

A backend is any object with these four methods; pass one as `backend=` to
chain.validate / verify.verify_signature / csr.make_csr (a host backend over
`cryptography` lives in tools/, a board could wrap a secure element):

  ec_keygen() -> (d, (x, y))            d may be an opaque handle for a secure element
  ec_sign(d, digest) -> DER signature
  ec_verify((x, y), digest, der_sig) -> bool
  rsa_verify((n, e), digest, sig, alg, pss=False) -> bool
                                        pss: RSASSA-PSS (MGF1 with alg, any salt
                                        length) is accepted beside PKCS#1 v1.5
"""


class Pure:
    """Pure-Python crypto (evse.pki.ecdsa / rsa); modules load on first use."""

    def ec_keygen(self):
        from evse.pki import ecdsa
        return ecdsa.keygen()

    def ec_sign(self, d, digest):
        from evse.pki import ecdsa
        return ecdsa.sign(d, digest)

    def ec_verify(self, pub, digest, sig):
        from evse.pki import ecdsa
        return ecdsa.verify(pub, digest, sig)

    def rsa_verify(self, key, digest, sig, alg="SHA256", pss=False):
        from evse.pki import rsa
        return rsa.verify(key[0], key[1], digest, sig, alg, pss)


def get(backend=None):
    """`backend` or a pure-Python one (stateless, so a new one costs nothing)."""
    return backend if backend is not None else Pure()
