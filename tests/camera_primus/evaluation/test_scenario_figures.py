"""Notebook 05's figures draw from hand-built tables (Agg backend; nothing is saved)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from mtlnb.camera_primus import figures  # noqa: E402
from mtlnb.camera_primus.evaluation import crossval, scenarios, tables  # noqa: E402


def cv_frame():
    rows = [{"pair": pair, "scheme": scheme, "scenario": s, "method": m, "ser": base + s}
            for pair, base in (("baseline", 20.0), ("gradspsa", 10.0)) for scheme in crossval.SCHEMES
            for s in scenarios.SCENARIOS for m in ("lattice_combination", "smith_waterman", "greedy_omr")]
    return pd.DataFrame(rows)


def test_heatmap_one_panel_per_pair():
    fig = figures.heatmap_figure(cv_frame(), "kfold")
    panels = [ax for ax in fig.axes if ax.get_title(loc="left")]
    assert [ax.get_title(loc="left") for ax in panels] == [f"{pair}: test SER, kfold scheme"
                                                           for pair in ("baseline", "gradspsa")]
    assert len(panels[0].get_yticklabels()) == 3
    plt.close(fig)
    with pytest.raises(ValueError, match="scheme"):
        figures.heatmap_figure(cv_frame(), "bootstrap")


def test_improvement_figure_bars_per_method_and_the_thesis_markers():
    improvement = tables.improvement_table(cv_frame())
    fig = figures.improvement_figure(improvement)
    ax = fig.axes[0]
    assert len(ax.patches) == 2 * len(scenarios.SCENARIOS)  # two of the thesis's rows are in the table
    assert any(line.get_label().startswith("thesis, Minimum Bayes Risk") for line in ax.lines)
    plt.close(fig)
