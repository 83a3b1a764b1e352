"""Defaults shared by a low layer (the configs) and a high one (the augmentation), kept at the
bottom so that neither imports the other."""

DEFAULT_DSA_STRATEGY = "color_crop_cutout_flip_scale_rotate"
"""The DSA families of the public code's default ``--dsa_strategy``, joined by '_'."""
