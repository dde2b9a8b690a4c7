"""Splitting work across processes (``accelerate launch``) and merging what each one wrote.

Every rank appends only to its own part files (``.NAME.rankNNNNN.part``, beside NAME), so no two
processes ever write one file.  At a barrier, rank 0 merges the parts into NAME and deletes them.
A run killed before the merge leaves parts that the next run, with any number of processes, reads
as done work and merges: resuming never depends on how many ranks wrote what.
"""

from __future__ import annotations

import os
from pathlib import Path

from video_caption.manifest import ManifestWriter, read_rows, row_identity

# Where launchers put the number of ranks: torchrun (accelerate launch), then MPI's.
LAUNCHER_WORLD_SIZES = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


class Ranks:
    """This process's place in the run: rank, world size, device and a barrier."""

    def __init__(self, cpu: bool = False):
        from accelerate import PartialState

        self.state = PartialState(cpu=cpu)
        self.rank = self.state.process_index
        self.world = self.state.num_processes
        self.device = str(self.state.device)
        # The ranks on this machine (torchrun's, which accelerate sets for MPI too): they share its cores.
        self.local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))

    @classmethod
    def alone(cls, device: str = "cpu") -> Ranks:
        """One process, for work never launched on several (it spares accelerate's 2 s import)."""
        ranks = cls.__new__(cls)
        ranks.state, ranks.rank, ranks.world, ranks.device, ranks.local_world = None, 0, 1, device, 1
        return ranks

    @classmethod
    def launched(cls, cpu: bool = False, accelerator: bool = False) -> Ranks:
        """The ranks a launcher started (the world sizes accelerate looks for), else ``alone``: a
        process nobody launched spares the import.  ``accelerator``: alone, on the GPU (or Apple's)
        if there is one and ``cpu`` is not set, as accelerate would pick it."""
        sizes = (os.environ.get(name, "") for name in LAUNCHER_WORLD_SIZES)
        if any(size.isdigit() and int(size) > 1 for size in sizes):
            return cls(cpu=cpu)
        return cls.alone(accelerator_device() if accelerator and not cpu else "cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, items: list) -> list:
        return items[self.rank::self.world]

    def barrier(self) -> None:
        if self.world > 1:
            self.state.wait_for_everyone()


def accelerator_device() -> str:
    """"cuda" when torch sees a GPU, "mps" on Apple's, else "cpu"."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "mps" if torch.backends.mps.is_available() else "cpu"


def part_path(path: Path, rank: int) -> Path:
    return path.with_name(f".{path.name}.rank{rank:05d}.part")


def parts(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.rank*.part"))


def read_with_parts(path: Path) -> list[dict]:
    """The rows of a manifest and of any part files not merged into it yet."""
    rows = read_rows(path)
    for part in parts(path):
        rows += read_rows(part)
    return rows


def merge_parts(path: Path, key: str | None = "video_path") -> int:
    """Append the rows of every part file to ``path`` (skipping rows it holds already), then delete
    the parts.  Returns how many rows were added.  Only one process may call it at a time."""
    found = parts(path)
    if not found:
        return 0
    added = 0
    with ManifestWriter(path, key=key) as writer:
        seen = None if key else {row_identity(row) for row in read_rows(path)}
        for part in found:
            rows = read_rows(part)
            if seen is not None:
                rows = [r for r in rows if row_identity(r) not in seen]
                seen.update(row_identity(r) for r in rows)
            added += writer.append(rows)
    for part in found:
        os.unlink(part)
    return added

