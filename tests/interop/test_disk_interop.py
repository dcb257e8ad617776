"""Partitioned disks read back by independent tools: sfdisk, sgdisk, fdisk, mtools at the
partition's offset, GNU tar and fsck.fat on the extracted partition (and, as root, the
kernel through a partitioned loop device: tests/root/test_disk_interop_root.py); the
same inputs give the same bytes."""
from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from conftest import assert_same_tree, require_tool, run
from helpers.disk_volumes import FILES, MTIME, blockimg, make_volumes, sfdisk_partitions


@pytest.fixture
def volumes(tmp_path):
    return make_volumes(tmp_path)


@pytest.mark.parametrize("table", ["mbr", "gpt"])
def test_disk_reads_back_with_every_tool(volumes, tmp_path, table):
    site, keys, keys_img = volumes
    disk = tmp_path / "disk.img"
    blockimg("disk", "-o", disk, "--table", table, f"{site},name=site,format=fat",
             f"{keys_img},name=keys", f"{site},name=sitetar", "empty:3M,name=data",
             "--mtime", MTIME)
    size = disk.stat().st_size
    assert size % (1 << 20) == 0

    dump = run(require_tool("sfdisk"), "--dump", disk)
    assert b"warning" not in (dump.stdout + dump.stderr).lower(), dump
    assert dump.stdout.count(b"start=") == 4
    listing = run(require_tool("fdisk"), "-l", disk).stdout.decode()
    assert ("gpt" if table == "gpt" else "dos") in listing
    if table == "gpt":
        v = run(require_tool("sgdisk"), "-v", disk).stdout.decode()
        assert "No problems found" in v, v
        assert 'name="site"' in dump.stdout.decode()
        assert 'name="keys"' in dump.stdout.decode()
        assert "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" in dump.stdout.decode()  # FAT: basic data
    else:
        assert "type=e" in dump.stdout.decode()       # FAT16 (LBA)
        assert "type=da" in dump.stdout.decode()      # non-FS data

    parts = sfdisk_partitions(disk)
    assert [start % (1 << 20) for start, _ in parts] == [0, 0, 0, 0]
    raw = disk.read_bytes()

    # 1: FAT, read by mtools at the partition's offset and by fsck.fat on the partition
    fat_start, fat_size = parts[0]
    mtype = require_tool("mtype")
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    for name, data in FILES.items():
        got = subprocess.run([mtype, "-i", f"{disk}@@{fat_start}", "::" + name],
                             capture_output=True, env=env)
        assert got.returncode == 0, got.stderr
        assert got.stdout == data, name
    part1 = tmp_path / "p1.img"
    part1.write_bytes(raw[fat_start:fat_start + fat_size])
    run(require_tool("fsck.fat"), "-n", part1)
    out = tmp_path / "mcopy-out"
    out.mkdir()
    subprocess.run([require_tool("mcopy"), "-s", "-n", "-i", str(part1), "::/*", str(out)],
                   check=True, env=env, capture_output=True)
    assert_same_tree(site, out)

    # 2: the existing tar image, byte for byte; 3: the tar built in place, read by GNU tar
    k_start, k_size = parts[1]
    assert raw[k_start:k_start + k_size] == keys_img.read_bytes()
    t_start, t_size = parts[2]
    part3 = tmp_path / "p3.tar"
    part3.write_bytes(raw[t_start:t_start + t_size])
    tar_out = tmp_path / "tar-out"
    tar_out.mkdir()
    run(require_tool("tar"), "-xf", part3, "-C", tar_out)
    assert_same_tree(site, tar_out)
    single = tmp_path / "single.tar"
    blockimg("create", site, "-o", single, "--mtime", MTIME)
    assert part3.read_bytes() == single.read_bytes()   # the same bytes as a single build

    # 4: empty space is zeros
    d_start, d_size = parts[3]
    assert d_size == 3 << 20 and raw[d_start:d_start + d_size].count(0) == d_size


