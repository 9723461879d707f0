"""Worker of ``test_scale.py``'s two-process test, launched by ``torchrun``.

Clusters the small synthetic tissue with ``tl.deep_cluster`` (the run context opens the
gloo process group) and, on rank 0, saves the labels to ``argv[1]``.
"""

import sys
import warnings

import numpy as np
import torch.distributed as dist
from _scale_case import CASE, make_data

import scdeepclust as sdc

warnings.filterwarnings("ignore")
adata = make_data()
sdc.tl.deep_cluster(adata, **CASE)
world = dist.get_world_size()
if dist.get_rank() == 0:
    np.save(sys.argv[1], np.asarray(adata.obs["deep_cluster"].cat.codes))
    print(f"world size {world}")
dist.destroy_process_group()
