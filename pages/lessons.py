"""Lessons (/lessons): the lecture's lessons, each one click away on the built-in data, measured not described:
Lightning vs our loop, the zero_grad bug, why hidden layers need a nonlinearity, what a GPU buys, the code of
the current configuration, and what to do when one machine is not enough."""

import pandas as pd
import streamlit as st

from ffnlp_core.data import samples
from ffnlp_core.data.dataset import build_dataset, load_source
from ffnlp_core.inspect import codegen, lessons
from ffnlp_core.plots import curves as plots
from ffnlp_core.plots import lessons as lesson_plots
from pages import _common as ui
from pages import _run_panel as panel

ws = ui.workspace()
st.title("Lessons")
st.caption("Each lesson trains on the built-in interaction comments and shows what it measured.")
RUNS = ws.extras.setdefault("lessons_runs", {})  # lesson -> {name: run id}, survives a reload


@st.cache_resource(show_spinner=False)
def lesson_data():
    """The built-in interaction data set the lessons train on (shared, never modified)."""
    cfg = lessons.lesson_config().data
    return build_dataset(load_source(cfg), cfg)


@st.cache_data(show_spinner=False)
def model_summary() -> str:
    from ffnlp_core.train.lit_module import lightning_summary

    return lightning_summary(lessons.engine_configs()["lightning"], lesson_data())


def submit(lesson: str, configs: dict, what: str) -> None:
    """Queue one run per config (visible in the server queue as 'lesson: <what> (<name>)')."""
    RUNS[lesson] = panel.submit_group(ws, configs, lesson_data(), f"lesson: {what}")
    ws.extras.pop(f"lessons_{lesson}_result", None)


def runs(lesson: str) -> dict:
    found = {name: ui.manager().open_run(rid) for name, rid in RUNS.get(lesson, {}).items()}
    return {name: r for name, r in found.items() if r is not None}


def busy(lesson: str) -> bool:
    return any(not r.done for r in runs(lesson).values())


def live(lesson: str, draw) -> None:
    """Status lines while the lesson's runs train (polled), then draw(runs) once every run is done."""
    was_running = busy(lesson)

    @ui.live_fragment(ui.poll_seconds() if was_running else None)
    def panel():
        found = runs(lesson)
        if not found:
            return
        for name, r in found.items():
            r.touch()
            st.markdown(f"`{name}` · " + ui.status_line(r))
        if all(r.done for r in found.values()):
            failed = [r.reason for r in found.values() if r.status != "finished"]
            if failed:
                st.warning("Not every run finished: " + "; ".join(failed), icon=":material/warning:")
            else:
                draw(found)
            if was_running:
                st.rerun()  # all done: one full rerun stops the polling

    panel()


def views(found: dict) -> dict:
    return {name: r.read(lessons.view) for name, r in found.items()}


tabs = st.tabs(
    ["1 · Lightning", "2 · zero_grad", "3 · Interactions", "4 · GPU", "5 · Code", "6 · Many machines"]
)

# --- 1. Lightning vs manual ---------------------------------------------------------------------------
with tabs[0]:
    st.subheader("PyTorch Lightning vs our own loop")
    st.caption("The same network, seed and batches, trained by our loop and by Lightning's Trainer.")
    st.button(
        "Train with both engines",
        key="lessons_engines_run",
        type="primary",
        disabled=busy("engines"),
        on_click=submit,
        args=("engines", lessons.engine_configs(), "engines"),
    )

    def draw_engines(found):
        v = views(found)
        result = lessons.engine_comparison(v["manual"]["summary"], v["lightning"]["summary"])
        st.success(result["text"], icon=":material/balance:")
        cols = st.columns(2)
        for col, name in zip(cols, ("manual", "lightning"), strict=True):
            col.plotly_chart(
                plots.accuracy_figure(v[name]["curves"], v[name]["evals"], title=f"{name}: accuracy"),
                key=f"lessons_engines_{name}",
            )
        st.dataframe(pd.DataFrame(result["rows"]), hide_index=True, key="lessons_engines_table")

    live("engines", draw_engines)
    if st.toggle("Show Lightning's ModelSummary of this network", key="lessons_engines_summary"):
        st.code(model_summary(), language="text")  # imports Lightning in this process: only on request

# --- 2. the zero_grad bug -------------------------------------------------------------------------------
with tabs[1]:
    st.subheader("Forget optimizer.zero_grad() and gradients pile up")
    st.caption("PyTorch adds each backward() to the gradients already there; zero_grad() clears them.")

    def zero_grad_toggled():
        if st.session_state["lessons_zero_grad_toggle"] and not RUNS.get("zero_grad"):
            submit("zero_grad", lessons.zero_grad_configs(), "zero_grad")

    st.toggle("forget optimizer.zero_grad()", key="lessons_zero_grad_toggle", on_change=zero_grad_toggled)
    st.button(
        "Run correct and buggy again",
        key="lessons_zero_grad_run",
        disabled=busy("zero_grad"),
        on_click=submit,
        args=("zero_grad", lessons.zero_grad_configs(), "zero_grad"),
    )
    st.code(
        "for x, y in batches:\n    optimizer.zero_grad()   # <- the line the buggy run leaves out\n"
        "    loss = F.cross_entropy(model(x), y)\n    loss.backward()\n    optimizer.step()",
        language="python",
    )

    def draw_zero_grad(found):
        v = views(found)
        shown = v if st.session_state.get("lessons_zero_grad_toggle") else {"correct": v["correct"]}
        loss, acc, grad = lesson_plots.overlay_figures(shown)
        with st.container(key="lessons_zero_grad_result"):
            st.info(
                lessons.zero_grad_analysis(v["correct"], v["buggy"])["text"], icon=":material/bug_report:"
            )
            a, b = st.columns(2)
            a.plotly_chart(loss, key="lessons_zero_grad_loss")
            b.plotly_chart(acc, key="lessons_zero_grad_accuracy")
            st.plotly_chart(grad, key="lessons_zero_grad_norm")

    live("zero_grad", draw_zero_grad)

