"""``python -m blockimg``: the blockimg command."""
from .cli import run

run()
