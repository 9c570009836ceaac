"""Every code snippet of README.md runs.

Rules (for anyone adding a snippet to the README):

* Every fenced block marked ```python is executed, each in a fresh namespace and in a
  fresh temporary directory that holds small data files prepared by this test:
  ``data.npy`` (15,000 x 8 float32, six blobs), ``more.npy`` (5,000 more rows of the
  same), ``embeddings.npy`` (20,000 x 32 float32) and ``part-000.npy``,
  ``part-001.npy``, ``part-002.npy`` (5,000 x 32 float32 each).  Blocks do not share
  state: each imports what it uses.
* A ```bash block whose first command starts with ``kmaot`` or ``python -m kmaot`` is
  run whole by bash (``set -euo pipefail``) in such a directory; ``kmaot`` and
  ``python`` there run the Python that runs the tests, with the installed kmaot.
* Other ```bash blocks are not run here, and must be one of: the README's first block
  (the two commands CI itself runs: ``.ci/run``), install instructions (every line a
  ``pip install`` or a ``python -m venv``), or a block preceded by an HTML comment
  ``<!-- not-run: REASON -->``.  Any other block fails this test, so that no snippet is
  silently left untested.
* A block preceded by ``<!-- requires: MODULE[, MODULE...] -->`` (blank lines may stand
  between) needs optional modules (dask, pyspark, matplotlib, ...): it is skipped ONLY
  when one of them is not importable here, and runs otherwise.
"""
import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
_FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*(requires|not-run)\s*:\s*(.*?)\s*-->$")


class Block:
    def __init__(self, lang, line, code, markers):
        self.lang, self.line, self.code, self.markers = lang, line, code, markers

    @property
    def id(self):
        return f"README.md:{self.line}:{self.lang}"


def parse_blocks(text):
    """Fenced code blocks of a markdown text, with the markers right before them."""
    blocks = []
    lines = text.splitlines()
    i = 0
    pending = {}
    while i < len(lines):
        line = lines[i]
        m = _FENCE.match(line.strip())
        if m and line.startswith("```"):
            lang, start = m.group(1).lower(), i + 1
            j = start
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            if j == len(lines):
                raise ValueError(f"README.md:{i + 1}: unclosed code block")
            blocks.append(Block(lang, i + 1, "\n".join(lines[start:j]) + "\n", pending))
            pending = {}
            i = j + 1
            continue
        mk = _MARKER.match(line.strip())
        if mk:
            pending = dict(pending, **{mk.group(1): mk.group(2)})
        elif line.strip():
            pending = {}  # a marker applies only to the block right after it
        i += 1
    return blocks


def _commands(code):
    return [ln.strip() for ln in code.splitlines()
            if ln.strip() and not ln.strip().startswith("#")]


def is_kmaot_bash(block):
    cmds = _commands(block.code)
    return bool(cmds) and (cmds[0].startswith("kmaot") or cmds[0].startswith("python -m kmaot"))


def is_install_only(block):
    install = re.compile(r"^(\S*pip3? install|python3? -m pip install|python3? -m venv)\b")
    return all(install.match(c) for c in _commands(block.code))


with open(README, encoding="utf-8") as _f:
    BLOCKS = parse_blocks(_f.read())
PYTHON = [b for b in BLOCKS if b.lang == "python"]
BASH = [b for b in BLOCKS if b.lang in ("bash", "sh", "shell", "console")]
FIRST_BASH = BASH[0] if BASH else None


def _skip_if_missing(block):
    wanted = block.markers.get("requires")
    if wanted:
        missing = [m for m in re.split(r"[,\s]+", wanted)
                   if m and importlib.util.find_spec(m) is None]
        if missing:
            pytest.skip(f"{block.id} needs {', '.join(missing)} (not installed)")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    centers = rng.uniform(-10, 10, size=(6, 8))
    X = centers[rng.integers(6, size=20_000)] + rng.standard_normal((20_000, 8))
    np.save(tmp_path / "data.npy", X[:15_000].astype(np.float32))
    np.save(tmp_path / "more.npy", X[15_000:].astype(np.float32))
    E = rng.standard_normal((20_000, 32)).astype(np.float32)
    E[:, :4] += 5 * rng.integers(4, size=(20_000, 1))
    np.save(tmp_path / "embeddings.npy", E)
    for i in range(3):
        np.save(tmp_path / f"part-{i:03d}.npy", E[i * 5000:(i + 1) * 5000])
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_has_snippets():
    assert len(PYTHON) >= 3 and any(is_kmaot_bash(b) for b in BASH)


@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_python_snippet(block, workdir):
    _skip_if_missing(block)
    code = compile(block.code, block.id, "exec")
    exec(code, {"__name__": "__readme__"})


@pytest.mark.parametrize("block", BASH, ids=[b.id for b in BASH])
def test_bash_snippet(block, workdir):
    if block is FIRST_BASH:
        # the README's first two commands: CI (.ci/run) runs exactly these
        ci = os.path.join(ROOT, ".ci", "run")
        if os.path.exists(ci):
            with open(ci) as f:
                ci_text = f.read()
            for cmd in _commands(block.code):
                assert re.sub(r"^python3 ", '"$PY" ', cmd) in ci_text, (
                    f"{block.id}: {cmd!r} is not what .ci/run runs")
        return
    if not is_kmaot_bash(block):
        if "not-run" in block.markers:
            pytest.skip(f"{block.id}: not run ({block.markers['not-run']})")
        assert is_install_only(block), (
            f"{block.id}: a bash block that neither starts with kmaot nor only installs; "
            "make it runnable or mark it <!-- not-run: REASON --> (see this module's "
            "docstring)")
        return
    _skip_if_missing(block)
    prelude = (f'set -euo pipefail\nkmaot() {{ "{sys.executable}" -m kmaot "$@"; }}\n'
               f'python() {{ "{sys.executable}" "$@"; }}\n')
    res = subprocess.run(["bash", "-c", prelude + block.code], cwd=workdir,
                         capture_output=True, text=True)
    assert res.returncode == 0, f"{block.id} failed:\n{res.stdout}\n{res.stderr}"
    assert "Traceback" not in res.stderr


def test_parser_and_markers():
    text = ("intro\n<!-- requires: dask, pyspark -->\n\n```python\nx = 1\n```\n"
            "text\n```bash\nkmaot info\n```\n<!-- not-run: slow -->\n```bash\nmake\n```\n"
            "<!-- requires: x -->\nprose between\n```python\ny = 2\n```\n")
    blocks = parse_blocks(text)
    assert [(b.lang, b.line) for b in blocks] == [("python", 4), ("bash", 8), ("bash", 12),
                                                  ("python", 17)]
    assert blocks[0].markers == {"requires": "dask, pyspark"}
    assert blocks[1].markers == {} and is_kmaot_bash(blocks[1])
    assert blocks[2].markers == {"not-run": "slow"} and not is_install_only(blocks[2])
    assert blocks[3].markers == {}  # prose between: the marker does not apply
    assert is_install_only(Block("bash", 1, "pip install '.[plot]'\npython -m venv v\n", {}))