@pytest.mark.parametrize("table", ["mbr", "gpt"])
def test_readers_take_partition_by_number_and_name(volumes, tmp_path, table):
    site, keys, keys_img = volumes
    disk = tmp_path / "disk.img"
    blockimg("disk", "-o", disk, "--table", table, f"{site},name=site,format=fat",
             f"{keys_img},name=keys", "--mtime", MTIME)
    assert blockimg("cat", disk, "--partition", "1", "index.html").stdout == \
        FILES["index.html"].decode()
    assert "server.key" in blockimg("ls", disk, "--partition", "2").stdout
    if table == "gpt":
        assert "server.key" in blockimg("ls", disk, "--partition", "keys").stdout
    assert "fat image OK" in blockimg("check", disk, "--partition", "1").stdout
    assert "agree with the source" in blockimg("verify", disk, "--partition", "1", site).stdout
    dest = tmp_path / "x"
    blockimg("extract", disk, dest, "--partition", "1")
    assert_same_tree(site, dest)
    info = blockimg("info", disk, "--partition", "2").stdout
    assert "format: tar" in info

    # Opened without --partition: info and check take the whole disk, the other commands
    # name the partitions and stop.
    res = blockimg("check", disk, "--target", "mirage")
    assert f"{table.upper()} table OK, 2 partitions" in res.stdout
    assert f"partition:1:{disk} (site): fat image OK for the Mirage driver" in res.stdout \
        or f"partition:1:{disk}: fat image OK for the Mirage driver" in res.stdout
    # the partition: backend names a partition anywhere an image is taken
    assert "server.key" in blockimg("ls", f"partition:2:{disk}").stdout
    for cmd in (["ls", disk], ["cat", disk, "index.html"], ["verify", disk]):
        res = blockimg(*cmd, check=False)
        said = res.stdout + res.stderr                # verify reports it as a difference
        assert res.returncode == 1
        assert "partitioned disk" in said and "--partition N" in said
        assert "1 at byte 1048576" in said
        assert "Traceback" not in said
    info = blockimg("info", disk).stdout
    assert f"table: {table}" in info and "partition 2" in info
    bad = blockimg("ls", disk, "--partition", "9", check=False)
    assert bad.returncode == 1 and "no partition '9'" in bad.stderr


def test_check_reports_a_broken_backup_gpt(volumes, tmp_path):
    site, keys, keys_img = volumes
    disk = tmp_path / "disk.img"
    blockimg("disk", "-o", disk, "--table", "gpt", str(keys_img))
    data = bytearray(disk.read_bytes())
    data[-512 + 20] ^= 0xFF                     # inside the backup header's CRC-covered bytes
    disk.write_bytes(bytes(data))
    res = blockimg("check", disk, check=False)
    assert res.returncode == 1 and "backup GPT" in res.stdout and "HeaderCRC32" in res.stdout
    assert "tar image OK" in res.stdout   # the partitions are still checked


def test_secret_disk_is_private(volumes, tmp_path):
    site, keys, keys_img = volumes
    disk = tmp_path / "disk.img"
    blockimg("disk", "-o", disk, str(keys_img), "--secret")
    assert disk.stat().st_mode & 0o777 == 0o600
    blockimg("disk", "-o", tmp_path / "open.img", str(keys_img))
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "open.img").stat().st_mode & 0o777 == 0o666 & ~mask


def test_partition_of_a_plain_image_is_refused(volumes, tmp_path):
    _, _, keys_img = volumes
    res = blockimg("ls", keys_img, "--partition", "1", check=False)
    assert res.returncode == 1 and "has no partition table" in res.stderr


@pytest.mark.parametrize("table", ["mbr", "gpt"])
def test_same_inputs_same_bytes(volumes, tmp_path, table):
    site, keys, keys_img = volumes
    shas = []
    for i in range(2):
        disk = tmp_path / f"disk{i}.img"
        blockimg("disk", "-o", disk, "--table", table, f"{site},format=fat", str(keys_img),
                 "empty:1M", "--mtime", MTIME)
        shas.append(hashlib.sha256(disk.read_bytes()).hexdigest())
    assert shas[0] == shas[1]
    # A change of content changes the GUIDs / signature (they are derived from it).
    (site / "index.html").write_bytes(b"changed\n")
    os.utime(site / "index.html", (MTIME, MTIME))
    disk = tmp_path / "disk2.img"
    blockimg("disk", "-o", disk, "--table", table, f"{site},format=fat", str(keys_img),
             "empty:1M", "--mtime", MTIME)
    new = disk.read_bytes()
    old = (tmp_path / "disk0.img").read_bytes()
    head = 440 if table == "mbr" else 512
    assert new[head:head + 4 if table == "mbr" else 1024] != old[head:head + 4 if table == "mbr"
                                                                 else 1024]


