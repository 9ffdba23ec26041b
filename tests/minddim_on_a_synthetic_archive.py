"""``python -m minddim`` for tests/test_distributed.py, launched by torchrun on a synthetic CIFAR-10 archive:
the archive's MD5 (in ``MINDDIM_TEST_CIFAR10_MD5``) stands in for the real one. With ``MINDDIM_TEST_FAIL``
set to ``RANK:STEP``, the process of that rank raises in the objective of the STEP-th training step it runs, and
rank 0 writes its checkpoints slowly (a slow disk: one second inside the temporary file), so that a process that
did not wait for the checkpoint would fail while rank 0 is still writing it."""

import importlib
import os
import sys
import time

import torch

import minddim.data
from minddim._io import atomic_path
from minddim.__main__ import main
from minddim.distributed import entry_point, world

minddim.data.CIFAR10_MD5 = os.environ["MINDDIM_TEST_CIFAR10_MD5"]
if os.environ.get("MINDDIM_TEST_FAIL"):
    rank, step = map(int, os.environ["MINDDIM_TEST_FAIL"].split(":"))
    loop = importlib.import_module("minddim.train")      # the module (minddim.train is also the function)
    objective, calls = loop.objective, []

    def failing_objective(*args, **kwargs):
        calls.append(1)
        if world().rank == rank and len(calls) == step:
            raise RuntimeError(f"injected failure at step {step}")
        return objective(*args, **kwargs)

    def slow_save(obj, path):
        with atomic_path(path) as tmp:
            torch.save(obj, tmp)
            time.sleep(1.0)

    loop.objective = failing_objective
    loop._save_atomic = slow_save

if __name__ == "__main__":
    sys.exit(entry_point(main)())
