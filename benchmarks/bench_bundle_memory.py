"""The web server's memory while it imports an uploaded model file (Compare runs): crafted files against
a valid bundle's baseline.

Each file is imported in a fresh process that has torch, safetensors and scikit-learn imported already;
the figure is that process's peak RSS (resource.getrusage ru_maxrss) and how far it rose during the import.
The files: a valid bundle (the built-in data, 3 layers of 100), a bzip2 zip bomb (model.json unpacks to
--bomb-gb GiB of zeros from a few KB), a model.json vocabulary of 2,000,000 words, a vocabulary of 200,000
words under one layer of 4,096 (3.3 GB of weights asked for), 1,000,000 classes, F64 weights, NaN weights
and ngram_max = 10**6. Each child runs under an address-space limit (--limit-gb) so that a file the code
does not stop cannot take the shared machine down; hitting it is reported as such.

    python benchmarks/bench_bundle_memory.py                      # this checkout
    git archive HEAD | tar -x -C /tmp/before                      # an older version, for comparison
    python benchmarks/bench_bundle_memory.py --root /tmp/before

Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import bz2
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def import_project(root: Path) -> None:
    sys.path.insert(0, str(root))


def zip_parts(parts: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return buf.getvalue()


def bzip2_bomb(parts: dict[str, bytes], name: str, gib: float) -> bytes:
    """The bundle with `name` replaced by `gib` GiB of zeros, bzip2-packed, streamed (never in memory)."""
    buf = io.BytesIO()
    chunk = bytes(16 << 20)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for part, data in parts.items():
            if part != name:
                z.writestr(part, data)
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_BZIP2
        with z.open(info, "w", force_zip64=True) as f:
            for _ in range(int(gib * 1024 / 16)):
                f.write(chunk)
    assert bz2  # zipfile packs with the bz2 module
    return buf.getvalue()


def crafted(bomb_gib: float) -> dict[str, bytes]:
    """name -> file bytes: the valid bundle and the hostile variants of it."""
    import torch
    from safetensors.torch import load, save

    from ffnlp_core.config import RunConfig
    from ffnlp_core.data.dataset import build_dataset, load_source
    from ffnlp_core.runs.bundle import export_bundle
    from ffnlp_core.train.plan import build_model

    torch.manual_seed(0)
    cfg = RunConfig()
    ds = build_dataset(load_source(cfg.data), cfg.data)
    valid = export_bundle(cfg, build_model(cfg, ds), ds.vectorizer, ds.class_names)
    with zipfile.ZipFile(io.BytesIO(valid)) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    info, conf = json.loads(parts["model.json"]), json.loads(parts["config.json"])

    def model_json(**change) -> dict[str, bytes]:
        new = json.loads(parts["model.json"])
        new["vectorizer"].update(change.pop("vectorizer", {}))
        new.update(change)
        return parts | {"model.json": json.dumps(new).encode()}

    def tensors(edit) -> dict[str, bytes]:
        t = load(parts["model.safetensors"])
        edit(t)
        return parts | {"model.safetensors": save(t)}

    wide = dict(conf, model=dict(conf["model"], hidden_sizes=[4096]))
    nan = tensors(lambda t: t["layer_0.weight"].view(-1)[::7].fill_(float("nan")))
    files = {
        "valid bundle (baseline)": valid,
        f"bzip2 zip bomb ({bomb_gib:g} GiB model.json)": bzip2_bomb(parts, "model.json", bomb_gib),
        "vocabulary of 2,000,000 words": zip_parts(
            model_json(vectorizer={"vocabulary": [f"w{i}" for i in range(2_000_000)]})
        ),
        "200,000 words x hidden [4096] (3.3 GB)": zip_parts(
            model_json(vectorizer={"vocabulary": [f"w{i}" for i in range(200_000)]})
            | {"config.json": json.dumps(wide).encode()}
        ),
        "1,000,000 classes": zip_parts(model_json(classes=[f"c{i}" for i in range(1_000_000)])),
        "F64 weights": zip_parts(tensors(lambda t: t.update({k: v.double() for k, v in t.items()}))),
        "NaN weights": zip_parts(nan),
        "ngram_max = 10**6": zip_parts(model_json(vectorizer={"ngram_max": 10**6})),
    }
    assert info and conf
    return files


def child(path: str, limit_gb: float) -> dict:
    """Import one file; peak RSS, the rise during the import, and the outcome."""
    import safetensors.torch  # noqa: F401  (imported before measuring, as in the warm web server)
    import sklearn.feature_extraction.text  # noqa: F401
    import torch  # noqa: F401

    from ffnlp_core.runs.bundle import BundleError, import_bundle

    limit = int(limit_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    data = Path(path).read_bytes()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    try:
        import_bundle(data)
        outcome = "imported"
    except BundleError as exc:
        outcome = f"refused: {exc}"
    except MemoryError:
        outcome = f"MemoryError (hit the {limit_gb:g} GB limit)"
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {str(exc)[:120]}"
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"peak_mb": peak, "rise_mb": peak - before, "seconds": seconds, "outcome": outcome}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=HERE, help="project checkout to import ffnlp_core from")
    ap.add_argument("--bomb-gb", type=float, default=1.0, help="GiB the zip bomb unpacks to")
    ap.add_argument("--limit-gb", type=float, default=8.0, help="address-space limit of each child")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--make", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    import_project(args.root)
    if args.child:
        print(json.dumps(child(args.child[0], float(args.child[1]))))
        return
    if args.make:  # in a process of its own: on Linux a child's ru_maxrss starts at its parent's RSS
        names = []
        for i, (name, data) in enumerate(crafted(args.bomb_gb).items()):
            (args.make / f"{i}.zip").write_bytes(data)
            names.append(name)
        (args.make / "names.json").write_text(json.dumps(names))
        return
    rows = []
    me = [sys.executable, __file__, "--root", str(args.root)]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([*me, "--bomb-gb", str(args.bomb_gb), "--make", tmp], check=True)
        for i, name in enumerate(json.loads((Path(tmp) / "names.json").read_text())):
            path = Path(tmp) / f"{i}.zip"
            out = subprocess.run(
                [*me, "--child", str(path), str(args.limit_gb)], capture_output=True, text=True
            )
            last = out.stdout.strip().splitlines()[-1:] or ["{}"]
            result = json.loads(last[0]) if out.returncode == 0 else {"outcome": f"exit {out.returncode}"}
            rows.append({"file": name, "bytes": path.stat().st_size, **result})
    base = rows[0].get("peak_mb", 0.0)
    print(f"code from {args.root}")
    print(f"{'file':<42} {'size':>9} {'peak RSS':>9} {'rise':>8} {'vs valid':>9} {'s':>6}  outcome")
    for r in rows:
        peak = r.get("peak_mb", float("nan"))
        print(
            f"{r['file']:<42} {r['bytes'] / 1024:>7.0f}KB {peak:>7.0f}MB {r.get('rise_mb', float('nan')):>6.0f}MB "
            f"{peak - base:>+7.0f}MB {r.get('seconds', float('nan')):>6.2f}  {r['outcome'][:110]}"
        )
    print(json.dumps({"root": str(args.root), "rows": rows}))


if __name__ == "__main__":
    main()
