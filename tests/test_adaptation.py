"""Tests of the test-time adaptation of classifiers (nn.adaptation) and its use in
tl.label_transfer."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import scdeepclust as sdc
from scdeepclust._utils import ScdeepclustInputError
from scdeepclust.engine import ClassifierOptions, TransferEnsemble


def _trained_classifier(seed: int = 0):
    """An MLP trained on two Gaussian classes, and a query shifted by +2 in every feature."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(400, 4, generator=gen)
    y = (x[:, 0] > 0).long()
    config = sdc.nn.ClassifierConfig(epochs=20, lr=1e-2, verbose=False)
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # the initial weights too: not whatever ran before
        model = sdc.nn.MLPClassifier(4, 2, hidden=(8,))
        sdc.nn.train_classifier(model, x, y, config, gen)
    query = torch.randn(300, 4, generator=gen) + 2.0
    return model, query


def _batchnorm_input(model, inputs):
    """What the first batch-norm layer sees for ``inputs`` (evaluation mode)."""
    seen = []
    layer = sdc.nn.adaptation.batchnorm_layers(model)[0]
    handle = layer.register_forward_hook(lambda mod, args, out: seen.append(args[0].detach()))
    model.eval()
    with torch.no_grad():
        model(inputs)
    handle.remove()
    return seen[0]


def test_adapt_batchnorm_takes_the_query_statistics():
    model, query = _trained_classifier()
    before = copy.deepcopy(model)
    adapted = sdc.nn.adapt_batchnorm(copy.deepcopy(model), query, batch_size=1000)
    layer = sdc.nn.adaptation.batchnorm_layers(adapted)[0]
    seen = _batchnorm_input(adapted, query)
    assert torch.allclose(layer.running_mean, seen.mean(dim=0), atol=1e-5)
    assert torch.allclose(layer.running_var, seen.var(dim=0, unbiased=True), atol=1e-4)
    assert layer.momentum == sdc.nn.adaptation.batchnorm_layers(before)[0].momentum
    assert not adapted.training
    # the weights are untouched; only the statistics moved (the query is shifted)
    for (name, p), q in zip(adapted.named_parameters(), before.parameters()):
        assert torch.equal(p, q), name
    original = sdc.nn.adaptation.batchnorm_layers(before)[0]
    assert not torch.allclose(original.running_mean, layer.running_mean, atol=0.1)


def test_adapt_batchnorm_ignores_a_single_row():
    model, query = _trained_classifier()
    before = copy.deepcopy(model)
    sdc.nn.adapt_batchnorm(model, query[:1])
    layer, original = (sdc.nn.adaptation.batchnorm_layers(m)[0] for m in (model, before))
    assert torch.equal(layer.running_mean, original.running_mean)


def test_minimize_entropy_lowers_entropy_and_trains_only_batchnorm():
    model, query = _trained_classifier()
    sdc.nn.adapt_batchnorm(model, query)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        start = float(sdc.nn.prediction_entropy(model(query)))
    history = sdc.nn.minimize_entropy(
        model, query, steps=40, generator=torch.Generator().manual_seed(0), lr=1e-2
    )
    with torch.no_grad():
        end = float(sdc.nn.prediction_entropy(model(query)))
    assert len(history) == 20  # two mini-batches of 256 and 44 rows a pass
    assert end < 0.8 * start, (start, end)
    bn = {
        f"encoder.{i}" for i, m in enumerate(model.encoder) if isinstance(m, torch.nn.BatchNorm1d)
    }
    for name, p in model.named_parameters():
        assert p.requires_grad, name  # restored
        moved = not torch.equal(p, frozen[name])
        assert moved == (name.rsplit(".", 1)[0] in bn), name


def test_minimize_entropy_is_deterministic_and_steps_zero_does_nothing():
    model, query = _trained_classifier()
    runs = []
    for _ in range(2):
        m = copy.deepcopy(model)
        sdc.nn.minimize_entropy(m, query, steps=10, generator=torch.Generator().manual_seed(3))
        runs.append(m.state_dict())
    for key in runs[0]:
        assert torch.equal(runs[0][key], runs[1][key]), key
    untouched = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(0)
    assert sdc.nn.minimize_entropy(untouched, query, steps=0, generator=gen) == []
    for key, value in model.state_dict().items():
        assert torch.equal(untouched.state_dict()[key], value), key


