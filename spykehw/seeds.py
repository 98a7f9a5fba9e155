"""``spykehw run --seeds N``: the whole flow at N seeds, and the spread of the results.

Seed ``k`` (``--seed S`` first, then ``S+1`` ...) seeds every random choice of one run: the
Conv1 initial weights (``conv.seed``), the classifier's initialisation and dropout masks
(``classifier.seed``) and the EMNIST train/test split (the run's ``seed``). Each seed is an
ordinary run folder inside one ``seeds-<stamp>`` folder, whose ``summary.json`` and
``report.txt`` give, per model and metric, the mean, sample standard deviation, min and max.
Seeds run one after the other (each run already uses both cores where it can).
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from typing import Any

from .flow import RunConfig, run_flow
from .golden.progress import format_duration
from .output import RunFolder

__all__ = ["run_seeds", "spread"]

METRICS = ("test_acc", "balanced_acc", "val_acc", "best_epoch")


def spread(values: list[float]) -> dict[str, Any]:
    """``{"n", "mean", "std" (sample, None for one value), "min", "max", "values"}``."""
    return {"n": len(values), "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else None,
            "min": min(values), "max": max(values), "values": list(values)}


def run_seeds(cfg: RunConfig, n: int) -> RunFolder:
    t0 = time.perf_counter()
    seeds = [cfg.seed + k for k in range(n)]
    folder = RunFolder(cfg.out_root, "seeds", args={
        "dataset": cfg.dataset, "seeds": seeds, "options": cfg.options.to_dict(),
        "options_source": cfg.options_source, "formats": cfg.formats.to_dict(),
        "integer": cfg.integer, "train_limit": cfg.train_limit, "test_limit": cfg.test_limit})
    runs: list[dict[str, Any]] = []
    for s in seeds:
        opts = cfg.options.replace(**{"conv.seed": s, "classifier.seed": s})
        sub = run_flow(dataclasses.replace(cfg, seed=s, options=opts, out_root=folder.path))
        sub.close()
        runs.append({"seed": s, "folder": sub.path.name, "results": sub.manifest["results"]})
    models = [k for k, v in runs[0]["results"].items() if isinstance(v, dict) and "test_acc" in v]
    summary = {m: {k: spread([r["results"][m][k] for r in runs]) for k in METRICS} for m in models}
    lines = [f"spykehw run --seeds {n}: {cfg.dataset}, seeds {seeds[0]}..{seeds[-1]}, options "
             f"{cfg.options_source}"]
    for m in models:
        for k in ("test_acc", "balanced_acc", "val_acc"):
            d = summary[m][k]
            std = f"std {100 * d['std']:.2f} points, " if d["std"] is not None else ""
            lines.append(f"[{m}] {k}: mean {100 * d['mean']:.2f}% ({std}min {100 * d['min']:.2f}%, "
                         f"max {100 * d['max']:.2f}%) over {d['n']} seeds")
    total = time.perf_counter() - t0
    lines.append(f"done in {format_duration(total)}; one run folder per seed in {folder.path}")
    print("\n".join(lines), file=sys.stdout, flush=True)
    folder.write_json("summary.json", {"seeds": seeds, "runs": runs, "summary": summary},
                      "per seed results and their mean, std, min, max")
    folder.write_text("report.txt", "\n".join(lines) + "\n", "the printed summary")
    folder.result("summary", summary)
    folder.result("seconds_total", round(total, 1))
    return folder
