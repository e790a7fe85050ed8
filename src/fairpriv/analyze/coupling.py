"""``fairpriv analyze coupling``: DEAN's mechanism (arXiv 2410.16672) made measurable, layer by layer.

DEAN claims that a few weights matter for *both* fairness and privacy awareness, and that zeroing them (when general
utility does not need them) lowers the dependence between fairness and privacy representations, which the paper
argues through HSIC. This module measures both halves of that claim for one DEAN artifact (given with ``--mask`` or
fitted on demand, reusing the artifact and score caches):

1. **Overlap vs chance.** For each scored matrix with N entries, k = floor(q*N) and g = floor(p*N) (the artifact's
   p and q), from the artifact's top lists (sorted by score):

   * top-k overlap: |top_k(privacy) ∩ top_k(fairness)| against the null that the two top sets are independent
     uniform k-subsets of the N entries: hypergeometric, mean k^2/N, upper-tail p-value
     ``scipy.stats.hypergeom.sf(obs - 1, N, k, k)``;
   * after removing G = top_g(utility): |P ∩ F| with P = top_k(privacy) \\ G, F = top_k(fairness) \\ G (DEAN's
     coupled set in ``mode=set``), against independent uniform subsets of sizes |P|, |F| of the N - g entries
     outside G: mean |P||F|/(N - g), p-value ``hypergeom.sf(obs - 1, N - g, |P|, |F|)``.

   Per decoder layer (and in total) observed and expected counts are summed over the matrices; the pooled p-value is
   exact: the upper tail of the sum of the independent hypergeometric counts (their pmfs convolved); a tail below
   floating-point range reads 0. The uniform null is weak: both scores share the factor |W| (and gradients share
   structure), so ratios far above 1 appear even in a random model (about 10 on the tiny test model). Compare layers,
   models and artifacts, not a p-value alone, before reading an overlap as functional coupling.

2. **HSIC before and after DEAN.** m paired probes: the i-th fairness prompt with the i-th privacy prompt, from
   ``load_pairs(source, kind, n=m, seed)`` with the artifact's data sources. Pairing by index is a choice: the two
   sets have no natural pairing, and under it HSIC measures whether the geometry of the fairness prompts'
   representations matches that of the privacy prompts' representations. Each prompt alone (no response; the
   chat template only when the artifact was scored with one) is run through the model, and every decoder layer's
   output (Hugging Face ``output_hidden_states=True``, entries 1..L; the last one has the model's final norm
   applied, as Hugging Face returns it) is mean-pooled over tokens in float32, giving a fairness matrix [m, d] and a
   privacy matrix [m, d] per layer. HSIC, normalised HSIC and a seeded permutation p-value come from
   :mod:`fairpriv.metrics.hsic` (biased estimator of Gretton et al. 2005, Gaussian RBF kernels, median-heuristic
   bandwidth unless one is given), on the base model and again after the artifact's mask is applied.

Outputs: ``coupling.json`` (one row per decoder layer, per-matrix rows, the total, every choice made) and
``coupling.md`` (a Markdown table), written atomically to ``--out`` (default ``coupling/<artifact hash[:16]>``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import hypergeom

from fairpriv.analyze._output import json_safe, write_report
from fairpriv.artifacts import load_artifact
from fairpriv.data.pairs import load_pairs
from fairpriv.fit import load_model, parse_model_args
from fairpriv.interventions.fitting import fit_cached
from fairpriv.metrics.hsic import N_PERMUTATIONS, HSICTest, hsic_test
from fairpriv.modelargs import load_options, split_model_args as split
from fairpriv.modelref import base_model_identity, dtype_name, same_base_model

log = logging.getLogger(__name__)

MIN_M = 4
DEFAULT_M = 64
JSON_FILE, MD_FILE = "coupling.json", "coupling.md"
OWNER = "fairpriv analyze coupling"


class CouplingError(ValueError):
    """An analysis request that cannot run; the message names the problem and the fix."""


# --- overlap vs chance (pure) -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Overlap:
    """An observed intersection size against its chance distribution (one or several independent hypergeometrics:
    ``draws`` holds (population, |a|, |b|) for each)."""

    observed: int
    expected: float
    p_value: float
    draws: tuple[tuple[int, int, int], ...]

    @property
    def ratio(self) -> float | None:
        return self.observed / self.expected if self.expected > 0 else None

    def fields(self, suffix: str = "") -> dict[str, Any]:
        values = {"observed": self.observed, "expected": self.expected, "ratio": self.ratio, "p_value": self.p_value}
        return {f"{k}{suffix}": v for k, v in values.items()}


def unique_indices(x: Any, population: int, name: str) -> np.ndarray:
    """Flat indices as int64 numpy; ValueError when they repeat or fall outside [0, population)."""
    arr = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.int64).reshape(-1)
    if arr.size and (arr.min() < 0 or arr.max() >= population):
        raise ValueError(f"{name} holds indices outside [0, {population}): the top list does not fit this matrix")
    if np.unique(arr).size != arr.size:
        raise ValueError(f"{name} repeats an index; a top list must hold distinct entries")
    return arr


def overlap_vs_chance(a: Any, b: Any, population: int) -> Overlap:
    """|a ∩ b| against independent uniform subsets of sizes |a| and |b| of ``population`` entries.

    >>> o = overlap_vs_chance(range(10), range(5, 15), 100)
    >>> o.observed, o.expected, round(o.ratio, 1)
    (5, 1.0, 5.0)
    """
    return chance_overlap(unique_indices(a, population, "a"), unique_indices(b, population, "b"), population)


def chance_overlap(a: np.ndarray, b: np.ndarray, population: int) -> Overlap:
    """:func:`overlap_vs_chance` of checked distinct indices (``population`` may be smaller than their range, as
    for P and F, which live outside G)."""
    observed = int(np.intersect1d(a, b).size)
    expected = a.size * b.size / population if population else 0.0
    p_value = float(hypergeom.sf(observed - 1, population, a.size, b.size)) if a.size and b.size else 1.0
    return Overlap(observed, expected, min(max(p_value, 0.0), 1.0), ((population, int(a.size), int(b.size)),))


def hypergeom_pmf(population: int, size_a: int, size_b: int) -> np.ndarray:
    """pmf of |a ∩ b| over 0..min(|a|, |b|) with the underflowed (zero) upper tail trimmed."""
    if size_a == 0 or size_b == 0:
        return np.ones(1)
    pmf = hypergeom.pmf(np.arange(min(size_a, size_b) + 1), population, size_a, size_b)
    return np.trim_zeros(np.nan_to_num(pmf), "b")


def pooled(overlaps: Sequence[Overlap]) -> Overlap:
    """The sum of independent overlaps: observed and expected add up; the p-value is the exact upper tail of the
    sum of the hypergeometric counts (their pmfs convolved)."""
    draws = tuple(d for o in overlaps for d in o.draws)
    observed = sum(o.observed for o in overlaps)
    pmf = functools.reduce(np.convolve, (hypergeom_pmf(*d) for d in draws), np.ones(1))
    p_value = float(np.clip(pmf[observed:].sum(), 0.0, 1.0))
    return Overlap(observed, float(sum(o.expected for o in overlaps)), p_value, draws)


@dataclasses.dataclass(frozen=True)
class MatrixOverlap:
    """One matrix: the top-k overlap of privacy and fairness, and the overlap of P and F once G is removed."""

    module: str
    layer: int
    numel: int
    k: int
    g: int
    top: Overlap
    after_g: Overlap

    def row(self) -> dict[str, Any]:
        p_size, f_size = self.after_g.draws[0][1:]
        head = {"module": self.module, "layer": self.layer, "numel": self.numel, "k": self.k, "G": self.g}
        return {**head, **self.top.fields(), "P": p_size, "F": f_size, **self.after_g.fields("_after_g")}


def matrix_overlap(utility: Any, privacy: Any, fairness: Any, numel: int, p: float, q: float,
                   module: str = "", layer: int = 0) -> MatrixOverlap:
    """Both overlaps of one matrix from its top lists (sorted by decreasing score, at least floor(max(p,q)*N) long)."""
    from fairpriv.interventions.dean.select import top_count  # imports torch: only when used

    k, g_count = top_count(q, numel), top_count(p, numel)
    lists = {"utility": (utility, g_count), "privacy": (privacy, k), "fairness": (fairness, k)}
    for kind, (values, need) in lists.items():
        if len(values) < need:
            raise CouplingError(f"the {kind} top list of {module or 'a matrix'} holds {len(values)} entries but "
                                f"the analysis needs {need}; the artifact is incomplete: fit it again")
    g = unique_indices(utility[:g_count], numel, "utility")
    kp, kf = unique_indices(privacy[:k], numel, "privacy"), unique_indices(fairness[:k], numel, "fairness")
    after_g = chance_overlap(np.setdiff1d(kp, g), np.setdiff1d(kf, g), numel - g.size)
    return MatrixOverlap(module, layer, numel, k, int(g.size), chance_overlap(kp, kf, numel), after_g)


def by_layer(matrices: Sequence[MatrixOverlap]) -> dict[int, list[MatrixOverlap]]:
    out: dict[int, list[MatrixOverlap]] = {}
    for matrix in sorted(matrices, key=lambda x: (x.layer, x.module)):
        out.setdefault(matrix.layer, []).append(matrix)
    return out


def pooled_row(matrices: Sequence[MatrixOverlap]) -> dict[str, Any]:
    """Sums over several matrices (a layer, or all): sizes, and the pooled overlaps."""
    sizes = {key: sum(getattr(x, key) for x in matrices) for key in ("numel", "k", "g")}
    p_size = sum(x.after_g.draws[0][1] for x in matrices)
    f_size = sum(x.after_g.draws[0][2] for x in matrices)
    top, after_g = pooled([x.top for x in matrices]), pooled([x.after_g for x in matrices])
    return {"matrices": len(matrices), "numel": sizes["numel"], "k": sizes["k"], "G": sizes["g"],
            **top.fields(), "P": p_size, "F": f_size, **after_g.fields("_after_g")}


# --- the artifact ----------------------------------------------------------------------------------------------
def split_model_args(model_args: str, mask: Path | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Model keys (:mod:`fairpriv.modelargs`) and DEAN config keys of ``--model_args``; with ``--mask`` the
    config comes from the artifact."""
    from fairpriv.interventions.dean import DeanConfig  # imports torch: only when used

    # a key given twice is an error, not the last one wins
    model_kw, config = split(parse_model_args(model_args, "--model_args"), DeanConfig.keys(), OWNER)
    if mask is not None and config:
        raise CouplingError(f"with --mask the DEAN config comes from the artifact; drop {', '.join(sorted(config))} "
                            "from --model_args, or drop --mask to fit with them")
    return model_kw, config


