"""The command line's input formats (h5ad, Space Ranger folder, spca .h5), told by content,
and ``--layer``, ``--truth-key`` and ``--export-csv``."""

from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scdeepclust as sdc
from scdeepclust._formats import InputFormatError, input_format, read_spaceranger


def write_10x_h5(path: Path, counts: sp.spmatrix, barcodes, genes) -> Path:
    """A 10x v3 ``filtered_feature_bc_matrix.h5``: features x barcodes CSC under ``matrix``."""
    csc = sp.csr_matrix(counts).astype(np.int32)  # barcodes x genes CSR == genes x barcodes CSC
    with h5py.File(path, "w") as f:
        m = f.create_group("matrix")
        m["data"] = csc.data
        m["indices"] = csc.indices.astype(np.int64)
        m["indptr"] = csc.indptr.astype(np.int64)
        m["shape"] = np.array([counts.shape[1], counts.shape[0]], dtype=np.int32)
        m["barcodes"] = np.array([b.encode() for b in barcodes])
        feat = m.create_group("features")
        feat["id"] = np.array([f"ENSG{i:011d}".encode() for i in range(len(genes))])
        feat["name"] = np.array([g.encode() for g in genes])
        feat["feature_type"] = np.array([b"Gene Expression"] * len(genes))
        feat["genome"] = np.array([b"GRCh38"] * len(genes))
    return path


@pytest.fixture(scope="module")
def spaceranger(shared_data, tmp_path_factory):
    """A Space Ranger-shaped folder from 400 spots x 800 genes of DLPFC 151673: 350 in
    tissue, 50 in the matrix but outside the tissue, and 20 positions of absent barcodes."""
    adata = sdc.read_spca(shared_data / "dlpfc" / "sample_151673.h5")[:400, :800].copy()
    barcodes = [str(b).split("_")[-1] for b in adata.obs_names]
    folder = tmp_path_factory.mktemp("sr") / "151673_sub"
    (folder / "outs" / "spatial").mkdir(parents=True)
    write_10x_h5(
        folder / "outs" / "filtered_feature_bc_matrix.h5", adata.X, barcodes, adata.var_names
    )
    coords = adata.obsm["spatial"]
    positions = pd.DataFrame(
        {
            "barcode": barcodes + [f"ABSENT-{i}" for i in range(20)],
            "in_tissue": [1] * 350 + [0] * 50 + [0] * 20,
            "array_row": np.arange(420) % 78,
            "array_col": np.arange(420) % 128,
            # squidpy/scanpy: obsm["spatial"] = (pxl_col, pxl_row)
            "pxl_row_in_fullres": np.r_[coords[:, 1], np.zeros(20)].round().astype(int),
            "pxl_col_in_fullres": np.r_[coords[:, 0], np.zeros(20)].round().astype(int),
        }
    )
    positions.to_csv(folder / "outs" / "spatial" / "tissue_positions.csv", index=False)
    return folder, adata, barcodes


def test_space_ranger_folder(run, spaceranger, tmp_path):
    folder, source, barcodes = spaceranger
    assert input_format(folder) == "spaceranger" == input_format(folder / "outs")
    adata = read_spaceranger(folder)
    assert adata.n_obs == 350 and list(adata.obs_names) == barcodes[:350]  # in tissue only
    assert list(adata.var_names) == list(source.var_names)
    assert np.array_equal(adata.X.toarray(), source.X[:350].toarray())
    assert np.allclose(adata.obsm["spatial"], source.obsm["spatial"][:350].round())

    out = tmp_path / "out"
    code, stdout, err = run(
        "cluster", folder, "--out", out, "-m", "pca_kmeans", "-k", "5", "--export-csv", "-q"
    )
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == {
        "151673_sub.h5ad",
        "151673_sub.png",
        "151673_sub_domains.csv",
    }
    result = ad.read_h5ad(out / "151673_sub.h5ad")
    assert result.n_obs == 350 and result.obs["pca_kmeans"].nunique() == 5
    csv = pd.read_csv(out / "151673_sub_domains.csv", dtype=str)
    assert list(csv.columns) == ["barcode", "domain"]
    assert list(csv["barcode"]) == barcodes[:350]
    assert list(csv["domain"]) == list(result.obs["pca_kmeans"].astype(str))


def test_space_ranger_1x_positions_without_header(spaceranger, tmp_path):
    folder, _, barcodes = spaceranger
    copy = tmp_path / "v1"
    (copy / "spatial").mkdir(parents=True)
    (copy / "filtered_feature_bc_matrix.h5").write_bytes(
        (folder / "outs" / "filtered_feature_bc_matrix.h5").read_bytes()
    )
    table = pd.read_csv(folder / "outs" / "spatial" / "tissue_positions.csv")
    table.to_csv(copy / "spatial" / "tissue_positions_list.csv", index=False, header=False)
    adata = read_spaceranger(copy)
    assert list(adata.obs_names) == barcodes[:350]

    (copy / "spatial" / "tissue_positions_list.csv").unlink()
    with pytest.raises(InputFormatError, match="without spot positions"):
        read_spaceranger(copy)


