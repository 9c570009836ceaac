"""The command line: fit, predict, elbow, info, demo, --version; progress display;
one-line errors with exit code 2."""
import json
import re
import os
import subprocess
import sys

import numpy as np
import pytest

import kmaot
from kmaot import KMeans
from kmaot._metrics import silhouette_score
from kmaot._progress import Progress, iterations_left
from kmaot.cli import main, parse_k_range

from reference import write_normal_npy


def run_cli(*args, cwd="/", **kw):
    """python -m kmaot in a subprocess (outside the checkout: the installed kmaot)."""
    return subprocess.run([sys.executable, "-m", "kmaot", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, **kw)


def assert_one_line_error(res, match=None):
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kmaot: error:"), res.stderr
    assert "Traceback" not in res.stderr
    if match is not None:
        assert match in lines[0], lines[0]


@pytest.fixture
def data(tmp_path):
    """Blobs in two .npy shards (and the whole as one file); features of very
    different scales."""
    rng = np.random.default_rng(0)
    centers = rng.uniform(-10, 10, size=(5, 4))
    X = (centers[rng.integers(5, size=6000)] + rng.standard_normal((6000, 4)))
    X = (X * np.array([1, 100, 1, 0.1])).astype(np.float32)
    np.save(tmp_path / "all.npy", X)
    np.save(tmp_path / "a.npy", X[:2500])
    np.save(tmp_path / "b.npy", X[2500:])
    return tmp_path, X


# ---------------------------------------------------------------- basics
def test_version():
    res = run_cli("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"kmaot {kmaot.__version__}"


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for word in (kmaot.__version__, "CPU level in use", "threads", "numpy", "BLAS"):
        assert word in out


def test_demo_small(capsys):
    assert main(["demo", "--n-samples", "20000", "--n-features", "4", "-k", "5",
                 "--batch-size", "1000"]) == 0
    out = capsys.readouterr().out
    for word in ("inertia:", "iterations:", "rows/s", "peak anonymous memory"):
        assert word in out


def test_demo_on_user_file(tmp_path, capsys):
    X = np.random.default_rng(0).standard_normal((3000, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    assert main(["demo", "--data", str(tmp_path / "x.npy"), "-k", "4"]) == 0
    assert "inertia:" in capsys.readouterr().out


# ------------------------------------------------------------------- fit
@pytest.mark.parametrize("standardize", [False, True])
def test_fit_then_predict_equals_python(data, standardize):
    d, X = data
    extra = ["--standardize"] if standardize else []
    res = run_cli("fit", d / "a.npy", d / "b.npy", "-k", 5, "--seed", 7, "--batch-size",
                  1000, "--threads", 2, *extra, "-o", d / "model.npz")
    assert res.returncode == 0, res.stderr
    assert "inertia" in res.stdout and "model.npz" in res.stdout
    km = kmaot.load(d / "model.npz")
    # the command line's default init on files is k-means|| (init='auto')
    ref = KMeans(5, init="k-means||", random_state=7, standardize=standardize).fit(X)
    np.testing.assert_array_equal(km.cluster_centers_, ref.cluster_centers_)
    assert km.inertia_ == ref.inertia_ and km.n_iter_ == ref.n_iter_
    assert km.standardize is standardize and hasattr(km, "mean_") is standardize

    res = run_cli("predict", d / "model.npz", d / "a.npy", d / "b.npy", "-o",
                  d / "labels.npy", "--batch-size", 777)
    assert res.returncode == 0, res.stderr
    assert "6,000 labels" in res.stdout
    labels = np.load(d / "labels.npy")
    assert labels.dtype == np.int32 and labels.shape == (6000,)
    np.testing.assert_array_equal(labels, ref.labels_)
    assert sorted(os.listdir(d)) == ["a.npy", "all.npy", "b.npy", "labels.npy", "model.npz"]


def test_fit_options_reach_the_estimator(data):
    d, X = data
    init = X[[0, 1000, 2000]]
    np.save(d / "init.npy", init)
    assert main(["fit", str(d / "all.npy"), "-k", "3", "--init", str(d / "init.npy"),
                 "--max-iter", "2", "--tol", "0", "-q", "-o", str(d / "m.npz")]) == 0
    km = kmaot.load(d / "m.npz")
    ref = KMeans(3, init=init, max_iter=2, tol=0).fit(X)
    np.testing.assert_array_equal(km.cluster_centers_, ref.cluster_centers_)
    assert km.max_iter == 2 and km.tol == 0 and km.n_iter_ == 2
    assert main(["fit", str(d / "all.npy"), "-k", "3", "--init", "random", "--n-init", "3",
                 "--seed", "1", "--algorithm", "bounded", "-q", "-o", str(d / "r.npz")]) == 0
    km = kmaot.load(d / "r.npz")
    assert km.algorithm == "bounded" and km.n_init == 3
    ref = KMeans(3, init="random", n_init=3, random_state=1).fit(X)
    np.testing.assert_array_equal(km.cluster_centers_, ref.cluster_centers_)


def test_progress_lines_when_not_a_terminal(data):
    d, _ = data
    res = run_cli("fit", d / "all.npy", "-k", 5, "--tol", 0, "-o", d / "m.npz")
    assert res.returncode == 0, res.stderr
    lines = res.stderr.strip().splitlines()
    km = kmaot.load(d / "m.npz")
    assert len(lines) == km.n_iter_ and "\r" not in res.stderr
    for i, line in enumerate(lines, 1):
        assert line.startswith(f"iteration {i}/300: inertia=")
        for word in ("center_shift=", "rows/s=", "elapsed=", "remaining"):
            assert word in line


def test_quiet_prints_nothing(data):
    d, _ = data
    res = run_cli("fit", d / "all.npy", "-k", 5, "-q", "-o", d / "m.npz")
    assert res.returncode == 0 and res.stdout == "" and res.stderr == ""
    res = run_cli("predict", d / "m.npz", d / "all.npy", "-q", "-o", d / "l.npy")
    assert res.returncode == 0 and res.stdout == "" and res.stderr == ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses a Linux pty")
def test_progress_bar_on_a_terminal(data):
    import pty

    d, _ = data
    pid, fd = pty.fork()
    if pid == 0:  # child: stdout and stderr are the terminal
        os.chdir("/")
        os.execv(sys.executable, [sys.executable, "-m", "kmaot", "fit", str(d / "all.npy"),
                                  "-k", "5", "--init", "random", "--n-init", "2",
                                  "-o", str(d / "m.npz")])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    text = out.decode()
    assert "\r" in text and "[" in text and "#" in text
    for word in ("run 1/2 iter", "run 2/2 iter", "inertia", "shift", "rows/s", "elapsed",
                 "left"):
        assert word in text, text


def test_progress_display_units():
    class Stream:
        def __init__(self, tty):
            self.text, self._tty = "", tty

        def write(self, s):
            self.text += s

        def flush(self):
            pass

        def isatty(self):
            return self._tty

    info = dict(iteration=1, inertia=10.0, center_shift=1.0, n_empty=0, seconds=0.5,
                run=1, n_init=1, max_iter=100, tol=1e-3, n_samples=1000)
    s = Stream(True)
    p = Progress(s)
    assert p.tty
    p(info)
    p(dict(info, iteration=2, center_shift=0.1))
    p.close()
    assert s.text.count("\r") == 2 and s.text.endswith("\n") and "2.0k rows/s" in s.text
    s = Stream(False)
    p = Progress(s)
    p(info)
    p.close()
    assert s.text.count("\n") == 1 and "rows/s=2,000" in s.text
    # geometric extrapolation of the shift down to tol: 1 -> 0.1 -> ... 1e-3: 2 more
    assert iterations_left(dict(info, iteration=2, center_shift=0.1), 1.0) == (2, True)
    assert iterations_left(info, None) == (99, False)  # no trend yet: the max_iter bound
    assert iterations_left(dict(info, center_shift=0.0), None) == (0, True)
    assert iterations_left(dict(info, iteration=100), 2.0) == (0, True)


# --------------------------------------------------------------- predict
PREDICT_MEMORY = r"""
import json, sys
import numpy as np
from kmaot.cli import main
from kmaot._memory import PeakAnon
np.ones(1)
with PeakAnon(interval=0.002) as mem:
    rc = main(["predict", sys.argv[1], sys.argv[2], "-o", sys.argv[3], "-q",
               "--batch-size", "65536", "--threads", "2"])
print(json.dumps({"rc": rc, "start": mem.start, "peak": mem.peak}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads Linux's /proc")
def test_predict_is_streamed_with_bounded_memory(tmp_path):
    """16M rows: the labels alone would be 64 MiB of anonymous memory; they go straight
    into the output file."""
    n, d = 16_000_000, 2
    path = tmp_path / "big.npy"
    write_normal_npy(path, n, d, chunk=2_000_000)
    km = KMeans(4, random_state=0).fit(np.load(path, mmap_mode="r")[:20000])
    km.save(tmp_path / "m.npz")
    res = subprocess.run([sys.executable, "-c", PREDICT_MEMORY, str(tmp_path / "m.npz"),
                          str(path), str(tmp_path / "labels.npy")],
                         capture_output=True, text=True, cwd="/")
    assert res.returncode == 0, res.stderr
    r = json.loads(res.stdout.strip().splitlines()[-1])
    assert r["rc"] == 0
    grown = r["peak"] - r["start"]
    assert grown < 24 * 2**20, f"anonymous memory grew by {grown / 2**20:.1f} MiB"
    labels = np.load(tmp_path / "labels.npy", mmap_mode="r")
    assert labels.shape == (n,)
    X = np.load(path, mmap_mode="r")
    for s in (0, 7_777_777, n - 5000):
        np.testing.assert_array_equal(labels[s:s + 5000], km.predict(np.array(X[s:s + 5000])))


# ----------------------------------------------------------------- elbow
def test_elbow_table_and_plot(data):
    d, X = data
    pytest.importorskip("matplotlib")
    res = run_cli("elbow", d / "all.npy", "--k", "2:6:2", "--sample", 500, "--standardize",
                  "--plot", d / "elbow.png")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0].split() == ["k", "inertia", "silhouette", "iterations", "seconds"]
    rows = [line.split() for line in lines[1:4]]
    assert [int(r[0]) for r in rows] == [2, 4, 6]
    # the same fits and the same sample, recomputed in Python
    rng = np.random.default_rng(0)
    sample = X[np.sort(rng.choice(len(X), size=500, replace=False))]
    for r in rows:
        km = KMeans(int(r[0]), init="k-means||", random_state=0, standardize=True).fit(X)
        assert float(r[1]) == pytest.approx(km.inertia_, rel=1e-5)
        Xs = (sample.astype(np.float64) - km.mean_) / km.scale_
        assert float(r[2]) == pytest.approx(silhouette_score(Xs, km.predict(sample)),
                                            abs=6e-5)
        assert int(r[3]) == km.n_iter_
    from PIL import Image

    with Image.open(d / "elbow.png") as im:
        assert im.format == "PNG" and im.size[0] > 100


def test_elbow_without_matplotlib_is_a_clear_error(data):
    d, _ = data
    code = ("import sys; sys.modules['matplotlib'] = None; from kmaot.cli import main; "
            f"sys.exit(main(['elbow', {str(d / 'all.npy')!r}, '--k', '2:3', "
            f"'--plot', {str(d / 'e.png')!r}]))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd="/")
    assert_one_line_error(res, "kmaot[plot]")
    assert not (d / "e.png").exists()


def test_silhouette_matches_sklearn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((700, 3))
    for labels in (rng.integers(4, size=700),                    # random labels
                   (X[:, 0] > 0).astype(int),                     # two halves
                   np.r_[0, rng.integers(1, 3, size=699)],        # a singleton cluster
                   rng.integers(5, size=700) * 10 + 3):           # sparse label values
        ours = silhouette_score(X, labels, chunk=128)
        theirs = sklearn_metrics.silhouette_score(X, labels)
        assert ours == pytest.approx(theirs, abs=1e-12)
    assert np.isnan(silhouette_score(X, np.zeros(700, int)))


def test_parse_k_range():
    assert parse_k_range("2:5") == [2, 3, 4, 5]
    assert parse_k_range("2:10:4") == [2, 6, 10]
    assert parse_k_range("8,3, 5") == [3, 5, 8]
    assert parse_k_range("7") == [7]


# ---------------------------------------------------------------- errors
def test_user_errors_are_one_line_exit_2(tmp_path, data, capsys, monkeypatch):
    d, X = data
    np.save(tmp_path / "nan.npy", np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, 4.0]]))
    KMeans(3, random_state=0).fit(X).save(tmp_path / "m.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    np.save(tmp_path / "three.npy", X[:, :3])
    monkeypatch.chdir(tmp_path)
    cases = [
        (["demo", "--data", tmp_path / "missing.npy"], "missing.npy"),
        (["demo", "--data", tmp_path / "nan.npy", "-k", "2"], "row 1"),
        (["demo", "--data", tmp_path / "nan.npy", "-k", "0"], "n_clusters"),
        (["fit", tmp_path / "missing.npy", "-k", 3, "-o", tmp_path / "o.npz"], "missing.npy"),
        (["fit", tmp_path / "nan.npy", "-k", 2, "-o", tmp_path / "o.npz"], "row 1"),
        (["fit", d / "all.npy", "-k", 0, "-o", tmp_path / "o.npz"], "n_clusters=0"),
        (["fit", d / "all.npy", "-k", "many", "-o", tmp_path / "o.npz"], "invalid int"),
        (["fit", d / "all.npy", "-o", tmp_path / "o.npz"], "-k"),
        (["fit", d / "all.npy", "-k", 99999, "-o", tmp_path / "o.npz"], "n_samples=6000"),
        (["fit", d / "all.npy", "-k", 3, "--init", "best", "-o", tmp_path / "o.npz"],
         "--init 'best'"),
        (["fit", d / "all.npy", "-k", 3, "--n-init", "x", "-o", tmp_path / "o.npz"],
         "--n-init"),
        (["fit", d / "all.npy", "three.npy", "-k", 3, "-o", tmp_path / "o.npz"],
         "three.npy"),
        (["fit", d / "all.npy", "-k", 3, "-o", tmp_path / "nodir" / "o.npz"],
         "does not exist"),
        (["predict", tmp_path / "nope.npz", d / "all.npy", "-o", tmp_path / "l.npy"],
         "nope.npz"),
        (["predict", tmp_path / "junk.npz", d / "all.npy", "-o", tmp_path / "l.npy"],
         "not a kmaot model"),
        (["predict", tmp_path / "m.npz", tmp_path / "three.npy", "-o", tmp_path / "l.npy"],
         "3 features"),
        (["predict", tmp_path / "m.npz", tmp_path / "nan.npy", "-o", tmp_path / "l.npy"],
         None),
        (["elbow", d / "all.npy", "--k", "5:2"], "--k '5:2'"),
        (["elbow", d / "all.npy", "--k", "0:3"], ">= 1"),
        (["elbow", d / "all.npy", "--k", "2:x"], "--k '2:x'"),
        (["elbow", d / "all.npy", "--k", "2:7000"], "larger than the number of rows"),
        (["frobnicate"], "invalid choice"),
    ]
    # a few through a real process (exit code, stderr), the rest in this process:
    # main() returns 2 after printing; an exception escaping it would fail the test
    for i, (args, match) in enumerate(cases):
        if i in (0, 4, 7, 15, len(cases) - 1):
            assert_one_line_error(run_cli(*args, cwd=tmp_path), match)
            continue
        capsys.readouterr()
        try:
            rc = main([str(a) for a in args])
        except SystemExit as exc:  # argparse
            rc = exc.code
        err = capsys.readouterr().err
        assert_one_line_error(subprocess.CompletedProcess(args, rc, "", err), match)
    assert not (tmp_path / "o.npz").exists() and not (tmp_path / "l.npy").exists()
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".kmaot-")]


def test_warnings_are_one_line(data):
    d, X = data
    np.save(d / "init.npy", X[:3])
    res = run_cli("fit", d / "all.npy", "-k", 3, "--init", d / "init.npy", "--n-init", 4,
                  "-q", "-o", d / "m.npz")
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip().splitlines() == [
        "kmaot: warning: explicit initial centers given: running 1 initialisation instead "
        "of n_init=4"]


def test_fit_checkpoint_killed_then_resumed_gives_the_same_model(tmp_path):
    """kmaot fit --checkpoint: SIGKILL mid-fit, run the same command again: the model
    equals the one of an uninterrupted fit."""
    import signal
    import time

    X = np.random.default_rng(1).uniform(0, 1, (60000, 4)).astype(np.float32)
    np.save(tmp_path / "u.npy", X)
    common = ["fit", tmp_path / "u.npy", "-k", "40", "--init", "random", "--tol", "0",
              "--max-iter", "400", "--seed", "3", "-q"]
    assert run_cli(*common, "-o", tmp_path / "ref.npz").returncode == 0
    ck = tmp_path / "fit.ckpt.npz"
    args = [*common, "-o", tmp_path / "model.npz", "--checkpoint", ck, "--checkpoint-every", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "kmaot", *map(str, args)], cwd="/",
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not ck.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, "the fit ended before it could be killed"
    assert ck.exists() and not (tmp_path / "model.npz").exists()
    res = run_cli(*args)
    assert res.returncode == 0, res.stderr
    assert not ck.exists()  # removed once the fit completed
    a, b = kmaot.load(tmp_path / "ref.npz"), kmaot.load(tmp_path / "model.npz")
    assert a.n_iter_ == b.n_iter_ > 5
    assert np.array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.inertia_ == b.inertia_


def test_init_names_accepted_and_default_is_auto():
    from kmaot.cli import FIT_OPTIONS, UserError, _init_arg

    for name in ("auto", "k-means||", "k-means++", "random"):
        assert _init_arg(name) == name
    assert dict((p, kw) for _, p, kw in FIT_OPTIONS)["init"]["default"] == "auto"
    with pytest.raises(UserError, match=re.escape("use 'auto', 'k-means||'")):
        _init_arg("kmeans")