def loaded_identity(model: Any, options: dict) -> dict[str, Any]:
    """The base-model identity of the loaded model, with the dtype of its weights (as ``dean-hf`` computes it)."""
    return base_model_identity(options["pretrained"], options.get("revision") or "main", dtype=model.dtype)


def artifact_config(artifact: Any):
    from fairpriv.interventions.dean import DeanConfig  # imports torch: only when used

    return DeanConfig.from_args(artifact.manifest.get("config", {}), owner=f"DEAN artifact {artifact.path}")


def given_artifact(mask: Path):
    """The DEAN artifact at ``mask`` (refused when missing, corrupt or made by another intervention)."""
    if not Path(mask).is_dir():
        raise CouplingError(f"--mask {mask} does not exist; pass a DEAN artifact folder (from `fairpriv fit dean`), "
                            "or drop --mask to fit one")
    return load_artifact(Path(mask), "dean")


def fitted_artifact(model: Any, tokenizer: Any, options: dict, config: Any):
    """The cached DEAN artifact for this model, dtype and config, fitted (reusing the score cache) when absent."""
    from fairpriv.interventions.dean import Dean  # imports torch: only when used

    return fit_cached(Dean(config), model, tokenizer, loaded_identity(model, options))


def overlaps(artifact: Any, config: Any) -> list[MatrixOverlap]:
    """Every masked matrix's overlaps, from the artifact's top lists and recorded shapes."""
    from fairpriv.interventions.dean.score import layer_of  # imports torch: only when used
    from fairpriv.interventions.dean import LISTS_FILE  # imports torch: only when used

    lists, shapes = artifact.load_tensors(LISTS_FILE), artifact.manifest.get("facts", {}).get("shapes", {})
    if not shapes:
        raise CouplingError(f"DEAN artifact {artifact.path} records no matrix shapes; fit it again")
    out = []
    for name, shape in shapes.items():
        top = [lists.get(f"{kind}/{name}") for kind in ("utility", "privacy", "fairness")]
        if any(t is None for t in top):
            raise CouplingError(f"DEAN artifact {artifact.path} has no top lists for {name}; fit it again")
        out.append(matrix_overlap(*top, int(np.prod(shape)), config.p, config.q, name, layer_of(name)))
    return out


