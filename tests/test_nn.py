import numpy as np
import pytest
import torch

from scdeepclust import nn as snn


def test_student_t_rows_sum_to_one_and_prefer_nearest_centroid():
    layer = snn.StudentTClustering(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    q = layer(torch.tensor([[0.1, 0.0], [9.0, 10.0]]))
    assert torch.allclose(q.sum(dim=1), torch.ones(2))
    assert q.argmax(dim=1).tolist() == [0, 1]


def test_student_t_whitened_measures_mahalanobis_distance():
    # two clusters elongated along x: a point far along x from centroid 0 but at its height
    # is nearer centroid 1 in Euclidean distance and nearer centroid 0 in Mahalanobis distance
    centroids = torch.tensor([[0.0, 0.0], [3.0, 2.0]])
    point = torch.tensor([[4.0, 0.0]])
    cov = torch.tensor([[25.0, 0.0], [0.0, 0.25]])
    whiten = torch.linalg.cholesky(torch.linalg.inv(cov))
    assert snn.StudentTClustering(centroids)(point).argmax().item() == 1
    layer = snn.StudentTClustering(centroids, whiten=whiten)
    assert layer(point).argmax().item() == 0
    d2 = torch.cdist(point @ whiten, layer.centroids).pow(2)
    expected = ((point - centroids) @ torch.linalg.inv(cov) * (point - centroids)).sum(1)
    assert torch.allclose(d2.ravel(), expected, atol=1e-5)
    identity = snn.StudentTClustering(centroids, whiten=torch.eye(2))
    assert torch.allclose(identity(point), snn.StudentTClustering(centroids)(point))


def test_target_distribution_sharpens():
    q = torch.tensor([[0.6, 0.4], [0.4, 0.6]])
    p = snn.target_distribution(q)
    assert p[0, 0] > q[0, 0] and torch.allclose(p.sum(dim=1), torch.ones(2))
    assert snn.kl_clustering_loss(q, q).item() == pytest.approx(0.0, abs=1e-6)


def test_unbalanced_target_only_sharpens():
    q = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.5, 0.5]])  # cluster 0 holds most mass
    plain = snn.target_distribution(q, balance=0.0)
    assert torch.allclose(plain, q.pow(2) / q.pow(2).sum(dim=1, keepdim=True))
    balanced, half = snn.target_distribution(q), snn.target_distribution(q, balance=0.5)
    # DEC's division by the cluster frequency pushes the tied spot towards the rarer cluster
    assert plain[2, 1].item() == pytest.approx(0.5)
    assert 0.5 < half[2, 1].item() < balanced[2, 1].item()


def test_nb_likelihood_matches_scipy():
    from scipy.stats import nbinom

    x, mu, theta = torch.tensor([0.0, 3.0, 10.0]), torch.tensor([2.0, 2.0, 2.0]), torch.tensor(1.5)
    ours = snn.nb_log_likelihood(x, mu, theta).numpy()
    p = theta.item() / (theta.item() + 2.0)
    assert np.allclose(ours, nbinom.logpmf([0, 3, 10], theta.item(), p), atol=1e-4)


@pytest.mark.parametrize("model", ["ae", "vae", "zinb", "nb"])
def test_models_train_and_loss_decreases(model):
    from scdeepclust.engine import build_model

    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    counts = torch.poisson(torch.rand(200, 30, generator=gen) * 5)
    inputs = torch.log1p(counts)
    module = build_model(model, 30, 30, (32,), 4)
    config = snn.TrainConfig(epochs=15, batch_size=64, verbose=False, patience=100)
    losses = snn.pretrain(module, inputs, counts, config, gen)
    assert len(losses) == 15 and losses[-1] < losses[0]
    assert snn.encode(module, inputs).shape == (200, 4)


def test_input_noise_denoises_deterministically():
    class Recorder(snn.Autoencoder):
        """Keeps the first batch's input and target."""

        def loss(self, x, target=None):
            self.seen = getattr(self, "seen", (x.detach().clone(), target))
            return super().loss(x, target)

    inputs = torch.randn(128, 6, generator=torch.Generator().manual_seed(1)) * torch.arange(1, 7)

    def first_batch(noise, seed=0):
        torch.manual_seed(0)
        module = Recorder(6, (8,), 2)
        config = snn.TrainConfig(epochs=2, batch_size=128, input_noise=noise, verbose=False)
        snn.pretrain(module, inputs, None, config, torch.Generator().manual_seed(seed))
        return module.seen

    seen, target = first_batch(0.0)
    assert target is None  # unchanged: the model reconstructs its own input
    noisy, clean = first_batch(0.5)
    assert torch.equal(clean, seen)  # the same batch, reconstructed clean
    spread = (noisy - clean).std(dim=0) / inputs.std(dim=0)
    assert torch.all((spread > 0.4) & (spread < 0.6))  # noise scaled to each column
    assert torch.equal(first_batch(0.5)[0], noisy)  # the same seed, the same noise
    assert not torch.equal(first_batch(0.5, seed=1)[0], noisy)
    config = snn.TrainConfig(epochs=1, input_noise=0.5, verbose=False)
    with pytest.raises(ValueError, match="input_noise needs dense inputs"):
        snn.pretrain(Recorder(6, (8,), 2), inputs.to_sparse(), None, config, torch.Generator())


