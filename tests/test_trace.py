"""The trace report's statistics and tables, on experiments built in memory.

The end-to-end path (a real queued sweep, `dvc exp show`, lineage from DVC's cache and
`dvc plots diff`) is in tests/test_pipeline.py.
"""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace

import pytest
from scipy import stats

from datamatters.pipeline import metrics_file
from datamatters.trace import columns
from datamatters.trace.ablation import ablation_arms, ablation_commands
from datamatters.trace.columns import Column, num
from datamatters.trace.compare import (
    compare,
    fixed_settings,
    group,
    pooled_noise,
    varied_axes,
)
from datamatters.trace.experiments import (
    EVALUATE,
    REAL_FLOOR,
    Experiment,
    TraceError,
    flatten,
    resolve_sets,
    select,
)
from datamatters.trace.lineage import used_by
from datamatters.trace.markdown import markdown_table
from datamatters.trace.markdown import render as render_report
from datamatters.trace.model import Estimate, Repeat, build_report, output_metrics
from datamatters.trace.overview import overview_rows, render
from datamatters.trace.plots import write_plots
from datamatters.trace.report import write_trace
from trace_fixtures import DEFAULTS, experiment, small_sweep


@pytest.fixture
def sweep() -> list[Experiment]:
    return small_sweep()


def test_axes_merge_params_that_always_change_together(sweep):
    axes = varied_axes(sweep, DEFAULTS)
    assert [a.keys for a in axes] == [
        ("ingest.corrupt.mixed",),
        ("labeling.audit.enabled", "quality.enabled"),
    ]
    assert axes[0].numeric and not axes[1].numeric
    assert axes[0].values == ((0.0,), (0.3,)) and axes[1].reference == (True, True)


def test_pooled_noise_is_the_within_configuration_spread(sweep):
    groups = group(sweep, varied_axes(sweep, DEFAULTS))
    noise = pooled_noise(groups, "fid_judge_1k")
    assert noise.df == 4 and noise.sd == pytest.approx(math.sqrt(2))


def test_comparisons_change_one_axis_from_its_reference(sweep):
    axes = varied_axes(sweep, DEFAULTS)
    groups = group(sweep, axes)
    noise = pooled_noise(groups, "fid_judge_1k")
    found = {(c.change, c.context(axes)): c for c in compare(groups, axes, "fid_judge_1k", noise)}
    assert len(found) == 4
    damage = found[
        (
            "ingest.corrupt.mixed: 0.0 -> 0.3",
            "labeling.audit.enabled / quality.enabled=False / False",
        )
    ]
    assert damage.delta == pytest.approx(49.0) and damage.verdict == "exceeds training noise"
    half = stats.t.ppf(1 - 0.025 / 4, 4) * math.sqrt(2) * math.sqrt(1 / 2 + 1 / 2)
    assert damage.half_width == pytest.approx(half)
    clean = found[("labeling.audit.enabled / quality.enabled: True / True -> False / False", "")]
    assert clean.delta == pytest.approx(1.0) and clean.verdict == "within training noise"


def test_without_seeds_verdicts_fall_back_to_sampling_intervals_and_say_so():
    exps = [experiment("one-a", 0.0, True, 0, 50.0), experiment("one-b", 0.3, True, 0, 60.0)]
    axes = varied_axes(exps, DEFAULTS)
    groups = group(exps, axes)
    noise = pooled_noise(groups, "fid_judge_1k")
    (comparison,) = compare(groups, axes, "fid_judge_1k", noise)
    assert noise.sd is None and comparison.basis == "sampling"
    assert comparison.half_width == pytest.approx(math.hypot(2, 2))
    assert comparison.verdict.startswith("exceeds sampling noise (training noise unmeasured")


def test_fixed_settings_are_the_shared_departures_from_the_defaults(sweep):
    shared = [experiment(e.name, 0.2, True, 0, 1.0, **{"eval.samples": 9}) for e in sweep[:2]]
    assert fixed_settings(shared, DEFAULTS | {"eval.samples": 1}) == {
        "eval.samples": 9,
        "ingest.corrupt.mixed": 0.2,
    }


def test_sets_are_selected_by_name_in_natural_order(sweep):
    others = [experiment("sweeping-1", 0, True, 0, 1.0), experiment("sweep-10", 0, True, 0, 1.0)]
    names = [e.name for e in select([*others, *sweep], "sweep")]
    assert names == [*(f"sweep-{i}" for i in range(1, 9)), "sweep-10"]


