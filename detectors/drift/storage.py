"""Reference profiles on disk: an uncompressed .npz whose arrays load in place.

`write_npz` writes what np.savez writes, with every array's data 64-byte aligned;
`read_npz` wraps those arrays as read-only views of the blob instead of copying them
through zipfile. Blobs written by np.savez (or compressed) still load, through np.load.
"""
from __future__ import annotations

import io
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
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(_BufferReader(buf)) as zf:
        infos = zf.infolist()
        if any(i.compress_type != zipfile.ZIP_STORED or not i.filename.endswith(".npy") for i in infos):
            npz = np.load(io.BytesIO(buf), allow_pickle=False)
            return {k: npz[k] for k in npz.files}
        for info in infos:
            name_len, extra_len = struct.unpack_from("<HH", buf, info.header_offset + 26)
            start = info.header_offset + 30 + name_len + extra_len
            shape, fortran, dtype, offset = _npy_header(buf, start, info.file_size)
            if dtype.hasobject:
                raise ValueError("reference profile: object arrays are not allowed")
            count = int(np.prod(shape, dtype=np.int64))
            if offset + count * dtype.itemsize > start + info.file_size:
                raise ValueError(f"reference profile: member {info.filename!r} is truncated")
            arr = np.frombuffer(buf, dtype=dtype, count=count, offset=offset)
            if not arr.flags.aligned:
                arr = arr.copy()  # unaligned views are slow to read and the kernels want aligned data
            arrays[info.filename[: -len(".npy")]] = arr.reshape(shape, order="F" if fortran else "C")
    return arrays

