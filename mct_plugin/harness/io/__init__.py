"""Files: crash-safe writes, run directories, untrusted loading, cache locations."""
