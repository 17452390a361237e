"""testlib.names: the shown form of a name from the twin (core/name.c's twin_name_shown), to
find an asset's directory or an event's file by the twin's id."""


def shown(name):
    """The path component twinfs shows for the twin's name (a str or bytes): control
    characters, C1 controls, '%' and '/' as %XX, '.' and '..' as %2E and %2E%2E."""
    raw = name.encode() if isinstance(name, str) else bytes(name)
    if raw in (b".", b".."):
        return "%2E" * len(raw)
    out = bytearray()
    i = 0
    while i < len(raw):
        b = raw[i]
        if b == 0xC2 and i + 1 < len(raw) and 0x80 <= raw[i + 1] <= 0x9F:
            out += b"%%C2%%%02X" % raw[i + 1]
            i += 2
            continue
        if b < 0x20 or b == 0x7F or b in b"%/":
            out += b"%%%02X" % b
        else:
            out.append(b)
        i += 1
    return out.decode("utf-8", "surrogateescape")
