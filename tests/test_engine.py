"""The AnnData-free engine on plain arrays: inputs, SpatialDEC, options, run context, writer."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import anndata
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.metrics import adjusted_rand_score

import scdeepclust.nn as snn
from scdeepclust import engine, pp
from scdeepclust._uns import h5ad_writable
from scdeepclust._utils import ScdeepclustInputError
from scdeepclust.engine._dec import Clustering, consensus_of
from scdeepclust.tl._record import ResultKeys, write_result

TINY = {
    "model": engine.ModelOptions(n_latent=4, hidden=(16,)),
    "train": engine.TrainOptions(epochs=20),
    "refine": engine.RefineOptions(epochs=5),
    "device": "cpu",
}


@pytest.fixture(scope="module")
def blobs():
    """Three well separated groups on a grid: features (n x 10), spatial graph, truth."""
    rng = np.random.default_rng(0)
    side = 15
    xy = np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2).astype(float)
    truth = np.minimum((xy[:, 0] // 5).astype(int), 2)
    centers = rng.normal(scale=4.0, size=(3, 10))
    features = (centers[truth] + rng.normal(size=(len(truth), 10))).astype(np.float32)
    return features, pp.knn_graph(xy, 4), truth


def test_engine_never_imports_anndata():
    import ast

    for path in Path(engine.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] in ("anndata", "scanpy") for n in names), path.name
            assert not any(n.startswith(("tl", "scdeepclust.tl")) for n in names), path.name


def test_spatial_dec_fit_on_arrays(blobs):
    features, graph, truth = blobs
    est = engine.SpatialDEC(3, random_state=0, **TINY).fit(features, graph)
    assert adjusted_rand_score(truth, est.labels_) > 0.9
    assert est.proba_.shape == (len(truth), 3) and np.allclose(est.proba_.sum(1), 1, atol=1e-4)
    assert est.latent_.shape == (len(truth), 4)
    assert len(est.history_["pretrain_loss"]) > 0 and len(est.history_["kl_loss"]) > 0
    assert est.n_clusters_ == 3 and est.n_clusters_source_ == "given"
    assert est.collapse_events_ == [] and isinstance(est.converged_, bool)


@pytest.mark.parametrize("init", ["gmm", "kmeans"])
def test_mahalanobis_refinement_whitens_by_the_shared_covariance(blobs, init):
    features, graph, truth = blobs
    refine = engine.RefineOptions(epochs=5, metric="mahalanobis", init=init)
    est = engine.SpatialDEC(3, random_state=0, **{**TINY, "refine": refine}).fit(features, graph)
    assert adjusted_rand_score(truth, est.labels_) > 0.9
    labels, centroids, whiten = engine.initial_clusters(
        est.latent_, 3, init=init, random_state=0, metric="mahalanobis"
    )
    resid = est.latent_ - centroids[labels]
    white = resid @ whiten  # within-cluster scatter becomes (about) the identity
    np.testing.assert_allclose(np.cov(white.T, bias=True), np.eye(4), atol=0.15)
    assert engine.initial_clusters(est.latent_, 3, init=init, random_state=0)[2] is None
    with pytest.raises(ScdeepclustInputError, match="unknown metric 'cosine'"):
        engine.RefineOptions(metric="cosine")


def test_one_pretrained_model_serves_several_k_and_orders(blobs, monkeypatch):
    features, graph, _ = blobs
    calls = []
    real = snn.pretrain
    monkeypatch.setattr(snn, "pretrain", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    est = engine.SpatialDEC(random_state=1, **TINY).pretrain(features, graph)
    weights = {k: v.clone() for k, v in est.member_.trained.model.state_dict().items()}
    first = {k: est.cluster(k) for k in (5, 3, 4)}
    assert len(calls) == 1
    assert all(first[k].proba.shape[1] == k for k in first)
    # clustering leaves the pretrained member as it was, so the order does not matter
    for key, value in est.member_.trained.model.state_dict().items():
        assert torch.equal(value, weights[key]), key
    assert np.array_equal(est.cluster(3).labels, first[3].labels)
    # and a fresh fit with k=3 gives the same labels as the reused model
    fresh = engine.SpatialDEC(3, random_state=1, **TINY).fit(features, graph)
    assert np.array_equal(fresh.labels_, first[3].labels)


def test_choose_k_and_postprocess_are_pluggable(blobs):
    features, graph, _ = blobs
    seen = []

    def choose(estimator):
        seen.append(estimator.member_.latent.shape)
        return 4

    def smooth(result, inputs):
        result.proba = engine.smooth_proba(result.proba, inputs.graph, 1)
        result.labels = result.proba.argmax(axis=1)
        return result

    est = engine.SpatialDEC(choose_k=choose, postprocess=smooth, random_state=0, **TINY)
    est.fit(features, graph)
    assert seen == [(features.shape[0], 4)]
    assert est.n_clusters_ == 4 and est.proba_.shape[1] == 4
    assert np.array_equal(est.labels_, est.proba_.argmax(axis=1))
    with pytest.raises(ScdeepclustInputError, match="no choose_k"):
        engine.SpatialDEC(**TINY).fit(features, graph)


def test_fowlkes_mallows_equals_sklearns_bit_for_bit():
    from sklearn.metrics import fowlkes_mallows_score

    from scdeepclust.engine._choose_k import fowlkes_mallows

    rng = np.random.default_rng(0)
    for _ in range(200):
        n, ka, kb = rng.integers(2, 500), rng.integers(1, 12), rng.integers(1, 12)
        a, b = rng.integers(0, ka, n), rng.integers(0, kb, n)
        assert fowlkes_mallows(a, b) == fowlkes_mallows_score(a, b)
    same = np.repeat(np.arange(3), 5)
    assert fowlkes_mallows(same, np.array([2, 0, 1])[same]) == 1.0


def test_model_inputs_build_on_arrays():
    rng = np.random.default_rng(0)
    counts = sp.csr_matrix(rng.poisson(2.0, size=(120, 40)).astype(np.float32))
    coords = rng.uniform(size=(120, 2))
    opts = engine.FeatureOptions(n_top_genes=30, n_pcs=10, n_comps=6)
    inputs = engine.ModelInputs.build(counts, pp.knn_graph(coords, 5), options=opts)
    assert inputs.features.shape == (120, 6) and inputs.features.dtype == np.float32
    assert np.isclose(inputs.features[:, 0].std(), 1.0, atol=1e-4)
    assert inputs.counts is counts and inputs.graph.shape == (120, 120)
    plain = engine.ModelInputs.build(counts, options=dataclasses.replace(opts, spatial=False))
    assert plain.graph is None and plain.features.shape == (120, 6)
    with pytest.raises(ValueError, match="need a graph"):
        engine.ModelInputs.build(counts, options=opts)


def test_options_are_validated_and_merged():
    with pytest.raises(ScdeepclustInputError, match="unknown model 'gan'.*'ae', 'vae'"):
        engine.ModelOptions(kind="gan")
    with pytest.raises(ScdeepclustInputError, match="features option lam must be in"):
        engine.FeatureOptions(lam=1.5)
    with pytest.raises(ScdeepclustInputError, match="train option epochs must be an integer"):
        engine.TrainOptions(epochs=0)
    with pytest.raises(ScdeepclustInputError, match="train option input_noise must be"):
        engine.TrainOptions(input_noise=-0.1)
    with pytest.raises(ScdeepclustInputError, match="refine option alpha must be"):
        engine.RefineOptions(alpha=0)
    merged = engine.as_options({"n_latent": 8, "hidden": [32, 16]}, engine.ModelOptions())
    assert merged == engine.ModelOptions(n_latent=8, hidden=(32, 16))
    assert engine.as_options("zinb", engine.ModelOptions()).kind == "zinb"
    with pytest.raises(ScdeepclustInputError, match="unknown train option.*'epoch'"):
        engine.as_options({"epoch": 3}, engine.TrainOptions())
    with pytest.raises(dataclasses.FrozenInstanceError):
        engine.TrainOptions().epochs = 3  # type: ignore[misc]


def test_resolve_options_maps_flat_keywords_with_a_future_warning():
    with pytest.warns(FutureWarning, match="lam -> features="):
        opts = engine.resolve_options(
            "tl.x", {"lam": 0.5, "refine_epochs": 7}, features=None, refine={"tol": 0.1}
        )
    assert opts["features"].lam == 0.5 and opts["refine"] == engine.RefineOptions(epochs=7, tol=0.1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'gamma'"):
        engine.resolve_options("tl.x", {"gamma": 1.0}, features=None)
    with pytest.raises(ScdeepclustInputError, match="^tl.x: unknown init"):
        engine.resolve_options("tl.x", {}, refine={"init": "spectral"})


def test_run_context_restores_threads_and_rng_and_times():
    torch.set_num_threads(2)
    torch.manual_seed(5)
    state = torch.random.get_rng_state()
    with engine.run_context(3, "cpu", n_threads=1) as run:
        assert torch.get_num_threads() == 1
        from threadpoolctl import threadpool_info

        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
        a = torch.rand(3, generator=run.seed())
        torch.rand(10)
    assert torch.get_num_threads() == 2
    assert torch.equal(torch.random.get_rng_state(), state)
    assert run.device == torch.device("cpu") and run.seconds > 0
    with engine.run_context(3, "cpu") as again:
        assert torch.equal(torch.rand(3, generator=again.seed()), a)
    torch.set_num_threads(1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
def test_run_context_forks_the_cuda_rng():
    torch.cuda.manual_seed_all(5)
    state = torch.cuda.get_rng_state()
    with engine.run_context(3, "cuda") as run:
        run.seed()
        torch.rand(10, device="cuda")
    assert torch.equal(torch.cuda.get_rng_state(), state)


def test_transfer_ensemble_on_arrays(blobs):
    features, graph, truth = blobs
    model = engine.ClassifierOptions(hidden=(16,), n_models=2)
    train = engine.TrainOptions(epochs=30, batch_size=64)
    ens = engine.TransferEnsemble(model, train, smooth=1, device="cpu")
    ens.fit(features[::2], truth[::2], 3)
    proba, hidden = ens.predict(features, graph)
    assert proba.shape == (len(truth), 3) and hidden.shape == (len(truth), 32)
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert (proba.argmax(axis=1) == truth).mean() > 0.9
    assert len(ens.results_) == 2


def test_writer_keys_and_h5ad_writable_record(tmp_path):
    adata = anndata.AnnData(np.zeros((4, 2), dtype=np.float32))
    keys = ResultKeys.clustering("dc")
    assert [(a, k) for a, k, _ in keys.slots()] == [
        ("obs", "dc"),
        ("obsm", "X_dc"),
        ("obsm", "dc_proba"),
        ("uns", "dc"),
    ]
    assert ResultKeys.embedding("X_ae").uns == "ae"
    assert ResultKeys.transfer("t").confidence == "t_confidence"
    record = {
        "options": engine.RefineOptions(),
        "events": [{"stage": "refine", "reasons": ["a", "b"]}],
        "hidden": (64, 32),
        "mixed": [1, "a", None],
        "path": Path("x"),
        "scalar": np.float32(0.5),
        "empty": [],
    }
    added = write_result(
        adata, keys, record=record, func="t", labels=np.array([1, 1, 0, 2]), proba=np.eye(4)
    )
    assert "'dc', obs" in added and "'X_dc'" not in added  # no latent given: not written
    assert list(adata.obs["dc"]) == ["0", "0", "1", "2"]  # renumbered by size
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = anndata.read_h5ad(tmp_path / "a.h5ad").uns["dc"]
    assert back["events"]["0"]["stage"] == "refine" and list(back["hidden"]) == [64, 32]
    assert back["options"]["init"] == "gmm"
    assert h5ad_writable({1: (1, 2)}) == {"1": pytest.approx(np.array([1, 2]))}


def test_balance_components_scales_columns_by_a_power_of_their_sd():
    from scdeepclust.engine import balance_components

    rng = np.random.default_rng(0)
    features = (rng.standard_normal((500, 3)) * np.array([4.0, 1.0, 0.25])).astype(np.float32)
    features[:, 2] = 0.0  # a constant column is left alone
    half = balance_components(features, 0.5)
    assert np.allclose(half[:, :2].std(0), np.sqrt(features[:, :2].std(0)), rtol=1e-4)
    assert np.array_equal(half[:, 2], features[:, 2])
    assert np.allclose(balance_components(features, 1.0)[:, :2].std(0), 1.0, rtol=1e-4)
    assert balance_components(features, 0.0) is features


def test_autoencoders_train_on_half_whitened_features_by_default(small_adata):
    from scdeepclust.engine import FeatureOptions, ModelInputs
    from scdeepclust.pp import knn_graph

    graph = knn_graph(small_adata.obsm["spatial"], 6)
    inputs = ModelInputs.build(small_adata.X, graph, options=FeatureOptions())
    sd = inputs.features.std(0)
    assert np.allclose(inputs.training_features.std(0), np.sqrt(sd), rtol=1e-3)
    assert np.isclose(sd[0], 1.0, rtol=1e-3)  # the mixtures' features keep the PCA variances
    assert ModelInputs(inputs.features).training_features is inputs.features  # arrays: as given


def test_more_restarts_of_the_initial_mixture_keep_the_best_fit(blobs):
    features = blobs[0]
    few = engine.fit_mixture(features, 4, init="gmm", random_state=0, restarts=1)
    many = engine.fit_mixture(features, 4, init="gmm", random_state=0, restarts=20)
    assert many.n_init == 20 and many.lower_bound_ >= few.lower_bound_ - 1e-9
    kmeans = engine.fit_mixture(features, 4, init="kmeans", random_state=0, restarts=3)
    assert kmeans.n_init == 6  # KMeans restarts twice as often
    # "auto": a fixed budget of rows, 20 restarts on a Visium slice, 5 on large data
    assert engine.RefineOptions().init_restarts == "auto"
    sizes = (300, 5_000, 10_000, 1_000_000)
    assert [engine.mixture_restarts("auto", n) for n in sizes] == [20, 20, 10, 5]
    assert engine.mixture_restarts(3, 10) == 3
    auto = engine.fit_mixture(features, 4, init="gmm", random_state=0, restarts="auto")
    assert auto.n_init == 20
    with pytest.raises(ScdeepclustInputError, match="init_restarts must be 'auto' or an integer"):
        engine.RefineOptions(init_restarts=0)


def test_tied_mixture_matches_scikit_learn_with_a_faster_e_step():
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(6, 20))
    X = np.vstack([c + rng.normal(size=(400, 20)) @ rng.normal(size=(20, 20)) for c in centres])
    ours = engine.TiedGaussianMixture(6, random_state=3).fit(X)
    theirs = GaussianMixture(6, covariance_type="tied", reg_covar=1e-4, random_state=3).fit(X)
    assert ours.covariance_type == "tied" and ours.reg_covar == engine.REG_COVAR
    assert ours.n_iter_ == theirs.n_iter_
    assert np.array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-9)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-9)
    # the package's mixtures are this class, and its precision is the DEC whitening
    fitted = engine.fit_mixture(X, 6, init="gmm", random_state=0, restarts=2)
    assert isinstance(fitted, engine.TiedGaussianMixture)
    _, _, whiten = engine.initial_clusters(
        X, 6, init="gmm", random_state=0, metric="mahalanobis", restarts=2
    )
    np.testing.assert_allclose(whiten, fitted.precisions_cholesky_, rtol=1e-5)


def test_refine_alpha_sets_the_student_t_degrees_of_freedom(blobs, monkeypatch):
    features, graph, truth = blobs
    kernels = []

    class Recorded(snn.StudentTClustering):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            kernels.append(self)

    monkeypatch.setattr(snn, "StudentTClustering", Recorded)
    refine = engine.RefineOptions(epochs=5, alpha=0.5)
    est = engine.SpatialDEC(3, random_state=0, **{**TINY, "refine": refine}).fit(features, graph)
    assert kernels and all(k.alpha == 0.5 for k in kernels)
    assert adjusted_rand_score(truth, est.labels_) > 0.9


def test_input_noise_levels_cycle_over_the_ensemble_members(blobs):
    features, graph, _ = blobs
    model = engine.ModelOptions(n_latent=4, hidden=(16,), n_members=3)

    def member_latents(noise):
        train = engine.TrainOptions(epochs=5, input_noise=noise)
        est = engine.SpatialDEC(3, random_state=0, model=model, train=train, device="cpu")
        return [member.latent for member in est.pretrain(features, graph).members_]

    clean, noisy, mixed = member_latents(0.0), member_latents(0.5), member_latents([0.0, 0.5])
    # members 0 and 2 take the first level, member 1 the second
    np.testing.assert_array_equal(mixed[0], clean[0])
    np.testing.assert_array_equal(mixed[2], clean[2])
    np.testing.assert_array_equal(mixed[1], noisy[1])
    assert not np.array_equal(mixed[1], clean[1])
    assert engine.TrainOptions(input_noise=[0, 0.5]).input_noise == (0, 0.5)
    with pytest.raises(ScdeepclustInputError, match="input_noise must be a number >= 0 or a non"):
        engine.TrainOptions(input_noise=(0.5, -1))
    with pytest.raises(ScdeepclustInputError, match="input_noise must be a number >= 0 or a non"):
        engine.TrainOptions(input_noise=())


def test_consensus_share_leaves_the_disagreeing_members_out(blobs):
    features, graph, truth = blobs
    model = engine.ModelOptions(n_latent=4, hidden=(16,), n_members=4)
    refine = engine.RefineOptions(epochs=5, consensus_share=0.5)
    est = engine.SpatialDEC(3, random_state=0, model=model, train=engine.TrainOptions(epochs=20),
                            refine=refine, device="cpu").fit(features, graph)  # fmt: skip
    kept = est.history_["consensus_members"]
    assert len(kept) == 2 and est.history_["consensus_reference"] in kept
    assert adjusted_rand_score(truth, est.labels_) > 0.9
    with pytest.raises(ScdeepclustInputError, match="consensus_share must be in \\(0, 1\\]"):
        engine.RefineOptions(consensus_share=0)


def test_consensus_drop_merged_forms_it_from_the_members_that_kept_every_domain():
    truth = np.repeat(np.arange(3), 30)
    merged = np.where(truth == 2, 1, truth)  # two domains merged: cluster 2 empty

    def member(labels):
        proba = np.full((labels.size, 3), 0.05, dtype=np.float32)
        proba[np.arange(labels.size), labels] = 0.9
        return Clustering(3, labels, proba, np.zeros((labels.size, 2)), {}, True, [])

    renamed = np.array([2, 0, 1])[truth]
    results = [
        member(merged),
        member(merged.copy()),
        member(truth),
        member(renamed),
        member(merged),
    ]
    by_agreement = consensus_of(results, share=1.0)
    assert np.unique(by_agreement.labels).size == 2  # the merging majority wins
    kept_apart = consensus_of(results, share=1.0, drop_merged=True)
    assert kept_apart.history["consensus_members"] == [2, 3]
    assert adjusted_rand_score(truth, kept_apart.labels) == 1.0
    # the kept members agree exactly (a renaming); all five do not
    assert kept_apart.history["member_agreement"] == 1.0
    assert 0.3 < by_agreement.history["member_agreement"] < 0.9
    assert engine.RefineOptions(consensus_drop_merged=True).consensus_drop_merged
    with pytest.raises(ScdeepclustInputError, match="consensus_drop_merged must be True or False"):
        engine.RefineOptions(consensus_drop_merged="yes")


def test_consensus_reference_by_likelihood_is_the_member_the_latents_find_most_likely():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(3), 40)
    split = np.where(truth == 2, 1, truth)  # domains 1 and 2 merged ...
    split[(truth == 0) & (np.arange(120) % 2 == 0)] = 2  # ... and domain 0 split in two
    latent = np.concatenate([rng.normal(size=(40, 2)) + 5.0 * c for c in range(3)])

    def member(labels):
        proba = np.full((labels.size, 3), 0.05, dtype=np.float32)
        proba[np.arange(labels.size), labels] = 0.9
        return Clustering(3, labels, proba, latent, {}, True, [])

    results = [member(split), member(split.copy()), member(truth)]
    by_agreement = consensus_of(results)
    assert by_agreement.history["consensus_reference"] == 0  # two heads outvote one
    assert by_agreement.history["consensus_reference_rule"] == "agreement"
    by_likelihood = consensus_of(results, reference="likelihood", latents=[latent, 2 * latent])
    assert by_likelihood.history["consensus_reference"] == 2  # the latents' partition
    assert by_likelihood.history["consensus_reference_rule"] == "likelihood"
    expected = engine.aligned_mean([r.proba for r in results], reference=2)
    assert np.array_equal(by_likelihood.proba, expected)
    # without latents there is nothing to judge by: the agreement rule
    assert consensus_of(results, reference="likelihood").history["consensus_reference"] == 0
    with pytest.raises(ScdeepclustInputError, match="unknown consensus_reference 'votes'"):
        engine.RefineOptions(consensus_reference="votes")


def test_spatial_dec_records_the_likelihood_reference(blobs):
    features, graph, truth = blobs
    refine = engine.RefineOptions(epochs=5, consensus_reference="likelihood")
    model = engine.ModelOptions(n_latent=4, hidden=(16,), n_members=3)
    est = engine.SpatialDEC(3, random_state=0, **{**TINY, "model": model, "refine": refine})
    est.fit(features, graph)
    assert est.history_["consensus_reference_rule"] == "likelihood"
    assert est.history_["consensus_reference"] in est.history_["consensus_members"]
    assert adjusted_rand_score(truth, est.labels_) > 0.9


def test_mean_agreement_averages_the_distinct_pairs():
    a, b = np.repeat([0, 1], 10), np.tile([0, 1], 10)
    matrix = engine.agreement_matrix([a, a.copy(), b])
    expected = np.mean([1.0, adjusted_rand_score(a, b), adjusted_rand_score(a, b)])
    assert engine.mean_agreement(matrix) == pytest.approx(expected)
    assert engine.mean_agreement(engine.agreement_matrix([a])) == 1.0


@pytest.mark.parametrize(
    ("group", "name"),
    [
        ("FeatureOptions", "spatial"),
        ("RefineOptions", "smooth_assignments"),
        ("RefineOptions", "anneal"),
    ],
)
def test_switch_options_must_be_booleans(group, name):
    options = getattr(engine, group)
    assert getattr(options(**{name: np.bool_(False)}), name) == np.bool_(False)
    for value in ("no", 0, 1.0, None):
        with pytest.raises(ScdeepclustInputError, match=f"{name} must be True or False"):
            options(**{name: value})
