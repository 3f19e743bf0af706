"""PEM (RFC 7468) text <-> DER bytes, base64 through binascii."""
import binascii

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_BEGIN = "-----BEGIN "
_END = "-----END "
_DASH = "-----"


def decode_all(text: "Any", label: "str | None" = None) -> "list[tuple[str, bytes]]":
    """Every PEM block in `text` (str or bytes) as a list of (label, der);
    only blocks with `label` when given. Raises ValueError on a broken block."""
    if not isinstance(text, str):
        try:
            text = bytes(text).decode()
        except Exception:
            raise ValueError("pem: not text") from None
    out: "list[tuple[str, bytes]]" = []
    pos = 0
    while True:
        b = text.find(_BEGIN, pos)
        if b < 0:
            return out
        le = text.find(_DASH, b + len(_BEGIN))
        if le < 0:
            raise ValueError("pem: bad header")
        name = text[b + len(_BEGIN):le]
        end_line = _END + name + _DASH
        e = text.find(end_line, le + len(_DASH))
        if e < 0:
            raise ValueError("pem: no end line")
        body = text[le + len(_DASH):e]
        pos = e + len(end_line)
        if label is None or name == label:
            out.append((name, _b64(body)))


def _b64(body):
    if ":" in body:  # RFC 1421 headers (encrypted keys): not supported
        raise ValueError("pem: headers not supported")
    data = "".join(body.split())
    for c in data:
        if not (c.isalpha() or c.isdigit() or c in "+/="):
            raise ValueError("pem: bad base64") from None
    try:
        der = binascii.a2b_base64(data.encode())
    except Exception:  # binascii.Error is a ValueError on CPython only
        raise ValueError("pem: bad base64") from None
    if not der:
        raise ValueError("pem: empty block")
    return der


def decode(text: "Any", label: str) -> bytes:
    """DER of the first block with `label`; ValueError when there is none."""
    blocks = decode_all(text, label)
    if not blocks:
        raise ValueError("pem: no " + label)
    return blocks[0][1]


def encode(der: bytes, label: str) -> str:
    """PEM text for `der`, 64 base64 characters per line."""
    lines = [_BEGIN + label + _DASH]
    der = bytes(der)
    for i in range(0, len(der), 48):
        lines.append(binascii.b2a_base64(der[i:i + 48]).decode().strip())
    lines.append(_END + label + _DASH)
    return "\n".join(lines) + "\n"