def test_prediction_entropy_bounds():
    uniform = torch.zeros(5, 4)
    assert float(sdc.nn.prediction_entropy(uniform)) == pytest.approx(np.log(4), rel=1e-6)
    certain = torch.tensor([[50.0, -50.0, -50.0]])
    assert float(sdc.nn.prediction_entropy(certain)) < 1e-6


def test_ensemble_keeps_its_trained_members():
    gen = np.random.default_rng(0)
    X = gen.normal(size=(300, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    ensemble = TransferEnsemble(ClassifierOptions(n_models=2, adapt_steps=5), smooth=0)
    ensemble.fit(X, y, 2)
    states = [copy.deepcopy(m.state_dict()) for m in ensemble.members_]
    proba, _ = ensemble.predict(X + 1.5)
    assert proba.shape == (300, 2)
    assert [len(h) for h in ensemble.adaptation_] == [3, 3]  # 2 mini-batches a pass, 5 steps
    for member, state in zip(ensemble.members_, states):
        for key, value in member.state_dict().items():
            assert torch.equal(value, state[key]), key
    plain = TransferEnsemble(ClassifierOptions(n_models=2, adapt="none"), smooth=0).fit(X, y, 2)
    plain.predict(X + 1.5)
    assert plain.adaptation_ == [[], []]


def test_adaptation_options_are_checked():
    with pytest.raises(ScdeepclustInputError, match="unknown adapt 'tent'"):
        ClassifierOptions(adapt="tent")
    with pytest.raises(ScdeepclustInputError, match="adapt_steps must be an integer >= 0"):
        ClassifierOptions(adapt_steps=-1)


def test_label_transfer_records_the_adaptation(fast):
    full = sdc.datasets.synthetic(800, 100, 3, random_state=0)
    full.var_names = [f"Syn{i}a" for i in range(full.n_vars)]
    left = full.obsm["spatial"][:, 0] < np.median(full.obsm["spatial"][:, 0])
    ref, query = full[left].copy(), full[~left].copy()
    kwargs = {**fast.transfer, "model": {"n_models": 1, "adapt_steps": 30}}
    out = sdc.tl.label_transfer(ref, query, copy=True, random_state=0, **kwargs)
    entropy = out.uns["transferred"]["adaptation_entropy"]["model_0"]
    passes = int(np.ceil(30 / np.ceil(query.n_obs / 256)))
    assert len(entropy) == passes and entropy[-1] < entropy[0]
    assert out.uns["transferred"]["params"]["model"]["adapt"] == "entropy"
    none = {**fast.transfer, "model": {"n_models": 1, "adapt": "none"}}
    plain = sdc.tl.label_transfer(ref, query, copy=True, random_state=0, **none)
    assert len(plain.uns["transferred"]["adaptation_entropy"]["model_0"]) == 0
    assert not np.array_equal(plain.obsm["transferred_proba"], out.obsm["transferred_proba"])


def test_denoising_pretraining_can_recompute_clean_statistics():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 5, generator=gen) * torch.tensor([3.0, 1.0, 1.0, 0.5, 0.2])
    stats = {}
    for clean in (False, True):
        model = sdc.nn.Autoencoder(5, hidden=(16,), n_latent=2)
        config = sdc.nn.TrainConfig(epochs=3, input_noise=1.0, clean_batchnorm=clean, verbose=False)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            sdc.nn.pretrain(model, x, None, config, torch.Generator().manual_seed(1))
        layer = sdc.nn.adaptation.batchnorm_layers(model)[0]
        with torch.no_grad():
            seen = model.encoder[0](x)  # what the first batch-norm layer sees for clean rows
        stats[clean] = (layer.running_var.clone(), seen.var(dim=0, unbiased=True))
    recomputed, clean_var = stats[True]
    assert torch.allclose(recomputed, clean_var, rtol=1e-4, atol=1e-5)
    noisy, clean_var_before = stats[False]
    assert (noisy > clean_var_before).float().mean() > 0.9  # collected on noisy inputs
    with pytest.raises(ScdeepclustInputError, match="clean_batchnorm must be True or False"):
        sdc.engine.TrainOptions(clean_batchnorm=1)