def test_failed_disk_leaves_target_untouched(volumes, tmp_path):
    site, keys, keys_img = volumes
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"precious")
    res = blockimg("disk", "-o", disk, f"{site},format=fat", "nonexistent/",
                   "empty:1000", "a,b", check=False)
    assert res.returncode == 1
    # every problem of the command line at once
    assert "nonexistent" in res.stderr and "empty space of 1000" in res.stderr
    assert "'b' is not key=value" in res.stderr
    assert disk.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk.img", "keys", "keys.img", "site"]
    res = blockimg("disk", "-o", disk, *[str(keys_img)] * 5, check=False)
    assert res.returncode == 1 and "an MBR holds at most 4" in res.stderr


@pytest.mark.parametrize("table", ["mbr", "gpt"])
def test_empty_partition_is_empty_space_not_a_tar_image(volumes, tmp_path, table):
    """Regression: `check DISK` called an `empty:SIZE` partition (all zeros) "tar image OK";
    check, info and verify now say it is empty space, and exit as docs/deploy.md says."""
    site, keys, keys_img = volumes
    disk = tmp_path / "disk.img"
    blockimg("disk", "-o", disk, "--table", table, f"{keys_img},name=keys",
             "empty:4M,name=data")
    # independent check that the partition really is 4 MiB of zeros
    start, size = sfdisk_partitions(disk)[1]
    with open(disk, "rb") as f:
        f.seek(start)
        assert size == 4 << 20 and f.read(size) == bytes(size)
    res = blockimg("check", disk)
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    data_line = [line for line in lines if line.startswith(f"partition:2:{disk}")]
    assert len(data_line) == 1 and "empty space (4194304 bytes of zeros" in data_line[0]
    assert "not checked" in data_line[0] and "tar image OK" not in data_line[0]
    assert any(line.startswith(f"partition:1:{disk}") and "tar image OK" in line
               for line in lines)
    names = [[disk, "--partition", "2"], [f"partition:2:{disk}"]]
    if table == "gpt":
        names.append([disk, "--partition", "data"])
    for name in names:
        res = blockimg("check", *name)
        assert res.returncode == 0 and "empty space" in res.stdout
        assert "tar image" not in res.stdout
    info = blockimg("info", disk, "--partition", "2").stdout
    assert "format: empty" in info and "image bytes: 4194304" in info
    assert "format: tar" not in info
    import json
    as_json = json.loads(blockimg("info", disk, "--partition", "2", "--json").stdout)
    assert as_json["format"] == "empty" and as_json["image_bytes"] == 4 << 20
    res = blockimg("verify", disk, "--partition", "2")
    assert res.returncode == 0 and "empty space" in res.stdout and "nothing to verify" in \
        res.stdout
    # against a source the files are missing: a failure, not "OK"
    res = blockimg("verify", disk, "--partition", "2", keys, check=False)
    assert res.returncode == 1 and "empty space" in res.stdout
    # ls lists nothing (an empty tar-mirage area reads as no entries), without an error
    res = blockimg("ls", disk, "--partition", "2")
    assert res.stdout == "" and res.returncode == 0


def test_gpt_guids_are_derived_from_each_partitions_bytes(volumes, tmp_path):
    """Each partition's unique GUID, as sfdisk reads it, is UUIDv5 of its name and the
    SHA-256 of its bytes (docs/deploy.md): a one-byte change that keeps every size and
    time changes the GUID of the partition holding it, and only that one."""
    import json
    import uuid
    site, keys, keys_img = volumes
    namespace = uuid.uuid5(uuid.NAMESPACE_DNS, "blockimg.disk")

    def build(name):
        disk = tmp_path / name
        blockimg("disk", "-o", disk, "--table", "gpt", f"{site},name=site,format=fat",
                 f"{keys},name=keys,format=tar", f"{keys_img},name=keysimg",
                 "empty:1M,name=data", "--mtime", MTIME)
        table = json.loads(run(require_tool("sfdisk"), "--json", disk).stdout)
        raw = disk.read_bytes()
        guids = {}
        for p in table["partitiontable"]["partitions"]:
            start, size = p["start"] * 512, p["size"] * 512
            sha = hashlib.sha256(raw[start:start + size]).hexdigest()
            assert uuid.UUID(p["uuid"]) == uuid.uuid5(namespace,
                                                      f"partition\0{p['name']}\0{sha}")
            guids[p["name"]] = p["uuid"]
        return guids

    before = build("a.img")
    assert len(set(before.values())) == 4
    key = keys / "server.key"
    data = key.read_bytes()
    key.write_bytes(data[:-2] + b"?\n")                 # same size, same time
    os.utime(key, (MTIME, MTIME))
    after = build("b.img")
    assert after["keys"] != before["keys"]
    assert {n: g for n, g in after.items() if n != "keys"} == \
        {n: g for n, g in before.items() if n != "keys"}