# --- representations -------------------------------------------------------------------------------------------
def probe_sets(config: Any, m: int, seed: int) -> dict[str, Any]:
    """m fairness and m privacy pairs from the artifact's sources; the i-th of each are paired."""
    return {kind: load_pairs(getattr(config, f"{kind}_data"), kind, n=m, seed=seed) for kind in ("fairness", "privacy")}


def encode_prompt(tokenizer: Any, prompt: str, chat_template: bool, max_length: int):
    """Token ids [1, T] of one prompt, as DEAN's scoring encodes prompts, truncated to ``max_length``."""
    import torch

    if chat_template:
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                               add_generation_prompt=True)
    ids = tokenizer(prompt, add_special_tokens=not chat_template)["input_ids"][:max_length]
    return torch.tensor([ids], dtype=torch.long)


def layer_states(model: Any, tokenizer: Any, prompts: Sequence[str], config: Any, desc: str) -> list[np.ndarray]:
    """Per decoder layer, the [m, d] float32 matrix of each prompt's mean-pooled layer output."""
    import torch
    from tqdm.auto import tqdm

    rows, device = [], model.get_input_embeddings().weight.device  # where the ids go, also under a device_map
    with torch.inference_mode():
        for prompt in tqdm(prompts, desc=desc, unit="prompt"):
            ids = encode_prompt(tokenizer, prompt, config.chat_template, config.score_max_length)
            hidden = model(input_ids=ids.to(device), output_hidden_states=True).hidden_states[1:]
            rows.append([h[0].float().mean(dim=0).cpu().numpy() for h in hidden])
    return [np.stack([row[layer] for row in rows]).astype(np.float32) for layer in range(len(rows[0]))]


