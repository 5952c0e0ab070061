"""Where a training process runs and how it stops: the torchrun process group and Ctrl-C/SIGTERM.

Kept apart from the loop so that what DDP needs (every rank agreeing, one process group per job)
is in one place, and so that the loop itself stays the same for one process and for many.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from typing import Any

from gpt_lsp.model.training_report import say


@dataclass
class Distributed:
    """Where this process runs: its rank among `world_size` processes and its torch device."""

    rank: int = 0
    world_size: int = 1
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed

            torch.distributed.barrier()

    def all_sum(self, *values: float) -> list[float]:
        if self.world_size == 1:
            return list(values)
        import torch
        import torch.distributed

        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(tensor)
        return tensor.tolist()

    def close(self) -> None:
        """Leave the torchrun process group at the end of a job (nothing to do for one process)."""
        if self.world_size > 1:
            import torch.distributed

            torch.distributed.destroy_process_group()


def setup_distributed() -> Distributed:
    """Join the torchrun process group when launched by it (gloo on CPU, NCCL on GPU)."""
    import torch
    from transformers.utils import logging as hf_logging

    # Our progress bar and messages are the user-facing output; transformers' own shard-writing
    # bars and config notes would interleave with them.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
    if world_size > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    if not cuda and "OMP_NUM_THREADS" not in os.environ:  # processes on one machine share its cores
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        torch.set_num_threads(max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", world_size))))
    rank = torch.distributed.get_rank() if world_size > 1 else 0
    return Distributed(rank, world_size, f"cuda:{local_rank}" if cuda else "cpu")


class StopSignal:
    """SIGINT/SIGTERM set a flag; the loop checkpoints at the end of the step and stops."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.received is not None:  # second Ctrl-C: give up on the graceful stop
            raise KeyboardInterrupt
        self.received = signum
        say("\nstopping after this step; writing a checkpoint (Ctrl-C again to abort)")

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
