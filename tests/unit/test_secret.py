"""--secret: mode 0600 from the first byte, no file names in what is printed while
building, temporary files wiped when the build fails."""
from __future__ import annotations

import io
import os
import stat

import pytest

import blockimg
from blockimg.write import atomic
from blockimg import cli
from blockimg.cli import progress
from blockimg.write.atomic import temporaries_in
from blockimg.write.copier import Copier
from blockimg.errors import SourceChanged

FORMATS = ["tar", "fat"]
SECRET_NAMES = ["server-private.key", "id_ed25519", "vault-token.txt"]


@pytest.fixture
def keys(tmp_path):
    src = tmp_path / "keys"
    src.mkdir()
    for i, n in enumerate(SECRET_NAMES):
        (src / n).write_bytes(b"-----BEGIN PRIVATE KEY-----\n" + bytes([65 + i]) * 300_000)
    return src


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("secret", [True, False])
def test_mode_while_writing_and_after(tmp_path, keys, monkeypatch, fmt, secret):
    modes = []
    real = Copier.put_file

    def spy(self, entry, offset):
        modes.append(stat.S_IMODE(os.fstat(self.device.fd).st_mode))
        return real(self, entry, offset)
    monkeypatch.setattr(Copier, "put_file", spy)
    old = os.umask(0o022)
    try:
        blockimg.create(keys, tmp_path / "keys.img", format=fmt, secret=secret)
    finally:
        os.umask(old)
    assert modes and set(modes) == {0o600}
    final = stat.S_IMODE((tmp_path / "keys.img").stat().st_mode)
    assert final == (0o600 if secret else 0o644)


class Bar(progress.ProgressBar):
    stream = io.StringIO()

    def __init__(self, label, **kw):
        super().__init__(label, stream=Bar.stream, delay=0, enabled=True)
        self._last = -1.0


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_names_in_output(tmp_path, keys, monkeypatch, capsys, fmt):
    os.mkfifo(keys / "agent-socket-fifo")
    Bar.stream = io.StringIO()
    monkeypatch.setattr(progress, "ProgressBar", Bar)   # (the commands import it from there)
    monkeypatch.setattr(progress.time, "monotonic", iter(range(10**6)).__next__)
    out = tmp_path / "vault.img"
    assert cli.main(["create", str(keys), "-o", str(out), "--format", fmt, "--secret",
                     "--skip-special", "--manifest", str(tmp_path / "vault.json")]) == 0
    captured = capsys.readouterr()
    shown = Bar.stream.getvalue() + captured.out + captured.err
    assert "writing [" in Bar.stream.getvalue()  # the bar was drawn
    for name in SECRET_NAMES + ["agent-socket-fifo", "vault.img"]:
        assert name not in Bar.stream.getvalue()
    for name in SECRET_NAMES + ["agent-socket-fifo"]:
        assert name not in shown
    assert "skipped 1 special files" in captured.err
    assert stat.S_IMODE(os.stat(tmp_path / "vault.json").st_mode) == 0o600


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("anonymous", [True, False], ids=["o_tmpfile", "named"])
def test_failed_secret_build_wipes_its_temporary(tmp_path, keys, monkeypatch, fmt, anonymous):
    """The build fails after the first key is written; what it wrote is zeroed first."""
    seen = {}
    real_wipe = atomic._wipe_fd

    def spy_wipe(fd):
        size = os.fstat(fd).st_size
        seen["before"] = os.pread(fd, size, 0)
        real_wipe(fd)
        seen["after"] = os.pread(fd, size, 0)
    monkeypatch.setattr(atomic, "_wipe_fd", spy_wipe)
    if not anonymous:
        monkeypatch.setattr(atomic, "_open_anonymous", lambda d: None)
    victim = keys / SECRET_NAMES[-1]

    def progress_cb(done, total):
        if victim.exists():
            victim.unlink()
    with pytest.raises(SourceChanged):
        blockimg.create(keys, tmp_path / "vault.img", format=fmt, secret=True,
                        progress=progress_cb)
    assert b"BEGIN PRIVATE KEY" in seen["before"]
    assert seen["after"].count(0) == len(seen["after"])
    assert not (tmp_path / "vault.img").exists()
    assert temporaries_in(str(tmp_path)) == []
