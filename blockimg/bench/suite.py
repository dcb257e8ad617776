"""The side-by-side operations: blockimg (its CLI, so start-up counts), peers and limits.

Every tool of an operation is one :class:`Tool`: a command line built from a
:class:`Context`, plus a setup step (untimed: removes the previous output).
Reads all use the same image, made once per corpus by a peer (``mkfs.fat`` +
``mcopy`` for FAT, GNU ``tar`` for tar) or, with ``read_from="blockimg"``, by
blockimg.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Union

from .measure import SINGLE_THREAD_ENV

__all__ = ["Context", "Tool", "OPERATIONS", "REFERENCES", "tools_for", "prepare_images",
           "prepare_sources", "prepare_disk", "prepare_startup", "fat_size_for"]

Cmd = Union[str, List[str]]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers.py")
MiB = 1 << 20


@dataclass
class Context:
    """Where a corpus, its read images and the scratch outputs live."""

    corpus: str                 # source directory
    name: str                   # corpus name (site, small, big)
    info: dict                  # files, bytes, largest, ...
    work: str                   # scratch directory (same file system as outputs)
    python: str = sys.executable
    fat_image: str = ""
    tar_image: str = ""
    fat_size: int = 0
    blockimg_fat_size: Optional[int] = None   # None: blockimg picks the minimum
    one_file: str = ""          # the file read by the "cat" operations
    source_tar: str = ""        # the corpus as a tar archive (the "sources" operation)
    git_repo: str = ""          # the corpus committed to a git repository (likewise)
    sync_between: bool = True   # sync (untimed) before every run
    set_aside: bool = True      # move output trees aside instead of deleting them
    _aside: int = 0
    broken: Dict[str, str] = field(default_factory=dict)   # format -> why no read image
    halves: List[str] = field(default_factory=list)       # the "disk" operation's sources
    half_images: List[str] = field(default_factory=list)  # ... and their tar images
    one_fat: str = ""           # a FAT and a tar image of one small file (start-up rows)
    one_tar: str = ""
    one_dir: str = ""           # that file's directory
    one_upd: str = ""           # a copy of one_fat that the "update" row brings up to date

    @property
    def out(self) -> str:
        return os.path.join(self.work, "out")

    @property
    def out_img(self) -> str:
        return os.path.join(self.work, "out.img")

    @property
    def aside_dir(self) -> str:
        return os.path.join(self.work, "aside")

    def drop_aside(self) -> int:
        """Delete the output trees set aside (untimed, between operations); how many."""
        n, self._aside = self._aside, 0
        shutil.rmtree(self.aside_dir, ignore_errors=True)
        return n


@dataclass
class Tool:
    name: str
    role: str                    # blockimg | peer | limit
    command: Callable[[Context], Cmd]
    needs: Sequence[str] = ()    # programs that must exist
    python_modules: Sequence[str] = ()
    slow: bool = False           # pyfatfs: may be skipped on big corpora
    output: str = "img"          # img | dir | none: what setup clears
    env: Dict[str, str] = field(default_factory=dict)

    def missing(self) -> Optional[str]:
        for prog in self.needs:
            if _which(prog) is None:
                return f"{prog} not installed"
        for mod in self.python_modules:
            try:
                found = subprocess.run([sys.executable, "-c", f"import {mod}"],
                                       capture_output=True).returncode == 0
            except OSError:
                found = False
            if not found:
                return f"python module {mod} not installed"
        return None


def _which(prog: str) -> Optional[str]:
    return shutil.which(prog) or shutil.which(prog, path="/usr/sbin:/sbin:/usr/bin:/bin")


def _q(s: str) -> str:
    return shlex.quote(s)


#: The installed ``blockimg`` program (setup.cfg installs this script; its first line
#: becomes the interpreter), run by ``--python``: start-up as a user pays it.
SCRIPT = os.path.join(REPO, "bin", "blockimg")


def blockimg_cmd(ctx: Context, *args: str) -> List[str]:
    return [ctx.python, SCRIPT, *args]


def blockimg_env() -> Dict[str, str]:
    pp = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": REPO + (os.pathsep + pp if pp else "")}


def fat_size_for(info: dict, cluster: int = 4096) -> int:
    """A FAT volume size that holds the corpus with room to spare (whole MiB)."""
    data = info.get("cluster_bytes") or (info["bytes"] + info["files"] * cluster // 2)
    meta = (info.get("directories", 0) + 1) * 4 * cluster + info["files"] * 96
    size = int((data + meta) * 1.08) + 4 * MiB
    return (size + MiB - 1) // MiB * MiB


def _blockimg_fat_create(ctx: Context) -> List[str]:
    args = ["create", ctx.corpus, "-o", ctx.out_img, "--format", "fat", "-q"]
    if ctx.blockimg_fat_size:
        args += ["--size", str(ctx.blockimg_fat_size)]
    return blockimg_cmd(ctx, *args)


def _mkfs_mcopy(ctx: Context, image: Optional[str] = None, size: Optional[int] = None) -> str:
    image = image or ctx.out_img
    kib = (size or ctx.fat_size) // 1024
    return (f"mkfs.fat -C {_q(image)} {kib} >/dev/null && cd {_q(ctx.corpus)} && "
            f"mcopy -s -Q -i {_q(image)} -- * ::/ </dev/null")


MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1"}

#: The builds (fat-build, tar-build) compare like with like: every tool writes a new
#: file (:func:`clear_output` deletes the previous one before each run) and none fsyncs
#: it -- blockimg's default fsyncs only an image that replaces a file, or a device; the
#: "blockimg --fsync" row is the durable one. What only blockimg does, and keeps: it
#: builds the image in an anonymous file linked into place when whole (two more system
#: calls), walks the tree sorted and checks every name and size before writing (the same
#: bytes every time). mkfs.fat + mcopy are two programs and GNU tar one, each started by
#: ``sh -c`` (which expands ``*``; blockimg takes the directory).
FAT_BUILD = [
    Tool("blockimg", "blockimg", _blockimg_fat_create),
    Tool("blockimg -j1", "blockimg", lambda c: _blockimg_fat_create(c) + ["-j1"]),
    Tool("blockimg --fsync", "blockimg", lambda c: _blockimg_fat_create(c) + ["--fsync"]),
    Tool("mkfs.fat+mcopy", "peer", _mkfs_mcopy, needs=("mkfs.fat", "mcopy"), env=MTOOLS_ENV),
    Tool("pyfatfs", "peer", lambda c: [c.python, PEERS, "pyfatfs-create", c.out_img, c.corpus,
                                       str(c.fat_size)],
         python_modules=("pyfatfs",), slow=True),
    Tool("cp -r", "limit", lambda c: ["cp", "-r", c.corpus, c.out], output="dir"),
]

TAR_BUILD = [
    Tool("blockimg", "blockimg", lambda c: blockimg_cmd(c, "create", c.corpus, "-o", c.out_img,
                                                         "--format", "tar", "-q")),
    Tool("blockimg -j1", "blockimg", lambda c: blockimg_cmd(
        c, "create", c.corpus, "-o", c.out_img, "--format", "tar", "-q", "-j1")),
    Tool("blockimg --fsync", "blockimg", lambda c: blockimg_cmd(
        c, "create", c.corpus, "-o", c.out_img, "--format", "tar", "-q", "--fsync")),
    Tool("GNU tar", "peer", lambda c: f"cd {_q(c.corpus)} && tar -cf {_q(c.out_img)} -- *",
         needs=("tar",)),
    Tool("bsdtar", "peer", lambda c: f"cd {_q(c.corpus)} && bsdtar -cf {_q(c.out_img)} -- *",
         needs=("bsdtar",)),
    Tool("tarfile", "peer", lambda c: [c.python, PEERS, "tarfile-create", c.out_img, c.corpus]),
    Tool("cp -r", "limit", lambda c: ["cp", "-r", c.corpus, c.out], output="dir"),
]

FAT_EXTRACT = [
    Tool("blockimg", "blockimg", lambda c: blockimg_cmd(c, "extract", c.fat_image, c.out),
         output="dir"),
    Tool("blockimg -j1", "blockimg", lambda c: blockimg_cmd(c, "extract", c.fat_image, c.out,
                                                             "-j1"), output="dir"),
    Tool("blockimg mmap", "blockimg", lambda c: blockimg_cmd(c, "extract", "mmap:" + c.fat_image,
                                                              c.out), output="dir"),
    Tool("mcopy -s", "peer", lambda c: ["mcopy", "-s", "-n", "-i", c.fat_image, "::/*", c.out],
         needs=("mcopy",), output="dir+", env=MTOOLS_ENV),
    Tool("pyfatfs", "peer", lambda c: [c.python, PEERS, "pyfatfs-extract", c.fat_image, c.out],
         python_modules=("pyfatfs",), slow=True, output="dir"),
    Tool("cp -r", "limit", lambda c: ["cp", "-r", c.corpus, c.out], output="dir"),
]

FAT_CAT = [
    Tool("blockimg", "blockimg", lambda c: blockimg_cmd(c, "cat", c.fat_image, c.one_file),
         output="none"),
    Tool("blockimg mmap", "blockimg", lambda c: blockimg_cmd(c, "cat", "mmap:" + c.fat_image,
                                                              c.one_file), output="none"),
    Tool("mtype", "peer", lambda c: ["mtype", "-i", c.fat_image, "::/" + c.one_file],
         needs=("mtype",), output="none", env=MTOOLS_ENV),
    Tool("pyfatfs", "peer", lambda c: [c.python, PEERS, "pyfatfs-cat", c.fat_image, c.one_file],
         python_modules=("pyfatfs",), slow=True, output="none"),
    Tool("python -c pass", "limit", lambda c: [c.python, "-c", "pass"], output="none"),
    Tool("cat", "limit", lambda c: ["cat", os.path.join(c.corpus, *c.one_file.split("/"))],
         output="none"),
]

TAR_EXTRACT = [
    Tool("blockimg", "blockimg", lambda c: blockimg_cmd(c, "extract", c.tar_image, c.out),
         output="dir"),
    Tool("blockimg -j1", "blockimg", lambda c: blockimg_cmd(c, "extract", c.tar_image, c.out,
                                                             "-j1"), output="dir"),
    Tool("blockimg mmap", "blockimg", lambda c: blockimg_cmd(c, "extract", "mmap:" + c.tar_image,
                                                              c.out), output="dir"),
    Tool("GNU tar", "peer", lambda c: ["tar", "-xf", c.tar_image, "-C", c.out], needs=("tar",),
         output="dir+"),
    Tool("bsdtar", "peer", lambda c: ["bsdtar", "-xf", c.tar_image, "-C", c.out],
         needs=("bsdtar",), output="dir+"),
    Tool("tarfile", "peer", lambda c: [c.python, PEERS, "tarfile-extract", c.tar_image, c.out],
         output="dir"),
    Tool("cp -r", "limit", lambda c: ["cp", "-r", c.corpus, c.out], output="dir"),
]

TAR_CAT = [
    Tool("blockimg", "blockimg", lambda c: blockimg_cmd(c, "cat", c.tar_image, c.one_file),
         output="none"),
    Tool("blockimg mmap", "blockimg", lambda c: blockimg_cmd(c, "cat", "mmap:" + c.tar_image,
                                                              c.one_file), output="none"),
    Tool("GNU tar", "peer", lambda c: ["tar", "-xOf", c.tar_image, c.one_file], needs=("tar",),
         output="none"),
    Tool("bsdtar", "peer", lambda c: ["bsdtar", "-xOf", c.tar_image, c.one_file],
         needs=("bsdtar",), output="none"),
    Tool("tarfile", "peer", lambda c: [c.python, PEERS, "tarfile-cat", c.tar_image, c.one_file],
         output="none"),
    Tool("python -c pass", "limit", lambda c: [c.python, "-c", "pass"], output="none"),
    Tool("cat", "limit", lambda c: ["cat", os.path.join(c.corpus, *c.one_file.split("/"))],
         output="none"),
]

def _blockimg_tar_create(ctx: Context, src: str, *extra: str) -> List[str]:
    return blockimg_cmd(ctx, "create", src, "-o", ctx.out_img, "--format", "tar", "-q", *extra)


#: One tar image of the corpus from each kind of source (all give the same bytes; the git
#: rows use the commit time as every mtime).
SOURCES = [
    Tool("blockimg DIR", "blockimg", lambda c: _blockimg_tar_create(c, c.corpus)),
    Tool("blockimg ARCHIVE.tar", "blockimg", lambda c: _blockimg_tar_create(c, c.source_tar)),
    Tool("cat ARCHIVE.tar | blockimg -", "blockimg", lambda c: (
        f"cat {_q(c.source_tar)} | " + shlex.join(_blockimg_tar_create(c, "-")))),
    Tool("blockimg --git-ref", "blockimg", lambda c: _blockimg_tar_create(
        c, c.git_repo, "--git-ref", "HEAD"), needs=("git",)),
    Tool("git archive | tar -x; blockimg DIR", "peer", lambda c: (
        f"mkdir {_q(c.out)} && git -C {_q(c.git_repo)} archive HEAD | tar -x -C {_q(c.out)} "
        f"&& " + shlex.join(_blockimg_tar_create(c, c.out, "--mtime", str(GIT_TIME)))),
         needs=("git", "tar"), output="dir", env=blockimg_env()),   # (a peer that runs blockimg)
    Tool("tar -c DIR | blockimg -", "blockimg", lambda c: (
        f"tar -c -C {_q(c.corpus)} . | " + shlex.join(_blockimg_tar_create(c, "-"))),
         needs=("tar",)),
    Tool("git archive | blockimg -", "blockimg", lambda c: (
        f"git -C {_q(c.git_repo)} archive HEAD | " + shlex.join(_blockimg_tar_create(
            c, "-"))), needs=("git",)),
    Tool("cp ARCHIVE.tar", "limit", lambda c: ["cp", c.source_tar, c.out_img]),
]
GIT_TIME = 1_700_000_000

#: A disk of two volumes (the corpus split in two halves: for ``big``, two of 512 MiB)
#: against the two single builds it replaces; the images the ``IMG`` row assembles are
#: made once (untimed) by ``prepare_disk``.
DISK = [
    Tool("blockimg disk DIR1 DIR2", "blockimg", lambda c: blockimg_cmd(
        c, "disk", "-o", c.out_img, "-q", c.halves[0] + ",format=tar",
        c.halves[1] + ",format=tar")),
    Tool("blockimg disk IMG1 IMG2", "blockimg", lambda c: blockimg_cmd(
        c, "disk", "-o", c.out_img, "-q", *c.half_images)),
    Tool("blockimg create DIR1; create DIR2", "peer", lambda c: (
        f"mkdir {_q(c.out)} && " + " && ".join(
            shlex.join(blockimg_cmd(c, "create", half, "-o", os.path.join(c.out, f"{i}.img"),
                                    "--format", "tar", "-q"))
            for i, half in enumerate(c.halves))), output="dir", env=blockimg_env()),
    Tool("cat IMG1 IMG2", "limit", lambda c: f"cat {_q(c.half_images[0])} "
                                              f"{_q(c.half_images[1])} > {_q(c.out_img)}"),
]

#: The row each operation's ratios are taken against (``REF / tool``), when not "blockimg".
REFERENCES = {"sources": "blockimg DIR", "disk": "blockimg create DIR1; create DIR2"}


def prepare_disk(ctx: Context) -> Dict[str, str]:
    """Untimed: the corpus's files split alternately into two directories of hard links
    (copies across file systems), and a tar image of each; {what: problem}."""
    files = sorted(os.path.relpath(os.path.join(d, f), ctx.corpus)
                   for d, _, names in os.walk(ctx.corpus) for f in names)
    ctx.halves = [os.path.join(ctx.work, f"half{i}") for i in (1, 2)]
    ctx.half_images = [h + ".img" for h in ctx.halves]
    for i, rel in enumerate(files):
        src, dst = os.path.join(ctx.corpus, rel), os.path.join(ctx.halves[i % 2], rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.lexists(dst):
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
    problems: Dict[str, str] = {}
    env = dict(os.environ, **blockimg_env())
    for half, image in zip(ctx.halves, ctx.half_images):
        res = _run_checked(shlex.join(blockimg_cmd(ctx, "create", half, "-o", image,
                                                   "--format", "tar", "-q")), env)
        if res.returncode != 0:
            err = (res.stderr or b"").decode("utf-8", "replace").strip()
            problems["disk"] = err.splitlines()[-1] if err else f"exit {res.returncode}"
    return problems


def prepare_sources(ctx: Context) -> Dict[str, str]:
    """Untimed: the corpus as a tar archive (GNU tar) and as a git commit; {what: problem}."""
    problems: Dict[str, str] = {}
    ctx.source_tar = os.path.join(ctx.work, "source.tar")
    ctx.git_repo = os.path.join(ctx.work, "repo")
    steps = [("source.tar", f"tar -cf {_q(ctx.source_tar)} -C {_q(ctx.corpus)} ."),
             ("git", f"rm -rf {_q(ctx.git_repo)} && cp -r {_q(ctx.corpus)} {_q(ctx.git_repo)} && "
                     f"cd {_q(ctx.git_repo)} && git init -q && git add -A && "
                     f"git -c user.name=bench -c user.email=bench@example.org -c gc.auto=0 "
                     f"commit -q -m corpus && git gc -q")]
    env = dict(os.environ, GIT_COMMITTER_DATE=f"{GIT_TIME} +0000",
               GIT_AUTHOR_DATE=f"{GIT_TIME} +0000")
    for what, cmd in steps:
        res = _run_checked(cmd, env)
        if res.returncode != 0:
            err = (res.stderr or b"").decode("utf-8", "replace").strip()
            problems[what] = err.splitlines()[-1] if err else f"exit {res.returncode}"
    return problems


#: Start-up: each common command on a one-file image (so nearly all of it is start-up:
#: imports and parsing), beside ``python -c pass``; the "blockimg" row is ``cat``.
STARTUP = [
    Tool("blockimg", "blockimg", lambda c: blockimg_cmd(c, "cat", c.one_fat, "a.txt"),
         output="none"),
    Tool("python -c pass", "limit", lambda c: [c.python, "-c", "pass"], output="none"),
    Tool("blockimg cat tar", "blockimg", lambda c: blockimg_cmd(c, "cat", c.one_tar, "a.txt"),
         output="none"),
    Tool("blockimg ls", "blockimg", lambda c: blockimg_cmd(c, "ls", c.one_fat),
         output="none"),
    Tool("blockimg info", "blockimg", lambda c: blockimg_cmd(c, "info", c.one_fat),
         output="none"),
    Tool("blockimg check", "blockimg", lambda c: blockimg_cmd(c, "check", c.one_fat),
         output="none"),
    Tool("blockimg extract", "blockimg", lambda c: blockimg_cmd(c, "extract", c.one_fat,
                                                                 c.out), output="dir"),
    Tool("blockimg create", "blockimg", lambda c: blockimg_cmd(
        c, "create", c.one_dir, "-o", c.out_img, "--format", "fat", "-q")),
    Tool("blockimg create tar", "blockimg", lambda c: blockimg_cmd(
        c, "create", c.one_dir, "-o", c.out_img, "-q")),
    Tool("blockimg verify", "blockimg",
         lambda c: blockimg_cmd(c, "verify", c.one_fat, c.one_dir), output="none"),
    Tool("blockimg update", "blockimg",
         lambda c: blockimg_cmd(c, "update", c.one_upd, c.one_dir, "-q"), output="none"),
    Tool("blockimg diff", "blockimg",
         lambda c: blockimg_cmd(c, "diff", c.one_upd, c.one_dir), output="none"),
    Tool("blockimg --version", "blockimg", lambda c: blockimg_cmd(c, "--version"),
         output="none"),
    Tool("blockimg --help", "blockimg", lambda c: blockimg_cmd(c, "--help"), output="none"),
    Tool("python -m blockimg cat", "blockimg", lambda c: [
        c.python, "-m", "blockimg", "cat", c.one_fat, "a.txt"], output="none"),
    Tool("import argparse", "peer", lambda c: [c.python, "-c", "import argparse"],
         output="none"),
    Tool("import numpy", "peer", lambda c: [c.python, "-c", "import numpy"],
         python_modules=("numpy",), output="none"),
]


def prepare_startup(ctx: Context) -> Dict[str, str]:
    """Untimed: a directory of one small file, its FAT and tar images and a copy of the FAT
    image for ``update``; {what: problem}."""
    ctx.one_dir = os.path.join(ctx.work, "one")
    ctx.one_fat, ctx.one_tar, ctx.one_upd = (os.path.join(ctx.work, n)
                                             for n in ("one.fat", "one.tar", "one-update.fat"))
    os.makedirs(ctx.one_dir, exist_ok=True)
    with open(os.path.join(ctx.one_dir, "a.txt"), "wb") as f:
        f.write(b"one small file\n")
    problems: Dict[str, str] = {}
    for image, fmt in ((ctx.one_fat, "fat"), (ctx.one_tar, "tar"), (ctx.one_upd, "fat")):
        res = _run_checked(blockimg_cmd(ctx, "create", ctx.one_dir, "-o", image, "--format",
                                        fmt, "-q"), dict(os.environ, **blockimg_env()))
        if res.returncode != 0:
            err = (res.stderr or b"").decode("utf-8", "replace").strip()
            problems[os.path.basename(image)] = err.splitlines()[-1] if err else \
                f"exit {res.returncode}"
    return problems


#: A process that keeps one CPU busy while a "-loaded" operation runs (started before
#: its warm-up run, stopped after its last): does ``-j auto`` still not lose to ``-j 1``?
LOAD = [sys.executable, "-c", "while 1: pass"]


def _loaded(tools: List[Tool]) -> List[Tool]:
    return [t for t in tools if t.name in ("blockimg", "blockimg -j1")]


OPERATIONS: Dict[str, List[Tool]] = {
    "startup": STARTUP,
    "fat-build": FAT_BUILD, "tar-build": TAR_BUILD,
    "fat-extract": FAT_EXTRACT, "fat-cat": FAT_CAT,
    "tar-extract": TAR_EXTRACT, "tar-cat": TAR_CAT,
    "sources": SOURCES, "disk": DISK,
    "fat-build-loaded": _loaded(FAT_BUILD), "tar-build-loaded": _loaded(TAR_BUILD),
    "fat-extract-loaded": _loaded(FAT_EXTRACT),
}


def tools_for(op: str, *, skip: Sequence[str] = ()) -> List[Tool]:
    skip_l = {s.lower() for s in skip}
    return [t for t in OPERATIONS[op] if t.name.lower() not in skip_l]


def tool_env(tool: Tool) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(SINGLE_THREAD_ENV)
    env.update(tool.env)
    if tool.role == "blockimg":
        env.update(blockimg_env())
    return env


def clear_output(ctx: Context, tool: Tool) -> None:
    """Untimed setup: remove what the previous run left, then ``sync``.

    The sync writes back whatever earlier runs left dirty, so that no tool
    pays (through the kernel's dirty-page throttling) for the write-back of
    the tool before it; each timed run starts from the same clean state.
    """
    for p in (ctx.out_img, ctx.out):
        if os.path.isdir(p) and not os.path.islink(p):
            if ctx.set_aside:
                # Deleting thousands of files makes ext4 skip their inodes for a minute
                # when it allocates new ones ("recently deleted"), which slows the next
                # tool's file creation; a rename leaves the inode tables alone.
                ctx._aside += 1
                os.makedirs(ctx.aside_dir, exist_ok=True)
                os.rename(p, os.path.join(ctx.aside_dir, str(ctx._aside)))
            else:
                shutil.rmtree(p)
        elif os.path.lexists(p):
            os.unlink(p)
    if tool.output == "dir+":
        os.makedirs(ctx.out)
    if ctx.sync_between:
        os.sync()


def _run_checked(cmd: Cmd, env: Dict[str, str]) -> subprocess.CompletedProcess:
    if isinstance(cmd, str):
        cmd = ["/bin/sh", "-c", cmd]
    return subprocess.run(cmd, env=env, capture_output=True, stdin=subprocess.DEVNULL)


def prepare_images(ctx: Context, *, read_from: str = "peer", formats=("fat", "tar")) -> Dict[str, str]:
    """Make the images the read operations use; returns {format: problem} for failures."""
    problems: Dict[str, str] = {}
    env = dict(os.environ, **MTOOLS_ENV)
    env.update(blockimg_env())
    if "fat" in formats:
        ctx.fat_image = os.path.join(ctx.work, "read.fat.img")
        size = ctx.fat_size
        for _ in range(4):
            if os.path.exists(ctx.fat_image):
                os.unlink(ctx.fat_image)
            if read_from == "blockimg":
                cmd: Cmd = blockimg_cmd(ctx, "create", ctx.corpus, "-o", ctx.fat_image,
                                        "--format", "fat", "-q")
            else:
                cmd = _mkfs_mcopy(ctx, ctx.fat_image, size)
            res = _run_checked(cmd, env)
            if res.returncode == 0:
                break
            err = (res.stderr or b"").decode("utf-8", "replace")
            if read_from != "blockimg" and ("full" in err.lower() or "space" in err.lower()):
                size = int(size * 1.3) // MiB * MiB
                ctx.fat_size = size
                continue
            problems["fat"] = err.strip().splitlines()[-1] if err.strip() else f"exit {res.returncode}"
            break
    if "tar" in formats:
        ctx.tar_image = os.path.join(ctx.work, "read.tar")
        if os.path.exists(ctx.tar_image):
            os.unlink(ctx.tar_image)
        if read_from == "blockimg":
            cmd = blockimg_cmd(ctx, "create", ctx.corpus, "-o", ctx.tar_image, "--format", "tar",
                               "-q")
        else:
            cmd = f"cd {_q(ctx.corpus)} && tar -cf {_q(ctx.tar_image)} -- *"
        res = _run_checked(cmd, env)
        if res.returncode != 0:
            err = (res.stderr or b"").decode("utf-8", "replace").strip()
            problems["tar"] = err.splitlines()[-1] if err else f"exit {res.returncode}"
    return problems