def test_nonfinite_loss_stops_training():
    class Broken(snn.Autoencoder):
        def loss(self, x, target=None):
            out = super().loss(x, target)
            out["loss"] = out["loss"] * float("nan")
            return out

    config = snn.TrainConfig(epochs=3, verbose=False)
    with pytest.raises(snn.NonFiniteLossError, match="loss became nan"):
        snn.pretrain(Broken(5, (8,), 2), torch.rand(20, 5), None, config, torch.Generator())


def test_resolve_device():
    assert snn.resolve_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert snn.resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            snn.resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
def test_cuda_training_path():
    module = snn.Autoencoder(5, (8,), 2).cuda()
    inputs = snn.to_device_tensor(
        np.random.default_rng(0).random((64, 5), dtype=np.float32), torch.device("cuda")
    )
    config = snn.TrainConfig(epochs=2, verbose=False)
    snn.pretrain(module, inputs, None, config, torch.Generator())
    assert snn.encode(module, inputs).device.type == "cuda"


def _tiny_autoencoder_and_data():
    torch.manual_seed(0)
    return snn.Autoencoder(5, hidden=(8,), n_latent=2), torch.randn(64, 5)


@pytest.mark.parametrize(
    ("clip", "weight_decay"), [(None, 0.0), (1e6, 0.0), (0.05, 0.0), (0.05, 0.1)]
)
def test_flat_adam_takes_the_steps_of_adam_with_clipping(clip, weight_decay):
    flat_model, x = _tiny_autoencoder_and_data()
    plain_model, _ = _tiny_autoencoder_and_data()
    plain = torch.optim.Adam(
        plain_model.parameters(), lr=1e-2, weight_decay=weight_decay, foreach=True
    )
    flat = snn.FlatAdam(flat_model.parameters(), 1e-2, weight_decay, clip)
    with flat:
        first = next(flat_model.parameters())
        assert first.grad is not None and first.grad.data_ptr() != 0  # a view of the buffer
        for step in range(20):
            if step == 10:  # a new learning rate, as the annealed refinement sets it
                flat.param_groups[0]["lr"] = plain.param_groups[0]["lr"] = 3e-3
            flat.zero_grad()
            flat_model.loss(x)["loss"].backward()
            flat.step()
            plain.zero_grad()
            plain_model.loss(x)["loss"].backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(plain_model.parameters(), clip)
            plain.step()
    # bit for bit, also while clipping is active (Adam amplifies a last-bit difference
    # in a near-zero gradient to a full step, so anything else would show)
    for a, b in zip(flat_model.parameters(), plain_model.parameters(), strict=True):
        assert torch.equal(a, b)
    # closed: every parameter owns its storage again and has no gradient
    storages = {p.untyped_storage().data_ptr() for p in flat_model.parameters()}
    assert len(storages) == len(list(flat_model.parameters()))
    assert all(p.grad is None for p in flat_model.parameters())


def test_flat_adam_keeps_mixed_dtypes_apart():
    a = torch.nn.Parameter(torch.ones(3))
    b = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    opt = snn.FlatAdam([a, b], 0.1)
    (a.sum() + b.sum()).backward()
    opt.step()
    assert a.untyped_storage().data_ptr() != b.untyped_storage().data_ptr()
    assert torch.all(a < 1) and torch.all(b < 1)
    opt.close()


def test_training_builds_no_torch_optimizer():
    # the first torch.optim optimizer of a process imports torch._dynamo (about a second),
    # which every forked worker of deep_cluster paid in both phases before FlatAdam
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from scdeepclust import nn as snn\n"
        "model = snn.Autoencoder(5, hidden=(8,), n_latent=2)\n"
        "snn.pretrain(model, torch.randn(64, 5), None, snn.TrainConfig(epochs=2, verbose=False),"
        " torch.Generator().manual_seed(0))\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_mlp_chain_computes_what_sequential_computes():
    from scdeepclust.nn import Chain, mlp

    torch.manual_seed(0)
    chain = mlp([5, 8, 3], dropout=0.0)
    assert isinstance(chain, Chain) and isinstance(chain, torch.nn.Sequential)
    plain = torch.nn.Sequential(*chain)  # the same layers, called through Module.__call__
    x = torch.randn(16, 5, requires_grad=True)
    out_chain, out_plain = chain(x), plain(x)
    assert torch.equal(out_chain, out_plain)
    (grad_chain,) = torch.autograd.grad(out_chain.sum(), x)
    (grad_plain,) = torch.autograd.grad(out_plain.sum(), x)
    assert torch.equal(grad_chain, grad_plain)
    # hooks run, on the chain and on a layer inside it; state-dict keys are Sequential's
    seen = []
    chain.register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    chain[0].register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    assert torch.equal(chain(x), out_plain)
    assert seen == [torch.Size([16, 8]), torch.Size([16, 3])]
    assert list(chain.state_dict()) == list(plain.state_dict())


def test_take_rows_of_dense_and_sparse_tensors():
    from scdeepclust.nn.training import take_rows

    dense = torch.arange(12.0).reshape(4, 3)
    idx = torch.tensor([2, 0])
    assert torch.equal(take_rows(dense, idx), dense[idx])
    assert torch.equal(take_rows(dense.to_sparse(), idx), dense[idx])
    assert take_rows(None, idx) is None
