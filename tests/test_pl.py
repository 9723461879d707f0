"""Tests of the plotting functions."""

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex, to_rgba_array  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from scdeepclust import pl  # noqa: E402
from scdeepclust._utils import ScdeepclustInputError  # noqa: E402
from scdeepclust.datasets import synthetic  # noqa: E402
from scdeepclust.pl import domain_palette, matched_palette  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def adata():
    ad = synthetic(400, 30, 4, random_state=0)
    rng = np.random.default_rng(0)
    # a permuted copy of the truth with some noise and a surplus cluster
    perm = {f"domain_{i}": str(j) for i, j in enumerate([2, 0, 3, 1])}
    pred = ad.obs["truth"].map(perm).astype(str).to_numpy()
    flip = rng.random(ad.n_obs) < 0.1
    pred[flip] = "4"
    ad.obs["pred"] = pd.Categorical(pred)
    partial = ad.obs["truth"].astype(object).copy()
    partial.iloc[:50] = np.nan
    ad.obs["partial"] = partial
    ad.obs["libsize"] = np.asarray(ad.X.sum(axis=1)).ravel()
    return ad


def _check_png(fig, path):
    assert isinstance(fig, Figure)
    assert path.exists() and path.stat().st_size > 5_000
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    plt.close(fig)


def test_domain_palette_stable():
    pal = domain_palette(["b", "a", "c"])
    assert list(pal) == ["b", "a", "c"]
    assert pal["b"] == to_hex("tab:blue") and pal["a"] == to_hex("tab:orange")
    assert pal == domain_palette(["b", "a", "c"])
    big = domain_palette([f"c{i}" for i in range(25)])
    assert len(set(big.values())) == 25
    series = pd.Series(pd.Categorical(["x", "y"], categories=["y", "x", "z"]))
    assert list(domain_palette(series)) == ["y", "x", "z"]


def test_matched_palette_permutation():
    truth = np.repeat(["d0", "d1", "d2", "d3"], 25)
    relabel = {"d0": "c", "d1": "a", "d2": "d", "d3": "b"}
    pred = np.array([relabel[t] for t in truth])
    pal = domain_palette(["d0", "d1", "d2", "d3"])
    matched = matched_palette(truth, pred, pal)
    assert set(matched) == {"a", "b", "c", "d"}
    for t, p in relabel.items():
        assert matched[p] == pal[t]


def test_matched_palette_surplus_and_missing():
    truth = np.array(["d0"] * 20 + ["d1"] * 20 + [None] * 5, dtype=object)
    pred = np.array(["x"] * 15 + ["z"] * 5 + ["y"] * 20 + ["w"] * 5, dtype=object)
    pal = domain_palette(["d0", "d1"])
    matched = matched_palette(truth, pred, pal)
    assert matched["x"] == pal["d0"] and matched["y"] == pal["d1"]
    extras = {matched["z"], matched["w"]}
    assert len(extras) == 2 and not extras & set(pal.values())


def test_spatial_compare(adata, tmp_path):
    path = tmp_path / "spatial.png"
    fig = pl.spatial_compare(adata, ["truth", "pred", "partial", "libsize"], save=path)
    _check_png(fig, path)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0] == "truth"
    assert "ARI" in titles[1] and "NMI" in titles[1]
    assert "ARI 1.000" in titles[2]


def test_spatial_compare_colors_match(adata):
    adata.obs["perm"] = adata.obs["truth"].map(
        {f"domain_{i}": f"k{j}" for i, j in enumerate([3, 1, 0, 2])}
    )
    fig = pl.spatial_compare(adata, ["truth", "perm"], titles=["Truth", "Perm"])
    ref, other = fig.axes[0], fig.axes[1]
    assert ref.get_title() == "Truth" and other.get_title().startswith("Perm")
    assert ref.yaxis_inverted()
    ref_cols = ref.collections[0].get_facecolors()
    other_cols = other.collections[0].get_facecolors()
    np.testing.assert_allclose(ref_cols, other_cols)


def test_spatial_compare_errors(adata):
    with pytest.raises(KeyError, match="'nope'.*available columns"):
        pl.spatial_compare(adata, ["truth", "nope"])
    with pytest.raises(ScdeepclustInputError, match="spatial"):
        pl.spatial_compare(adata, ["truth"], spatial_key="xy")
    with pytest.raises(ScdeepclustInputError, match="titles"):
        pl.spatial_compare(adata, ["truth"], titles=["a", "b"])
    del adata.obsm["spatial"]
    with pytest.raises(ScdeepclustInputError, match=r"obsm\['spatial'\]"):
        pl.spatial_compare(adata, ["truth", "pred"])


