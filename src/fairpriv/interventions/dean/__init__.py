"""DEAN (arXiv 2410.16672; "SPIN" in its v2): zero the weights that matter for both fairness and privacy awareness
but not for general utility. Training-free: ``fit`` scores and selects, ``apply`` zeroes.

``fit`` (also run on demand by ``dean-hf``):

1. loads three prompt/response sets (fairness, privacy, utility; builtin, a local CSV/JSONL or a Hub id) and samples
   ``n_samples`` of each with ``seed``;
2. scores every target matrix with SNIP, |W| * sum |dL/dW|, one backward per example for all layers at once
   (:mod:`.score`), and keeps each matrix's top lists; the lists are cached by content hash, at a fraction of
   at least ``LIST_FRACTION``, so a p/q sweep on the same data scores once;
3. selects per matrix G, P, F and the coupled set C = P ∩ F (:mod:`.select`, ``mode=set``) or the released
   code's position-wise AND over the top lists sorted by flat index (``mode=official``), and writes
   ``mask.safetensors`` (flat indices per module), the top lists, and counts per module (both modes') in the
   manifest. :func:`select_mask` is the same selection on full score tensors, for checking other implementations.

``compat=release`` also reproduces the released scoring inputs (:mod:`.compat`: ``datasets`` sampling of the
CSV rows, first response token dropped, ``int(p * cols * rows)`` counts); ``score_dtype=bfloat16`` accumulates the
scores in bfloat16 as the release does (float32 by default).

The model is scored in the dtype it was loaded in (``fairpriv fit``: float32 unless ``dtype=`` says otherwise;
``dean-hf``: HFLM's ``dtype``), which is part of the artifact's cache key; every tensor scoring makes follows the
weights' device, per matrix under a ``device_map``.

``apply`` checks every masked module's shape and zeroes exactly the masked entries (idempotent). ``mask=PATH``
is accepted as an alias of ``artifact=PATH``. Defaults: the paper's p = q = 5e-7 selects nothing in most matrices
of a 135M model (k = floor(5e-7 * 884,736) = 0), so fairpriv defaults to p = q = 1e-4: on the embedded model that
zeroes 1,258 entries and keeps generation fluent, while 3e-4 and 1e-3 already make it repeat itself (README).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any, Literal

from fairpriv.artifacts import ArtifactError
from fairpriv.data.pairs import load_pairs
from fairpriv.interventions.base import ConfigError, Intervention, InterventionConfig
from fairpriv.interventions.dean import cache as _dean_cache
from fairpriv.interventions.dean.compat import encode_all_release, load_release_pairs
from fairpriv.interventions.dean.score import encode_all, target_modules, top_lists
from fairpriv.interventions.dean.select import MODES, counter, select_mask, select_matrix, top_count, total_counts
from fairpriv.interventions.summaries import DeanSummary
from fairpriv.modelref import state_dict_sha256

log = logging.getLogger(__name__)

DEFAULT_FRACTION = 1e-4
LIST_FRACTION = 1e-2  # cached top lists hold at least this fraction of each matrix, so sweeps below it reuse them
KINDS = ("utility", "privacy", "fairness")
MASK_FILE = "mask.safetensors"
LISTS_FILE = "top_lists.safetensors"
SCORE_VERSION = "1"


@dataclasses.dataclass(frozen=True)
class DeanConfig(InterventionConfig):
    p: float = DEFAULT_FRACTION
    q: float = DEFAULT_FRACTION
    mode: Literal["set", "official"] = "set"
    target: Literal["mlp", "attn", "all"] = "mlp"
    n_samples: int = 128
    seed: int = 0
    compat: Literal["none", "release"] = "none"
    score_dtype: Literal["float32", "bfloat16"] = "float32"
    fairness_data: str = "builtin"
    privacy_data: str = "builtin"
    utility_data: str = "builtin"
    chat_template: bool = False
    score_max_length: int = 512

    def __post_init__(self) -> None:
        for key in ("p", "q"):
            if not 0 <= getattr(self, key) <= 1:
                raise ConfigError(f"'{key}' is a fraction of each matrix and must be in [0, 1]; got {getattr(self, key)}")
        if self.n_samples < 1 or self.score_max_length < 2:
            raise ConfigError("'n_samples' must be >= 1 and 'score_max_length' >= 2")
        if self.compat == "release" and self.chat_template:
            raise ConfigError("compat=release reproduces the released scoring, which uses no chat template; "
                              "drop chat_template=true or compat=release")

    @property
    def counting(self) -> str:
        """How many entries a top fraction holds: floor(p*N), or the release's int(p * cols * rows)."""
        return "release" if self.compat == "release" else "floor"


