"""Hostile .npy files, beyond the cases of test_bad_input.py::TestFiles (wrong magic,
truncated data, huge promised shapes, object and structured dtypes, big-endian and
Fortran-ordered data live there).

Here: crafted headers (lengths, versions, code, odd keys and descriptors, offsets that
misalign the data), special files that would block, and data files that change while
kmaot reads them.  Every case ends in a correct result or a ValueError/TypeError that
names the file -- never a crash, a hang or a giant allocation.
"""
import os
import re
import struct
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

from kmaot import KMeans
from kmaot._sources import NpyFile


def _X(n=50, d=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


def _npy(path, header, payload=b"", version=(1, 0), pad_to=None):
    """A .npy file with the given header text (str), padded so that the data starts at
    byte pad_to when given."""
    h = header.encode("utf-8" if version == (3, 0) else "latin1")
    prefix = 8 + (2 if version == (1, 0) else 4)
    if pad_to is not None:
        h = h + b" " * (pad_to - prefix - len(h) - 1)
    h += b"\n"
    length = struct.pack("<H" if version == (1, 0) else "<I", len(h))
    with open(path, "wb") as fp:
        fp.write(b"\x93NUMPY" + bytes(version) + length + h + payload)
    return path


def _dict(descr="<f8", shape=(50, 3), fortran=False):
    return repr({"descr": descr, "fortran_order": fortran, "shape": shape})


def _fit(X, **kw):
    return KMeans(3, init=_X()[:3].copy(), max_iter=50, **kw).fit(X)


def _same(a, b, exact=True):
    if exact:
        np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    else:
        np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-6)
    assert a.n_iter_ == b.n_iter_


def _refused(path, exc, msg):
    with pytest.raises(exc, match=re.escape(os.fspath(path)) + ".*" + msg):
        KMeans(2).fit(path)


# ------------------------------------------------------------- handled correctly
@pytest.mark.parametrize("descr, pad_to", [("<f8", 67), ("<f4", 65), (">f8", 77),
                                           ("<f4", 130)])
@pytest.mark.parametrize("batch_size", [None, 7])
def test_misaligned_data_offset(tmp_path, descr, pad_to, batch_size):
    """numpy.save aligns the data to 64 bytes; a hand-made header may not.  The kernels
    get aligned copies and the result equals the in-memory fit."""
    X = _X().astype(descr)
    path = _npy(tmp_path / "odd.npy", _dict(descr), X.tobytes(), pad_to=pad_to)
    assert not NpyFile(path)._mm.flags.aligned
    km = _fit(path, batch_size=batch_size)
    _same(km, _fit(X.astype(X.dtype.newbyteorder("="))))
    np.testing.assert_array_equal(km.predict(path), km.predict(X))


def test_version_3_header(tmp_path):
    X = _X()
    path = _npy(tmp_path / "v3.npy", _dict(), X.tobytes(), version=(3, 0))
    _same(_fit(path), _fit(X))


@pytest.mark.parametrize("descr, as_dtype", [("<f2", np.float16), ("<f16", np.longdouble),
                                             (">i4", ">i4"), ("<u8", np.uint64)])
def test_other_numeric_descr(tmp_path, descr, as_dtype):
    X = np.round(_X() * 40) if descr[1] in "iu" else _X()
    if descr[1] == "u":
        X = X - X.min()
    Xd = X.astype(as_dtype)
    for fortran in (False, True):
        path = _npy(tmp_path / "x.npy", _dict(descr, fortran=fortran),
                    Xd.tobytes(order="F" if fortran else "C"))
        km = _fit(path, batch_size=9)
        assert km.cluster_centers_.dtype == np.float64
        _same(km, _fit(Xd.astype(np.float64)))


@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (5, 1)])
def test_tiny_files(tmp_path, shape):
    X = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    np.save(tmp_path / "t.npy", X)
    km = KMeans(1).fit(tmp_path / "t.npy")
    np.testing.assert_allclose(km.cluster_centers_[0], X.mean(0), rtol=1e-6)
    np.testing.assert_array_equal(km.predict(tmp_path / "t.npy"), np.zeros(shape[0]))


# ---------------------------------------------------------------- crafted headers
def test_header_length_beyond_file_allocates_nothing(tmp_path):
    """A 13-byte file whose 2.0 header claims 4 GiB: numpy's own reader would allocate
    that much before failing."""
    path = tmp_path / "hlen.npy"
    path.write_bytes(b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**32 - 1) + b"{")
    tracemalloc.start()
    try:
        _refused(path, ValueError, r"unreadable \.npy header \(it claims 4294967295 bytes")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20


def test_header_length_too_long(tmp_path):
    path = _npy(tmp_path / "long.npy", _dict() + " " * 70000, _X().tobytes(), version=(2, 0))
    _refused(path, ValueError, r"unreadable \.npy header .*at most 65536")


@pytest.mark.parametrize("raw", [b"\x93NUMPY\x01\x00\x05", b"\x93NUMPY\x02\x00\x05\x00"],
                         ids=["v1", "v2"])
def test_file_ends_in_header_length(tmp_path, raw):
    path = tmp_path / "cut.npy"
    path.write_bytes(raw)
    _refused(path, ValueError, r"unreadable \.npy header \(the file ends inside it\)")


@pytest.mark.parametrize("version", [(0, 9), (4, 0), (1, 1), (255, 255)])
def test_unsupported_version(tmp_path, version):
    path = tmp_path / "v.npy"
    path.write_bytes(b"\x93NUMPY" + bytes(version) + b"\x10\x00" + b" " * 200)
    _refused(path, ValueError, rf"unsupported \.npy format version {version[0]}\.{version[1]}")


