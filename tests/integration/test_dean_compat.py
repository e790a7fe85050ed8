"""``compat=release`` on the tiny llama with the CSVs released with DEAN (``../shared/datasets/dean``): the masks
equal a re-implementation of the released procedure written here step by step (issue 15).

The reference follows the released scoring and selection as read from ChnQ/DEAN (``src/utils.py``,
``src/compute_importance_score.py``, ``src/dean.py``), in this test's own code:

1. sampling: read the CSV with ``datasets``' CSV loader, ``shuffle(seed=0)``, keep the first n rows;
2. tokenisation: prompt ids with the tokenizer's special tokens, response ids likewise minus their first token,
   concatenated; labels = the ids with the prompt positions set to -100;
3. scoring, one decoder layer at a time: for every example, the model's own loss (``labels=``) and the gradient of
   that layer's linear weights; |gradient| added up over examples; score = |W| * sum;
4. selection per matrix: int(p * cols * rows) utility entries (G), int(q * cols * rows) privacy and fairness
   entries, both sorted by flat index, paired position by position; privacy indices where both are outside G.

Equal scores at a cut (none are expected in float32 here) take the lower flat index, fairpriv's documented rule.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import fairpriv  # noqa: F401  (activates the plugin for the Python API)
from fairpriv.interventions.base import ConfigError

DEAN = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "dean"
FILES = {"utility": "alpaca_cleaned_no_safety_train_1k.csv", "privacy": "beaver_train330k_privacy_safe_1k.csv",
         "fairness": "beaver_train330k_fairness_safe_1k.csv"}
N, SEED = 6, 0

pytestmark = pytest.mark.skipif(not all((DEAN / f).is_file() for f in FILES.values()),
                                reason="../shared/datasets/dean is absent (fresh clone)")


def compat_args(**kw):
    args = {f"{kind}_data": str(DEAN / name) for kind, name in FILES.items()}
    return {**args, "n_samples": N, "seed": SEED, "p": 0.02, "q": 0.02, "target": "all", "mode": "official",
            "compat": "release", **kw}


def make_lm(tiny_model, **kw):
    from fairpriv.models.hf import model_class

    return model_class("dean")(pretrained=str(tiny_model), device="cpu", batch_size=2, **kw)


# ------------------------------------------------------------------------------------------------ reference


def release_sample(path: Path) -> list[tuple[str, str]]:
    from datasets import load_dataset

    rows = load_dataset("csv", data_files={"train": str(path)}, split="train").shuffle(seed=SEED).select(range(N))
    return list(zip(rows["prompt"], rows["response"]))


def release_example(tok, prompt: str, response: str) -> tuple[torch.Tensor, torch.Tensor]:
    prompt_ids = tok(prompt, return_tensors="pt").input_ids
    response_ids = tok(response, return_tensors="pt").input_ids[:, 1:]
    ids = torch.cat([prompt_ids, response_ids], dim=1)
    labels = ids.clone()
    labels[:, : prompt_ids.shape[1]] = -100
    return ids, labels


def release_scores(model, tok, pairs, dtype=torch.float32) -> dict[str, torch.Tensor]:
    """Layer by layer, as released: every example again for each decoder layer's linear weights."""
    examples = [release_example(tok, p, r) for p, r in pairs]
    scores = {}
    for i, layer in enumerate(model.model.layers):
        linears = {f"model.layers.{i}.{n}": m for n, m in layer.named_modules() if isinstance(m, torch.nn.Linear)}
        sums = {n: torch.zeros_like(m.weight, dtype=dtype) for n, m in linears.items()}
        for ids, labels in examples:
            loss = model(input_ids=ids, labels=labels).loss
            grads = torch.autograd.grad(loss, [m.weight for m in linears.values()])
            for n, g in zip(linears, grads):
                sums[n] += g.abs().to(dtype)
        scores.update({n: linears[n].weight.detach().abs().to(dtype) * sums[n] for n in linears})
    return scores


def top_set(score: torch.Tensor, k: int) -> set[int]:
    order = torch.sort(score.flatten().float(), descending=True, stable=True).indices  # ties: lower index first
    return set(order[:k].tolist())


