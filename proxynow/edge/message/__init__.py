"""HTTP message heads and their header API, version-neutral and free of I/O."""