def test_code_in_header_is_never_run(tmp_path):
    marker = tmp_path / "pwned"
    header = ("{'descr': __import__('pathlib').Path(%r).write_text('x') and '<f8', "
              "'fortran_order': False, 'shape': (50, 3)}" % str(marker))
    path = _npy(tmp_path / "code.npy", header, _X().tobytes())
    _refused(path, ValueError, r"unreadable \.npy header")
    assert not marker.exists()


@pytest.mark.parametrize("header, msg", [
    ("[1, 2, 3]", "not a dictionary"),
    ("{'descr': '<f8', 'shape': (50, 3)}", "correct keys"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (50, 3), 'extra': 1}", "correct keys"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (50.0, 3)}", "shape is not valid"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': [50, 3]}", "shape is not valid"),
    ("{'descr': '<f8', 'fortran_order': 'no', 'shape': (50, 3)}", "fortran_order is not"),
    (_dict(descr="<f3"), "not a valid dtype descriptor"),
    (_dict(descr="zzz"), "not a valid dtype descriptor"),
    ("{'descr': '<f8',\x00 'fortran_order': False, 'shape': (50, 3)}", "Cannot parse"),
    ("\xc8\xc9\xca\xcb not python at all", "Cannot parse"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': " + "(" * 3000 + ")" * 3000 + "}",
     ""),
], ids=["list", "missing-key", "extra-key", "float-shape", "list-shape", "str-fortran",
        "bad-descr", "garbage-descr", "nul", "latin1-junk", "deep-nesting"])
def test_malformed_header_dict(tmp_path, header, msg):
    path = _npy(tmp_path / "bad.npy", header, _X().tobytes(), version=(2, 0))
    _refused(path, ValueError, r"unreadable \.npy header.*" + re.escape(msg))


def test_version_3_header_with_non_latin1_text(tmp_path):
    path = _npy(tmp_path / "u.npy", "{'descr': [('\u03b1', '<f8')], 'fortran_order': False, "
                "'shape': (4,)}", b"\0" * 32, version=(3, 0))
    _refused(path, ValueError, "non-latin-1 characters")


@pytest.mark.parametrize("descr, exc, msg", [
    ("|V8", TypeError, "not numeric"),
    ("|S0", TypeError, "not numeric"),
    ("<m8[s]", TypeError, "not numeric"),
    ("<c16", TypeError, "complex dtype"),
    ("('<f8', (2,))", ValueError, "structured dtype"),
])
def test_non_numeric_descr(tmp_path, descr, exc, msg):
    d = descr if descr.startswith("(") else repr(descr)
    header = "{'descr': %s, 'fortran_order': False, 'shape': (50, 3)}" % d
    path = _npy(tmp_path / "d.npy", header, b"\0" * 50 * 3 * 16)
    _refused(path, exc, msg)


def test_shape_whose_size_overflows_int64(tmp_path):
    path = _npy(tmp_path / "o.npy", _dict(shape=(2**62, 2**62)), _X().tobytes())
    _refused(path, ValueError, r"is truncated: its header promises shape \(4611686018427387904")


# ------------------------------------------------------------------ special files
def test_fifo_does_not_block(tmp_path):
    """open() on a FIFO blocks until a writer appears; run in a child with a timeout so
    that a regression fails instead of hanging the suite."""
    fifo = tmp_path / "pipe.npy"
    os.mkfifo(fifo)
    code = ("from kmaot import KMeans\ntry:\n    KMeans(2).fit(%r)\nexcept ValueError as e:\n"
            "    print(e)\n" % str(fifo))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert "is not a regular file (a pipe, socket or device)" in res.stdout, res.stderr


def test_device_file(tmp_path):
    _refused("/dev/zero", ValueError, "is not a regular file")


# ---------------------------------------------------- files changing under kmaot
def test_file_truncated_after_open(tmp_path):
    X = _X(2000, 4)
    path = tmp_path / "x.npy"
    np.save(path, X)
    src = NpyFile(path)
    with open(path, "r+b") as fp:
        fp.truncate(os.path.getsize(path) // 2)
    with pytest.raises(ValueError, match=re.escape(str(path)) + " changed while kmaot was "
                       "reading it"):
        KMeans(2).fit(src)


def test_file_replaced_or_removed_after_open(tmp_path):
    X = _X(200, 4)
    path = tmp_path / "x.npy"
    np.save(path, X)
    src = NpyFile(path)
    np.save(tmp_path / "y.npy", X + 1)
    os.replace(tmp_path / "y.npy", path)
    with pytest.raises(ValueError, match="changed while kmaot was reading it"):
        KMeans(2).fit(src)
    src = NpyFile(path)
    os.remove(path)
    with pytest.raises(ValueError, match="can no longer be read"):
        KMeans(2).fit(src)


_SHRINK_CHILD = textwrap.dedent("""
    import os, sys
    import numpy as np
    import kmaot._kmeans as K
    path = sys.argv[1]
    orig = K.lloyd
    def lloyd(*args, **kwargs):  # the file shrinks after the first passes of the fit
        with open(path, "r+b") as fp:
            fp.truncate(4096)
        return orig(*args, **kwargs)
    K.lloyd = lloyd
    try:
        K.KMeans(3, random_state=0, batch_size=1000).fit(path)
    except ValueError as exc:
        print("ValueError:", exc)
""")


def test_file_shrinking_during_fit_is_an_error_not_sigbus(tmp_path):
    """Reading a memory-mapped page past the new end of a file kills the process with
    SIGBUS; kmaot checks the file before each batch and raises instead."""
    path = tmp_path / "x.npy"
    np.save(path, _X(100_000, 8).astype(np.float32))
    res = subprocess.run([sys.executable, "-c", _SHRINK_CHILD, str(path)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 0, (res.returncode, res.stderr)
    assert f"ValueError: {path} changed while kmaot was reading it" in res.stdout
