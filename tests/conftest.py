"""Shared test helpers: fixture locations, external tools, tree comparison."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
IN_CI = bool(os.environ.get("CI"))

settings.register_profile("default", deadline=None, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture])
settings.register_profile("thorough", deadline=None, max_examples=300,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def mirage_fixtures() -> Path:
    """The Mirage driver fixtures: ``$BLOCKIMG_MIRAGE_FIXTURES``, else ``../shared/mirage-fixtures``
    beside the checkout, else ``.mirage-fixtures`` (filled by ``tools/fetch-mirage-fixtures``).
    Skips, saying how to get them, when none is there: they come from the upstream drivers'
    repositories and are never committed here."""
    env = os.environ.get("BLOCKIMG_MIRAGE_FIXTURES")
    candidates = [Path(env)] if env else [ROOT.parent / "shared" / "mirage-fixtures",
                                          ROOT / ".mirage-fixtures"]
    for path in candidates:
        if (path / "fat").is_dir() and (path / "tar").is_dir():
            return path
    pytest.skip(f"Mirage driver fixtures not found (looked in {', '.join(map(str, candidates))}); "
                "run tools/fetch-mirage-fixtures (needs network access to GitHub) or set "
                "BLOCKIMG_MIRAGE_FIXTURES")


def require_tool(name: str) -> str:
    """Path of an external tool; in CI a missing tool fails the test instead of skipping."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
    if path is None:
        msg = f"{name} is not installed (tools/test installs it)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def require_root(why: str) -> None:
    """Tests that mount, attach loop devices etc. need root (they live in tests/root);
    in CI (root) they always run: there a run without root fails them instead of skipping."""
    if os.geteuid() != 0:
        msg = f"needs root: {why}"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


ROOT_ONLY = ROOT / "tests" / "root"


def pytest_runtest_setup(item) -> None:
    """Every test in tests/root needs root, whether or not it says so itself."""
    if ROOT_ONLY in item.path.parents:
        require_root(f"{item.path.relative_to(ROOT)} (tests/root: loop devices, mounts, mknod)")


def run(*cmd, **kw) -> subprocess.CompletedProcess:
    """Run a command, fail the test with its output if it fails."""
    kw.setdefault("capture_output", True)
    res = subprocess.run([str(c) for c in cmd], **kw)
    if res.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {res.returncode}\n"
                    f"stdout: {res.stdout!r}\nstderr: {res.stderr!r}")
    return res


#: Signals a shell or ``nohup`` may start the test run with ignored; its children get
#: them back as they are by default (an ignored signal stays ignored across exec).
CHILD_DEFAULT_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTERM)


def child_setup(ignore=()) -> None:
    """In a started child before it runs its program: a process group of its own (so that
    the test can stop it and whatever it forks), default signal dispositions and mask,
    and ``ignore`` ignored (as a shell starts a background job)."""
    os.setpgid(0, 0)
    for sig in CHILD_DEFAULT_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    for sig in ignore:
        signal.signal(sig, signal.SIG_IGN)


@pytest.fixture
def spawn():
    """``spawn(argv, ignore=(), **popen_kw)``: :class:`subprocess.Popen` through
    :func:`child_setup`. When the test ends, pass or fail, each started process group
    is killed (with anything its process forked) and the process reaped."""
    started = []

    def start(argv, *, ignore=(), **kw):
        proc = subprocess.Popen([str(a) for a in argv],
                                preexec_fn=lambda: child_setup(ignore), **kw)
        started.append(proc)
        return proc
    yield start
    for proc in started:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def tree_snapshot(root: Path) -> dict:
    """{relative path: bytes or 'dir' or ('link', target)} of a directory tree."""
    out = {}
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for d in dirnames:
            p = os.path.join(dirpath, d)
            key = os.path.normpath(os.path.join(rel, d))
            out[key] = ("link", os.readlink(p)) if os.path.islink(p) else "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            key = os.path.normpath(os.path.join(rel, f))
            out[key] = ("link", os.readlink(p)) if os.path.islink(p) else Path(p).read_bytes()
    return out


def assert_same_tree(expected: Path, actual: Path) -> None:
    """Same paths, kinds, link targets and bytes (a plain comparison: pytest's diff of
    large byte strings would take minutes)."""
    a = tree_snapshot(expected)
    b = tree_snapshot(actual)
    if sorted(a) != sorted(b):
        raise AssertionError(
            f"paths differ: only in source {sorted(set(a) - set(b))[:10]}, "
            f"only in copy {sorted(set(b) - set(a))[:10]}")
    for k in sorted(a):
        if a[k] != b[k]:
            raise AssertionError(f"content of {k} differs")


def assert_read_back(fmt: str, image: Path, src: Path, out: Path) -> None:
    """An independent tool reads ``image`` into ``out`` (GNU tar; ``fsck.fat -n`` then
    ``mcopy -s`` for FAT) and the tree is ``src``, byte for byte."""
    out.mkdir()
    if fmt == "tar":
        run(require_tool("tar"), "-xf", image, "-C", out)
    else:
        run(require_tool("fsck.fat"), "-n", image)
        run(require_tool("mcopy"), "-s", "-n", "-i", image, "::/*", out,
            env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
    assert_same_tree(src, out)


@pytest.fixture
def site_dir() -> Path:
    """The bundled example site."""
    return ROOT / "fixtures" / "site"
