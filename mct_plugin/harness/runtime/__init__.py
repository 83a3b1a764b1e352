"""The process: torch.distributed, devices, allocator tuning, signals."""
