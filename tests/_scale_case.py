"""The case shared by the two-process test (``test_scale.py``) and its worker."""

import scdeepclust as sdc

#: Twenty members (the ``"auto"`` ensemble on these 1,500 spots before session 23; it now
#: trains 42, which would only lengthen the test).
CASE = dict(
    n_clusters=3,
    model={"n_members": 20},
    train={"epochs": 60},
    refine={"epochs": 30},
    device="cpu",
    verbose=False,
)


def make_data():
    """A small, clearly layered synthetic tissue (1,500 spots, 3 domains)."""
    return sdc.datasets.synthetic(
        n_obs=1500, n_vars=80, n_domains=3, random_state=2, marker_fold=5.0,
        boundary_width=0.2, noise=0.05,
    )  # fmt: skip
