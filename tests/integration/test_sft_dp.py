"""``sft`` and ``dp`` on the tiny random llama (dropout 0): values, not "it runs".

* DP with no noise and no clipping takes exactly the non-private steps (LoRA and full fine-tuning, hooks,
  book-keeping and ghost, with Opacus' physical batches smaller than the logical one);
* the epsilon reported is what an independent ``RDPAccountant`` gives for the same noise, sample rate and steps;
* both run end to end as lm-eval models and their facts reach the results JSON;
* the artifact's ``model/`` folder reloads as a plain HF model with identical logits; other artifacts, shapes,
  tied weights under ghost clipping and interrupted fits are refused.
"""

from __future__ import annotations

import json

import pytest
import torch

import fairpriv  # noqa: F401  (activates the plugin for the Python API)
from fairpriv.interventions.training import loop as _train
from fairpriv.artifacts import ArtifactError, load_artifact
from fairpriv.interventions.base import ConfigError
from fairpriv.interventions.training.dp import DP, DPConfig
from fairpriv.interventions.training.sft import SFT, SFTConfig

from conftest import evaluate_toy as evaluate, make_lm

RECORDS = [{"prompt": f"Question {i}: what is {i} plus one?", "response": f" The answer is {i + 1}."}
           for i in range(12)]
SMALL = "n_samples=8,train_batch_size=4,train_max_length=160,epochs=1"  # the tiny BPE: ~1 token per char


def load(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)


@pytest.fixture(scope="module")
def tok(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def max_diff(a, b) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max(float((sa[k] - sb[k]).abs().max()) for k in sa)


# ---- the loop itself ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "mode"), [("lora", "hooks"), ("lora", "bookkeeping"), ("full", "hooks"),
                                             ("full", "bookkeeping"), ("full", "ghost")])
def test_dp_without_noise_or_clipping_equals_the_non_private_steps(tiny_model, tok, method, mode):
    common = {"method": method, "epochs": 3, "train_batch_size": 12, "lr": 1e-3}  # sample rate 1: all 12 every step
    sft, _ = SFT(SFTConfig(**common)).train(load(tiny_model), tok, RECORDS)
    dp_cfg = DPConfig(noise_multiplier=0.0, max_grad_norm=1e9, physical_batch_size=5, grad_sample_mode=mode, **common)
    dp, facts = DP(dp_cfg).train(load(tiny_model), tok, RECORDS)
    assert (facts["steps"], facts["sample_rate"], facts["grad_sample_mode"]) == (3, 1.0, mode)
    assert facts["private"] is False and facts["epsilon"] is None  # no noise: no privacy claim
    assert max_diff(sft, load(tiny_model)) > 1e-3  # it trained
    assert max_diff(sft, dp) < 1e-5


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_reported_epsilon_is_what_an_independent_accountant_gives(tiny_model, tok, accountant):
    from opacus.accountants import PRVAccountant, RDPAccountant

    cfg = DPConfig(epsilon=5.0, train_batch_size=3, epochs=2, accountant=accountant)
    _, facts = DP(cfg).train(load(tiny_model), tok, RECORDS)
    assert (facts["steps"], facts["accountant_steps"], facts["sample_rate"]) == (8, 8, 0.25)
    acc = {"rdp": RDPAccountant, "prv": PRVAccountant}[accountant]()
    for _ in range(8):
        acc.step(noise_multiplier=facts["noise_multiplier"], sample_rate=0.25)
    assert facts["delta"] == pytest.approx(12 ** -1.1) and facts["delta_rule"] == "1/n^1.1"
    assert facts["epsilon"] == pytest.approx(acc.get_epsilon(facts["delta"]), rel=1e-12)
    assert 4.9 < facts["epsilon"] <= 5.0 and facts["private"] is True and facts["accountant"] == accountant


def test_empty_poisson_batches_still_step_and_are_counted(tiny_model, tok, monkeypatch):
    from fairpriv.interventions.training import dp as dp_module

    empties, real = [], dp_module._empty_gradients
    monkeypatch.setattr(dp_module, "_empty_gradients", lambda *a: (empties.append(1), real(*a)))
    cfg = DPConfig(noise_multiplier=1.0, train_batch_size=1, epochs=1)  # q = 1/12: about a third of batches empty
    _, facts = DP(cfg).train(load(tiny_model), tok, RECORDS)
    assert empties and facts["steps"] == facts["accountant_steps"] == facts["planned_steps"] == 12


def test_training_is_deterministic_for_a_seed(tiny_model, tok):
    cfg = DPConfig(epsilon=3.0, train_batch_size=4, seed=7)
    (a, fa), (b, fb) = (DP(cfg).train(load(tiny_model), tok, RECORDS) for _ in range(2))
    assert max_diff(a, b) == 0 and fa["train_loss_last_step"] == fb["train_loss_last_step"]


@pytest.mark.parametrize("method", ["lora", "dora", "full"])
def test_sft_methods_train_and_leave_a_plain_model(tiny_model, tok, method):
    model, facts = SFT(SFTConfig(method=method, lr=1e-3, train_batch_size=4, grad_accum=2, eval_fraction=0.25)).train(
        load(tiny_model), tok, RECORDS)
    assert type(model).__name__ == "LlamaForCausalLM" and not model.training
    assert not any(type(m).__module__.startswith("peft") for m in model.modules())  # adapters merged away
    assert (facts["n_train"], facts["n_eval"], facts["steps"]) == (9, 3, 3) and facts["eval_loss"] > 0
    assert max_diff(model, load(tiny_model)) > 1e-4


