"""DP fine-tuning on several processes (``torchrun --nproc_per_node N -m fairpriv fit dp ...``).

One logical DP step over N processes is the one-process step, split by records:

* Sampling: every rank draws the *same* global Poisson mask over all n training sequences (the seeded CPU index
  generator, as one process draws it) and keeps the sequences ``i`` with ``i % N == rank``; the union of the
  ranks' batches is exactly the one-process Poisson batch, so the sample rate, the expected batch size and the
  accountant's epsilon are unchanged.
* Clipping: each rank clips its own sequences' gradients (per-sequence clipping needs nothing from the others).
* Noise: added once per logical step, by rank 0 only (as Opacus' ``DistributedDPOptimizer.add_noise``); the
  others pass their clipped sums on unchanged.
* Reduction: the noised (rank 0) and plain (others) sums, each divided by the global expected batch size, are
  summed over the ranks with one ``all_reduce`` per parameter: ``(sum_r S_r + noise) / E``, the one-process
  update. Unlike Opacus' ``DistributedDPOptimizer.reduce_gradients`` this also reduces the book-keeping
  parameters, which do not require grad while hooked.

The process group comes from torchrun's environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``):
NCCL with each rank on ``cuda:LOCAL_RANK`` when a CUDA device is asked for, gloo on CPU. Only rank 0 writes the
artifact; the others train alongside (their collectives pair with rank 0's) into a throw-away folder, wait at a
barrier and then read rank 0's artifact.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


_shared = False  # inside process_group(): this process's fit is one of several sharing the work


def is_distributed() -> bool:
    """Whether this process's fit is shared with others (inside :func:`process_group`, in a group of several).

    A process group alone is not enough: data-parallel evaluation (``accelerate launch lm_eval``) has one, and
    there each process fits on its own (one of them, under the cache folder's lock)."""
    return _shared and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank_device(device: str) -> str:
    """``cuda:LOCAL_RANK`` for a CUDA ``device`` under torchrun (one GPU per rank), else ``device`` itself."""
    if launched_by_torchrun() and torch.device(device).type == "cuda":
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return device


@contextlib.contextmanager
def process_group(device: str) -> Iterator[str]:
    """Share the fits in the block over the processes: under torchrun, join the process group (NCCL for CUDA,
    gloo on CPU) and leave it after; a group set up already (e.g. by a test) is used as it is. Yields the device
    this rank uses. Without either, one process fits alone."""
    global _shared
    device, own = rank_device(device), launched_by_torchrun() and not dist.is_initialized()
    if own:
        if device.startswith("cuda"):
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    _shared, before = True, _shared
    try:
        yield device
    finally:
        _shared = before
        if own:
            dist.destroy_process_group()


def rank0_writes(build: Callable[[], T], fit: Callable[[Path], Any], load: Callable[[], T]) -> T:
    """Rank 0 ``build``s the artifact (temp + rename); the other ranks ``fit`` alongside into a throw-away folder
    (the same training, collectives included), wait for rank 0 at a barrier, then ``load`` its artifact. A rank
    that fails exits without reaching the barrier, and torchrun stops the others."""
    if rank() == 0:
        artifact = build()
        barrier()
        return artifact
    with tempfile.TemporaryDirectory(prefix=f"fairpriv-rank{rank()}-") as tmp:
        fit(Path(tmp))
    barrier()
    return load()


# --------------------------------------------------------------------------------------------------------------
# Sampling and the optimiser
# --------------------------------------------------------------------------------------------------------------


def sharded_sampler(num_samples: int, sample_rate: float, generator: Any, rank: int = 0, world: int = 1) -> Any:
    """Opacus' Poisson sampler over all ``num_samples`` sequences (one global mask per logical batch, from the
    same seeded generator on every rank), keeping this rank's sequences ``i % world == rank``. With one process
    it is Opacus' sampler, batch for batch. (Opacus is imported here, not when fairpriv starts: it takes
    seconds.)"""
    sampler = _sharded_class()(num_samples=num_samples, sample_rate=sample_rate, generator=generator)
    sampler.rank, sampler.world = rank, world
    return sampler


@functools.cache
def _sharded_class() -> type:
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    class ShardedPoissonSampler(UniformWithReplacementSampler):  # an Opacus sampler for BatchMemoryManager
        rank, world = 0, 1

        def __iter__(self) -> Iterator[list[int]]:
            for indices in super().__iter__():
                yield [i for i in indices if i % self.world == self.rank]

    return ShardedPoissonSampler


def share_steps(optimizer: Any) -> Any:
    """Turn a DP optimiser (Opacus' or the book-keeping one) into one whose step adds noise on rank 0 only and
    sums the scaled gradients over the ranks; with one process it only counts the noise draws. The instance's
    class becomes a subclass of its own (its state and hooks are kept)."""
    optimizer.__class__ = _shared_class(type(optimizer))
    optimizer.noise_draws = 0
    return optimizer


@functools.cache
def _shared_class(cls: type) -> type:
    return type(f"Shared{cls.__name__}", (_SharedSteps, cls), {})


class _SharedSteps:
    """Mixed in before a ``DPOptimizer`` class: noise once per logical step, gradients summed over the ranks."""

    noise_draws: int

    def add_noise(self) -> None:
        if rank() == 0:
            super().add_noise()
            self.noise_draws += 1
        else:
            for p in self.params:
                p.grad = p.summed_grad.view_as(p)

    def step(self, closure: Callable[[], float] | None = None) -> Any:
        if closure is not None:
            with torch.enable_grad():
                closure()
        if not self.pre_step():
            return None
        sum_gradients(self.params)
        return self.original_optimizer.step()


def sum_gradients(params: list[torch.Tensor]) -> None:
    """All-reduce (sum) every parameter's ``grad`` over the ranks; nothing with one process."""
    if is_distributed():
        for p in params:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)


def broadcast_parameters(params: list[torch.Tensor]) -> None:
    """Every rank starts from rank 0's trainable weights (they are seeded alike; this makes sure)."""
    if is_distributed():
        with torch.no_grad():
            for p in params:
                dist.broadcast(p.data, src=0)


def total(count: int, device: Any = "cpu") -> int:
    """``count`` summed over the ranks (e.g. the noise draws of every rank)."""
    if not is_distributed():
        return count
    value = torch.tensor([count], dtype=torch.long, device=device)
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return int(value.item())
