"""Reading an image: the shared index, byte ranges, and safe extraction."""
