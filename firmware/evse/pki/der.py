"""ASN.1 DER (X.690) reading and writing for certificates, keys and CSRs.

Reading never copies the input: a `Der` walks a bytes/memoryview between two
offsets and returns offsets. Only what DER allows is accepted (definite,
minimal lengths; single-byte tags); anything else raises ValueError.
"""

# Universal tags (X.680 section 8.4), with the constructed bit where DER requires it.
BOOLEAN = 0x01
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
UTF8 = 0x0C
PRINTABLE = 0x13
IA5 = 0x16
UTC_TIME = 0x17
GEN_TIME = 0x18
SEQUENCE = 0x30
SET = 0x31

_MAX_LEN_BYTES = 3  # 16 MB: nothing we parse comes close; refuses "2**64" lengths early


class Der:
    """Cursor over the TLVs in buf[pos:end]."""

    def __init__(self, buf, pos=0, end=None):
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    def at_end(self):
        return self.pos >= self.end

    def peek(self):
        """Tag of the next TLV, or -1 at the end."""
        return self.buf[self.pos] if self.pos < self.end else -1

    def read(self, tag=None):
        """Next TLV as (tag, content start, content end); checks `tag` if given."""
        buf, p, end = self.buf, self.pos, self.end
        if p + 2 > end:
            raise ValueError("der: truncated")
        t = buf[p]
        if t & 0x1F == 0x1F:
            raise ValueError("der: multi-byte tag")
        if tag is not None and t != tag:
            raise ValueError("der: tag %02x, expected %02x" % (t, tag))
        n = buf[p + 1]
        p += 2
        if n & 0x80:
            k = n & 0x7F
            if k == 0 or k > _MAX_LEN_BYTES or p + k > end:
                raise ValueError("der: bad length")
            if buf[p] == 0:
                raise ValueError("der: length not minimal")
            n = 0
            for i in range(k):
                n = (n << 8) | buf[p + i]
            p += k
            if n < 0x80:
                raise ValueError("der: length not minimal")
        if n > end - p:
            raise ValueError("der: truncated")
        self.pos = p + n
        return t, p, p + n

    def enter(self, tag=SEQUENCE):
        """A cursor over the content of the next TLV (a SEQUENCE by default)."""
        _, s, e = self.read(tag)
        return Der(self.buf, s, e)

    def raw(self, tag=None):
        """The whole next TLV (header included) as a memoryview slice."""
        start = self.pos
        self.read(tag)
        return memoryview(self.buf)[start:self.pos]

    def content(self, tag=None):
        """Content of the next TLV as a memoryview slice."""
        _, s, e = self.read(tag)
        return memoryview(self.buf)[s:e]

    def integer(self):
        """INTEGER as a Python int (minimal two's-complement encoding required)."""
        _, s, e = self.read(INTEGER)
        buf = self.buf
        if s == e:
            raise ValueError("der: empty integer")
        if e - s > 1 and ((buf[s] == 0 and buf[s + 1] < 0x80) or (buf[s] == 0xFF and buf[s + 1] >= 0x80)):
            raise ValueError("der: integer not minimal")
        v = int.from_bytes(bytes(buf[s:e]), "big")
        if buf[s] & 0x80:
            v -= 1 << (8 * (e - s))
        return v

    def uint(self):
        v = self.integer()
        if v < 0:
            raise ValueError("der: negative integer")
        return v

    def boolean(self):
        _, s, e = self.read(BOOLEAN)
        if e - s != 1 or self.buf[s] not in (0, 0xFF):
            raise ValueError("der: bad boolean")
        return self.buf[s] == 0xFF

    def bits(self):
        """BIT STRING as (unused bit count, memoryview of the bytes)."""
        _, s, e = self.read(BIT_STRING)
        if s == e:
            raise ValueError("der: empty bit string")
        unused = self.buf[s]
        if unused > 7 or (unused and (s + 1 == e or self.buf[e - 1] & ((1 << unused) - 1))):
            raise ValueError("der: bad bit string")
        return unused, memoryview(self.buf)[s + 1:e]

    def oid(self):
        """OBJECT IDENTIFIER as a dotted string."""
        _, s, e = self.read(OID)
        return decode_oid(self.buf, s, e)

    def null(self):
        _, s, e = self.read(NULL)
        if s != e:
            raise ValueError("der: bad null")

    def finish(self):
        """Refuse trailing data after the last expected TLV."""
        if self.pos != self.end:
            raise ValueError("der: trailing data")


def decode_oid(buf, s, e):
    if s == e or buf[e - 1] & 0x80:
        raise ValueError("der: bad oid")
    arcs = []
    v = 0
    first = True
    for i in range(s, e):
        b = buf[i]
        if v == 0 and b == 0x80:
            raise ValueError("der: oid not minimal")
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            if first:
                x = 2 if v >= 80 else v // 40
                arcs.append(x)
                v -= 40 * x
                first = False
            arcs.append(v)
            v = 0
    return ".".join(str(a) for a in arcs)


def bit_length(v):
    """int.bit_length() for v >= 0 (MicroPython ints lack the method)."""
    h = "%x" % v
    n = (len(h) - 1) * 4
    top = int(h[0], 16)
    while top:
        n += 1
        top >>= 1
    return n


# Writing.

def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        head = bytes((tag, n))
    else:
        ln = n.to_bytes((bit_length(n) + 7) // 8, "big")
        head = bytes((tag, 0x80 | len(ln))) + ln
    return head + bytes(content)


def seq(*parts):
    return tlv(SEQUENCE, b"".join(parts))


def set_of(*parts):
    # DER sorts SET OF elements by their encoding (X.690 11.6).
    return tlv(SET, b"".join(sorted(bytes(p) for p in parts)))


def integer(v):
    n = (bit_length(v) + 8) // 8 if v >= 0 else (bit_length(-v - 1) + 8) // 8
    if v < 0:
        v += 1 << (8 * n)
    return tlv(INTEGER, v.to_bytes(n, "big"))


def bits(data, unused=0):
    return tlv(BIT_STRING, bytes((unused,)) + bytes(data))


def octets(data):
    return tlv(OCTET_STRING, data)


def utf8(text):
    return tlv(UTF8, text.encode())


def oid(dotted):
    arcs = [int(a) for a in dotted.split(".")]
    if len(arcs) < 2:
        raise ValueError("der: bad oid")
    out = bytearray()
    for v in [arcs[0] * 40 + arcs[1]] + arcs[2:]:
        chunk = [v & 0x7F]
        v >>= 7
        while v:
            chunk.append(0x80 | (v & 0x7F))
            v >>= 7
        for b in reversed(chunk):
            out.append(b)
    return tlv(OID, out)


def explicit(n, content):
    """Context-specific constructed [n] wrapping `content`."""
    return tlv(0xA0 | n, content)
