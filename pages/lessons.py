"""Lessons (/lessons): the lecture's lessons, each one click away on the built-in data, measured not described:
Lightning vs our loop, the zero_grad bug, why hidden layers need a nonlinearity, what a GPU buys, the code of
the current configuration, and what to do when one machine is not enough."""

import pandas as pd
import streamlit as st

from ffnlp_core.data import samples
from ffnlp_core.inspect import codegen, gpu_lesson, lessons
from ffnlp_core.plots import curves as plots
from ffnlp_core.plots import lessons as lesson_plots
from pages import _common as ui
from pages import _lesson_runs as lr

ws = ui.workspace()
st.title("Lessons")
st.caption("Each lesson trains on the built-in interaction comments and shows what it measured.")
tabs = st.tabs(
    ["1 · Lightning", "2 · zero_grad", "3 · Interactions", "4 · GPU", "5 · Code", "6 · Many machines"]
)

# --- 1. Lightning vs manual ---------------------------------------------------------------------------
with tabs[0]:
    st.subheader("PyTorch Lightning vs our own loop")
    st.caption("The same network, seed and batches, trained by our loop and by Lightning's Trainer.")
    lr.run_button(ws, "engines", "Train with both engines", lessons.engine_configs())

    def draw_engines(found):
        v = lr.views(found)
        result = lessons.engine_comparison(v["manual"]["summary"], v["lightning"]["summary"])
        st.success(result["text"], icon=":material/balance:")
        for col, name in zip(st.columns(2), ("manual", "lightning"), strict=True):
            ui.chart(
                col,
                plots.accuracy_figure(v[name]["curves"], v[name]["evals"], title=f"{name}: accuracy"),
                key=f"lessons_engines_{name}",
            )
        st.dataframe(pd.DataFrame(result["rows"]), hide_index=True, key="lessons_engines_table")

    lr.live(ws, "engines", draw_engines)
    if st.toggle("Show Lightning's ModelSummary of this network", key="lessons_engines_summary"):
        st.code(lr.model_summary(), language="text")

# --- 2. the zero_grad bug -------------------------------------------------------------------------------
with tabs[1]:
    st.subheader("Forget optimizer.zero_grad() and gradients pile up")
    st.caption(
        "PyTorch adds each backward() to the gradients already there; zero_grad() clears them. One click "
        "trains both loops on the same data and seed and overlays them."
    )
    lr.run_button(
        ws, "zero_grad", "Train correct and buggy", lessons.zero_grad_configs(), icon=":material/bug_report:"
    )
    for col, (name, code) in zip(st.columns(2), lessons.ZERO_GRAD_LOOPS.items(), strict=True):
        col.markdown(f"**{name}**")
        col.code(code, language="python")

    def draw_zero_grad(found):
        v = lr.views(found)
        loss, acc, grad = lesson_plots.overlay_figures({name: v[name] for name in ("correct", "buggy")})
        with st.container(key="lessons_zero_grad_result"):
            st.info(
                lessons.zero_grad_analysis(v["correct"], v["buggy"])["text"], icon=":material/bug_report:"
            )
            a, b = st.columns(2)
            ui.chart(a, loss, key="lessons_zero_grad_loss")
            ui.chart(b, acc, key="lessons_zero_grad_accuracy")
            ui.chart(st, grad, key="lessons_zero_grad_norm")

    lr.live(ws, "zero_grad", draw_zero_grad)

# --- 3. hidden layers and nonlinearity ------------------------------------------------------------------
with tabs[2]:
    st.subheader("Why hidden layers need a nonlinearity")
    st.caption(
        '"jerk" is toxic, "chicken" is toxic, "jerk chicken" is a dish: an XOR of two words. Three networks, '
        "same data: no hidden layers, the lecture's 3 linear layers, and the same 3 layers with ReLU."
    )
    lr.run_button(ws, "interaction", "Train the three networks", lessons.interaction_configs())

    def draw_interaction(found):
        ids = tuple(r.run_id for r in found.values())
        cached = ws.extras.get("lessons_interaction_result")
        if not cached or cached[0] != ids:
            accs = {n: r.read(lambda h: h.summary["dev_accuracy"]) for n, r in found.items()}
            first = next(iter(found.values()))
            models = {n: r.model for n, r in found.items()}
            table = lessons.interaction_table(models, first.vectorizer, first.class_names)
            cached = (ids, accs, table, lessons.interaction_analysis(accs, table))
            ws.extras["lessons_interaction_result"] = cached
        _, accs, table, analysis = cached
        box = st.container(key="lessons_interaction_result")
        box.success(analysis["text"], icon=":material/insights:")
        with box, st.container(key="lessons_interaction_table"):
            st.caption("Mean predicted P(toxic) over 24 neutral comments with each word combination")
            number = {n: st.column_config.NumberColumn(format="%.2f") for n in accs}
            st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch", column_config=number)
        ui.chart(
            box,
            plots.bar_figure(list(accs), list(accs.values()), "Dev accuracy", "accuracy"),
            key="lessons_interaction_accuracy",
        )

    lr.live(ws, "interaction", draw_interaction)

