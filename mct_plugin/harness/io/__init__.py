"""Files: crash-safe writes, run directories (and the key names of their metrics rows), untrusted loading,
cache locations."""
