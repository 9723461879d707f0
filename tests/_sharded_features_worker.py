"""Worker of ``test_scale.py``'s sharded-features test, launched by ``torchrun``.

Opens the process group (gloo), computes the row-block features of ``_sharded_case`` and
saves them, with the blocks this rank read, to ``argv[1]/rank<rank>.npz``.
"""

import sys
import warnings
from pathlib import Path

import numpy as np
import torch.distributed as dist
from _sharded_case import FIT_OBS, features

import scdeepclust.pp._chunked as chunked
from scdeepclust.engine._distributed import init_distributed, world

warnings.filterwarnings("ignore")
assert init_distributed("gloo")
chunked.FIT_OBS = FIT_OBS
result = features()
rank, size = world()
np.savez(Path(sys.argv[1]) / f"rank{rank}.npz", world=size, **result)
dist.destroy_process_group()
