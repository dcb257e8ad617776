"""Run one command in a fresh child and measure it: wall time, CPU, peak memory.

Peak RSS comes from ``wait4``'s rusage, which on Linux is the maximum over
the child and every descendant it waited for (so ``sh -c 'mkfs.fat && mcopy'``
is covered); the child is launched through GNU time when installed (a child
forked straight from Python starts with Python's high-water mark). Private (anonymous) memory is sampled from the direct child's
``/proc/PID/status`` (``RssAnon``) by a thread while the parent blocks in
``wait4``: with the mmap backend, mapped image pages are page cache and show
up in RSS but not here.

Memory caps (``MemoryLimit``): ``data`` (RLIMIT_DATA: private writable
mappings, heap included; works with numpy loaded), ``as`` (RLIMIT_AS: all
virtual memory; fails with numpy because OpenBLAS reserves ~100 MiB of
address space even single-threaded) and ``cgroup`` (a cgroup v1/v2 memory
limit; the kernel kills the child when exceeded).
"""
from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

__all__ = ["Measurement", "MemoryLimit", "run", "SINGLE_THREAD_ENV", "cgroup_available"]

# Keep BLAS/OpenMP pools from reserving per-thread buffers in the child.
SINGLE_THREAD_ENV = {k: "1" for k in (
    "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS", "GOTO_NUM_THREADS")}

LIMIT_TYPES = ("data", "as", "cgroup")


@dataclass
class Measurement:
    """One run of one command."""

    wall: float
    user: float
    sys: float
    max_rss: int          # bytes, child tree (wait4)
    peak_private: int     # bytes, sampled RssAnon of the direct child (0 if too short)
    returncode: int
    stderr: str = ""
    killed_by_limit: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def as_dict(self) -> dict:
        return {"wall": self.wall, "user": self.user, "sys": self.sys, "max_rss": self.max_rss,
                "peak_private": self.peak_private, "returncode": self.returncode,
                "killed_by_limit": self.killed_by_limit}


def _cgroup_v1_memory() -> Optional[str]:
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrl, path = line.rstrip("\n").split(":", 2)
                if "memory" in ctrl.split(","):
                    base = "/sys/fs/cgroup/memory" + path
                    return base if os.path.isdir(base) else None
    except OSError:
        pass
    return None


def _cgroup_v2() -> Optional[str]:
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                if line.startswith("0::"):
                    base = "/sys/fs/cgroup" + line.rstrip("\n")[3:]
                    if os.path.exists(os.path.join(base, "memory.max")) or \
                            os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
                        ctrl = os.path.join("/sys/fs/cgroup", "cgroup.controllers")
                        with open(ctrl) as c:
                            if "memory" in c.read().split():
                                return base
    except OSError:
        pass
    return None


def cgroup_available() -> Optional[str]:
    """The memory cgroup this process is in ("v1:PATH"/"v2:PATH") when writable, else None."""
    for kind, base in (("v1", _cgroup_v1_memory()), ("v2", _cgroup_v2())):
        if base and os.access(base, os.W_OK):
            return f"{kind}:{base}"
    return None


