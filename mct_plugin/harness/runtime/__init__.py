"""The process: torch.distributed, devices, precision, allocator tuning, signals."""