def test_an_experiments_own_name_selects_it_and_single_names_are_traced_together():
    clean = experiment("clean", 0.0, True, 0, 50.0)
    dirty = experiment("dirty", 0.3, True, 0, 70.0)
    auto = experiment("gaunt-thug", 0.0, True, 0, 51.0)  # DVC's own names hold a dash, no set
    assert select([clean, dirty, auto], "clean") == [clean]
    assert resolve_sets([clean, dirty, auto], ["clean", "dirty"]) == [
        ("clean+dirty", [clean, dirty])
    ]
    (traced,) = build_report([clean, dirty, auto], ["clean", "dirty"], DEFAULTS).sets
    assert (traced.name, [run.name for run in traced.runs]) == ("clean+dirty", ["clean", "dirty"])
    assert [axis.keys for axis in traced.axes] == [("ingest.corrupt.mixed",)]


def test_no_names_trace_every_set_and_the_loose_experiments(sweep):
    loose = [experiment("gaunt-thug", 0.0, True, 0, 51.0), experiment("clean", 0.3, True, 0, 1.0)]
    resolved = resolve_sets([*loose, *sweep], [])
    assert [(name, len(members)) for name, members in resolved] == [
        ("sweep", 8),
        ("gaunt-thug+clean", 2),
    ]
    with pytest.raises(TraceError, match=r"named 'swe'; here: sweep \(set\), clean, gaunt-thug"):
        resolve_sets([*loose, *sweep], ["swe"])


def test_used_by_finds_every_experiment_with_a_hash_prefix(sweep):
    found = used_by(sweep, "abababab")
    assert {exp.name for exp, _ in found} == {e.name for e in sweep}
    assert {path for _, path in found} == {"models/generator.pt"}
    with pytest.raises(TraceError, match="at least 6"):
        used_by(sweep, "ab")


def test_report_model_has_noise_verdicts_points_and_rows(sweep):
    report = build_report(sweep, ["sweep"], DEFAULTS)
    assert report.metrics == report.outputs == ["fid_judge_1k"]
    noise = report.noise["fid_judge_1k"]
    assert noise.df == 4 and noise.sd == pytest.approx(math.sqrt(2))
    (traced,) = report.sets
    verdicts = traced.verdicts["fid_judge_1k"]
    found = {(v.change, v.context(traced.axes)): v for v in verdicts}
    filters = "labeling.audit.enabled / quality.enabled"
    assert {key: v.verdict for key, v in found.items()} == {
        ("ingest.corrupt.mixed: 0.0 -> 0.3", ""): "exceeds training noise",
        ("ingest.corrupt.mixed: 0.0 -> 0.3", f"{filters}=False / False"): "exceeds training noise",
        (f"{filters}: True / True -> False / False", ""): "within training noise",
        (f"{filters}: True / True -> False / False", "ingest.corrupt.mixed=0.3"): (
            "exceeds training noise"
        ),
    }
    assert not any(v.same_training_set for v in verdicts), "every configuration has its own data"
    first = traced.points[0]
    assert (first.setting, first.seeds) == (((0.0,), (False, False)), 2)
    assert first.means["fid_judge_1k"] == pytest.approx(51.0)
    assert first.half_widths["fid_judge_1k"] == pytest.approx(stats.t.ppf(0.975, 4))
    assert first.per_seed["fid_judge_1k"] == [
        Estimate(50.0, 48.0, 52.0),
        Estimate(52.0, 50.0, 54.0),
    ]
    run = traced.runs[0]
    assert (run.name, run.setting, run.seed, run.measured["quality.kept_fraction"]) == (
        "sweep-1",
        ((0.0,), (True, True)),
        0,
        0.9,
    )
    assert run.outputs == {"fid_judge_1k": Estimate(49.0, 47.0, 51.0)}
    assert traced.checks == ["blur"] and run.flagged == {"blur": 3}


def test_unknown_sets_and_metrics_name_what_there_is(sweep):
    with pytest.raises(TraceError, match="no finished experiment or set is named 'other'"):
        build_report(sweep, ["other"], DEFAULTS, ["fid_judge_1k"])
    with pytest.raises(TraceError, match="pick one of: fid_judge_1k"):
        build_report(sweep, ["sweep"], DEFAULTS, ["fid_inception_500"])


