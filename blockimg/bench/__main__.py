"""``python -m blockimg.bench``: the benchmark command."""
import sys

from .cli import main

sys.exit(main())
