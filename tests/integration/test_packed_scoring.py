"""fairpriv's log-likelihood scoring (shared contexts, logits where read, sorted rolling windows) against lm-eval's
own HFLM on the same tiny random model: same log-likelihoods (float rounding) and greedy flags, fewer token slots."""

import logging

import pytest

torch = pytest.importorskip("torch")

from lm_eval.api.instance import Instance  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402

from fairpriv.models.hf import PlainLM  # noqa: E402

QUESTIONS = [
    ("Question: what do bees make? Answer:", [" honey.", " bread and butter today", " 0 1 2", " Paris"]),
    ("The capital of France is", [" Paris.", " Rome. The capital of Italy is Paris."]),
    ("0 1 2 3 4 5", [" 6", " 7"]),  # one-token options
    ("The", [" number after one is two, and the number after two is three."]),
]
TEXTS = ["The number after one is two, and the number after two is three. " * 3,
         "Question: what do bees make? Answer: honey.", "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 " * 4, "Paris"]


def requests(lm):
    out = []
    for ctx, options in QUESTIONS:
        for option in options:
            ctx_enc, cont_enc = lm._encode_pair(ctx, option)
            out.append(((ctx, option), ctx_enc, cont_enc))
    ctx_enc = lm.tok_encode("The capital of France is")  # and the model's own greedy continuation: greedy is True
    with torch.no_grad():
        greedy = lm.model.generate(torch.tensor([ctx_enc]), max_new_tokens=3, do_sample=False)[0, len(ctx_enc):]
    out.append((None, ctx_enc, greedy.tolist()))
    return out


def token_slots(lm) -> list[int]:
    """Counts input_ids elements fed to the model (a forward pre-hook)."""
    seen = []
    lm.model.register_forward_pre_hook(lambda m, args, kwargs: seen.append(kwargs.get("input_ids", args[0] if args
                                                                                      else None).numel()),
                                       with_kwargs=True)
    return seen


@pytest.fixture(scope="module")
def pair(tiny_model):
    ours = PlainLM(pretrained=str(tiny_model), device="cpu", batch_size=3, dtype="float32")
    theirs = HFLM(pretrained=str(tiny_model), device="cpu", batch_size=3, dtype="float32")
    return ours, theirs


def test_multiple_choice_matches_hflm_with_fewer_token_slots(pair):
    ours, theirs = pair
    reqs = requests(theirs)
    slots_ours, slots_theirs = token_slots(ours), token_slots(theirs)
    got, want = ours._loglikelihood_tokens(reqs), theirs._loglikelihood_tokens(reqs)
    assert len(got) == len(want) == 10
    assert got[-1][1] is True and [g for _, g in got[:-1]] == [False] * 9
    for (ll, greedy), (ll_ref, greedy_ref) in zip(got, want):
        assert ll == pytest.approx(ll_ref, abs=1e-4)
        assert greedy == greedy_ref
    assert ours._fp_packing_checked is True
    # contexts are computed once per question: by hand, HFLM feeds every (ctx + option)[:-1], padded per batch
    assert sum(slots_ours[-3:]) < sum(slots_theirs)


def test_rolling_perplexity_matches_hflm(pair):
    ours, theirs = pair
    docs = [Instance("loglikelihood_rolling", {}, (text,), i) for i, text in enumerate(TEXTS)]
    got, want = ours.loglikelihood_rolling(docs), theirs.loglikelihood_rolling(docs)
    assert got == pytest.approx(want, abs=1e-4)
    assert all(value < 0 for value in got)


def test_share_contexts_false_is_hflm_code(tiny_model, pair):
    plain = PlainLM(pretrained=str(tiny_model), device="cpu", batch_size=3, dtype="float32", share_contexts=False)
    reqs = requests(plain)
    assert plain._loglikelihood_tokens(reqs) == pair[1]._loglikelihood_tokens(reqs)  # the very same code
    assert plain._fp_packing_checked is None


def test_bad_share_contexts_value(tiny_model):
    with pytest.raises(Exception, match="share_contexts"):
        PlainLM(pretrained=str(tiny_model), device="cpu", batch_size=3, share_contexts="sometimes")


def test_a_model_that_ignores_the_mask_falls_back(tiny_model, pair, monkeypatch, caplog):
    """A model that drops the packed attention mask fails the start check: HFLM's code scores, with a warning."""
    lm = PlainLM(pretrained=str(tiny_model), device="cpu", batch_size=3, dtype="float32")
    forward = lm.model.forward
    monkeypatch.setattr(lm.model, "forward", lambda *a, attention_mask=None, **kw: forward(*a, **kw))
    reqs = requests(lm)
    with caplog.at_level(logging.WARNING, logger="fairpriv.models.loglikelihood"):
        got = lm._loglikelihood_tokens(reqs)
    assert lm._fp_packing_checked is False
    assert "disagrees with HFLM" in caplog.text
    assert got == pair[1]._loglikelihood_tokens(reqs)


def test_intervention_models_use_it():
    from fairpriv.models.hf import model_class
    from fairpriv.models.loglikelihood import PackedScoring

    for name in ("dean", "sft", "dp", "cda"):
        cls = model_class(name)
        assert cls.__mro__.index(PackedScoring) < cls.__mro__.index(HFLM)
        assert "share_contexts" in cls.accepted_keys()


def test_a_runs_plain_cells_score_like_lm_evals_hf(tmp_path, tiny_model):
    """``fairpriv run`` builds its plain variant as PlainLM; per-sample log-likelihoods equal lm-eval's ``hf``."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from conftest import TEST_TASKS
    from fairpriv.experiment import spec
    from fairpriv.experiment.cells import build_lm

    exp = spec.parse({"name": "p", "models": [str(tiny_model)], "tasks": ["fairpriv_test_toy"],
                      "settings": {"batch_size": 4}}, source=str(tmp_path / "p.yaml"))
    cell = exp.cells[0]
    lm = build_lm(cell.model, cell.variant, exp.settings)
    assert type(lm) is PlainLM and cell.lm_eval_model == "hf"

    def samples(model, **kw):
        out = lm_eval.simple_evaluate(model=model, tasks=["fairpriv_test_toy"], log_samples=True, limit=8,
                                      task_manager=TaskManager(include_path=str(TEST_TASKS), include_defaults=False),
                                      **kw)
        return [[float(r[0][0]) for r in s["resps"]] for s in out["samples"]["fairpriv_test_toy"]]

    ours = samples(lm)
    theirs = samples("hf", model_args=f"pretrained={tiny_model},dtype=float32", device="cpu", batch_size=4)
    assert lm._fp_packing_checked is True and len(ours) == 8
    assert [v for doc in ours for v in doc] == pytest.approx([v for doc in theirs for v in doc], abs=1e-4)
