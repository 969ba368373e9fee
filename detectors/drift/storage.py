"""Reference profiles on disk: an uncompressed .npz whose arrays load in place.

`write_npz` writes what np.savez writes, with every array's data 64-byte aligned;
`read_npz` wraps those arrays as read-only views of the blob instead of copying them
through zipfile. Blobs written by np.savez (or compressed) still load, through np.load.
"""
from __future__ import annotations

import io
import math
import re
import struct
import zipfile

import numpy as np

# Zip extra-field id used for alignment padding (as Android's zipalign does).
_ALIGN_EXTRA_ID = 0xD935
_ALIGN = 64


def write_npz(out: io.BytesIO, arrays: dict[str, np.ndarray]) -> None:
    """What np.savez writes (a .npz np.load reads), with each array's data 64-byte
    aligned in `out`: the local zip header is padded with an extra field, and .npy
    headers are already padded to 64 bytes, so `read_npz` can wrap the data in place."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, arr in arrays.items():
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.asanyarray(arr), allow_pickle=False)
            name = f"{key}.npy"
            fixed = out.tell() + 30 + len(name.encode()) + 4  # local header, name, extra-field head
            pad = -fixed % _ALIGN
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.extra = struct.pack("<HH", _ALIGN_EXTRA_ID, pad) + bytes(pad)
            zf.writestr(info, npy.getbuffer())


class _BufferReader(io.RawIOBase):
    """A seekable read-only file over a memoryview, without io.BytesIO's full copy."""

    def __init__(self, buf: memoryview) -> None:
        self._buf = buf
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._buf)}[whence]
        self._pos = max(base + offset, 0)
        return self._pos

    def readinto(self, b) -> int:
        chunk = self._buf[self._pos : self._pos + len(b)]
        b[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


# The header numpy itself writes ({'descr': '<f8', 'fortran_order': False, 'shape': (5000,), }),
# read without ast.literal_eval: a profile has a hundred members and a sweep maps a
# thousand profiles, and numpy's reader was most of the cost of mapping one.
_NPY_HEADER = re.compile(
    rb"\{'descr': '([<>|=]?[A-Za-z]\d*)', 'fortran_order': (True|False), 'shape': \(((?:\d+, ?)*\d*)\), \} *\n")


def _npy_header(buf: memoryview, start: int, size: int) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran order, dtype, offset of the data) of the .npy member at `start`."""
    magic = bytes(buf[start : start + 8])
    if magic[:6] == b"\x93NUMPY" and magic[6] in (1, 2):
        width = 2 if magic[6] == 1 else 4
        n = int.from_bytes(buf[start + 8 : start + 8 + width], "little")
        body = start + 8 + width
        m = _NPY_HEADER.fullmatch(bytes(buf[body : body + n]))
        if m is not None:
            shape = tuple(int(x) for x in m.group(3).split(b",") if x.strip())
            return shape, m.group(2) == b"True", np.dtype(m.group(1).decode()), body + n
    head = io.BytesIO(buf[start : start + min(size, 65536)])
    version = np.lib.format.read_magic(head)
    fmt = np.lib.format
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, fortran, dtype = read_header(head)
    return shape, fortran, dtype, start + head.tell()


def read_npz(buf: memoryview) -> dict[str, np.ndarray]:
    """The arrays of an uncompressed .npz, as read-only views of `buf` where aligned.

    np.load copies every member through zipfile and checks its CRC: on a 200k-row
    profile that is most of the time it takes to load. The members that to_bytes writes
    are stored uncompressed, so each array is located in place (zip local header, then
    the .npy header) and wrapped; a member that is compressed or otherwise unexpected
    goes through np.load.
    """
    located = locate_npz(buf)
    if located is None:
        npz = np.load(io.BytesIO(buf), allow_pickle=False)
        return {k: npz[k] for k in npz.files}
    return wrap_npz(buf, located)


Located = list[tuple[str, np.dtype, int, int, tuple[int, ...], bool]]  # name, dtype, count, offset, shape, fortran


def locate_npz(buf: memoryview) -> Located | None:
    """Where each array of a plain .npz sits in `buf` (for `wrap_npz`), or None when a
    member is compressed or not an .npy (np.load reads such a blob)."""
    members = _plain_members(buf)
    if members is None:  # not quite what write_npz writes: zipfile reads the directory
        with zipfile.ZipFile(_BufferReader(buf)) as zf:
            members = [(i.filename, i.compress_type, i.header_offset, i.file_size) for i in zf.infolist()]
    if any(method != zipfile.ZIP_STORED or not name.endswith(".npy") for name, method, _, _ in members):
        return None
    located: Located = []
    for name, _, header_offset, size in members:
        name_len, extra_len = struct.unpack_from("<HH", buf, header_offset + 26)
        start = header_offset + 30 + name_len + extra_len
        shape, fortran, dtype, offset = _npy_header(buf, start, size)
        if dtype.hasobject:
            raise ValueError("reference profile: object arrays are not allowed")
        count = math.prod(shape)  # (np.prod costs more than the rest of a member)
        if offset + count * dtype.itemsize > start + size:
            raise ValueError(f"reference profile: member {name!r} is truncated")
        located.append((name[: -len(".npy")], dtype, count, offset, shape, fortran))
    return located


def wrap_npz(buf: memoryview, located: Located) -> dict[str, np.ndarray]:
    """The arrays `locate_npz` found, as views of `buf` (copied only where unaligned)."""
    arrays: dict[str, np.ndarray] = {}
    for name, dtype, count, offset, shape, fortran in located:
        arr = np.frombuffer(buf, dtype=dtype, count=count, offset=offset)
        if not arr.flags.aligned:
            arr = arr.copy()  # unaligned views are slow to read and the kernels want aligned data
        arrays[name] = arr.reshape(shape, order="F" if fortran else "C")
    return arrays


_END_RECORD = struct.Struct("<4s4H2LH")  # end of central directory, without a comment
_DIRECTORY_ENTRY = struct.Struct("<4s6H3L5H2L")


def _plain_members(buf: memoryview) -> list[tuple[str, int, int, int]] | None:
    """(name, compression, local header offset, size) of each member, from the central
    directory of a plain zip as write_npz makes it (a thousand profiles are mapped a
    sweep, and zipfile's reader was a third of loading one); None for anything else
    (zip64, a comment, a name not in ASCII): zipfile reads it."""
    end = len(buf) - _END_RECORD.size
    if end < 0:
        return None
    sig, disk, cd_disk, n_here, n, cd_size, cd_offset, comment = _END_RECORD.unpack_from(buf, end)
    # Offsets count from wherever the writer's stream began (to_bytes writes its header first).
    shift = end - (cd_offset + cd_size)
    if sig != b"PK\x05\x06" or comment or disk or cd_disk or n_here != n or cd_offset + shift < 0:
        return None
    members = []
    pos = cd_offset + shift
    for _ in range(n):
        if pos + _DIRECTORY_ENTRY.size > end:
            return None
        (sig, _made, _needed, _flags, method, _time, _date, _crc, _packed, size, name_len, extra_len,
         comment_len, _disk, _internal, _external, header_offset) = _DIRECTORY_ENTRY.unpack_from(buf, pos)
        if sig != b"PK\x01\x02" or 0xFFFFFFFF in (size, header_offset) or header_offset + shift < 0:
            return None
        try:
            name = bytes(buf[pos + 46 : pos + 46 + name_len]).decode("ascii")
        except UnicodeDecodeError:
            return None
        members.append((name, method, header_offset + shift, size))
        pos += 46 + name_len + extra_len + comment_len
    return members if pos == end else None
