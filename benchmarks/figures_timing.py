"""Seconds per run figure (image grid at ipc 1 and 10, curves of 300 rows) of the harness found first on sys.path
after ``TREE`` (a checkout): ``python -m benchmarks.figures_timing TREE`` prints one JSON line."""
import sys, time, json, importlib
import torch
sys.path.insert(0, sys.argv[1])
from mct_plugin.harness.eval import plots
names = [f"class{i}" for i in range(10)]
rows = [{"iteration": i, "loss": 1.0 - i * 0.001, "alpha": 0.01, "alpha_used": 0.01, "start_epoch": i % 8, "target_epoch": 2} for i in range(300)]
out = {}
for ipc in (1, 10):
    imgs = torch.randn(10 * ipc, 1, 28, 28); labels = torch.arange(10).repeat_interleave(ipc)
    plots.save_image_grid(imgs, labels, "/tmp/pb.png", names, (0.28,), (0.35,), title="t\nx")
    t = time.perf_counter()
    for _ in range(3): plots.save_image_grid(imgs, labels, "/tmp/pb.png", names, (0.28,), (0.35,), title="t\nx")
    out[f"grid_ipc{ipc}"] = (time.perf_counter() - t) / 3
plots.save_training_curves(rows, "/tmp/pc.png", "t", best_iteration=None)
t = time.perf_counter()
for _ in range(3): plots.save_training_curves(rows, "/tmp/pc.png", "t", best_iteration=None)
out["curves"] = (time.perf_counter() - t) / 3
print(json.dumps({k: round(v, 3) for k, v in out.items()}))
