"""A stand-in for the public ``reparam_module.py`` (its presence marks a checkout; unused)."""