def dependence(model: Any, tokenizer: Any, probes: dict, config: Any, phase: str, options: dict) -> list[HSICTest]:
    """HSIC per decoder layer between the fairness and the privacy representations."""
    states = {kind: layer_states(model, tokenizer, [r["prompt"] for r in pairs.records], config,
                                 f"coupling: {kind} probes, {phase} DEAN") for kind, pairs in probes.items()}
    return [hsic_test(f, p, sigma_x=options["bandwidth"], sigma_y=options["bandwidth"],
                      n_permutations=options["permutations"], seed=options["seed"])
            for f, p in zip(states["fairness"], states["privacy"])]


def apply_mask(model: Any, artifact: Any, config: Any) -> None:
    from fairpriv.interventions.dean import Dean  # imports torch: only when used

    Dean(config).apply(model, artifact)


# --- the report ------------------------------------------------------------------------------------------------
def hsic_fields(before: HSICTest, after: HSICTest) -> dict[str, Any]:
    return {"hsic_before": before.hsic, "hsic_after": after.hsic, "nhsic_before": before.nhsic,
            "nhsic_after": after.nhsic, "p_hsic_before": before.p_value, "p_hsic_after": after.p_value,
            "bandwidth": {"before": {"fairness": before.sigma_x, "privacy": before.sigma_y},
                          "after": {"fairness": after.sigma_x, "privacy": after.sigma_y}}}


def layer_rows(matrices: Sequence[MatrixOverlap], zeroed: dict[str, int], before: Sequence[HSICTest],
               after: Sequence[HSICTest]) -> list[dict[str, Any]]:
    """One row per decoder layer: pooled overlaps (keys absent where no matrix was scored), zeroed count, HSIC."""
    layers = by_layer(matrices)
    rows = []
    for layer, (b, a) in enumerate(zip(before, after)):
        chosen = layers.get(layer, [])
        overlap = pooled_row(chosen) if chosen else {}
        rows.append({"layer": layer, **overlap, "zeroed": sum(zeroed.get(x.module, 0) for x in chosen),
                     **hsic_fields(b, a)})
    return rows