def test_outputs_are_scores_and_the_lead_metrics_neighbours_follow_its_name(sweep):
    """Bounds, spreads, counts and per-class entries are read beside a score, not on their own."""
    scores = {
        "fid_judge_1k_class_mean": 55.0,
        "fid_judge_1k_class.3": 57.0,
        "kid_judge_1k_mean": 30.0,
        "kid_judge_1k_std": 2.0,
        "is_judge_1k_std": 0.2,
        "precision_judge_1k": 0.8,
        "recall_judge_1k": 0.7,
        "generated_images": 1000,
        "classes_not_in_reference": [],
    }
    runs = [
        replace(exp, metrics=exp.metrics | {EVALUATE: exp.metrics[EVALUATE] | scores})
        for exp in sweep
    ]
    assert output_metrics(runs) == [
        "fid_judge_1k",
        "fid_judge_1k_class_mean",
        "kid_judge_1k_mean",
        "precision_judge_1k",
        "recall_judge_1k",
    ]
    assert build_report(runs, ["sweep"], DEFAULTS).metrics == ["fid_judge_1k"]
    (traced,) = build_report(
        runs, ["sweep"], DEFAULTS, ["kid_judge_1k_mean", "recall_judge_1k"]
    ).sets
    assert traced.interval_metrics == ["kid_judge_1k_mean", "fid_judge_1k"]
    assert traced.point_metrics == ["kid_judge_1k_mean", "fid_judge_1k", "recall_judge_1k"]
    assert list(traced.verdicts) == ["kid_judge_1k_mean", "recall_judge_1k"]
    assert (traced.runs[0].precision, traced.runs[0].recall) == (0.8, 0.7)


def test_plots_are_drawn_for_each_verdict_metric_and_numeric_axis(sweep, tmp_path):
    figures = write_plots(build_report(sweep, ["sweep"], DEFAULTS), tmp_path)
    written = [*figures.deltas.values(), *figures.against_axis.values()]
    assert [figure.path for figure in written] == [
        tmp_path / "sweep_deltas_fid_judge_1k.png",
        tmp_path / "sweep_ingest.corrupt.mixed.png",
    ]
    assert all(figure.path.stat().st_size > 10_000 for figure in written)


def test_the_markdown_shows_each_run_and_links_the_plots(sweep, tmp_path):
    text = write_trace(sweep, ["sweep"], DEFAULTS, tmp_path).read_text()
    assert "(4 degrees of freedom): `fid_judge_1k` 1.414" in text
    assert "| sweep-1 | 0.0 | True / True | 0 | 90.0% |" in text
    assert "49.0 [47.0, 51.0]" in text, "each run's sampling interval is shown"
    for png in ("sweep_deltas_fid_judge_1k.png", "sweep_ingest.corrupt.mixed.png"):
        assert f"]({png})" in text
    assert "![" not in render_report(build_report(sweep, ["sweep"], DEFAULTS))
    assert "the floor no model is expected to beat: `fid_judge_1k` 3.3." in text


def test_the_real_floor_is_reported_only_when_every_experiment_shares_it(sweep):
    assert build_report(sweep, ["sweep"], DEFAULTS).floor == {"fid_judge_1k": 3.3}
    other = replace(sweep[0], metrics=sweep[0].metrics | {REAL_FLOOR: {"fid_judge_1k": 9.9}})
    assert build_report([other, *sweep[1:]], ["sweep"], DEFAULTS).floor == {}


def test_flatten_dots_nested_keys():
    assert flatten({"a": {"b": 1, "c": {"d": [2]}}, "e": None}) == {
        "a.b": 1,
        "a.c.d": [2],
        "e": None,
    }


def test_ablation_switches_off_each_filter_once_and_skips_undecodable():
    arms = ablation_arms(["ingest.corrupt.mixed=0.2", "quality.checks.blur.enabled=false"])
    assert arms["label_audit-off"] == "labeling.audit.enabled=false"
    assert arms["noise-off"] == "quality.checks.noise.enabled=false"
    assert "blur-off" not in arms and "undecodable-off" not in arms
    commands = ablation_commands("abl", ["ingest.corrupt.mixed=0.2"], [0], [0, 1])
    names = [command[command.index("-n") + 1] for command in commands]
    assert names[:2] == ["abl-all-on-s0", "abl-all-on-s1"] and len(names) == 2 + len(
        ablation_arms()
    )
    assert all(command[:4] == ["dvc", "exp", "run", "--queue"] for command in commands)
    assert ablation_arms(["filters=none"]) == {}


def test_a_run_repeated_in_another_set_counts_once_and_is_checked_for_determinism(sweep):
    original = sweep[0]
    repeat = replace(original, name="again-1", rev="f" * 40)
    changed = replace(sweep[1], name="again-2", rev="e" * 40, outs={})
    report = build_report([*sweep, repeat, changed], ["sweep", "again"], DEFAULTS)
    assert report.noise["fid_judge_1k"].df == 4, "the repeats add no replicate"
    assert report.repeats == [
        Repeat("sweep-1", "again-1", same_checkpoint=True),
        Repeat("sweep-2", "again-2", same_checkpoint=False),
    ]


