"""The README's install command, as written, gives a blockimg that needs no source tree.

In a copy of the checkout, the README's first command runs verbatim (``python3 -m venv
.venv && .venv/bin/pip install . && .venv/bin/blockimg create fixtures/site -o site.img``).
Offline: pip gets no index and no dependencies, builds without isolation, and the new
venv finds blockimg's dependencies (and setuptools/wheel for the build) through
PYTHONPATH, in a directory of links to this environment's copies of them — never
blockimg itself. Then everything but ``.venv`` is deleted, and the installed
``blockimg`` builds the example site again, reports its version and runs the README's
library example, from another directory.
"""
from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, IN_CI, assert_read_back, run

DEPENDENCIES = ("construct", "numpy", "crcmod", "setuptools", "wheel")
SKIP_COPY = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info",
                                   "__pycache__", ".pytest_cache", ".hypothesis",
                                   ".mirage-fixtures", "corpora", "bench-results", "*.img")


def _readme_blocks():
    from helpers.doc_blocks import RUN_ELSEWHERE, blocks
    return RUN_ELSEWHERE, blocks(ROOT / "README.rst")


def _link_dependencies(dest: Path) -> None:
    """``dest`` gets a link to each top-level file of the dependencies' distributions and
    of theirs (extras and missing optional ones left out)."""
    dest.mkdir()
    todo, seen = list(DEPENDENCIES), set()
    while todo:
        name = re.match(r"[A-Za-z0-9._-]+", todo.pop()).group(0).lower().replace("_", "-")
        if name in seen or name == "blockimg":
            continue
        seen.add(name)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += [r for r in dist.requires or () if "extra ==" not in r]
        tops = {Path(str(f)).parts[0] for f in dist.files or ()} - {"..", "__pycache__"}
        for top in tops:
            src = Path(dist.locate_file(top))
            if src.exists() and not (dest / top).exists():
                (dest / top).symlink_to(src)


@pytest.mark.slow
def test_readme_install_command_gives_a_standalone_blockimg(tmp_path: Path) -> None:
    probe = subprocess.run([sys.executable, "-c", "import ensurepip"], capture_output=True)
    if probe.returncode:
        msg = "python -m venv needs ensurepip (Debian: apt-get install python3-venv)"
        pytest.fail(msg) if IN_CI else pytest.skip(msg)
    elsewhere, blocks = _readme_blocks()
    install = blocks[0].text.strip()
    assert install in elsewhere, "the README's first block is no longer the install command"
    library = next(b.text for b in blocks if b.kind == "python")

    checkout = tmp_path / "blockimg"
    shutil.copytree(ROOT, checkout, ignore=SKIP_COPY)
    deps = tmp_path / "deps"
    _link_dependencies(deps)
    assert not (deps / "blockimg").exists()
    bindir = os.path.dirname(sys.executable)   # its python3 makes the venv
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV", "SOURCE_DATE_EPOCH"))}
    env.update(PATH=bindir + os.pathsep + env.get("PATH", ""), PYTHONPATH=str(deps),
               PIP_NO_INDEX="1", PIP_NO_DEPS="1", PIP_NO_BUILD_ISOLATION="0",
               PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_CONFIG_FILE=os.devnull)
    run("bash", "-e", "-c", install, cwd=checkout, env=env)

    venv = checkout / ".venv"
    wheels = list(venv.glob("lib/python*/site-packages/blockimg-*.dist-info/WHEEL"))
    assert len(wheels) == 1, "pip install . did not install a wheel"
    record = wheels[0].with_name("RECORD").read_text()
    installed = [row.split(",")[0] for row in record.splitlines()]
    assert "blockimg/__init__.py" in installed
    assert not [f for f in installed if "fuzz" in f], "the fuzzer (a developer tool) was installed"
    image = tmp_path / "site.img"
    shutil.move(checkout / "site.img", image)
    for p in checkout.iterdir():                # the source tree goes; the venv stays
        if p.name != ".venv":
            shutil.rmtree(p) if p.is_dir() else p.unlink()

    work = tmp_path / "work"
    shutil.copytree(ROOT / "fixtures", work / "fixtures")
    assert_read_back("tar", image, work / "fixtures" / "site", tmp_path / "read-back")

    res = run(venv / "bin" / "blockimg", "--version", cwd=work, env=env, text=True)
    assert res.stdout.split() == ["blockimg", importlib.metadata.version("blockimg")]
    where = run(venv / "bin" / "python", "-c", "import blockimg; print(blockimg.__file__)",
                cwd=work, env=env, text=True).stdout.strip()
    assert Path(where).is_relative_to(venv), where
    run(venv / "bin" / "blockimg", "create", "fixtures/site", "-o", "again.img", cwd=work,
        env=env)
    same = run(sys.executable, "-m", "blockimg", "create", "fixtures/site", "-o", "here.img",
               cwd=work)
    assert same.returncode == 0
    assert (work / "again.img").read_bytes() == (work / "here.img").read_bytes()
    run(venv / "bin" / "python", "-c", library, cwd=work, env=env)
    assert (work / "out" / "index.html").read_bytes() == \
        (work / "fixtures" / "site" / "index.html").read_bytes()