def test_padding_does_not_change_a_sequences_loss_in_the_model(tiny_model, tok):
    model = load(tiny_model)
    examples, _ = _train.encode_records(RECORDS[:3], tok, 64)
    long = _train.Example(tuple(range(3, 40)), (_train.IGNORE,) + tuple(range(4, 40)))
    with torch.no_grad():
        alone = torch.cat([_train.forward_losses(model, _train.collate([e], 0)) for e in examples])
        padded = _train.forward_losses(model, _train.collate(examples + [long], 0))[:3]
    assert torch.allclose(alone, padded, atol=1e-5, rtol=0)


def test_ghost_clipping_refuses_tied_trainable_weights(tiny_model, tok):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(tiny_model)
    config.tie_word_embeddings = True
    model = AutoModelForCausalLM.from_config(config)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    with pytest.raises(ConfigError, match=r"ghost cannot train tied weights \(.*embed_tokens.weight = lm_head.weight"):
        DP(DPConfig(method="full", grad_sample_mode="ghost", noise_multiplier=1.0)).train(model, tok, RECORDS)


def test_dp_refuses_gradient_checkpointing(tiny_model, tok):
    model = load(tiny_model)
    model.gradient_checkpointing_enable()
    with pytest.raises(ConfigError, match="gradient checkpointing"):
        DP(DPConfig(method="full", noise_multiplier=1.0)).train(model, tok, RECORDS)


# ---- as lm-eval models and artifacts ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sft_artifact(tiny_model, tmp_path_factory):
    from fairpriv.fit import fit_from_args

    out = tmp_path_factory.mktemp("sft-art") / "art"
    fit_from_args("sft", f"pretrained={tiny_model},{SMALL},lr=1e-3", out=out)
    return out


def test_sft_hf_end_to_end_records_its_facts(tiny_model, fairpriv_home):
    result = evaluate("sft-hf", f"pretrained={tiny_model},{SMALL}")
    info = result["config"]["fairpriv"]
    facts = info["facts"]
    assert info["intervention"] == "sft" and info["artifact_source"] == "fitted"
    assert facts["data"]["source"] == "builtin" and facts["data"]["n"] == 8 and len(facts["data"]["sha256"]) == 64
    assert facts["steps"] == 2 and facts["method"] == "lora" and facts["private"] is False
    json.dumps(result["config"], default=str)


def test_dp_hf_end_to_end_records_the_privacy_facts(tiny_model, fairpriv_home):
    result = evaluate("dp-hf", f"pretrained={tiny_model},{SMALL},epsilon=8,max_grad_norm=0.5")
    facts = result["config"]["fairpriv"]["facts"]
    n = facts["n_train"]  # records whose prompt fills train_max_length have no response token and are dropped
    assert n + facts["n_dropped_no_response"] == 8 and facts["delta"] == pytest.approx(n ** -1.1)
    assert facts["private"] is True and 7.9 < facts["epsilon"] <= 8.0
    assert (facts["accountant"], facts["sampling"], facts["max_grad_norm"]) == ("rdp", "poisson", 0.5)
    assert (facts["steps"], facts["privacy_unit"], facts["grad_sample_mode"]) == (2, "sequence", "hooks")
    assert facts["noise_multiplier"] > 0
    json.dumps(result["config"], default=str)


def test_dp_refuses_an_sft_artifact(tiny_model, sft_artifact, fairpriv_home):
    with pytest.raises(ArtifactError, match="made by intervention 'sft', not 'dp'"):
        make_lm("dp", tiny_model, artifact=str(sft_artifact))


def test_saved_model_folder_reloads_with_identical_logits(tiny_model, sft_artifact, fairpriv_home):
    lm = make_lm("sft", tiny_model, artifact=str(sft_artifact))
    plain = load(sft_artifact / "model").eval()
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    with torch.no_grad():
        applied, reloaded, base = (m(ids).logits for m in (lm.model, plain, load(tiny_model)))
    assert torch.equal(applied, reloaded) and not torch.allclose(applied, base)
    assert (sft_artifact / "model" / "tokenizer.json").is_file()


def test_apply_refuses_a_model_of_another_shape(tiny_model, sft_artifact):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(tiny_model)
    config.intermediate_size = 48
    other = AutoModelForCausalLM.from_config(config)
    with pytest.raises(ArtifactError, match=r"does not fit this model \(.*mlp.*\[64, 32\] vs model \[48, 32\]"):
        SFT(SFTConfig()).apply(other, load_artifact(sft_artifact, "sft"))


def test_interrupted_fit_leaves_no_usable_artifact(tiny_model, fairpriv_home, monkeypatch):
    calls, real = [], _train.forward_losses

    def interrupted(model, batch):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("interrupted")
        return real(model, batch)

    monkeypatch.setattr(_train, "forward_losses", interrupted)
    with pytest.raises(RuntimeError, match="interrupted"):
        make_lm("sft", tiny_model, n_samples=8, train_batch_size=4, train_max_length=160)
    assert list((fairpriv_home / "artifacts" / "sft").glob("*")) == []  # the folder itself is removed when empty
    monkeypatch.setattr(_train, "forward_losses", real)  # not undo(): that would also drop FAIRPRIV_HOME
    assert make_lm("sft", tiny_model, n_samples=8, train_batch_size=4, train_max_length=160).artifact_source == "fitted"
