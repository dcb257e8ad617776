"""Old name of :mod:`blockimg.copier` (it shadowed the standard library's ``copy``),
kept only while ``blockimg/fat/writer.py`` still imports it; to be removed then."""
from .copier import Copier, write_in_parts

__all__ = ["Copier", "write_in_parts"]
