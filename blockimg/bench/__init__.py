"""Benchmarks: blockimg side by side with mkfs.fat/mcopy, GNU tar, bsdtar, tarfile, pyfatfs.

Run ``python -m blockimg.bench --help``. Modules: ``measure`` (a child run
with peak memory and an optional memory cap), ``suite`` (operations and
tools), ``compare`` (interleaved runs), ``report`` (tables, JSON, chart),
``scale`` (memory as sizes grow), ``peers`` (tarfile/pyfatfs scripts).
Nothing here is imported by blockimg itself.
"""
