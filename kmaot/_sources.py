"""Data sources: in-memory arrays, memory-mapped .npy files and lists of .npy shards.

Every source serves the same two operations to the drivers:

* ``batches(batch_size)`` yields ``(row_start, X_batch)`` in row order, where
  ``X_batch`` is a C-contiguous array of the compute dtype (a zero-copy view whenever
  the stored data already is one);
* ``take(rows)`` returns given rows (for initialisation and empty-cluster relocation).

``.npy`` files are opened by reading their header with numpy's header parser (never
unpickling), checking that the file really holds the bytes its header promises, and
memory-mapping the data read-only.  Nothing is loaded: pages come in batch by batch.
"""
import io
import mmap
import os
import stat

import numpy as np

from ._validation import as_2d_float_array, compute_dtype

#: rows per batch for file sources when the user gives no batch_size: ~64 MiB
DEFAULT_BATCH_BYTES = 64 * 2**20
#: longest .npy header read (numpy itself refuses more than 10,000 characters)
MAX_HEADER_BYTES = 2**16


class ArraySource:
    """An in-memory array (or an ``np.memmap`` the user opened)."""

    in_memory = True

    def __init__(self, X, what="X"):
        arr, dtype = as_2d_float_array(X, what)
        self.dtype = dtype
        self.n_samples, self.n_features = arr.shape
        self.what = what
        # np.asarray strips the memmap type: look at what the user passed
        self._lazy = isinstance(X, np.memmap)
        if self._lazy:
            self._arr = arr  # converted batch by batch: never copied whole
            self.in_memory = False
        else:
            self._arr = np.ascontiguousarray(arr, dtype=dtype)

    def default_batch_size(self):
        if self._lazy:
            return _rows_for_bytes(self.n_features, self.dtype)
        return self.n_samples

    def _rows(self, start, stop):
        return np.ascontiguousarray(self._arr[start:stop], dtype=self.dtype)

    def batches(self, batch_size=None, start=0):
        bs = batch_size or self.default_batch_size()
        for s in range(start, self.n_samples, bs):
            yield s, self._rows(s, min(s + bs, self.n_samples))

    def take(self, rows):
        rows = np.asarray(rows, dtype=np.intp)
        return np.ascontiguousarray(self._arr[rows], dtype=self.dtype)

    def describe_row(self, row):
        return f"{self.what} contains NaN or infinity (first at row {row})"