# --- 4. what a GPU buys ---------------------------------------------------------------------------------
with tabs[3]:
    st.subheader("What a GPU buys")
    st.caption(
        "The lecture's loop t = normalize(t @ t) on a 1000×1000 tensor, then one training epoch, per device."
    )

    def run_gpu():
        with st.spinner("Timing the matmul loop…"):
            ws.extras["lessons_gpu_matmul"] = [
                gpu_lesson.matmul_benchmark(d, max_seconds=2.0) for d in ["cpu", *gpu_lesson.accelerators()]
            ]
        lr.submit(ws, "gpu", gpu_lesson.gpu_epoch_configs(), "gpu epoch")

    st.button("Measure", key="lessons_gpu_run", type="primary", disabled=lr.busy(ws, "gpu"), on_click=run_gpu)
    if not gpu_lesson.accelerators():
        ref = gpu_lesson.GPU_REFERENCE
        with st.container(key="lessons_gpu_reference"):
            st.markdown(f"**No GPU on this server.** Recorded, not live: {ref['device']}, {ref['date']}.")
            st.dataframe(pd.DataFrame(ref["rows"]), hide_index=True)
            st.caption(f"`{ref['command']}` on {ref['data']}. {ref['notes']}")
    st.caption(gpu_lesson.WHY_CPU_DIFFERS)

    def draw_gpu(found):
        matmul = ws.extras.get("lessons_gpu_matmul") or []
        if not matmul:
            return
        summaries = {name: r.read(lambda h: dict(h.summary or {})) for name, r in found.items()}
        result = gpu_lesson.gpu_analysis(matmul, summaries)
        st.info(result["text"], icon=":material/speed:")
        ui.chart(st, lesson_plots.gpu_figure(result), key="lessons_gpu_chart")
        st.caption(f"CPU threads used: {matmul[0]['cpu_threads']} (one per concurrent run on this server).")

    lr.live(ws, "gpu", draw_gpu)

# --- 5. show the code ---------------------------------------------------------------------------------------
with tabs[4]:
    st.subheader("The code of your current configuration")
    st.caption("Generated from the settings on the Data, Model and Train pages; paste it into a notebook.")
    n_rows = len(ws.dataset.labeled.texts) if ws.dataset is not None else None
    scripts = {
        "plain PyTorch loop": ("torch", "ffnlp_torch.py", codegen.torch_script(ws.config, n_rows=n_rows)),
        "LightningModule + Trainer": (
            "lightning",
            "ffnlp_lightning.py",
            codegen.lightning_script(ws.config, n_rows=n_rows),
        ),
    }
    for title, (kind, file_name, code) in scripts.items():
        st.markdown(f"**{title}**")
        st.download_button(
            f"Download {file_name}",
            code,
            file_name=file_name,
            mime="text/x-python",
            key=f"lessons_download_{kind}",
        )
        st.code(code, language="python", line_numbers=True)
    if ws.config.data.source.startswith("builtin:"):
        st.download_button(
            "Download the built-in data as comments.csv",
            samples.sample_csv_bytes(ws.config.data.source.split(":", 1)[1]),
            file_name="comments.csv",
            mime="text/csv",
            key="lessons_download_data",
        )

# --- 6. many machines ---------------------------------------------------------------------------------------
with tabs[5]:
    st.subheader("When one machine is not enough")
    st.markdown(
        "Lightning's Trainer takes the same model to several GPUs or machines: each process trains on its "
        "share of every batch and the gradients are averaged (DDP). From the command line:"
    )
    st.code(
        "python -m ffnlp_core train --csv comments.csv --engine lightning \\\n"
        "    --device cuda --devices 4 --strategy ddp --precision bf16-mixed",
        language="bash",
    )
    st.markdown(
        "Process 0 alone prints and saves the results. With N processes each epoch has 1/N of the steps; "
        "a larger effective batch often wants a larger learning rate. Mixed precision (`bf16-mixed`) halves "
        "memory traffic on recent GPUs. Bag-of-words models this small rarely need it: measure first (lesson 4)."
    )