def _score_table():
    rng = np.random.default_rng(0)
    rows = [
        {"sample": s, "method": m, "seed": r, "nmi": rng.random(), "ari": rng.random()}
        for s in ["151507", "151508", "151673"]
        for m in ["deep", "kmeans"]
        for r in range(3)
    ]
    return pd.DataFrame(rows)


def test_scores(tmp_path):
    table = _score_table()
    refs = table[table["seed"] == 0].assign(method=lambda d: d["method"] + "_published")
    path = tmp_path / "scores.png"
    fig = pl.scores(table, references=refs, save=path)
    _check_png(fig, path)
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["NMI", "ARI"]
    labels = axes[-1].get_legend_handles_labels()[1]
    assert "deep" in labels and "deep_published (reference)" in labels


def test_scores_single_seed_and_columns(tmp_path):
    table = _score_table().query("seed == 0").rename(columns={"sample": "slice"})
    path = tmp_path / "single.png"
    fig = pl.scores(table, metrics=["ari"], sample_col="slice", save=path)
    _check_png(fig, path)
    with pytest.raises(KeyError, match="'sample'.*available columns"):
        pl.scores(table)
    with pytest.raises(KeyError, match="'acc'"):
        pl.scores(table, metrics=["acc"], sample_col="slice")
    with pytest.raises(TypeError, match="DataFrame"):
        pl.scores(table.to_dict(), sample_col="slice")


def test_history(adata, tmp_path):
    adata.uns["deep_cluster"] = {
        "history": {
            "pretrain_loss": list(np.exp(-np.arange(40) / 8.0) + 0.1),
            "kl_loss": [0.3, 0.2, 0.15],
            "recon_loss": np.array([1.0, 0.9, 0.85]),
            "cluster_loss": [],
            "label_change": [0.2, 0.05, 0.01, 0.0005],
        },
        "params": {"tol": 0.001},
    }
    path = tmp_path / "history.png"
    fig = pl.history(adata, save=path)
    _check_png(fig, path)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["pretrain loss", "kl loss", "recon loss", "label change"]
    change_ax = fig.axes[3]
    assert any(line.get_linestyle() == "--" for line in change_ax.get_lines())


def test_history_errors(adata):
    with pytest.raises(KeyError, match="uns\\['deep_cluster'\\] not found"):
        pl.history(adata)
    adata.uns["deep_cluster"] = {"params": {}}
    with pytest.raises(KeyError, match="no 'history'"):
        pl.history(adata)
    adata.uns["deep_cluster"] = {"history": {"loss": []}}
    with pytest.raises(ScdeepclustInputError, match="no non-empty"):
        pl.history(adata)


def test_k_stability(adata, tmp_path):
    evidence = {"3": 0.71, "4": 0.83, "5": 0.64, "6": 0.66}
    adata.uns["deep_cluster"] = {"n_clusters": 4, "n_clusters_evidence": evidence}
    path = tmp_path / "k.png"
    fig = pl.k_stability(adata, save=path)
    _check_png(fig, path)
    ax = fig.axes[0]
    curve, chosen = ax.get_lines()[:2]
    assert list(curve.get_xdata()) == [3, 4, 5, 6]
    assert np.allclose(curve.get_ydata(), [0.71, 0.83, 0.64, 0.66])
    assert list(chosen.get_xdata()) == [4] and list(chosen.get_ydata()) == [0.83]
    assert "chosen k = 4" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_k_stability_errors(adata):
    with pytest.raises(KeyError, match="uns\\['deep_cluster'\\] not found"):
        pl.k_stability(adata)
    adata.uns["deep_cluster"] = {"n_clusters": 7, "n_clusters_source": "given"}
    with pytest.raises(ScdeepclustInputError, match="no stability per k.*'given'"):
        pl.k_stability(adata)
    adata.uns["deep_cluster"] = {"n_clusters": 3, "n_clusters_evidence": {"3": "high"}}
    with pytest.raises(ScdeepclustInputError, match="must map each k to a number"):
        pl.k_stability(adata)


# --------------------------------------------------------------------------- Scanpy conventions


