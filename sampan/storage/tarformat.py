"""The tar format as layers use it: header blocks read and written, PAX records, entry types.

Both directions live here so that the reader (``extract.py``) and the one writer
(``layerwriter.py``) agree on every field.  Supported: ustar, GNU long names (``L``/``K``),
PAX extended headers (``x``; global ``g`` headers are read and ignored, as Docker does),
base-256 numbers.  Refused: GNU sparse files and multi-volume entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sampan.errors import InvalidArgument, UnsafeArchiveEntry

BLOCK = 512
#: Largest PAX or GNU long-name payload accepted (a sane bound against memory exhaustion).
MAX_META = 1 << 20

REG = "0"
AREG = "\0"
LNK = "1"
SYM = "2"
CHR = "3"
BLK = "4"
DIR = "5"
FIFO = "6"
CONT = "7"
PAX = "x"
PAX_GLOBAL = "g"
GNU_LONGNAME = "L"
GNU_LONGLINK = "K"

_USTAR_MAGIC = b"ustar\x0000"
_GNU_MAGIC = b"ustar  \x00"


@dataclass(frozen=True, slots=True)
class AppliedLayer:
    """A layer tar's ``diff_id`` (``sha256:<hex>`` of the uncompressed tar) and byte length."""

    diff_id: str
    size: int


@dataclass(slots=True)
class TarEntry:
    """One member as the reader sees it, after PAX and GNU long-name records were merged."""

    name: str
    type: str
    mode: int = 0
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime_ns: int = 0
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)


def decode_name(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def encode_name(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def _field(raw: bytes) -> bytes:
    return raw.split(b"\0", 1)[0]


def _number(raw: bytes, what: str, where: str) -> int:
    if (
        raw and raw[0] & 0x80
    ):  # base-256 (GNU/star): big-endian, bit 0x40 of the first byte is the sign
        value = int.from_bytes(bytes([raw[0] & 0x7F]) + raw[1:], "big")
        if raw[0] & 0x40:
            value -= 1 << (8 * len(raw) - 1)
        return value
    text = raw.replace(b"\0", b" ").strip()
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise InvalidArgument(f"{where}: corrupt tar header: bad {what} field {raw!r}") from None


def parse_header(block: bytes, where: str) -> TarEntry:
    """Decode one 512-byte header block (not all zeros); checks the checksum."""
    stored = _number(block[148:156], "checksum", where)
    unsigned = sum(block) - sum(block[148:156]) + 256
    if stored != unsigned:
        chk = block[:148] + block[156:]
        signed = unsigned - 2 * sum(b for b in chk if b >= 128)
        if stored != signed:
            raise InvalidArgument(f"{where}: corrupt tar header (bad checksum) - not a tar stream?")
    name = _field(block[0:100])
    magic = block[257:265]
    if magic[:6] == b"ustar\x00":
        prefix = _field(block[345:500])
        if prefix:
            name = prefix + b"/" + name
    elif magic != _GNU_MAGIC and magic[:5] != b"ustar" and block[257:262] != b"\0" * 5:
        raise InvalidArgument(f"{where}: corrupt tar header (unknown format) - not a tar stream?")
    return TarEntry(
        name=decode_name(name),
        type=chr(block[156]),
        mode=_number(block[100:108], "mode", where) & 0o7777,
        uid=_number(block[108:116], "uid", where),
        gid=_number(block[116:124], "gid", where),
        size=_number(block[124:136], "size", where),
        mtime_ns=_number(block[136:148], "mtime", where) * 1_000_000_000,
        linkname=decode_name(_field(block[157:257])),
        devmajor=_number(block[329:337], "devmajor", where),
        devminor=_number(block[337:345], "devminor", where),
    )


def parse_pax(data: bytes, entry_name: str, where: str) -> dict[str, bytes]:
    """Split PAX records (``"<len> <key>=<value>\\n"``) into a dict; later records win."""
    out: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # some writers pad with NULs
            break
        sp = data.find(b" ", pos)
        try:
            length = int(data[pos:sp])
        except ValueError:
            raise UnsafeArchiveEntry(entry_name, "malformed PAX record", where=where) from None
        rec = data[sp + 1 : pos + length]
        if sp < 0 or length <= 0 or pos + length > len(data) or not rec.endswith(b"\n"):
            raise UnsafeArchiveEntry(entry_name, "malformed PAX record", where=where)
        key, eq, value = rec[:-1].partition(b"=")
        if not eq:
            raise UnsafeArchiveEntry(entry_name, "malformed PAX record", where=where)
        out[key.decode("utf-8", "surrogateescape")] = value
        pos += length
    return out


def apply_pax(entry: TarEntry, pax: dict[str, bytes], where: str) -> None:
    """Merge PAX records into ``entry`` (path, linkpath, size, ids, mtime, xattrs)."""
    for key, value in pax.items():
        try:
            if key == "path":
                entry.name = decode_name(value)
            elif key == "linkpath":
                entry.linkname = decode_name(value)
            elif key == "size":
                entry.size = int(value)
            elif key == "uid":
                entry.uid = int(value)
            elif key == "gid":
                entry.gid = int(value)
            elif key == "mtime":
                sec, _, frac = value.decode().partition(".")
                ns = int((frac + "000000000")[:9]) if frac else 0
                entry.mtime_ns = int(sec) * 1_000_000_000 + (-ns if sec.startswith("-") else ns)
            elif key.startswith("SCHILY.xattr."):
                entry.xattrs[key[len("SCHILY.xattr.") :]] = value
            elif key.startswith("GNU.sparse."):
                raise UnsafeArchiveEntry(
                    entry.name, "GNU sparse files are not supported", where=where
                )
        except ValueError:
            raise UnsafeArchiveEntry(
                entry.name, f"malformed PAX {key!r} value", where=where
            ) from None
    if entry.size < 0 or entry.uid < 0 or entry.gid < 0:
        raise UnsafeArchiveEntry(entry.name, "negative size or id", where=where)


# ---------------------------------------------------------------- writing


_LIMITS = {8: 8**7, 12: 8**11}
_ZEROS = {8: b"0000000\0", 12: b"00000000000\0"}


def _octal(value: int, width: int) -> bytes | None:
    """``width``-byte NUL-terminated octal, or None when it does not fit."""
    if 0 <= value < _LIMITS[width]:
        return b"%0*o\0" % (width - 1, value)
    return None


def _num(value: int, width: int) -> bytes:
    """Like :func:`_octal`, zero when it does not fit (PAX then carries the value)."""
    if 0 <= value < _LIMITS[width]:
        return b"%0*o\0" % (width - 1, value)
    return _ZEROS[width]


def _split_ustar(name: bytes) -> tuple[bytes, bytes] | None:
    """(prefix, name) for the ustar fields, or None if PAX is needed."""
    if len(name) <= 100:
        return b"", name
    if len(name) > 256:
        return None
    i = name.find(b"/", len(name) - 101)
    while i > 0:
        if i <= 155 and len(name) - i - 1 <= 100 and len(name) - i - 1 > 0:
            return name[:i], name[i + 1 :]
        i = name.find(b"/", i + 1)
    return None


def pax_record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode() + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n).encode()) + len(body) != n:
        n = len(str(n).encode()) + len(body)
    return str(n).encode() + body


