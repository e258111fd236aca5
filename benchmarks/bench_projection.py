"""Benchmark of the Representations page's projections (ffnlp_core.projection), on 5,000 dev rows.

Trains relu [100, 100] for one epoch on the built-in interaction comments (25,000 rows: 20,000 train,
5,000 dev, every dev row snapshotted at each evaluation), then measures:
  - baseline: one PCA of the last hidden layer (5,000 x 100);
  - the click: what the page computes before the first projection is on screen (hover texts, raw input
    SVD + PCA, the aligned PCA of h0 and h1 at the latest snapshot, three Plotly figures serialized to
    JSON as st.plotly_chart does), and then the separation scores of every layer at every snapshot;
  - UMAP of the 5,000 x 100 hidden states: cold (a fresh process: numba compiles) and warm (a fresh
    process after warm_up_umap(), which compiles on random data), each with the longest stall of another
    Python thread meanwhile (the Streamlit server must keep answering).
Prints a table (ratios against the PCA baseline) and one JSON line. Wall and CPU seconds are both given:
on a shared machine the wall time also counts other programs. BLAS runs on one thread, as in the app.

    python benchmarks/bench_projection.py [--rows 5000] [--skip-cold]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class Stall:
    """A thread that wakes every 5 ms and records the longest gap (how long the GIL was held)."""

    def __init__(self):
        self.worst, self.stop = 0.0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        last = time.perf_counter()
        while not self.stop.wait(0.005):
            now = time.perf_counter()
            self.worst, last = max(self.worst, now - last - 0.005), now

    def end(self) -> float:
        self.stop.set()
        self.thread.join()
        return self.worst


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def umap_child(path: str, warm: bool) -> None:
    """Run in a fresh process; prints one JSON line. Cold: umap-learn in this process, compiling on the
    real matrix. Warm: warm_up_umap() (the UMAP process compiles on random data), then the real matrix;
    the stall is that of this process (the server's view), the CPU that of the UMAP process."""
    import psutil

    import ffnlp_core.runs.manager  # noqa: F401  (imported by the app before any warm-up: not part of the stall)
    from ffnlp_core.inspect import projection, umap_service

    out = {}
    x = np.load(path)
    if not warm:
        _, out["import_wall"], out["import_cpu"] = timed(lambda: __import__("umap"))
        y, out["umap_wall"], out["umap_cpu"] = timed(
            lambda: umap_service.umap_here(x, 2, 0, "random", projection.UMAP_EPOCHS)
        )
        print(json.dumps(out))
        return
    stall = Stall()
    ok, out["warm_up_wall"], _ = timed(umap_service.warm_up_umap)
    out["stall_warm_up"] = stall.end()
    assert ok, umap_service.umap_status()
    child = psutil.Process(umap_service.UMAP_PROCESS.proc.pid)
    out["warm_up_cpu"] = sum(child.cpu_times()[:2])
    stall = Stall()
    y, out["umap_wall"], _ = timed(lambda: projection.project(x, "umap", 0))
    out["stall_umap"] = stall.end()
    out["umap_cpu"] = sum(child.cpu_times()[:2]) - out["warm_up_cpu"]
    out["shape"] = list(y.shape)
    print(json.dumps(out))


def run_child(path: str, warm: bool) -> dict:
    args = [sys.executable, __file__, "--child", path] + (["--warm"] if warm else [])
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def trained_config(n_dev: int):
    from ffnlp_core.config import RunConfig

    cfg = RunConfig()
    cfg.data.source, cfg.data.dev_fraction = "builtin:interaction", 0.2
    cfg.model.hidden_sizes, cfg.model.activation = [100, 100], "relu"
    cfg.train.device, cfg.train.batch_size, cfg.train.snapshot_rows = "cpu", 64, n_dev
    return cfg


def trained_run(n_dev: int):
    """A one-epoch relu [100, 100] run on 5 x n_dev interaction comments; its snapshots and data set."""
    from ffnlp_core.data.dataset import build_dataset
    from ffnlp_core.data.labels import to_labeled
    from ffnlp_core.data.reading import read_table
    from ffnlp_core.data.samples import sample_csv_bytes
    from ffnlp_core.events import HiddenSnapshot
    from ffnlp_core.train.loop import train

    cfg = trained_config(n_dev)
    table = read_table(sample_csv_bytes("interaction", n_rows=5 * n_dev), name="interaction")
    ds = build_dataset(to_labeled(table, "text", "label"), cfg.data)
    snaps = [e for e in train(cfg, ds) if isinstance(e, HiddenSnapshot)]
    return ds, snaps


def click(ds, snaps, run_id: str) -> dict:
    """The page's work from the click to three projections serialized (then the separation scores)."""
    import plotly.io as pio

    from ffnlp_core.inspect import projection as pj
    from ffnlp_core.plots import representations as rplots

    t0 = time.perf_counter()
    last = snaps[-1]
    rows = last.dev_rows
    texts = [ds.dev_text(int(i)) for i in rows]
    points = rplots.point_data(rows, texts, ds.y_dev[rows], last.probs, ds.class_names)
    raw = ds.x_dev[rows]
    sizes = 0
    for layer in (pj.INPUT, "h0", "h1"):
        coords, _ = pj.embedding(run_id, snaps, len(snaps) - 1, layer, "pca", raw=raw)
        sizes += len(pio.to_json(rplots.scatter_figure(coords, points, "gold", layer), validate=False))
    first = time.perf_counter() - t0
    table = pj.separation_table(run_id, snaps, ds.y_dev[rows], raw=raw)
    rplots.layers_figure(table, len(snaps) - 1, ["h0", "h1"], pj.chance(ds.y_dev[rows]))
    rplots.training_figure(table, ["h0", "h1"], pj.chance(ds.y_dev[rows]))
    return {
        "first": first,
        "total": time.perf_counter() - t0,
        "json_mb": sizes / 1e6,
        "scores": {k: float(table[k] if k == pj.INPUT else table[k][-1]) for k in (pj.INPUT, "h0", "h1")},
    }


def page_click(ds, cfg_rows: int) -> dict:
    """The real page under AppTest: a finished run on these data, then the Project click (script time:
    every element of the page built and serialized; the browser's drawing comes on top)."""
    os.environ.setdefault("FFNLP_RUNS_DIR", tempfile.mkdtemp(prefix="bench-projection-"))
    os.environ["FFNLP_WORKERS"] = "thread"
    from streamlit.testing.v1 import AppTest

    from pages import _common as ui

    at = AppTest.from_file(str(ROOT / "pages" / "representations.py"), default_timeout=300)
    at.run()
    sid = at.session_state["sid"]
    ws = ui.workspaces().get(sid)
    ws.dataset = ds
    job = ui.manager().submit(trained_config(cfg_rows), ds, owner=sid)
    ws.remember_run(job.run_id)
    job.wait(600)
    at.run()
    times = []
    for _ in range(2):  # the first click, then a click with every projection cached
        _, wall, _ = timed(lambda: at.button(key="repr_project").click().run())
        assert not at.exception, at.exception
        times.append(wall)
    ui.manager().shutdown()
    return {"first": times[0], "cached": times[1], "charts": len(at.get("plotly_chart"))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--skip-cold", action="store_true")
    ap.add_argument("--child")
    ap.add_argument("--warm", action="store_true")
    a = ap.parse_args()
    threadpool_limits(1)  # as in the app (JobManager): no BLAS thread pools
    if a.child:
        return umap_child(a.child, a.warm)
    import torch

    torch.set_num_threads(1)
    from ffnlp_core.inspect import projection as pj
    from ffnlp_core.inspect import umap_service

    (ds, snaps), train_s, _ = timed(lambda: trained_run(a.rows))
    last = snaps[-1]
    x = pj.layer_matrix(last, "h1")
    pj.project(x, "pca", 0)  # imports and first-call costs out of the baseline
    reps = [timed(lambda: pj.project(x, "pca", 0))[1:] for _ in range(5)]
    base_wall, base_cpu = np.median([r[0] for r in reps]), np.median([r[1] for r in reps])
    cold_click = click(ds, snaps, "bench-cold")
    umap_service.CACHE.data.clear()
    warm_click = click(ds, snaps, "bench-again")  # second run id: nothing cached, libraries imported
    app = page_click(ds, a.rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "h1.npy")
        np.save(path, x)
        cold = None if a.skip_cold else run_child(path, warm=False)
        warm = run_child(path, warm=True)

    rows = [
        ("PCA 5,000 x 100 (baseline)", base_wall, base_cpu),
        ("click -> 3 projections as JSON (first click in the process)", cold_click["first"], None),
        ("click -> 3 projections as JSON (libraries loaded)", warm_click["first"], None),
        ("click -> projections + separation of every snapshot", warm_click["total"], None),
        ("the page under AppTest: Project click, whole script", app["first"], None),
        ("the page under AppTest: Project click again (cached)", app["cached"], None),
    ]
    if cold:
        rows.append(("UMAP 5,000 x 100 cold (compiles)", cold["umap_wall"], cold["umap_cpu"]))
    rows += [
        ("warm_up_umap() in a fresh process", warm["warm_up_wall"], warm["warm_up_cpu"]),
        ("UMAP 5,000 x 100 after warm-up", warm["umap_wall"], warm["umap_cpu"]),
    ]
    print(f"{len(snaps)} snapshots of {len(last.dev_rows):,} dev rows; training took {train_s:.1f} s")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print(f"{'what':62s} {'wall s':>8s} {'cpu s':>8s} {'x PCA':>8s}")
    for name, wall, cpu in rows:
        cpu_s = f"{cpu:8.3f}" if cpu is not None else f"{'':8s}"
        print(f"{name:62s} {wall:8.3f} {cpu_s} {wall / base_wall:8.0f}")
    stalls = {k: v for k, v in {**(cold or {}), **warm}.items() if k.startswith("stall")}
    print("\nlongest stall of another thread (s):", {k: round(v, 3) for k, v in stalls.items()})
    print(
        "separation (11-NN accuracy) at the last snapshot:",
        {k: round(v, 3) for k, v in warm_click["scores"].items()},
    )
    print(f"figure JSON sent per click: {warm_click['json_mb']:.1f} MB\n")
    result = {
        "rows": int(len(last.dev_rows)),
        "pca_s": base_wall,
        "first_projection_s": warm_click["first"],
        "first_projection_first_click_s": cold_click["first"],
        "click_with_scores_s": warm_click["total"],
        "page_click_s": app["first"],
        "page_click_cached_s": app["cached"],
        "umap_cold_s": cold["umap_wall"] if cold else None,
        "umap_cold_cpu_s": cold["umap_cpu"] if cold else None,
        "warm_up_s": warm["warm_up_wall"],
        "umap_warm_s": warm["umap_wall"],
        "umap_warm_cpu_s": warm["umap_cpu"],
        "umap_warm_vs_pca": warm["umap_wall"] / base_wall,
        "umap_cold_vs_warm": cold["umap_wall"] / warm["umap_wall"] if cold else None,
        "stalls_s": stalls,
        "separation": warm_click["scores"],
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