def test_spatial_compare_orientation_matches_scanpy_spatial(adata):
    """y points down in our maps, in sc.pl.spatial's and in sdc.pl.spatial's."""
    import scanpy as sc

    ours = pl.spatial_compare(adata, ["truth"]).axes[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sc.pl.spatial is deprecated in favour of squidpy
        theirs = sc.pl.spatial(adata, color="truth", spot_size=1.0, show=False)[0]
    wrapped = pl.spatial(adata, color="truth", show=False)
    for ax in (ours, theirs, wrapped):
        assert ax.yaxis_inverted()
        bottom, top = ax.get_ylim()
        assert bottom > top
        assert not ax.xaxis_inverted()
    y = adata.obsm["spatial"][:, 1]
    for ax in (ours, wrapped):  # the data's extremes sit at the same edges as Scanpy's
        bottom, top = ax.get_ylim()
        assert top <= y.min() and bottom >= y.max()


def test_spatial_compare_writes_matched_palette_to_uns(adata):
    import scanpy as sc

    fig = pl.spatial_compare(adata, ["truth", "pred"])
    truth_cats = list(adata.obs["truth"].cat.categories)
    pred_cats = list(adata.obs["pred"].cat.categories)
    assert len(adata.uns["truth_colors"]) == len(truth_cats)
    assert len(adata.uns["pred_colors"]) == len(pred_cats)
    # the colours drawn are the stored ones, spot by spot
    for ax, key in zip(fig.axes[:2], ["truth", "pred"]):
        stored = dict(zip(adata.obs[key].cat.categories, adata.uns[f"{key}_colors"]))
        expected = to_rgba_array([stored[v] for v in adata.obs[key]])
        np.testing.assert_allclose(ax.collections[0].get_facecolors(), expected)
    # Scanpy reads them back unchanged
    before = list(adata.uns["pred_colors"])
    sc.pl.embedding(adata, basis="spatial", color="pred", show=False)
    assert list(adata.uns["pred_colors"]) == before
    # a rerun changes nothing and says nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pl.spatial_compare(adata, ["truth", "pred"])
    assert list(adata.uns["pred_colors"]) == before


def test_spatial_compare_keeps_users_reference_colors(adata):
    user = ["#000000", "#111111", "#222222", "#333333"]
    adata.uns["truth_colors"] = list(user)
    fig = pl.spatial_compare(adata, ["truth", "pred"])
    assert list(adata.uns["truth_colors"]) == user
    drawn = {to_hex(c) for c in fig.axes[0].collections[0].get_facecolors()}
    assert drawn == set(user)
    # invalid colours (wrong length) for the reference are replaced, with a warning
    adata.uns["truth_colors"] = ["#000000"]
    with pytest.warns(UserWarning, match=r"overwriting existing adata.uns\['truth_colors'\]"):
        pl.spatial_compare(adata, ["truth"])
    assert len(adata.uns["truth_colors"]) == 4


@pytest.fixture
def _figdir(tmp_path):
    import scanpy as sc

    old = sc.settings.figdir
    sc.settings.figdir = tmp_path / "figures"
    yield
    sc.settings.figdir = old


@pytest.mark.usefixtures("_figdir")
def test_save_follows_scanpy(adata, tmp_path):
    import scanpy as sc

    pl.spatial_compare(adata, ["truth", "pred"], save=True)
    assert (tmp_path / "figures" / f"spatial_compare.{sc.settings.file_format_figs}").exists()
    pl.spatial_compare(adata, ["truth"], save="_slice.pdf")
    assert (tmp_path / "figures" / "spatial_compare_slice.pdf").read_bytes()[:4] == b"%PDF"
    pl.scores(_score_table(), save="_bench.png")
    assert (tmp_path / "figures" / "scores_bench.png").exists()
    pl.spatial(adata, color="truth", show=False, save="_truth.png")
    assert (tmp_path / "figures" / "spatial_truth.png").exists()
    exact = tmp_path / "elsewhere" / "map.png"
    exact.parent.mkdir()
    pl.spatial_compare(adata, ["truth"], save=exact)
    assert exact.exists()
    with pytest.raises(TypeError, match="save"):
        pl.spatial_compare(adata, ["truth"], save=3)


def test_scores_draws_samples_without_joining_lines():
    table = _score_table()
    refs = table[table["seed"] == 0].assign(method=lambda d: d["method"] + "_published")
    fig = pl.scores(table, references=refs)
    lines = [line for ax in fig.axes for line in ax.get_lines()]
    markers = [line for line in lines if line.get_marker() not in (None, "", "None")]
    assert markers, "no marker series drawn"
    for line in markers:
        assert line.get_linestyle() in ("None", "none", ""), line.get_label()