def _block(
    name: bytes,
    prefix: bytes,
    typ: str,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    linkname: bytes,
    devmajor: int,
    devminor: int,
) -> bytes:
    h = b"".join(
        (
            name.ljust(100, b"\0"),
            _num(mode, 8),
            _num(uid, 8),
            _num(gid, 8),
            _num(size, 12),
            _num(mtime, 12),
            b"        ",
            typ.encode("latin-1"),
            linkname.ljust(100, b"\0"),
            _USTAR_MAGIC,
            bytes(64),  # no user or group names
            _num(devmajor, 8),
            _num(devminor, 8),
            prefix.ljust(155, b"\0"),
            bytes(12),
        )
    )
    return h[:148] + b"%06o\0 " % sum(h) + h[156:]


def encode_header(entry: TarEntry) -> bytes:
    """Header block(s) for ``entry``: one ustar block, preceded by a PAX header when needed.

    Deterministic: no user/group names, integer seconds, PAX only for what ustar cannot hold
    (long names, big numbers, negative times, xattrs), PAX records in sorted key order.
    """
    name = encode_name(entry.name)
    link = encode_name(entry.linkname)
    mtime = entry.mtime_ns // 1_000_000_000
    pax: dict[str, bytes] = {}
    split = _split_ustar(name)
    if split is None:
        pax["path"] = name
        split = (b"", name[-100:].lstrip(b"/") or b"x")
    if len(link) > 100:
        pax["linkpath"] = link
        link = link[:100]
    for key, value, width in (
        ("size", entry.size, 12),
        ("uid", entry.uid, 8),
        ("gid", entry.gid, 8),
        ("mtime", mtime, 12),
    ):
        if _octal(value, width) is None:
            pax[key] = str(value).encode()
    for xname, xvalue in entry.xattrs.items():
        pax["SCHILY.xattr." + xname] = xvalue
    out = b""
    if pax:
        payload = b"".join(pax_record(k, pax[k]) for k in sorted(pax))
        pdir, _, pbase = name.rstrip(b"/").rpartition(b"/")
        pname = (pdir + b"/" if pdir else b"") + b"PaxHeaders.0/" + pbase
        pname = pname[-100:] if len(pname) > 100 else pname
        out += _block(pname, b"", PAX, 0o644, 0, 0, len(payload), 0, b"", 0, 0)
        out += payload + b"\0" * (-len(payload) % BLOCK)

    out += _block(
        split[1],
        split[0],
        entry.type,
        entry.mode & 0o7777,
        entry.uid,
        entry.gid,
        entry.size,
        mtime,
        link,
        entry.devmajor,
        entry.devminor,
    )
    return out


def clean_path(name: str) -> str | None:
    """Docker's lexical clean of an entry name, relative to the layer root.

    Leading ``/`` and ``.`` components are dropped, ``..`` pops a component; returns ``""``
    for the root itself and None when the name climbs above the root.
    """
    parts: list[str] = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(comp)
    return "/".join(parts)


def split_path(path: str) -> tuple[str, str]:
    parent, _, base = path.rpartition("/")
    return parent, base
