"""Trust: manifests of where every file's bytes are, and checking an image against them."""
