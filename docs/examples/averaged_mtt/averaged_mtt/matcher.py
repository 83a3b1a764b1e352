"""The matcher of the averaged_mtt plugin: the bundled MTT matcher with one method changed."""

import torch

from mct_plugin.harness.api import MTTMatcher


class AveragedMTTMatcher(MTTMatcher):
    """MTT's replay buffers (files, loading, validation and expert order are MTTMatcher's), with
    the start and target of every segment replaced by the mean of the recorded checkpoints
    within ``--average-window`` epochs of them (``self.options``: its ``AveragingOptions``)."""

    def point(self, trajectory, epoch):
        k, window = int(epoch), self.options.average_window
        recorded = super().point  # MTTMatcher's: the flat parameters of one recorded checkpoint
        neighbours = range(max(0, k - window), min(len(trajectory) - 1, k + window) + 1)
        return torch.stack([recorded(trajectory, j) for j in neighbours]).mean(dim=0)
