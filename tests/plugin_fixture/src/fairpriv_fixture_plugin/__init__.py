"""Fixture intervention ``zero-rows``: zero the output rows with the largest L2 norm in one kind of linear layer.

It exists to exercise fairpriv's extension point end to end (config coercion, fit writing an artifact, apply
reading it, manifests, caching, a summary for the report); it is not a method anyone should use. The ``broken``
entry point next to it points at a module that does not exist, to test the error a user sees when a plugin is
half-installed.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Literal

from fairpriv.interventions import ConfigError, Intervention, InterventionConfig


@dataclasses.dataclass(frozen=True)
class ZeroRowsConfig(InterventionConfig):
    fraction: float = 0.05
    module: Literal["down_proj", "up_proj", "gate_proj", "o_proj"] = "down_proj"

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ConfigError(f"fraction must be in (0, 1]; got {self.fraction}")


class ZeroRows(Intervention):
    name = "zero-rows"
    Config = ZeroRowsConfig
    description = "test fixture: zero the largest-norm output rows of one linear layer kind"

    @classmethod
    def summary(cls, facts: dict) -> dict[str, str]:
        """A leaderboard column of its own: not one the report knows, so headed by its key."""
        return {"rows zeroed": f"{facts['rows_zeroed']:,}"} if "rows_zeroed" in facts else {}

    def targets(self, model):
        return [(n, m) for n, m in model.named_modules() if n.endswith("." + self.config.module)]

    def fit(self, model, tokenizer, out_dir: Path) -> dict:
        from safetensors.torch import save_file

        rows = {}
        for name, module in self.targets(model):
            k = max(1, math.floor(self.config.fraction * module.weight.shape[0]))
            rows[name] = module.weight.detach().norm(dim=1).topk(k).indices.sort().values.contiguous()
        save_file(rows, str(out_dir / "rows.safetensors"))
        return {"rows_zeroed": sum(len(v) for v in rows.values()), "matrices": len(rows)}

    def apply(self, model, artifact):
        import torch

        rows = artifact.load_tensors("rows.safetensors")
        with torch.no_grad():
            for name, index in rows.items():
                model.get_submodule(name).weight[index] = 0
        return model
