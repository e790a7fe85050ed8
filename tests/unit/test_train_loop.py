"""The pure pieces of the shared training loop (tokenisation, collation, loss, batching) and the sft/dp configs.

No model: a character tokenizer stub, hand-made examples and tiny logits whose losses are computed by hand.
"""

from __future__ import annotations

import math

import pytest
import torch

from fairpriv.interventions.training.loop import (
    IGNORE,
    Example,
    TrainFields,
    collate,
    encode_record,
    sequence_losses,
    shuffled_plan,
    split_eval,
    total_steps,
)
from fairpriv.interventions.base import ConfigError
from fairpriv.interventions.training.dp import DEFAULT_EPSILON, DPConfig, plan_privacy
from fairpriv.interventions.training.sft import SFTConfig

BOS, EOS, PAD = 2, 1, 0


class CharTokenizer:
    """ids = [BOS if special] + [ord(c)]: enough to see exactly where prompt, response and EOS land."""

    eos_token_id, pad_token_id, chat_template = EOS, PAD, None

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": ([BOS] if add_special_tokens else []) + [ord(c) for c in text]}


def test_prompt_labels_are_ignored_and_eos_closes_the_response():
    ex = encode_record({"prompt": "ab", "response": "cd"}, CharTokenizer(), max_length=16)
    assert ex.ids == (BOS, 97, 98, 99, 100, EOS)
    assert ex.labels == (IGNORE, IGNORE, IGNORE, 99, 100, EOS)


def test_text_records_take_the_loss_on_every_token():
    ex = encode_record({"text": "xy"}, CharTokenizer(), max_length=16)
    assert ex.ids == ex.labels == (BOS, 120, 121, EOS)


def test_truncation_keeps_the_start_and_drops_records_without_a_response_token():
    tok = CharTokenizer()
    assert encode_record({"prompt": "ab", "response": "cdef"}, tok, max_length=4).labels == (IGNORE,) * 3 + (99,)
    assert encode_record({"prompt": "abcdef", "response": "x"}, tok, max_length=4) is None


def test_chat_template_flag_needs_a_template():
    with pytest.raises(ConfigError, match="train_chat_template"):
        encode_record({"prompt": "a", "response": "b"}, CharTokenizer(), 8, chat_template=True)


def test_collate_right_pads_with_masks_positions_and_ignored_labels():
    batch = collate([Example((5, 6, 7), (IGNORE, 6, 7)), Example((8, 9), (IGNORE, 9))], pad_id=PAD)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 9, PAD]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7], [IGNORE, 9, IGNORE]]
    assert batch["position_ids"].tolist() == [[0, 1, 2], [0, 1, 2]]
    assert batch["position_ids"].is_contiguous() and batch["position_ids"].stride() == (3, 1)


def test_sequence_loss_is_the_mean_over_each_sequences_labelled_tokens():
    logits = torch.tensor([[[1.0, 2.0, 0.5], [0.0, 0.0, 3.0], [2.0, 1.0, 0.0]],
                           [[0.3, 0.1, 0.2], [1.5, -1.0, 0.0], [9.0, 9.0, 9.0]]])
    labels = torch.tensor([[IGNORE, 1, 2], [IGNORE, 0, IGNORE]])

    def nll(row, target):
        return -(row[target] - math.log(sum(math.exp(v) for v in row)))

    first = (nll([1.0, 2.0, 0.5], 1) + nll([0.0, 0.0, 3.0], 2)) / 2  # positions 0,1 predict labels 1,2
    second = nll([0.3, 0.1, 0.2], 0)  # one labelled token: its own loss, not diluted by the batch
    assert sequence_losses(logits, labels).tolist() == pytest.approx([first, second], abs=1e-6)


def test_padding_contributes_exactly_zero():
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 4, 7), torch.tensor([[IGNORE, 3, 4, 5], [IGNORE, IGNORE, 2, 6]])
    wide_logits = torch.cat([logits, 100 * torch.randn(2, 3, 7)], dim=1)  # garbage logits on padding positions
    wide_labels = torch.cat([labels, torch.full((2, 3), IGNORE)], dim=1)
    assert torch.equal(sequence_losses(logits, labels), sequence_losses(wide_logits, wide_labels))


def test_a_sequence_without_labelled_tokens_has_zero_loss_not_nan():
    assert sequence_losses(torch.randn(1, 3, 5), torch.full((1, 3), IGNORE)).tolist() == [0.0]


def test_shuffled_plan_covers_each_example_once_per_epoch_and_weights_sum_to_one():
    examples = [Example((i,), (i,)) for i in range(10)]
    plan = list(shuffled_plan(examples, SFTConfig(epochs=2, train_batch_size=4, seed=3), micro_batches=2))
    for epoch in (plan[:6], plan[6:]):  # 10 examples in logical batches 4, 4, 2 -> micro-batches 2+2, 2+2, 1+1
        assert sorted(e.ids[0] for batch, _, _ in epoch for e in batch) == list(range(10))
    steps = [w for _, w, _ in plan]
    assert steps == [0.5] * 12 and [last for _, _, last in plan] == [False, True] * 6
    assert plan == list(shuffled_plan(examples, SFTConfig(epochs=2, train_batch_size=4, seed=3), micro_batches=2))
    assert plan != list(shuffled_plan(examples, SFTConfig(epochs=2, train_batch_size=4, seed=4), micro_batches=2))


