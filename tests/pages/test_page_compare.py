"""Page tests (AppTest) of Compare runs (/compare): two finished runs on the overlay charts and in the
'What differs' table, the link that shares this setup, and a garbage model upload refused."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = pytest.mark.usefixtures("app_env")


def finished_runs(ws, widths: list[int]) -> list[str]:
    """One finished run per hidden width, trained in ws as the Train page would, newest remembered."""
    from pages import _common as ui

    ids = []
    for width in widths:
        cfg = ws.config.__class__.from_dict(ws.config.to_dict())
        cfg.model.hidden_sizes, cfg.train.epochs, cfg.train.device = [width], 1, "cpu"
        job = ui.manager().submit(cfg, ws.dataset, owner=ws.sid)
        ws.remember_run(job.run_id)
        assert job.wait(120) and job.status == "finished", job.reason
        ids.append(job.run_id)
    return ids


def traces(chart) -> list[str]:
    return [t.get("name") for t in json.loads(chart.proto.spec)["data"]]


def test_compare_overlays_two_runs_and_lists_what_differs(open_page, workspace_of):
    from pages import _common as ui

    at = open_page("compare")
    assert "No finished runs yet" in at.info[0].value
    ws = workspace_of(at)
    a, b = finished_runs(ws, [8, 16])
    at.run()
    assert not at.exception, at.exception
    assert sorted(at.multiselect(key="compare_runs").value) == sorted([a, b])  # this session's runs
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # loss and accuracy
    for chart in charts:
        names = traces(chart)
        assert {f"{a} train", f"{a} dev", f"{b} train", f"{b} dev"} <= set(names)
    diff = next(d.value for d in at.dataframe if "setting" in d.value.columns)  # compare_diff
    rows = diff.set_index("setting")
    assert list(rows.index) == ["model.hidden_sizes"]  # the only setting the two runs differ in
    assert rows.loc["model.hidden_sizes", a] == "8" and rows.loc["model.hidden_sizes", b] == "16"
    assert "What differs" in " ".join(m.value for m in at.markdown)
    accuracy = {rid: ui.manager().open_run(rid).read(lambda h: h.summary["dev_accuracy"]) for rid in (a, b)}
    best = a if accuracy[a] >= accuracy[b] else b  # ties: the first listed
    (line,) = [s.value for s in at.success if s.value.startswith("Best by dev accuracy")]
    assert line.startswith(f"Best by dev accuracy: `{best}` ({accuracy[best]:.3f})") or (
        accuracy[a] == accuracy[b] and f"({accuracy[a]:.3f})" in line
    )


def test_compare_share_link_restores_this_setup(open_page, workspace_of):
    from ffnlp_core.session import urlstate

    at = open_page("compare")
    ws = workspace_of(at)
    ws.config.model.hidden_sizes, ws.config.train.lr = [12, 6], 0.02
    at.run()
    (link,) = [c.value for c in at.code if "cfg=" in c.value]
    parts = urlsplit(link)
    assert parts.path.rstrip("/").endswith("model")  # the link opens the Model page
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    cfg = urlstate.decode(query["cfg"])
    assert cfg.model.hidden_sizes == [12, 6] and cfg.train.lr == 0.02
    assert "classroom" not in query
    at.toggle(key="compare_share_classroom").set_value(True).run()
    (link,) = [c.value for c in at.code if "cfg=" in c.value]
    assert parse_qs(urlsplit(link).query)["classroom"] == ["1"]


def test_compare_refuses_a_garbage_model_upload(open_page, workspace_of):
    at = open_page("compare")
    ws = workspace_of(at)
    at.file_uploader(key="compare_upload").set_value(
        ("model.zip", b"not a zip at all", "application/zip")
    ).run()
    assert not at.exception, at.exception
    assert any("This file cannot be used as a model" in e.value for e in at.error)
    (message,) = [c.value for c in at.code if "cfg=" not in c.value]
    assert message == ws.extras["import_error"] and message  # the refusal's reason, as plain text
    assert not ws.run_id and not any(s.value.startswith("Loaded as run") for s in at.success)


def test_compare_lists_this_sessions_runs_and_the_servers_one_click_away(open_page, workspace_of):
    from pages import _common as ui

    other = open_page("compare")
    (theirs,) = finished_runs(workspace_of(other), [8])  # another student's run
    at = open_page("compare")
    (mine,) = finished_runs(workspace_of(at), [16])
    at.run()
    assert at.segmented_control(key="compare_scope").value == "mine"
    assert at.multiselect(key="compare_runs").options == [f"{mine} · dev acc {acc(ui, mine):.3f}"]
    at.segmented_control(key="compare_scope").set_value("server").run()
    assert not at.exception
    options = at.multiselect(key="compare_runs").options
    assert len(options) == 2 and any(o.startswith(theirs) for o in options)


def acc(ui, rid: str) -> float:
    return ui.manager().open_run(rid).read(lambda h: h.summary["dev_accuracy"])


def test_compare_lists_the_figures_to_cite_with_the_baselines(open_page, workspace_of):
    at = open_page("compare")
    a, b = finished_runs(workspace_of(at), [8, 16])
    at.run()
    figures = next(d.value for d in at.dataframe if "macro F1" in d.value.columns)
    assert sorted(figures["run"].tolist()[:2]) == sorted([a, b])
    assert figures["run"].tolist()[2:] == ["majority class", "logistic regression"]
    assert {"weighted F1", "F1 not toxic", "F1 toxic"} <= set(figures.columns)
