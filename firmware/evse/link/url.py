"""The one URL parser of the link: ws, wss (the CSMS) and http, https (file
servers). runtime.parse_url and http.parse_url add their schemes' rules."""

DEFAULT_PORT = {"ws": 80, "wss": 443, "http": 80, "https": 443}


def split(url):
    """(scheme lower-cased, host without IPv6 brackets, port text or None,
    target = path?query (at least "/"), userinfo or None, fragment or None).
    The scheme is "" when `url` has none. Raises ValueError for a host or
    IPv6 literal that cannot be read."""
    i = url.find("://")
    scheme = url[:i].lower() if i > 0 else ""
    rest = url[i + 3:] if i > 0 else url
    end = len(rest)
    for c in "/?#":
        j = rest.find(c)
        if 0 <= j < end:
            end = j
    auth, target = rest[:end], rest[end:]
    frag = None
    h = target.find("#")
    if h >= 0:
        target, frag = target[:h], target[h + 1:]
    if not target.startswith("/"):
        target = "/" + target
    user = None
    at = auth.rfind("@")
    if at >= 0:
        user, auth = auth[:at], auth[at + 1:]
    port = None
    if auth.startswith("["):  # [v6]:port
        j = auth.find("]")
        tail = auth[j + 1:]
        if j < 0 or (tail and tail[0] != ":"):
            raise ValueError("bad IPv6 host")
        host = auth[1:j]
        if tail:
            port = tail[1:]
    else:
        j = auth.rfind(":")
        host = auth
        if j >= 0:
            host, port = auth[:j], auth[j + 1:]
        if ":" in host:
            raise ValueError("an IPv6 host goes in [brackets]")
    if not host:
        raise ValueError("no host")
    return scheme, host, port, target, user, frag


def port(text, scheme, empty_ok=False):
    """The port number of `text` (None: the scheme's default)."""
    if text is None or (empty_ok and not text):
        return DEFAULT_PORT[scheme]
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError("bad port %r" % text)
    return int(text)