class MemoryLimit:
    """A memory cap applied to a child: ``MemoryLimit(64 << 20, "data")``."""

    def __init__(self, nbytes: int, kind: str = "data") -> None:
        if kind not in LIMIT_TYPES:
            raise ValueError(f"limit type must be one of {LIMIT_TYPES}")
        self.nbytes = nbytes
        self.kind = kind
        self._cg: Optional[str] = None
        self._cg_version = ""
        if kind == "cgroup":
            where = cgroup_available()
            if where is None:
                raise OSError("no writable memory cgroup here")
            self._cg_version, base = where.split(":", 1)
            self._cg = os.path.join(base, f"blockimg-bench-{os.getpid()}")
            os.makedirs(self._cg, exist_ok=True)
            if self._cg_version == "v1":
                self._write("memory.limit_in_bytes", nbytes)
                try:
                    self._write("memory.memsw.limit_in_bytes", nbytes)
                except OSError:
                    pass
            else:
                self._write("memory.max", nbytes)
                try:
                    self._write("memory.swap.max", 0)
                except OSError:
                    pass

    def _write(self, name: str, value) -> None:
        with open(os.path.join(self._cg, name), "w") as f:
            f.write(str(value))

    def before_run(self) -> None:
        if self._cg and self._cg_version == "v1":
            try:
                self._write("memory.max_usage_in_bytes", 0)
            except OSError:
                pass

    def in_child(self) -> None:
        """Called between fork and exec."""
        if self.kind == "data":
            resource.setrlimit(resource.RLIMIT_DATA, (self.nbytes, self.nbytes))
        elif self.kind == "as":
            resource.setrlimit(resource.RLIMIT_AS, (self.nbytes, self.nbytes))
        else:
            with open(os.path.join(self._cg, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    def killed(self, returncode: int) -> bool:
        if self.kind != "cgroup" or returncode != -9:
            return False
        return True

    def close(self) -> None:
        if self._cg:
            try:
                os.rmdir(self._cg)
            except OSError:
                pass
            self._cg = None

    def describe(self) -> str:
        return f"{self.nbytes >> 20} MiB ({self.kind})"


def gnu_time() -> Optional[str]:
    """GNU time, used as a small launcher so peak RSS is the command's own."""
    global _GNU_TIME
    if _GNU_TIME is None:
        _GNU_TIME = ""
        for p in ("/usr/bin/time", "/bin/time"):
            try:
                out = subprocess.run([p, "--version"], capture_output=True, text=True)
            except OSError:
                continue
            if "GNU" in (out.stdout + out.stderr):
                _GNU_TIME = p
                break
    return _GNU_TIME or None


_GNU_TIME: Optional[str] = None


def _descendants(pid: int) -> List[int]:
    out = [pid]
    i = 0
    while i < len(out) and i < 64:
        p = out[i]
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                out.extend(int(x) for x in f.read().split())
        except (OSError, ValueError):
            pass
        i += 1
    return out


def _tree_anon(pid: int) -> int:
    return sum(_rss_anon(p) for p in _descendants(pid))


def _rss_anon(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"RssAnon:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, 9)
    except OSError:
        pass


def run(cmd: Sequence[str], *, env: Optional[Dict[str, str]] = None,
        limit: Optional[MemoryLimit] = None, cwd: Optional[str] = None,
        stdout=subprocess.DEVNULL, sample_interval: float = 0.002,
        timeout: Optional[float] = None, use_time: bool = True) -> Measurement:
    """Run ``cmd`` (a list; strings run via ``sh -c``) and measure it.

    With GNU time installed it launches the command, so that peak RSS is not
    raised by this (Python) process's own pages, which a forked child inherits
    in its high-water mark; without it, peak RSS is at least this process's.
    """
    if isinstance(cmd, str):
        cmd = ["/bin/sh", "-c", cmd]
    full_env = dict(os.environ if env is None else env)
    full_env.update(SINGLE_THREAD_ENV)
    if limit is not None:
        limit.before_run()
    launcher = gnu_time() if use_time else None
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile() as tfile:
        if launcher:
            cmd = [launcher, "-f", "%M", "-o", tfile.name, "--", *cmd]
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=stdout, stderr=err, env=full_env, cwd=cwd,
                                preexec_fn=limit.in_child if limit is not None else None,
                                stdin=subprocess.DEVNULL, close_fds=True,
                                start_new_session=True)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                v = _tree_anon(proc.pid)
                if v > peak[0]:
                    peak[0] = v
                done.wait(sample_interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        timer = None
        if timeout:
            timer = threading.Timer(timeout, _kill_group, (proc.pid,))
            timer.start()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        if timer is not None:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.join()
        err.seek(0)
        text = err.read()[-4000:].decode("utf-8", "replace")
        max_rss = ru.ru_maxrss * 1024
        rc = proc.returncode
        if launcher:
            tfile.seek(0)
            lines = tfile.read().decode("utf-8", "replace").strip().splitlines()
            try:
                max_rss = int(lines[-1]) * 1024
            except (IndexError, ValueError):
                pass
            sig = [ln for ln in lines if ln.startswith("Command terminated by signal")]
            if sig:
                rc = -int(sig[0].split()[-1])
                text += "\n" + sig[0]
    return Measurement(wall=wall, user=ru.ru_utime, sys=ru.ru_stime,
                       max_rss=max_rss, peak_private=peak[0], returncode=rc,
                       stderr=text,
                       killed_by_limit=bool(limit and limit.killed(rc)))


def median(values: List[float]) -> float:
    s = sorted(values)
    n = len(s)
    if n == 0:
        return float("nan")
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


@dataclass
class Series:
    """All runs of one tool on one operation."""

    runs: List[Measurement] = field(default_factory=list)

    def add(self, m: Measurement) -> None:
        self.runs.append(m)