def test_overview_shows_the_knobs_that_differ_and_headline_metrics_named_by_stage(sweep):
    header, rows = overview_rows(sweep)
    assert header == [
        "experiment",
        "ingest.corrupt.mixed",
        "labeling.audit.enabled",
        "quality.enabled",
        "train.seed",
        "quality.kept_fraction",
        "evaluate.fid_judge_1k",
        "real_floor.fid_judge_1k",
    ]
    assert rows[0] == ["sweep-1", "0", "True", "True", "0", "0.9", "49 [47, 51]", "3.3"]
    lines = render(header, rows).splitlines()
    assert lines[0].split() == [
        "ingest",
        "labeling",
        "quality",
        "train",
        "quality",
        "evaluate",
        "real_floor",
    ]
    assert lines[1].split()[:3] == ["experiment", "corrupt.mixed", "audit.enabled"]
    assert max(map(len, lines)) < 120
    every, _ = overview_rows(sweep, every_metric=True)
    assert {"quality.blur_flagged", "evaluate.fid_judge_1k_ci95_low"} <= set(every)


def test_trace_compares_with_the_committed_params_not_the_last_experiments(tmp_path, monkeypatch):
    """A plain `dvc exp run -S x=...` leaves its params in the workspace: they are no default."""
    import subprocess
    from pathlib import Path

    from datamatters.cli import _committed

    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text("ingest:\n  corrupt:\n    mixed: 0.0\n")
    for command in (["init", "-q"], ["add", "params.yaml"], ["commit", "-qm", "defaults"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *command], check=True)
    Path("params.yaml").write_text("ingest:\n  corrupt:\n    mixed: 0.2\n")
    assert "mixed: 0.0" in _committed(Path("params.yaml"))


def test_lineage_summary_lists_data_versions_and_removed_images_by_reason(sweep):
    import pandas as pd

    from datamatters.trace.lineage import data_versions, summary

    removed = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "issues": ["blur", "blur", "label_issue"],
            "injected": ["blur", None, None],
        }
    )
    lines = summary(sweep[0], removed)
    assert lines[0].startswith(f"experiment {sweep[0].name}: commit {sweep[0].rev[:7]}")
    assert len([line for line in lines if line.startswith("  data/") or "models/" in line]) == len(
        data_versions()
    )
    assert "3 images kept out of training, by reason:" in lines
    assert "  (1 of them carried injected corruption)" in lines
    assert "       2  blur" in lines and "       1  label_issue" in lines


def test_markdown_table_puts_the_rows_under_a_rule():
    table = markdown_table(["a", "b"], [["1", "2"], ["3", ""]])
    assert table == "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 |  |"


def test_one_catalogue_entry_adds_a_column_to_the_report_and_to_exps(sweep, monkeypatch):
    extra = Column("augment", ("originals",), "originals", num, headline=True)
    monkeypatch.setattr(columns, "COLUMNS", (*columns.COLUMNS, extra))
    augment = metrics_file("augment")
    runs = [replace(e, metrics=e.metrics | {augment: {"originals": 7}}) for e in sweep]
    text = render_report(build_report(runs, ["sweep"], DEFAULTS))
    assert "| quality P / R | training images | originals | training set md5 |" in text
    assert "| sweep-1 | 0.0 | True / True | 0 | 90.0% | - | - | - / - | - | 7 | `" in text
    header, rows = overview_rows(runs)
    assert header[-3:] == ["augment.originals", "evaluate.fid_judge_1k", "real_floor.fid_judge_1k"]
    assert rows[0][-3] == "7"


def test_the_plots_colour_what_the_verdict_says_even_when_seeds_agree_exactly():
    """Seeds that agree give zero training noise: any change then exceeds it."""
    exps = [
        experiment(f"zero-{2 * i + seed + 1}", mixed, True, seed, fid)
        for i, (mixed, fid) in enumerate(((0.0, 50.0), (0.3, 60.0)))
        for seed in (0, 1)
    ]
    (verdict,) = build_report(exps, ["zero"], DEFAULTS).sets[0].verdicts["fid_judge_1k"]
    assert verdict.half_width == 0.0 and verdict.exceeds
    assert verdict.verdict == "exceeds training noise"


def test_importing_the_trace_reads_no_dvc_yaml():
    """dvc.yaml is read when a path is needed: a module import cannot fail on a broken one."""
    code = (
        "import datamatters.pipeline as pipeline\n"
        "def unread(path): raise AssertionError(f'read {path} at import')\n"
        "pipeline._stages = unread\n"
        "import datamatters.trace.report, datamatters.trace.overview, datamatters.trace.lineage\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
