"""How many autoencoders an ensemble trains (engine.ensemble_size, n_members="auto")."""

import numpy as np
import pytest

import scdeepclust as sdc
from scdeepclust import engine
from scdeepclust._utils import ScdeepclustInputError


def test_auto_spends_a_fixed_budget_of_rows_per_epoch():
    train = engine.TrainOptions()
    size = [engine.ensemble_size("auto", n, train) for n in (176, 1049, 1600, 3639, 4000, 4839)]
    # HER2ST: the most; STARmap, BaristaSeq: 64,000 // n; 151673; 4,000 spots; osmFISH
    assert size == [80, 61, 40, 17, 16, 13]
    # an epoch visits at most batch_size x 50 rows, so a million cells get the fewest
    assert engine.ensemble_size("auto", 1_000_000, train) == engine.AUTO_MEMBERS[0]
    # smaller batches cap an epoch's rows lower: more members on large data
    assert engine.ensemble_size("auto", 1_000_000, engine.TrainOptions(batch_size=32)) == 40
    assert engine.ensemble_size(3, 10, train) == 3  # a number is taken as given


@pytest.mark.parametrize("bad", ["many", 0, 2.5, True])
def test_a_bad_member_count_names_the_option(bad):
    with pytest.raises(ScdeepclustInputError, match="n_members must be 'auto' or an integer"):
        engine.ModelOptions(n_members=bad)
    assert engine.ModelOptions(n_members=np.int64(4)).n_members == 4


def test_deep_cluster_records_the_members_it_trained(fast, monkeypatch):
    # the rule's cap, lowered to keep the test fast: 300 spots ask for more than it
    monkeypatch.setattr(engine._ensemble_size, "AUTO_MEMBERS", (2, 6))
    adata = sdc.datasets.synthetic(n_obs=300, n_vars=60, n_domains=3, random_state=4)
    options = fast.merge(fast.dc, model={"n_members": "auto"}, train={"epochs": 5})
    sdc.tl.deep_cluster(adata, 3, n_jobs=1, **options)
    record = adata.uns["deep_cluster"]
    assert record["n_members"] == 6 and record["params"]["model"]["n_members"] == "auto"
    assert len(record["history"]["member_converged"]) == 6