def release_select(scores: dict, p: float, q: float) -> dict[str, set[int]]:
    out = {}
    for name, u in scores["utility"].items():
        rows, cols = u.shape
        g = top_set(u, int(p * cols * rows))
        k = int(q * cols * rows)
        priv, fair = sorted(top_set(scores["privacy"][name], k)), sorted(top_set(scores["fairness"][name], k))
        out[name] = {a for a, b in zip(priv, fair) if a not in g and b not in g}
    return out


@pytest.fixture(scope="module")
def reference(tiny_model):
    model, tok = AutoModelForCausalLM.from_pretrained(tiny_model).eval(), AutoTokenizer.from_pretrained(tiny_model)
    pairs = {kind: release_sample(DEAN / name) for kind, name in FILES.items()}
    return model, tok, pairs, {kind: release_scores(model, tok, pairs[kind]) for kind in FILES}


def changed_entries(lm, base) -> dict[str, set[int]]:
    out = {}
    for name, param in base.named_parameters():
        diff = (lm.model.get_parameter(name) != param).reshape(-1)
        out[name.removesuffix(".weight")] = set(torch.nonzero(diff).reshape(-1).tolist())
    return out


# ------------------------------------------------------------------------------------------------ tests


def test_release_sampling_is_a_numpy_permutation_of_the_csv_rows():
    """The rows ``datasets`` picks are the first n of numpy's default_rng(seed) permutation of the file's rows."""
    from fairpriv.interventions.dean.compat import load_release_pairs

    path = DEAN / FILES["privacy"]
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    order = np.random.default_rng(SEED).permutation(len(rows))[:N]
    pairs = load_release_pairs(str(path), "privacy", N, SEED)
    assert [r["prompt"] for r in pairs.records] == [rows[i]["prompt"] for i in order]
    assert pairs.describe()["available"] == len(rows) == 1000


def test_release_tokenisation_drops_the_first_response_token(tiny_model):
    from fairpriv.interventions.dean.compat import encode_release

    tok = AutoTokenizer.from_pretrained(tiny_model)
    ex = encode_release(tok, "The capital of France is", " Paris.")
    prompt, response = tok("The capital of France is")["input_ids"], tok(" Paris.")["input_ids"]
    assert ex.input_ids.tolist() == prompt + response[1:]  # this tokenizer adds no BOS: a real token goes
    assert ex.labels.tolist() == [-100] * len(prompt) + response[1:]


@pytest.mark.parametrize("p,q", [(0.02, 0.02), (0.01, 0.03)])
def test_compat_release_masks_equal_the_release_reference(tiny_model, fairpriv_home, reference, p, q):
    base, _, _, scores = reference
    expected = release_select(scores, p, q)
    lm = make_lm(tiny_model, **compat_args(p=p, q=q))
    changed = changed_entries(lm, base)
    assert sum(len(v) for v in expected.values()) > 0 and len(expected) == 14
    for name in expected:
        assert changed.get(name, set()) == expected[name], name
    assert all(not v for n, v in changed.items() if n not in expected)
    scoring = lm.artifact.manifest["facts"]["scoring"]
    assert (scoring["compat"], scoring["counting"], scoring["dropped_examples"]) == \
        ("release", "release", {"utility": 0, "privacy": 0, "fairness": 0})


def test_compat_release_picks_the_release_examples(tiny_model, fairpriv_home, reference):
    _, _, pairs, _ = reference
    lm = make_lm(tiny_model, **compat_args())
    data = lm.artifact.manifest["facts"]["scoring"]["data"]
    from fairpriv.interventions.dean.compat import load_release_pairs

    for kind in FILES:
        got = load_release_pairs(str(DEAN / FILES[kind]), kind, N, SEED)
        assert [(r["prompt"], r["response"]) for r in got.records] == pairs[kind]
        assert data[kind]["sha256"] == got.sha256


def test_bfloat16_accumulation_equals_the_reference_in_bfloat16(tiny_model, fairpriv_home, reference):
    base, tok, pairs, _ = reference
    scores = {kind: release_scores(base, tok, pairs[kind], torch.bfloat16) for kind in FILES}
    expected = release_select(scores, 0.02, 0.02)
    lm = make_lm(tiny_model, **compat_args(score_dtype="bfloat16"))
    changed = changed_entries(lm, base)
    assert all(changed.get(n, set()) == expected[n] for n in expected)