class Dean(DeanSummary, Intervention):  # summary and the artifact alias mask=: DeanSummary
    name = "dean"
    Config = DeanConfig
    version = "2"  # 2: mode=official follows the release's index order; manifests' other_mode_zeroed corrected
    description = "DEAN: zero weights important for both fairness and privacy but not utility (arXiv 2410.16672)"

    # ---------------------------------------------------------------------------------------------- fit

    def fit(self, model: Any, tokenizer: Any, out_dir: Path) -> dict[str, Any]:
        from safetensors.torch import save_file

        modules = target_modules(model, self.config.target)
        lists, scoring = self.top_lists(model, tokenizer, modules)
        selections = {n: self._select(lists, n, tuple(m.weight.shape)) for n, m in modules.items()}
        save_file({n: s.zeroed.contiguous() for n, s in selections.items()}, str(out_dir / MASK_FILE))
        save_file({k: v.contiguous() for k, v in lists.items()}, str(out_dir / LISTS_FILE))
        per_module = {n: s.counts() for n, s in selections.items()}
        facts = {"counts": per_module, "total": total_counts(per_module), **scoring,
                 "shapes": {n: list(m.weight.shape) for n, m in modules.items()}}
        log.info("fairpriv: DEAN selected %s entries (%s)", facts["total"]["zeroed"], self._summary(facts["total"]))
        return facts

    def _select(self, lists: dict, name: str, shape: tuple[int, ...]):
        """One matrix through the kernel that :func:`select_mask` uses, on prefixes of the cached top lists."""
        c, count = self.config, counter(self.config.counting)
        kp, kq = count(c.p, shape), count(c.q, shape)
        top = {kind: lists[f"{kind}/{name}"] for kind in KINDS}
        short = [kind for kind, k in (("utility", kp), ("privacy", kq), ("fairness", kq)) if k > top[kind].numel()]
        if short:
            raise ArtifactError(f"the cached {short[0]} top list of {name} is shorter than the selection needs; "
                                "remove $FAIRPRIV_HOME/dean-scores to score again")
        numel = math.prod(shape)
        return select_matrix(top["utility"][:kp], top["privacy"][:kq], top["fairness"][:kq], numel, c.mode)

    def _summary(self, total: dict) -> str:
        other = "official" if self.config.mode == "set" else "set"
        return f"|G|={total['G']} |P|={total['P']} |F|={total['F']} |P∩F|={total['P_and_F']}, " \
               f"{other} mode would zero {total['other_mode_zeroed']}"

    def data(self) -> dict[str, Any]:
        c = self.config
        sources = {"utility": c.utility_data, "privacy": c.privacy_data, "fairness": c.fairness_data}
        load = load_release_pairs if c.compat == "release" else load_pairs
        return {kind: load(sources[kind], kind, c.n_samples, c.seed) for kind in KINDS}

    def top_lists(self, model: Any, tokenizer: Any, modules: dict) -> tuple[dict, dict[str, Any]]:
        """Top lists for every kind and module (from the score cache when possible) and the facts of scoring."""
        data = self.data()
        fraction = max(self.config.p, self.config.q, LIST_FRACTION)
        key = _dean_cache.key(self.score_identity(model, data))
        lists, info = _dean_cache.load(key, fraction)
        source = "cache"
        if lists is None:
            lists, dropped = self.score(model, tokenizer, modules, data, fraction)
            info = _dean_cache.store(key, lists, fraction, dropped)
            source = "scored"
        facts = {"scoring": {"lists": source, "list_fraction": info["fraction"], "score_cache_key": key[:32],
                             "data": {k: d.describe() for k, d in data.items()}, "n_samples": self.config.n_samples,
                             "seed": self.config.seed, "chat_template": self.config.chat_template,
                             "compat": self.config.compat, "score_dtype": self.config.score_dtype,
                             "counting": self.config.counting, "dropped_examples": info["dropped"]}}
        return lists, facts

    def score_identity(self, model: Any, data: dict) -> dict[str, Any]:
        c = self.config
        identity = {"version": SCORE_VERSION, "model": state_dict_sha256(model), "target": c.target,
                    "data": {k: d.sha256 for k, d in data.items()}, "chat_template": c.chat_template,
                    "max_length": c.score_max_length}
        # keys added only when not the default, so score caches written before these keys existed stay valid
        if c.compat != "none":
            identity.update(compat=c.compat, max_length=None)  # compat=release does not truncate
        if c.score_dtype != "float32":
            identity["score_dtype"] = c.score_dtype
        return identity

    def score(self, model: Any, tokenizer: Any, modules: dict, data: dict, fraction: float):
        import torch
        from tqdm.auto import tqdm

        lists, dropped = {}, {}
        dtype = getattr(torch, self.config.score_dtype)  # float32 or bfloat16, checked by the config
        for kind in KINDS:
            examples, dropped[kind] = self.encode(tokenizer, data[kind].records, kind)
            bar = lambda xs, kind=kind: tqdm(xs, desc=f"DEAN scoring {kind}", unit="ex")  # noqa: E731
            top = top_lists(model, modules, examples, self.list_length(fraction), bar, dtype)
            lists.update({f"{kind}/{name}": idx for name, idx in top.items()})
        return lists, dropped

    def encode(self, tokenizer: Any, records: list[dict], kind: str) -> tuple[list, int]:
        """The scoring examples of one data set (fairpriv's or the release's tokenisation) and how many dropped."""
        c = self.config
        if c.compat == "release":
            examples, dropped = encode_all_release(tokenizer, records)
        else:
            examples, dropped = encode_all(tokenizer, records, c.chat_template, c.score_max_length)
        if not examples:
            why = "compat=release drops the first" if c.compat == "release" else f"score_max_length={c.score_max_length}"
            raise ConfigError(f"no {kind} example keeps a response token ({why}); "
                              "raise score_max_length or use longer responses")
        return examples, dropped

    def list_length(self, fraction: float):
        """How long each cached top list is: floor(fraction*N), one more under the release's counting, whose
        int(fraction * cols * rows) can exceed floor(fraction*N) by one."""
        extra = 1 if self.config.counting == "release" else 0
        return lambda n: min(n, top_count(fraction, n) + extra)

    # ---------------------------------------------------------------------------------------------- apply

    def apply(self, model: Any, artifact: Any) -> Any:
        import torch

        mask = artifact.load_tensors(MASK_FILE)
        shapes = artifact.manifest.get("facts", {}).get("shapes", {})
        check_mask(model, mask, shapes, artifact.path)
        with torch.no_grad():
            for name, index in mask.items():
                weight = model.get_submodule(name).weight
                weight.view(-1)[index.to(weight.device)] = 0
        return model


def check_mask(model: Any, mask: dict, shapes: dict, where: Any) -> None:
    """Refuse a mask made for another model: every module must exist with the recorded shape, indices in range."""
    for name, index in mask.items():
        try:
            weight = model.get_submodule(name).weight
        except AttributeError:
            raise ArtifactError(f"DEAN mask {where} names module '{name}', which this model does not have: "
                                "the mask was made for another architecture; fit one for this model") from None
        if list(weight.shape) != list(shapes.get(name, [])):
            raise ArtifactError(f"DEAN mask {where} was made for {name} of shape {shapes.get(name)}, but this "
                                f"model's is {list(weight.shape)}: fit a mask for this model")
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= weight.numel()):
            raise ArtifactError(f"DEAN mask {where} has indices outside {name}; the file is corrupt: fit again")


__all__ = ["Dean", "DeanConfig", "MODES", "check_mask", "select_mask"]
