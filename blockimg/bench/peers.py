"""Peer programs written in Python (tarfile, pyfatfs), run as scripts by the benchmark.

Standalone on purpose: ``python3 peers.py OP ARGS`` imports neither blockimg
nor anything it does not need, so start-up is the peer's own.

    tarfile-create IMAGE SRC      tarfile-extract IMAGE DEST    tarfile-cat IMAGE PATH
    pyfatfs-create IMAGE SRC SIZE pyfatfs-extract IMAGE DEST    pyfatfs-cat IMAGE PATH
"""
import os
import shutil
import sys


def tarfile_create(image, src):
    import tarfile
    with tarfile.open(image, "w") as t:
        for name in sorted(os.listdir(src)):
            t.add(os.path.join(src, name), arcname=name)


def _tar_filter(tarfile):
    return {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}


def tarfile_extract(image, dest):
    import tarfile
    with tarfile.open(image, "r:") as t:
        t.extractall(dest, **_tar_filter(tarfile))


def tarfile_cat(image, path):
    import tarfile
    with tarfile.open(image, "r:") as t:
        f = t.extractfile(path)
        shutil.copyfileobj(f, sys.stdout.buffer, 1 << 20)


def pyfatfs_create(image, src, size):
    from pyfatfs.PyFat import PyFat
    from pyfatfs.PyFatFS import PyFatFS
    size = int(size)
    with open(image, "wb") as f:
        f.truncate(size)
    fat_type = (PyFat.FAT_TYPE_FAT12 if size < 16 << 20 else
                PyFat.FAT_TYPE_FAT16 if size < 512 << 20 else PyFat.FAT_TYPE_FAT32)
    pf = PyFat()
    pf.mkfs(image, fat_type, size=size, label="BENCH")
    pf.close()
    fs = PyFatFS(image)
    try:
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames.sort()
            rel = os.path.relpath(dirpath, src).replace(os.sep, "/")
            base = "/" if rel == "." else "/" + rel + "/"
            for d in dirnames:
                fs.makedir(base + d)
            for name in sorted(filenames):
                with open(os.path.join(dirpath, name), "rb") as inp, \
                        fs.openbin(base + name, "w") as out:
                    shutil.copyfileobj(inp, out, 1 << 20)
    finally:
        fs.close()


def pyfatfs_extract(image, dest):
    from pyfatfs.PyFatFS import PyFatFS
    fs = PyFatFS(image, read_only=True)
    try:
        for path, info in fs.walk.info(namespaces=["basic"]):
            target = os.path.join(dest, path.lstrip("/"))
            if info.is_dir:
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with fs.openbin(path, "r") as inp, open(target, "wb") as out:
                shutil.copyfileobj(inp, out, 1 << 20)
    finally:
        fs.close()


def _fat_path(fs, path):
    """``path`` as stored: FAT names match case-insensitively (8.3 names may read upper-case)."""
    cur = ""
    for part in path.strip("/").split("/"):
        names = fs.listdir(cur or "/")
        match = [n for n in names if n == part] or [n for n in names if n.lower() == part.lower()]
        cur += "/" + (match[0] if match else part)
    return cur


def pyfatfs_cat(image, path):
    from pyfatfs.PyFatFS import PyFatFS
    fs = PyFatFS(image, read_only=True)
    try:
        with fs.openbin(_fat_path(fs, path), "r") as inp:
            shutil.copyfileobj(inp, sys.stdout.buffer, 1 << 20)
    finally:
        fs.close()


OPS = {"tarfile-create": tarfile_create, "tarfile-extract": tarfile_extract,
       "tarfile-cat": tarfile_cat, "pyfatfs-create": pyfatfs_create,
       "pyfatfs-extract": pyfatfs_extract, "pyfatfs-cat": pyfatfs_cat}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in OPS:
        sys.exit(__doc__)
    OPS[sys.argv[1]](*sys.argv[2:])