def methods(config: Any, options: dict, probes: dict) -> dict[str, Any]:
    """Every choice the numbers depend on, in words and values."""
    return {
        "overlap": {"p": config.p, "q": config.q, "k": "floor(q*N)", "G": "top floor(p*N) utility",
                    "null": "independent uniform subsets (hypergeometric); after G: of the N - |G| entries outside G",
                    "p_value": "hypergeom.sf(obs - 1, ...); pooled rows: exact tail of the summed counts"},
        "hsic": {"estimator": "biased HSIC, tr(KHLH)/(m-1)^2 (Gretton et al. 2005)", "kernel": "gaussian_rbf",
                 "bandwidth": "median pairwise Euclidean distance" if options["bandwidth"] is None
                 else options["bandwidth"], "n_permutations": options["permutations"], "seed": options["seed"],
                 "m": options["m"], "pairing": "the i-th fairness prompt with the i-th privacy prompt (by index)",
                 "representation": "mean over tokens of each decoder layer's output (hidden_states[1:], float32; "
                                   "the last after the final norm), prompt only",
                 "probes": {kind: pairs.describe() for kind, pairs in probes.items()}},
    }


def build_report(context: dict, matrices: Sequence[MatrixOverlap], before: Sequence[HSICTest],
                 after: Sequence[HSICTest]) -> dict[str, Any]:
    artifact, config = context["artifact"], context["config"]
    zeroed = {n: c.get("zeroed", 0) for n, c in artifact.manifest.get("facts", {}).get("counts", {}).items()}
    return {
        "analysis": "dean_coupling", "version": 1, "paper": "arXiv 2410.16672",
        "model": context["model"],
        "artifact": {"path": str(artifact.path), "hash": artifact.hash, "source": context["source"],
                     "mode": config.mode, "target": config.target, "config": artifact.manifest.get("config")},
        "method": methods(config, context["options"], context["probes"]),
        "layers": layer_rows(matrices, zeroed, before, after),
        "total": {**(pooled_row(matrices) if matrices else {}), "zeroed": sum(zeroed.values())},
        "matrices": [x.row() for x in sorted(matrices, key=lambda x: (x.layer, x.module))],
    }


COLUMNS = (("layer", "layer", "d"), ("k", "k", "d"), ("top-k overlap", "observed", "d"), ("chance", "expected", ".3g"),
           ("ratio", "ratio", ".3g"), ("p", "p_value", ".3g"), ("\\|P\\|,\\|F\\|", None, ""),
           ("P∩F", "observed_after_g", "d"), ("chance", "expected_after_g", ".3g"),
           ("ratio", "ratio_after_g", ".3g"), ("p", "p_value_after_g", ".3g"), ("zeroed", "zeroed", "d"),
           ("HSIC before", "hsic_before", ".4g"), ("HSIC after", "hsic_after", ".4g"),
           ("nHSIC before", "nhsic_before", ".4f"), ("nHSIC after", "nhsic_after", ".4f"),
           ("perm p before", "p_hsic_before", ".3g"), ("perm p after", "p_hsic_after", ".3g"))


def cell(row: dict, key: str | None, spec: str) -> str:
    if key is None:
        return f"{row['P']},{row['F']}" if "P" in row else "n/a"
    value = row.get(key)
    return "n/a" if value is None or (isinstance(value, float) and not np.isfinite(value)) else format(value, spec)


