"""Shared builders and reference forms for the tests (not test files themselves).

Test files import from here (``from helpers.x import ...``; tests/ is on the path
as pytest's root directory) and never from one another. One module per idea:

* source trees and images: ``cli_robust`` (the CLI as a user runs it), ``disk_volumes``,
  ``fat_alias``, ``fat_volume`` (mkfs.fat seeds to break), ``faults``, ``hostile_tars``,
  ``tar_archives`` (tar blocks by hand), ``tar_update``, ``deep_paths``;
* reading images back: ``fat_readback`` (fsck.fat, mtools, pyfatfs, blockimg), ``vm``
  (the Linux kernel under QEMU), ``kernel_tier`` (the kernel to boot, what the guest
  must see);
* reference forms the library's fast code is tested equal to: ``fat_reference``,
  ``tar_reference``, ``tar_lookup_reference``;
* others: ``doc_blocks`` (the docs' code blocks), ``fake_format`` (a minimal image
  format), ``processes``, and ``fuzzer`` (the readers' fuzzer, run by ``tools/fuzz``).
"""