def _rows_for_bytes(n_features, dtype, nbytes=DEFAULT_BATCH_BYTES):
    return max(1, nbytes // (n_features * np.dtype(dtype).itemsize))


def read_npy_header(path):
    """Parse a .npy header without unpickling: (shape, dtype, fortran_order, offset).

    Raises FileNotFoundError, IsADirectoryError or ValueError (not a .npy file,
    truncated file, object dtype, ...) with the path in the message.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, not a .npy file")
    if not stat.S_ISREG(os.stat(path).st_mode):
        # a FIFO would block open() forever, a device has no fixed size
        raise ValueError(f"{path} is not a regular file (a pipe, socket or device); "
                         "kmaot reads .npy files")
    size = os.path.getsize(path)
    with open(path, "rb") as fp:
        head = fp.read(8)
        if len(head) < 8 or head[:6] != b"\x93NUMPY":
            raise ValueError(
                f"{path} is not a .npy file (no NUMPY magic at its start); "
                "save arrays with numpy.save")
        major, minor = head[6], head[7]
        if (major, minor) not in ((1, 0), (2, 0), (3, 0)):
            raise ValueError(f"{path}: unsupported .npy format version {major}.{minor} "
                             "(kmaot reads versions 1.0, 2.0 and 3.0)")
        # read the header length ourselves: numpy would allocate whatever it says
        # (up to 4 GiB for a 12-byte file) before checking it against the file
        len_bytes = fp.read(2 if major == 1 else 4)
        if len(len_bytes) < (2 if major == 1 else 4):
            raise ValueError(f"{path}: unreadable .npy header (the file ends inside it)")
        hlen = int.from_bytes(len_bytes, "little")
        offset = 8 + len(len_bytes) + hlen
        if hlen > MAX_HEADER_BYTES or offset > size:
            raise ValueError(
                f"{path}: unreadable .npy header (it claims {hlen} bytes; the file has "
                f"{size} bytes and kmaot reads headers of at most {MAX_HEADER_BYTES})")
        header = fp.read(hlen)
    if major == 3:  # utf-8 header; numpy 2 keeps its reader private: use the 2.0 one
        try:
            header = header.decode("utf-8").encode("latin1")
        except UnicodeError:
            raise ValueError(f"{path}: unreadable .npy header (non-latin-1 characters: "
                             "only structured dtypes need them, and kmaot reads plain "
                             "numeric arrays)") from None
    try:
        stream = io.BytesIO(b"\x93NUMPY\x02\x00" + len(header).to_bytes(4, "little") + header)
        np.lib.format.read_magic(stream)
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    except Exception as exc:  # ValueError, SyntaxError, RecursionError, MemoryError, ...
        raise ValueError(f"{path}: unreadable .npy header ({type(exc).__name__}: "
                         f"{str(exc)[:200]})") from None
    if dtype.hasobject:
        raise ValueError(
            f"{path} holds Python objects (dtype {dtype}); kmaot reads numeric .npy files "
            "only and never unpickles")
    if dtype.names is not None or dtype.subdtype is not None:
        raise ValueError(f"{path} has structured dtype {dtype}; kmaot needs a plain numeric array")
    compute_dtype(dtype, what=path)
    if any(s < 0 for s in shape):
        raise ValueError(f"{path}: corrupt .npy header with negative shape {shape}")
    if len(shape) != 2:
        raise ValueError(f"{path} must hold a 2-D array (n_samples, n_features), "
                         f"got shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{path} holds an empty array of shape {shape}")
    need = offset + shape[0] * shape[1] * dtype.itemsize
    if size < need:
        raise ValueError(
            f"{path} is truncated: its header promises shape {shape} of {dtype} "
            f"({need} bytes with the header) but the file has {size} bytes")
    return tuple(int(s) for s in shape), dtype, bool(fortran), offset


class NpyFile:
    """One memory-mapped .npy file, read batch by batch."""

    in_memory = False

    def __init__(self, path):
        self.path = os.fspath(path)
        stamp = _stamp(self.path) if os.path.exists(self.path) else None
        shape, file_dtype, fortran, offset = read_npy_header(self.path)
        self.n_samples, self.n_features = shape
        self.file_dtype = file_dtype
        self.dtype = compute_dtype(file_dtype, self.path)
        self.fortran_order = fortran
        self._stamp = stamp  # taken before the header was read
        self._mm = np.memmap(self.path, dtype=file_dtype, mode="r", offset=offset,
                             shape=shape, order="F" if fortran else "C")
        self.check_unchanged()
        self._offset = offset
        self._advise(0, 0, mmap.MADV_SEQUENTIAL if hasattr(mmap, "MADV_SEQUENTIAL") else None)

    def _advise(self, start, stop, advice=None):
        """Ask the OS to read rows [start, stop) ahead (MADV_WILLNEED), so that a file
        not yet in the page cache is read while the current batch is computed; with
        ``advice`` given, apply it to the whole mapping.  A hint: failures are ignored."""
        mm = getattr(self._mm, "_mmap", None)
        if mm is None or not hasattr(mm, "madvise") or self.fortran_order:
            return
        try:
            if advice is not None:
                mm.madvise(advice)
                return
            if not hasattr(mmap, "MADV_WILLNEED") or stop <= start:
                return
            row_bytes = self.n_features * self.file_dtype.itemsize
            base = self._offset % mmap.ALLOCATIONGRANULARITY  # where the array starts
            a = base + start * row_bytes
            a -= a % mmap.PAGESIZE
            b = min(base + stop * row_bytes, len(mm))
            if b > a:
                mm.madvise(mmap.MADV_WILLNEED, a, b - a)
        except (OSError, ValueError):
            pass

    def default_batch_size(self):
        return _rows_for_bytes(self.n_features, self.dtype)

    def check_unchanged(self):
        """Raise ValueError if the file was truncated, rewritten or replaced since it
        was opened.  Reading a memory-mapped file that has shrunk would kill the
        process (SIGBUS), and one that was rewritten would mix two datasets; this is
        checked before every batch (a stat call), which leaves only a race with a
        writer active during that batch."""
        try:
            now = _stamp(self.path)
        except OSError as exc:
            raise ValueError(f"{self.path} can no longer be read ({exc}); it was removed "
                             "or replaced while kmaot was reading it") from None
        if now != self._stamp:
            raise ValueError(
                f"{self.path} changed while kmaot was reading it (size, modification "
                "time or inode differ from when it was opened); do not modify a data file "
                "during fit or predict")

    def _rows(self, start, stop):
        self.check_unchanged()
        view = self._mm[start:stop]
        if view.dtype == self.dtype and view.flags.c_contiguous and view.flags.aligned:
            return np.asarray(view)  # zero-copy view of the mapping
        # byte swap, ints, Fortran order, or data at an odd offset (a hand-made header)
        return np.array(view, dtype=self.dtype, order="C")

    def batches(self, batch_size=None, start=0):
        bs = batch_size or self.default_batch_size()
        # read-ahead hints in steps of at least 8 MiB (tiny batches must not mean one
        # system call per batch)
        step = max(bs, _rows_for_bytes(self.n_features, self.file_dtype, 8 << 20))
        advised = start
        for s in range(start, self.n_samples, bs):
            e = min(s + bs, self.n_samples)
            if advised - e < step // 2 and advised < self.n_samples:
                self._advise(advised, min(self.n_samples, e + step))
                advised = min(self.n_samples, e + step)
            yield s, self._rows(s, e)

    def take(self, rows):
        self.check_unchanged()
        rows = np.asarray(rows, dtype=np.intp)
        return np.ascontiguousarray(self._mm[rows], dtype=self.dtype)

    def describe_row(self, row):
        return f"{self.path} contains NaN or infinity (first at row {row})"


def _stamp(path):
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev


class ShardSource:
    """Several .npy files read as one dataset, in the order given."""

    in_memory = False

    def __init__(self, paths):
        paths = [os.fspath(p) for p in paths]
        if not paths:
            raise ValueError("the list of .npy shards is empty")
        self.shards = [NpyFile(p) for p in paths]
        first = self.shards[0]
        for s in self.shards[1:]:
            if s.n_features != first.n_features:
                raise ValueError(
                    f"shards disagree on n_features: {first.path} has {first.n_features}, "
                    f"{s.path} has {s.n_features}")
            if s.file_dtype.newbyteorder("=") != first.file_dtype.newbyteorder("="):
                raise ValueError(
                    f"shards disagree on dtype: {first.path} is {first.file_dtype}, "
                    f"{s.path} is {s.file_dtype}")
        self.n_features = first.n_features
        self.dtype = first.dtype
        self.offsets = np.cumsum([0] + [s.n_samples for s in self.shards])
        self.n_samples = int(self.offsets[-1])

    def default_batch_size(self):
        return _rows_for_bytes(self.n_features, self.dtype)

    def batches(self, batch_size=None, start=0):
        bs = batch_size or self.default_batch_size()
        for shard, off in zip(self.shards, self.offsets[:-1]):
            off = int(off)
            if off + shard.n_samples <= start:
                continue
            for s, X in shard.batches(bs, start=max(0, start - off)):
                yield off + s, X

    def _locate(self, row):
        i = int(np.searchsorted(self.offsets, row, side="right") - 1)
        return i, row - int(self.offsets[i])

    def take(self, rows):
        rows = np.asarray(rows, dtype=np.intp)
        out = np.empty((rows.shape[0], self.n_features), dtype=self.dtype)
        shard_ids = np.searchsorted(self.offsets, rows, side="right") - 1
        for i in np.flatnonzero(np.bincount(shard_ids, minlength=len(self.shards))):
            sel = shard_ids == i
            out[sel] = self.shards[i].take(rows[sel] - self.offsets[i])
        return out

    def describe_row(self, row):
        i, local = self._locate(row)
        return (f"{self.shards[i].path} contains NaN or infinity (first at row {local} "
                f"of that shard, row {row} of the dataset)")


def as_source(X):
    """Wrap what the user passed: an array, a path, or a list/tuple of paths."""
    if isinstance(X, (ArraySource, NpyFile, ShardSource)):
        return X
    if isinstance(X, (str, os.PathLike)):
        return NpyFile(X)
    if isinstance(X, (list, tuple)) and len(X) == 0:
        raise ValueError("X is an empty list: give an array, a .npy path or a non-empty "
                         "list of .npy shards")
    if isinstance(X, (list, tuple)) and all(isinstance(p, (str, os.PathLike)) for p in X):
        return ShardSource(X) if len(X) > 1 else NpyFile(X[0])
    return ArraySource(X)
