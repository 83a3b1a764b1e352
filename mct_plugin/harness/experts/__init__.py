"""Expert trajectories: training them, the MTT buffer format, pooling them during distillation,
and the interface of buffer converters."""
