"""One module per export format; `registry.READERS` lists them (see registry.py)."""