def test_short_last_batch_is_weighted_by_its_share():
    examples = [Example((i,), (i,)) for i in range(5)]
    plan = list(shuffled_plan(examples, SFTConfig(train_batch_size=4), micro_batches=4))
    assert [(len(b), w) for b, w, _ in plan] == [(1, 0.25)] * 4 + [(1, 1.0)]


def test_split_eval_is_seeded_and_disjoint():
    train, held = split_eval(list(range(20)), 0.25, seed=1)
    assert len(held) == 5 and sorted(train + held) == list(range(20))
    assert (train, held) == split_eval(list(range(20)), 0.25, seed=1)
    assert split_eval(list(range(3)), 0.0, seed=1) == ([0, 1, 2], [])


def test_total_steps_respects_max_steps():
    assert total_steps(5, 3, None) == 15 and total_steps(5, 3, 7) == 7


@pytest.mark.parametrize(
    ("args", "match"),
    [({"epochs": 0}, "'epochs' must be at least 1"), ({"eval_fraction": 1}, "'eval_fraction' must be in"),
     ({"cda_ratio": 2}, "'cda_ratio' must be in"), ({"lr": -1}, "'lr' must be positive"),
     ({"train_batch_size": 6, "grad_accum": 4}, "'grad_accum' must be a divisor of train_batch_size=6")],
)
def test_sft_config_errors_name_the_key(args, match):
    with pytest.raises(ConfigError, match=match):
        SFTConfig.from_args(args)


def test_lr_default_depends_on_the_method():
    assert SFTConfig(method="full").learning_rate == 2e-5 and SFTConfig().learning_rate == 2e-4
    assert SFTConfig(lr=1e-3).learning_rate == 1e-3


def test_dp_config_takes_epsilon_or_noise_never_both():
    assert DPConfig().epsilon == DEFAULT_EPSILON and DPConfig(noise_multiplier=1.0).epsilon is None
    with pytest.raises(ConfigError, match="'epsilon'.*or 'noise_multiplier', not both"):
        DPConfig.from_args({"epsilon": "3", "noise_multiplier": "1.1"})
    with pytest.raises(ConfigError, match="'dp_delta' must be in"):
        DPConfig(dp_delta=1.5)
    with pytest.raises(ConfigError, match="method=dora"):
        DPConfig(method="dora")


def test_dp_config_accepts_the_grad_sample_modes_and_names_the_key_otherwise():
    assert DPConfig.from_args({"grad_sample_mode": "bookkeeping"}).grad_sample_mode == "bookkeeping"
    with pytest.raises(ConfigError, match="'grad_sample_mode' must be one of auto, hooks, bookkeeping, ghost"):
        DPConfig.from_args({"grad_sample_mode": "functorch"})


def test_dp_config_round_trips_through_its_own_dict():
    cfg = DPConfig(noise_multiplier=0.7)
    assert DPConfig.from_args(cfg.to_dict()) == cfg


def test_config_names_do_not_clash_with_hflm_arguments():
    from fairpriv.models.hf import FROM_PRETRAINED_KEYS, HFLM_KEYS, OWN_KEYS

    for cfg in (SFTConfig, DPConfig, TrainFields):
        assert not set(cfg.keys()) & (HFLM_KEYS | FROM_PRETRAINED_KEYS | OWN_KEYS)


@pytest.mark.parametrize(("n", "batch", "per_epoch"), [(12, 12, 1), (10, 4, 3), (93, 1, 92)])
def test_privacy_plan_uses_opacus_sample_rate_and_its_steps_per_epoch(n, batch, per_epoch):
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    plan = plan_privacy(n, DPConfig(noise_multiplier=1.0, train_batch_size=batch, epochs=2))
    assert plan.sample_rate == 1 / math.ceil(n / batch)
    assert len(UniformWithReplacementSampler(num_samples=n, sample_rate=plan.sample_rate)) == per_epoch
    assert plan.steps == 2 * per_epoch  # int(1/q) can be ceil(n/B) - 1 (n=93): what Opacus really runs
    assert plan.delta == pytest.approx(n ** -1.1) and plan.delta_rule == "1/n^1.1"


def test_privacy_plan_calibrates_noise_for_the_exact_steps():
    from opacus.accountants import RDPAccountant

    plan = plan_privacy(40, DPConfig(epsilon=4.0, dp_delta=1e-3, train_batch_size=8, epochs=2, max_steps=7))
    acc = RDPAccountant()
    acc.history = [(plan.noise_multiplier, plan.sample_rate, plan.steps)]
    assert plan.steps == 7 and 3.95 <= acc.get_epsilon(1e-3) <= 4.0


def test_held_out_records_are_split_off_before_cda_augments_the_training_part():
    pytest.importorskip("fairpriv.text.cda")
    from fairpriv.interventions.training.loop import training_records

    records = [{"prompt": f"Why did he call number {i}?", "response": f"He called {i} because she asked him."}
               for i in range(8)]
    train, held, facts = training_records(records, SFTConfig(eval_fraction=0.25, cda_ratio=1.0))
    originals = [r for r in train if r in records]
    assert len(held) == 2 and len(originals) == 6 and not [r for r in held if r in train]
    assert len(train) == 12 and facts["cda"]["augmented"] == 6 and facts["cda"]["mode"] == "two-sided"
    assert all("she" in r["prompt"].lower() for r in train if r not in records)  # the copies swap he -> she