def test_compat_is_part_of_both_cache_keys(tiny_model, fairpriv_home):
    fairpriv_args = {k: v for k, v in compat_args(mode="set").items() if k != "compat"}
    plain = make_lm(tiny_model, **fairpriv_args)
    release = make_lm(tiny_model, **compat_args(mode="set"))
    assert plain.artifact.hash != release.artifact.hash
    assert plain.artifact.manifest["config"]["compat"] == "none"
    assert release.artifact.manifest["facts"]["scoring"]["lists"] == "scored"  # not the plain run's scores
    keys = {x.artifact.manifest["facts"]["scoring"]["score_cache_key"] for x in (plain, release)}
    assert len(keys) == 2


def test_compat_release_refuses_what_the_release_cannot_read(tiny_model, fairpriv_home):
    with pytest.raises(ConfigError, match="compat=release samples a local .csv"):
        make_lm(tiny_model, **compat_args(fairness_data="builtin"))
    with pytest.raises(ConfigError, match="uses no chat template"):
        make_lm(tiny_model, **compat_args(chat_template=True))
    with pytest.raises(ConfigError, match="has only 1000 rows"):
        make_lm(tiny_model, **compat_args(n_samples=1001))


# ------------------------------------------------------------------------------------------------ embedded model


@pytest.mark.slow
def test_official_mode_on_the_embedded_model_zeroes_what_the_release_zeroes(tmp_path):
    """The released selection code, run on fairpriv's scores of the embedded model (8 examples per released CSV,
    MLP matrices, p = q = 1e-4), zeroes 2,766 entries (the count reported when the mismatch was found; the old
    score-order pairing zeroed 2,916). The same inputs through mode=official must zero exactly those 2,766."""
    from fairpriv import assets
    from fairpriv.fit import fit_from_args

    if assets.status("smollm2-135m-instruct-q4_1") != "ok":
        pytest.skip("the embedded model is not fetched (run `fairpriv assets fetch`)")
    data = ",".join(f"{kind}_data={DEAN / name}" for kind, name in FILES.items())
    args = f"pretrained=fairpriv:smollm2-135m-instruct-q4_1,p=1e-4,q=1e-4,mode=official,n_samples=8,{data}"
    total = fit_from_args("dean", args, out=tmp_path / "mask").manifest["facts"]["total"]
    assert total["zeroed"] == 2766 and total["numel"] == 79626240


def mask_digest(mask: dict) -> str:
    """sha256 of 'module:i,j,...;...' with modules and flat indices sorted."""
    import hashlib

    text = ";".join(f"{n}:" + ",".join(map(str, sorted(v.tolist()))) for n, v in sorted(mask.items()))
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.slow
def test_compat_release_on_the_embedded_model_gives_the_released_masks(tmp_path):
    """The released code itself (its scoring and selection functions, float32 weights on the CPU, the model's fast
    tokenizer, 8 examples per released CSV, MLP matrices, p = q = 1e-4) zeroed 3,300 entries of the embedded model;
    this is the sha256 of its masks, recorded when it was run beside fairpriv. compat=release must give them."""
    from fairpriv import assets
    from fairpriv.fit import fit_from_args

    if assets.status("smollm2-135m-instruct-q4_1") != "ok":
        pytest.skip("the embedded model is not fetched (run `fairpriv assets fetch`)")
    data = ",".join(f"{kind}_data={DEAN / name}" for kind, name in FILES.items())
    args = f"pretrained=fairpriv:smollm2-135m-instruct-q4_1,p=1e-4,q=1e-4,mode=official,compat=release,n_samples=8,{data}"
    artifact = fit_from_args("dean", args, out=tmp_path / "mask")
    assert artifact.manifest["facts"]["total"]["zeroed"] == 3300
    released = "5d743d96a186ce255213f1c7c3ca1690305da6e05286392c78599edcc8c16ac4"
    assert mask_digest(artifact.load_tensors("mask.safetensors")) == released
