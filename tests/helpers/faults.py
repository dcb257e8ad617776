"""The source tree of the fault tests and the check that a failed create changed nothing
(tests/unit/test_faults.py, tests/root/test_faults_root.py)."""
from __future__ import annotations

from pathlib import Path

from blockimg.write.atomic import temporaries_in


def make_tree(root: Path, sizes=(10, 300_000, 2_000_000, 5)) -> Path:
    """Files of ``sizes`` bytes (small ones and ones big enough to copy in the kernel)
    and ``sub/z.txt`` under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(sizes):
        (root / f"f{i}.bin").write_bytes(bytes([i + 1]) * n)
    (root / "sub").mkdir(exist_ok=True)
    (root / "sub" / "z.txt").write_bytes(b"z" * 1000)
    return root


def assert_untouched(target: Path, before: bytes) -> None:
    """``target`` still holds ``before`` and no temporary is left beside it."""
    assert target.read_bytes() == before
    assert temporaries_in(str(target.parent)) == []
