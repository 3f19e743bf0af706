"""NIST P-256 (secp256r1, SEC 2 section 2.4.2) point arithmetic.

Points are affine (x, y) tuples at the API and Jacobian (X, Y, Z) inside,
where (x, y) = (X/Z^2, Y/Z^3) and Z == 0 is the point at infinity. Python
integers are not constant-time: fine for verification; signing on a device
that must resist timing attacks belongs in a secure element (see backend).
"""

P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5
G = (GX, GY)
_INF = (1, 1, 0)


def on_curve(x, y):
    return 0 <= x < P and 0 <= y < P and (y * y - x * x * x + 3 * x - B) % P == 0


def decode_point(data: bytes) -> "tuple[int, int]":
    """Affine point from SEC 1 (2.3.4) bytes, uncompressed or compressed;
    ValueError when it is malformed or not on the curve."""
    data = bytes(data)
    if len(data) == 65 and data[0] == 4:
        x = int.from_bytes(data[1:33], "big")
        y = int.from_bytes(data[33:], "big")
    elif len(data) == 33 and data[0] in (2, 3):
        x = int.from_bytes(data[1:], "big")
        if x >= P:
            raise ValueError("p256: bad point")
        # P = 3 (mod 4): the square root is a^((P+1)/4).
        y = pow((x * x * x - 3 * x + B) % P, (P + 1) // 4, P)
        if (y & 1) != (data[0] & 1):
            y = P - y
    else:
        raise ValueError("p256: bad point encoding")
    if not on_curve(x, y):
        raise ValueError("p256: point not on curve")
    return x, y


def encode_point(pt):
    x, y = pt
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


def _double(pt):
    # dbl-2001-b for a = -3 (Hyperelliptic EFD).
    x, y, z = pt
    if z == 0 or y == 0:
        return _INF
    delta = z * z % P
    gamma = y * y % P
    beta = x * gamma % P
    alpha = 3 * (x - delta) * (x + delta) % P
    x3 = (alpha * alpha - 8 * beta) % P
    z3 = ((y + z) * (y + z) - gamma - delta) % P
    y3 = (alpha * (4 * beta - x3) - 8 * gamma * gamma) % P
    return x3, y3, z3


def _add_affine(pt, q):
    """Jacobian `pt` + affine `q` (madd-2007-bl); handles every special case."""
    x1, y1, z1 = pt
    if z1 == 0:
        return q[0], q[1], 1
    z1z1 = z1 * z1 % P
    u2 = q[0] * z1z1 % P
    s2 = q[1] * z1 * z1z1 % P
    h = (u2 - x1) % P
    r = (s2 - y1) % P
    if h == 0:
        return _double(pt) if r == 0 else _INF
    hh = h * h % P
    i = 4 * hh % P
    j = h * i % P
    r = 2 * r % P
    v = x1 * i % P
    x3 = (r * r - j - 2 * v) % P
    y3 = (r * (v - x3) - 2 * y1 * j) % P
    z3 = ((z1 + h) * (z1 + h) - z1z1 - hh) % P
    return x3, y3, z3


def to_affine(pt):
    """Affine (x, y), or None for the point at infinity."""
    x, y, z = pt
    if z == 0:
        return None
    zi = pow(z, P - 2, P)
    zi2 = zi * zi % P
    return x * zi2 % P, y * zi2 * zi % P


def mul(k, pt=G):
    """k * pt (affine in, affine or None out): double-and-add with mixed
    additions, which keeps the one field inversion at the end."""
    k %= N
    acc = _INF
    for i in range(255, -1, -1):  # every scalar is below N < 2**256
        acc = _double(acc)
        if k >> i & 1:
            acc = _add_affine(acc, pt)
    return to_affine(acc)


def mul_add(u1, u2, q):
    """u1*G + u2*q with Shamir's trick (one shared doubling chain); affine
    point or None at infinity."""
    gq = to_affine(_add_affine((GX, GY, 1), q))
    pts = (None, G, q, gq)
    acc = _INF
    for i in range(255, -1, -1):
        acc = _double(acc)
        w = (u1 >> i & 1) | (u2 >> i & 1) << 1
        if w:
            p = pts[w]
            if p is None:  # q == -G: G + q is infinity
                acc = _add_affine(_add_affine(acc, G), q)
            else:
                acc = _add_affine(acc, p)
    return to_affine(acc)