def markdown(report: dict) -> str:
    """The per-layer table (and a total row for the overlaps) with a short header naming the inputs."""
    art, hsic = report["artifact"], report["method"]["hsic"]
    lines = [f"# DEAN coupling: {report['model']['pretrained']}", "",
             f"Artifact {art['hash'][:16]} ({art['source']}, mode={art['mode']}, target={art['target']}, "
             f"p={art['config']['p']}, q={art['config']['q']}); m={hsic['m']} index-paired probes, RBF kernel, "
             f"bandwidth: {hsic['bandwidth']}, {hsic['n_permutations']} permutations (seed {hsic['seed']}).", "",
             "| " + " | ".join(c[0] for c in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in [*report["layers"], {**report["total"], "layer": "total"}]:
        lines.append("| " + " | ".join(str(row["layer"]) if key == "layer" else cell(row, key, spec)
                                       for _, key, spec in COLUMNS) + " |")
    return "\n".join([*lines, "", LEGEND]) + "\n"


LEGEND = ("top-k overlap: |top_k(privacy) ∩ top_k(fairness)|, k = floor(q*N) per matrix, summed over the layer; "
          "chance: k^2/N (hypergeometric mean); p: upper tail. P∩F: the same once G (the top floor(p*N) utility "
          "entries) is removed (DEAN's coupled set), chance |P||F|/(N-|G|). zeroed: entries the mask zeroes. "
          "HSIC: biased estimator between mean-pooled fairness and privacy layer outputs, before and after the "
          "mask; nHSIC in [0, 1]; perm p: permutation test. A p-value of 0 is below floating-point range.")


# --- orchestration ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Coupling:
    report: dict[str, Any]
    table: str
    json_path: Path
    md_path: Path


def check_options(m: int, permutations: int, bandwidth: float | None) -> None:
    if m < MIN_M:
        raise CouplingError(f"--m {m} is too few probe pairs for HSIC; use --m {MIN_M} or more (default {DEFAULT_M})")
    if permutations < 0:
        raise CouplingError(f"--permutations must be >= 0 (0 skips the permutation test); got {permutations}")
    if bandwidth is not None and not bandwidth > 0:
        raise CouplingError(f"--bandwidth must be > 0 (omit it for the median heuristic); got {bandwidth}")


def prepare(model_args: str, mask: Path | None, m: int, seed: int, device: str | None = None) -> dict[str, Any]:
    """Everything that can fail on bad input, checked before any model is loaded."""
    from fairpriv.interventions.dean import DeanConfig  # imports torch: only when used

    model_kw, config_kw = split_model_args(model_args, mask)
    options = load_options(model_kw, device)
    artifact = given_artifact(mask) if mask is not None else None
    config = artifact_config(artifact) if artifact else DeanConfig.from_args(config_kw, owner=OWNER)
    return {"load": options, "artifact": artifact, "config": config, "probes": probe_sets(config, m, seed)}


def model_facts(model: Any, options: dict, artifact: Any) -> dict[str, Any]:
    """The model analysed, and whether it is the one the artifact was fitted on (a warning when not)."""
    base = loaded_identity(model, options)
    matches = same_base_model(base, artifact.manifest.get("base_model"))
    if not matches:
        log.warning("fairpriv: the DEAN artifact %s was fitted on %s, not on %s; its mask is applied anyway "
                    "(shapes are checked)", artifact.path, artifact.manifest.get("base_model"), base)
    return {"pretrained": str(options["pretrained"]), "revision": options.get("revision"), "base_model": base,
            "dtype": dtype_name(model.dtype), "matches_artifact": matches}


def run(model_args: str, mask: Path | None = None, m: int = DEFAULT_M, out: Path | None = None,
        permutations: int = N_PERMUTATIONS, seed: int = 0, bandwidth: float | None = None,
        device: str | None = None) -> Coupling:
    """Measure the coupling for one DEAN artifact and write ``coupling.json`` and ``coupling.md``. ``device`` is
    the ``--device`` flag (the same as ``device=`` in ``model_args``; default cpu)."""
    check_options(m, permutations, bandwidth)
    context = prepare(model_args, mask, m, seed, device)
    model, tokenizer = load_model(**context["load"])
    if context["artifact"] is None:
        context["artifact"], context["source"] = fitted_artifact(model, tokenizer, context["load"], context["config"])
    context.update(source=context.get("source", "given"),
                   model=model_facts(model, context["load"], context["artifact"]),
                   options={"m": m, "permutations": permutations, "seed": seed, "bandwidth": bandwidth})
    return finish(context, model, tokenizer, out)


def finish(context: dict, model: Any, tokenizer: Any, out: Path | None) -> Coupling:
    """Overlaps, HSIC before, the mask applied in place, HSIC after; then the files."""
    artifact, config, probes, options = (context[k] for k in ("artifact", "config", "probes", "options"))
    matrices = overlaps(artifact, config)
    before = dependence(model, tokenizer, probes, config, "before", options)
    apply_mask(model, artifact, config)
    after = dependence(model, tokenizer, probes, config, "after", options)
    report = json_safe(build_report(context, matrices, before, after))
    return write(report, Path(out) if out is not None else Path("coupling") / artifact.hash[:16])


def write(report: dict, out: Path) -> Coupling:
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(report)
    write_report(out / JSON_FILE, report, out / MD_FILE, table)
    return Coupling(report, table, out / JSON_FILE, out / MD_FILE)