# --- 3. hidden layers and nonlinearity ------------------------------------------------------------------
with tabs[2]:
    st.subheader("Why hidden layers need a nonlinearity")
    st.caption(
        '"jerk" is toxic, "chicken" is toxic, "jerk chicken" is a dish: an XOR of two words. Three networks, '
        "same data: no hidden layers, the lecture's 3 linear layers, and the same 3 layers with ReLU."
    )
    st.button(
        "Train the three networks",
        key="lessons_interaction_run",
        type="primary",
        disabled=busy("interaction"),
        on_click=submit,
        args=("interaction", lessons.interaction_configs(), "interaction"),
    )

    def draw_interaction(found):
        ids = tuple(r.run_id for r in found.values())
        cached = ws.extras.get("lessons_interaction_result")
        if not cached or cached[0] != ids:
            accs = {n: r.read(lambda h: h.summary["dev_accuracy"]) for n, r in found.items()}
            first = next(iter(found.values()))
            table = lessons.interaction_table(
                {n: r.model for n, r in found.items()}, first.vectorizer, first.class_names
            )
            cached = (ids, accs, table, lessons.interaction_analysis(accs, table))
            ws.extras["lessons_interaction_result"] = cached
        _, accs, table, analysis = cached
        box = st.container(key="lessons_interaction_result")
        box.success(analysis["text"], icon=":material/insights:")
        with box, st.container(key="lessons_interaction_table"):
            st.caption("Mean predicted P(toxic) over 24 neutral comments with each word combination")
            st.dataframe(
                pd.DataFrame(table),
                hide_index=True,
                width="stretch",
                column_config={n: st.column_config.NumberColumn(format="%.2f") for n in accs},
            )
        box.plotly_chart(
            plots.bar_figure(list(accs), list(accs.values()), "Dev accuracy", "accuracy"),
            key="lessons_interaction_accuracy",
        )

    live("interaction", draw_interaction)

# --- 4. what a GPU buys ---------------------------------------------------------------------------------
with tabs[3]:
    st.subheader("What a GPU buys")
    st.caption(
        "The lecture's loop t = normalize(t @ t) on a 1000×1000 tensor, then one training epoch, per device."
    )

    def run_gpu():
        with st.spinner("Timing the matmul loop…"):
            ws.extras["lessons_gpu_matmul"] = [
                lessons.matmul_benchmark(d, max_seconds=2.0) for d in ["cpu", *lessons.accelerators()]
            ]
        submit("gpu", lessons.gpu_epoch_configs(), "gpu epoch")

    st.button("Measure", key="lessons_gpu_run", type="primary", disabled=busy("gpu"), on_click=run_gpu)
    if not lessons.accelerators():
        st.caption("No GPU on this server: the CPU figures only.")

    def draw_gpu(found):
        matmul = ws.extras.get("lessons_gpu_matmul") or []
        if not matmul:
            return
        summaries = {name: r.read(lambda h: dict(h.summary or {})) for name, r in found.items()}
        result = lessons.gpu_analysis(matmul, summaries)
        st.info(result["text"], icon=":material/speed:")
        st.plotly_chart(lesson_plots.gpu_figure(result), key="lessons_gpu_chart")
        st.caption(f"CPU threads used: {matmul[0]['cpu_threads']} (one per concurrent run on this server).")

    live("gpu", draw_gpu)

# --- 5. show the code ---------------------------------------------------------------------------------------
with tabs[4]:
    st.subheader("The code of your current configuration")
    st.caption("Generated from the settings on the Data, Model and Train pages; paste it into a notebook.")
    n_rows = len(ws.dataset.labeled.texts) if ws.dataset is not None else None
    scripts = {
        "plain PyTorch loop": (
            "lessons_download_torch",
            "ffnlp_torch.py",
            codegen.torch_script(ws.config, n_rows=n_rows),
        ),
        "LightningModule + Trainer": (
            "lessons_download_lightning",
            "ffnlp_lightning.py",
            codegen.lightning_script(ws.config, n_rows=n_rows),
        ),
    }
    for title, (key, file_name, code) in scripts.items():
        st.markdown(f"**{title}**")
        st.download_button(f"Download {file_name}", code, file_name=file_name, mime="text/x-python", key=key)
        st.code(code, language="python", line_numbers=True)
    if ws.config.data.source.startswith("builtin:"):
        name = ws.config.data.source.split(":", 1)[1]
        st.download_button(
            "Download the built-in data as comments.csv",
            samples.sample_csv_bytes(name),
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