@pytest.fixture(scope="module")
def scanpy_h5ad(shared_data, tmp_path_factory):
    """BaristaSeq as a Scanpy user keeps it: counts in layers['counts'], log-normalised X,
    labels under obs['domain'] (and no obs['truth'])."""
    adata = ad.read_h5ad(shared_data / "baristaseq" / "baristaseq_slice1.h5ad")
    adata.layers["counts"] = adata.X.copy()
    adata.X = sdc.pp.log_normalize(adata.X, 1e4)
    adata.obs["domain"] = adata.obs.pop("truth")
    path = tmp_path_factory.mktemp("h5ad") / "barista.h5"  # the extension says nothing
    adata.write_h5ad(path)
    return path, adata


def test_h5ad_with_layer_and_truth_key(run, scanpy_h5ad, tmp_path):
    path, source = scanpy_h5ad
    assert input_format(path) == "h5ad"
    out = tmp_path / "out"
    code, stdout, err = run(
        "cluster",
        path,
        "--out",
        out,
        "-m",
        "pca_kmeans",
        "--layer",
        "counts",
        "--truth-key",
        "domain",
        "--export-csv",
    )
    assert code == 0, err
    assert "raw counts" not in err  # the counts came from the layer: no warning
    assert "ARI" in stdout
    result = ad.read_h5ad(out / "barista.h5ad")
    k = source.obs["domain"].dropna().nunique()
    assert result.obs["pca_kmeans"].nunique() == k  # k from the truth column
    assert result.uns["scdeepclust_cli"]["truth_key"] == "domain"
    assert result.uns["pca_kmeans"]["params"]["layer"] == "counts"
    assert np.allclose(result.X.toarray(), source.X.toarray())  # X kept as the user had it
    assert (out / "barista_scores.json").exists() and (out / "barista_domains.csv").exists()

    # without --layer the log-normalised X is used, with one warning naming it
    code, _, err = run("cluster", path, "--out", tmp_path / "x", "-m", "kmeans", "-k", "3")
    assert code == 0, err
    assert err.count("adata.X looks log-normalised") == 1


def test_h5ad_shared_file_bench(run, shared_data, tmp_path):
    code, stdout, err = run(
        "bench",
        shared_data / "starmap_mpfc" / "starmap_mpfc_BZ5.h5ad",
        "--out",
        tmp_path,
        "--methods",
        "kmeans",
        "pca_kmeans",
        "-q",
    )
    assert code == 0, err
    table = pd.read_csv(tmp_path / "bench.csv")
    assert list(table["sample"].unique()) == ["starmap_mpfc_BZ5"]
    assert set(table["method"]) == {"kmeans", "pca_kmeans"}


def test_bad_options_and_inputs(run, scanpy_h5ad, tmp_path):
    path, _ = scanpy_h5ad
    code, _, err = run("cluster", path, "--out", tmp_path, "--layer", "raw", "-q")
    assert code == 2 and "--layer 'raw': no such layer (layers: 'counts')" in err
    code, _, err = run("cluster", path, "--out", tmp_path, "--truth-key", "region", "-q")
    assert code == 2 and "--truth-key 'region': no such obs column" in err and "'domain'" in err

    spca = tmp_path / "sample_s.h5ad"  # an spca file, whatever its extension says
    small = sdc.datasets.synthetic(300, 50, 3, random_state=0)
    with h5py.File(spca, "w") as f:
        f["X"] = small.X.toarray()
        f["pos"] = small.obsm["spatial"].T
    assert input_format(spca) == "spca"
    code, _, err = run("cluster", spca, "--out", tmp_path / "o", "--layer", "counts", "-q")
    assert code == 2 and "is an spca file, which has no layers" in err

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["counts"] = np.zeros(3)
    text = tmp_path / "table.h5ad"
    text.write_text("a,b\n1,2\n")
    for bad, message in [(other, "an HDF5 file with keys ['counts']"), (text, "not an HDF5")]:
        code, _, err = run("cluster", bad, "--out", tmp_path / "o", "-q")
        assert code == 2 and message in err, err


def test_h5ad_with_external_link_is_refused(run, tmp_path):
    small = sdc.datasets.synthetic(200, 30, 2, random_state=0)
    path = tmp_path / "linked.h5ad"
    small.write_h5ad(path)
    with h5py.File(tmp_path / "elsewhere.h5", "w") as f:
        f["secret"] = np.arange(3)
    with h5py.File(path, "a") as f:
        f["uns/stolen"] = h5py.ExternalLink("elsewhere.h5", "/secret")
    code, _, err = run("cluster", path, "--out", tmp_path / "o", "-m", "kmeans", "-q")
    assert code == 2
    assert "uns/stolen" in err and "external link" in err and "elsewhere.h5" in err
    assert not (tmp_path / "o" / "linked.h5ad").exists()


def test_export_csv_is_all_or_nothing(run, tmp_path):
    small = sdc.datasets.synthetic(200, 30, 2, random_state=0)
    path = tmp_path / "tiny.h5ad"
    small.write_h5ad(path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "tiny_domains.csv").write_text("mine\n")
    code, _, err = run("cluster", path, "--out", out, "-m", "kmeans", "--export-csv", "-q")
    assert code == 2 and "tiny_domains.csv already exists" in err
    assert sorted(p.name for p in out.iterdir()) == ["tiny_domains.csv"]  # nothing written
    assert (out / "tiny_domains.csv").read_text() == "mine\n"
