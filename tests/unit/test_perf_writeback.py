"""Early write-out: the Copier asks the kernel to start writing an image file as it goes
(so the final fsync has little left); a hint only -- bytes are the same either way."""
from __future__ import annotations

import pytest

from blockimg.write import copier as copymod
from blockimg.block.file import FileDevice
from blockimg.block.memory import MemoryDevice
from blockimg.sources.directory import from_pairs
from blockimg.tar import plan, write


def _tree(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (3 * 4096 + 7))          # > SMALL_FILE: kernel copy
    pairs = [(f"f{i:03d}.txt", bytes([i]) * (1000 + i)) for i in range(200)]
    pairs.append(("big.bin", str(big)))
    return from_pairs(pairs, mtime=1_700_000_000)


def test_write_out_is_started_and_bytes_do_not_change(tmp_path, monkeypatch):
    tree = _tree(tmp_path)
    p = plan(tree)
    plain = tmp_path / "plain.img"
    monkeypatch.setattr(copymod, "_sync_file_range", lambda: None)
    dev = FileDevice.create(str(plain), p.image_size)
    write(p, dev)
    dev.close()

    calls = []
    monkeypatch.setattr(copymod, "_sync_file_range",
                        lambda: (lambda fd, off, n, flags: calls.append((off, n, flags)) or 0))
    monkeypatch.setattr(copymod, "WRITEBACK_EVERY", 64 * 1024)
    hinted = tmp_path / "hinted.img"
    dev = FileDevice.create(str(hinted), p.image_size)
    dev.early_writeout = True
    write(p, dev)
    dev.close()
    assert calls and all(c == (0, 0, 2) for c in calls)
    assert hinted.read_bytes() == plain.read_bytes()


def test_no_write_out_hint_for_other_backends(tmp_path, monkeypatch):
    monkeypatch.setattr(copymod, "_sync_file_range",
                        lambda: pytest.fail("asked for a memory device"))
    p = plan(_tree(tmp_path))
    dev = MemoryDevice(p.image_size)
    write(p, dev)


def test_a_failing_hint_is_dropped(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(copymod, "_sync_file_range",
                        lambda: (lambda *a: calls.append(a) or -1))
    monkeypatch.setattr(copymod, "WRITEBACK_EVERY", 4096)
    p = plan(_tree(tmp_path))
    dev = FileDevice.create(str(tmp_path / "x.img"), p.image_size)
    dev.early_writeout = True
    write(p, dev)
    dev.close()
    assert len(calls) == 1


@pytest.mark.parametrize("fsync", [True, False])
def test_create_asks_for_write_out_only_when_it_fsyncs(tmp_path, monkeypatch, fsync):
    import blockimg
    calls = []
    monkeypatch.setattr(copymod, "_sync_file_range",
                        lambda: (lambda *a: calls.append(a) or 0))
    monkeypatch.setattr(copymod, "WRITEBACK_EVERY", 4096)
    blockimg.create(_tree(tmp_path), tmp_path / "x.img", fsync=fsync)
    assert bool(calls) is fsync


def test_the_hint_is_looked_up_only_when_a_write_out_is_due(tmp_path, monkeypatch):
    """A build smaller than WRITEBACK_EVERY never looks the hint up (its ctypes is ~4 ms
    of a small create's start-up, issue 16); a bigger one does, once."""
    looked = []
    monkeypatch.setattr(copymod, "_sync_file_range",
                        lambda: looked.append(1) or (lambda *a: 0))
    p = plan(_tree(tmp_path))
    dev = FileDevice.create(str(tmp_path / "x.img"), p.image_size)
    dev.early_writeout = True
    write(p, dev)
    dev.close()
    assert looked == []
    monkeypatch.setattr(copymod, "WRITEBACK_EVERY", 4096)
    dev = FileDevice.create(str(tmp_path / "y.img"), p.image_size)
    dev.early_writeout = True
    write(p, dev)
    dev.close()
    assert looked == [1]
