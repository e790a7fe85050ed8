"""``dp``: differentially private fine-tuning (DP-SGD with AdamW, i.e. DP-Adam) with Opacus.

The DP bias-amplification study (arXiv 2402.04489) fine-tunes language models with DP-Adam at epsilon in {3, 10,
20} and finds that DP amplifies gender bias relative to the same non-private fine-tuning; CDA counteracts it
(``cda_ratio``). To make that comparison clean, this intervention shares everything with ``sft`` (data, tokenisation,
loss, optimiser, LoRA/full fine-tuning) and changes only the privacy mechanism:

* Poisson sampling with sample rate ``q = 1 / ceil(n / train_batch_size)`` (Opacus' convention), split into
  physical batches of at most ``physical_batch_size`` by Opacus' ``BatchMemoryManager`` (same update, less memory);
* per-sequence gradients clipped to ``max_grad_norm`` and Gaussian noise ``noise_multiplier * max_grad_norm``;
* the noise is calibrated to a target ``epsilon`` at ``dp_delta`` (default 1/n^1.1) by the chosen accountant (``rdp``
  or ``prv``) for the exact number of logical steps, or given directly as ``noise_multiplier``;
* the epsilon recorded is the one that accountant reports after the steps actually taken.

The plan is checked before the model is touched (n = training sequences after the held-out split and CDA):
delta must be below 1/n (:func:`privacy_delta` says why), a target epsilon that no noise reaches is refused with
the fixes, and so is a plan whose accountant epsilon is negative (a meaningless bound at a large delta and small
n, e.g. epsilon=1e-9 with 16 records); a negative epsilon is never recorded.

Per-sample gradients (``grad_sample_mode``; ``auto`` picks ``bookkeeping`` for full fine-tuning, ``hooks`` for
LoRA):

* ``hooks``: Opacus materialises every trainable parameter's per-sample gradient (``B x`` the parameter), takes
  their norms, clips and sums them. For full fine-tuning of SmolLM2-135M that is ``B x 134.5M`` floats per physical
  batch, twice ``B x 49152 x 576`` for the tied embedding / LM head alone; at short sequences this, and the memory
  it touches, is most of the DP step.
* ``bookkeeping`` (the book-keeping algorithm of Bu et al., "Differentially Private Optimization on Large Model at
  Small Cost", ICML 2023): for ``nn.Linear`` and ``nn.Embedding`` layers forward/backward hooks keep each layer's
  input and output gradient instead. A Linear weight's per-sample gradient is ``G_i = sum_t g_it a_it^T`` (an
  Embedding's is ``sum_t onehot(x_it) e_it^T``), so ``||G_i||^2 = sum_{t,s} (g_it.g_is)(a_it.a_is)`` comes from two
  ``T x T`` Gram matrices (the "ghost norm"; for a tied weight the cross terms between its uses are added the same
  way), or from the materialised ``G_i`` of one layer at a time when that is cheaper (``T (d_in + d_out) > d_in
  d_out``, e.g. LoRA's thin matrices). Once every sample's total norm is known (Opacus still computes the per-sample
  gradients of the other parameters, e.g. RMSNorm weights), the clipped sum ``sum_i c_i G_i`` is one matrix product
  of the output gradients with the inputs, one side weighted by ``c_i`` (an ``index_add`` for an Embedding), and Opacus adds the
  noise. No ``B x`` parameter tensor is ever formed, and the layers' ordinary weight gradients are not computed
  (the layers' weights do not require grad while hooked): what remains over a non-private step is mostly the noise
  for every parameter and the Gram matrices (``benchmarks/dp_overhead.py``).
  The clipped sum is the same as Opacus' up to float rounding (tests compare both, and an independent per-sequence
  autograd loop). Unlike Opacus' Embedding sampler it leaves the ``padding_idx`` row out of the embedding's
  gradient, as autograd does.
* ``ghost``: Opacus' ghost clipping (a second backward pass); it refuses tied weights.

The privacy unit is one training sequence (one prompt/response or text record). Documents chunked into several sequences
get chunk-level DP only, and with two-sided CDA a record and its counterfactual copy are two sequences, so the
guarantee for the original record is group privacy for two. Losses recorded in the facts are computed on the raw
data and are not covered by the guarantee. The noise comes from a seeded (reproducible, not cryptographically
secure) generator on the trainable parameters' device (Opacus draws it there; a CPU generator fails on CUDA);
the Poisson sampler's index generator stays on the CPU. The Opacus pitfalls handled here, and what was measured
about them, are in ``docs/science.md`` §3.

Several processes (``torchrun --nproc_per_node N -m fairpriv fit dp ...``; :mod:`.distributed`): each rank
takes its shard of the one-process Poisson batch (the same sample rate, expected batch size, steps and epsilon),
clips its own sequences, rank 0 alone adds the noise, and the scaled sums are added over the ranks, so with the
same seed the update is the one-process update. The facts record ``world_size`` and ``noise_draws`` (over all
ranks: one per logical step).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import torch

from fairpriv.interventions.training import distributed as procs, loop
from fairpriv.interventions.training.bookkeeping import (
    BookKeeper,
    bookkeeping_optimizer,
    bookkeeping_problems,
    refuse_bookkeeping,
)
from fairpriv.interventions.base import ConfigError
from fairpriv.interventions.summaries import TrainingSummary
from fairpriv.interventions.training.loop import Example, TrainFields, TrainingIntervention

DEFAULT_EPSILON = 8.0
PRIVACY_UNIT_NOTE = (
    "one training sequence (a prompt/response record, or one text record); chunked documents get chunk-level DP, "
    "and with two-sided CDA a record and its counterfactual copy are two sequences: the guarantee for an original "
    "record is group privacy for records_per_original sequences"
)


@dataclasses.dataclass(frozen=True)
class DPConfig(TrainFields):
    """``epsilon`` (target, positive and finite) or ``noise_multiplier`` (>= 0 and finite), not both; neither means
    epsilon 8. ``dp_delta`` is delta (the key ``delta`` belongs to HFLM, which uses it for weight deltas): in (0, 1)
    here, and below 1/n for n training sequences when the plan is made (:func:`privacy_delta`)."""

    epsilon: float | None = None
    noise_multiplier: float | None = None
    dp_delta: float | None = None
    max_grad_norm: float = 1.0
    accountant: Literal["rdp", "prv"] = "rdp"
    physical_batch_size: int | None = None
    grad_sample_mode: Literal["auto", "hooks", "bookkeeping", "ghost"] = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.epsilon is not None and self.noise_multiplier is not None:
            raise ConfigError("give 'epsilon' (the accountant calibrates the noise) or 'noise_multiplier', not both; "
                              "drop one of them")
        if self.epsilon is None and self.noise_multiplier is None:
            object.__setattr__(self, "epsilon", DEFAULT_EPSILON)
        if self.method == "dora":
            raise ConfigError("dp does not support method=dora: Opacus cannot compute per-sample gradients of DoRA's "
                              "magnitude vector (peft's DoraLinearLayer takes module arguments that Opacus' "
                              "functorch fallback cannot replay); use method=lora or method=full")
        self._check_values()

    def _check_values(self) -> None:
        checks = [
            ("epsilon", self.epsilon is None or 0 < self.epsilon < math.inf, "must be positive and finite"),
            ("noise_multiplier", self.noise_multiplier is None or 0 <= self.noise_multiplier < math.inf,
             "must be >= 0 and finite"),
            ("dp_delta", self.dp_delta is None or 0 < self.dp_delta < 1,
             "must be in (0, 1) and below 1/n for n training sequences (or none for 1/n^1.1)"),
            ("max_grad_norm", 0 < self.max_grad_norm < math.inf, "must be positive and finite"),
            ("physical_batch_size", self.physical_batch_size is None or self.physical_batch_size >= 1,
             "must be at least 1 (or none for train_batch_size)"),
        ]
        for key, ok, rule in checks:
            if not ok:
                raise ConfigError(f"'{key}' {rule}; got {getattr(self, key)!r}.")


# --------------------------------------------------------------------------------------------------------------
# The privacy plan: sample rate, steps, delta and noise, all fixed before training
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PrivacyPlan:
    n: int
    sample_rate: float
    steps: int
    delta: float
    delta_rule: str
    noise_multiplier: float


def plan_privacy(n: int, cfg: DPConfig) -> PrivacyPlan:
    """Opacus' sample rate for ``n`` training sequences, the exact logical steps, delta and the noise (calibrated
    to ``epsilon``, or given), all checked here, before any training: delta must be below 1/n
    (:func:`privacy_delta`), the budget reachable (:func:`calibrate_noise`) and the plan's epsilon not negative
    (:func:`check_planned_epsilon`)."""
    sample_rate = 1 / math.ceil(n / cfg.train_batch_size)
    steps = loop.total_steps(int(1 / sample_rate), cfg.epochs, cfg.max_steps)  # Opacus' own steps per epoch
    delta, rule = privacy_delta(n, cfg.dp_delta)
    noise = cfg.noise_multiplier
    if noise is None:
        noise = calibrate_noise(cfg.epsilon, delta, sample_rate, steps, cfg.accountant, n=n)
    plan = PrivacyPlan(n, sample_rate, steps, delta, rule, noise)
    check_planned_epsilon(plan, cfg)
    return plan


def privacy_delta(n: int, given: float | None) -> tuple[float, str]:
    """``(delta, rule)``: ``given``, or 1/n^1.1 by default; either must be below 1/n.

    The rule: delta < 1/n is required, n the number of training sequences (the privacy unit). A mechanism that
    publishes each sequence whole with probability delta is (0, delta)-DP, so at delta >= 1/n "private" permits
    leaking about one sequence outright and the guarantee says nothing. The default 1/n^1.1 = (1/n) * n^-0.1 is
    below 1/n for every n >= 2 (n = 1 gives delta 1: refused). No warning is given between 1/(10n) and 1/n: the
    default itself lies there for every n below 10^10. Small-n runs with a delta large enough to make the
    accountant's bound meaningless are caught by :func:`check_planned_epsilon`.
    """
    delta, rule = (given, "given") if given is not None else (n ** -1.1, "1/n^1.1")
    if delta >= 1 / n:
        source = "dp_delta" if rule == "given" else "the default 1/n^1.1"
        raise ConfigError(
            f"dp needs delta below 1/n for n={n} training sequences (1/n = {1 / n:.3g}): at delta >= 1/n the "
            f"guarantee allows leaking about one sequence outright; delta={delta:.3g} ({source}) is not below it. "
            f"Fixes: a smaller dp_delta (e.g. dp_delta={0.1 / n:.2g}), or more training records (the default "
            f"1/n^1.1 is below 1/n from n=2 on)")
    return delta, rule


def calibrate_noise(epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str,
                    n: int | None = None) -> float:
    """The noise multiplier that reaches ``epsilon`` at ``delta`` (Opacus' search); a budget that no noise reaches
    is a ConfigError naming the target and the fixes (``n`` only completes the message). Under ``rdp`` a target
    at or below the accountant's floor (its epsilon at infinite noise, which depends on delta alone) is refused
    at once, not after Opacus' search up to noise 1e6 (about 30 s)."""
    from opacus.accountants.utils import get_noise_multiplier

    floor = rdp_floor(delta) if accountant == "rdp" else None
    if floor is not None and epsilon <= floor:
        raise ConfigError(_budget_too_low(epsilon, delta, sample_rate, steps, accountant, floor, n))
    try:
        with accountant_failures(accountant, f"the noise for epsilon={epsilon:g} at delta={delta:.3g}"):
            return get_noise_multiplier(target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate,
                                        steps=steps, accountant=accountant)
    except ValueError as exc:
        if "privacy budget is too low" not in str(exc):
            raise
        raise ConfigError(_budget_too_low(epsilon, delta, sample_rate, steps, accountant, floor, n)) from None


def rdp_floor(delta: float) -> float:
    """The lowest epsilon Opacus' RDP accountant can report at ``delta``: its conversion at zero Renyi divergence
    (infinite noise), minimised over its orders. Every noise, sample rate and step count gives at least this."""
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis.rdp import get_privacy_spent

    orders = RDPAccountant.DEFAULT_ALPHAS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "optimal order is the largest alpha": expected at zero divergence
        return float(get_privacy_spent(orders=orders, rdp=[0.0] * len(orders), delta=delta)[0])


def _budget_too_low(epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str,
                    floor: float | None, n: int | None) -> str:
    limit = f"below 1/n = {1 / n:.3g}" if n else "below 1/n"
    head = (f"dp cannot reach epsilon={epsilon:g} at delta={delta:.3g} (sample rate {sample_rate:.3g}, {steps} "
            f"steps): the privacy budget is too low for the {accountant} accountant")
    if floor is not None:
        return (f"{head}, whose epsilon at this delta is at least {floor:.3g} whatever the noise, sample rate and "
                f"steps. Fixes: an epsilon above {floor:.3g}, a larger dp_delta ({limit}), or accountant=prv "
                f"(tighter at small epsilon)")
    return (f"{head}, even at noise_multiplier 1e6. Fixes: a larger epsilon, a larger dp_delta ({limit}), fewer "
            f"epochs or max_steps, or more training records (a lower sample rate)")


def planned_epsilon(plan: PrivacyPlan, accountant: str) -> float:
    """The accountant's epsilon at ``plan.delta`` after all planned steps at the plan's noise."""
    from opacus.accountants.utils import create_accountant

    acc = create_accountant(mechanism=accountant)
    acc.history = [(plan.noise_multiplier, plan.sample_rate, plan.steps)]
    with accountant_failures(accountant, f"epsilon at noise_multiplier {plan.noise_multiplier:g}"):
        return float(acc.get_epsilon(delta=plan.delta))


@contextlib.contextmanager
def accountant_failures(accountant: str, what: str) -> Iterator[None]:
    """Opacus' PRV accountant fails on extreme inputs (a huge epsilon, a tiny noise) with a RuntimeError or a
    MemoryError of its discretisation: a ConfigError naming the input and the fix instead."""
    try:
        yield
    except (RuntimeError, MemoryError, OverflowError) as exc:
        other = "rdp" if accountant == "prv" else "prv"
        raise ConfigError(f"the {accountant} accountant cannot compute {what} ({type(exc).__name__}: "
                          f"{str(exc)[:120]}); use accountant={other}, or a less extreme epsilon or "
                          f"noise_multiplier") from None


def check_planned_epsilon(plan: PrivacyPlan, cfg: DPConfig) -> None:
    """Refuse a plan whose epsilon is negative: the accountant's (epsilon, delta) conversion goes below 0 only
    when delta is so large (small n) that the bound is meaningless, and a negative epsilon is never recorded."""
    if plan.noise_multiplier <= 0:
        return
    eps = planned_epsilon(plan, cfg.accountant)
    if eps < 0:
        raise ConfigError(_negative_epsilon(eps, plan, cfg))


def _negative_epsilon(eps: float, plan: PrivacyPlan, cfg: DPConfig) -> str:
    asked = f"epsilon={cfg.epsilon:g}" if cfg.epsilon is not None else f"noise_multiplier={cfg.noise_multiplier:g}"
    return (f"dp refuses this budget: with {asked}, delta={plan.delta:.3g} ({plan.delta_rule}, n={plan.n} training "
            f"sequences), sample rate {plan.sample_rate:.3g} and {plan.steps} steps, the {cfg.accountant} accountant "
            f"gives a negative epsilon ({eps:.3g}) at noise_multiplier {plan.noise_multiplier:.3g}: its bound means "
            f"nothing at so large a delta, and no privacy can be claimed from it. Fixes: a larger epsilon (or a "
            f"smaller noise_multiplier), a smaller dp_delta (e.g. dp_delta={0.1 / plan.n:.2g}), or more training "
            f"records (the default delta 1/n^1.1 falls with n)")


# --------------------------------------------------------------------------------------------------------------
# Opacus set-up checks and the per-sample-gradient mode
# --------------------------------------------------------------------------------------------------------------


def refuse_checkpointing(model: Any) -> None:
    if any(getattr(m, "gradient_checkpointing", False) is True for m in model.modules()):
        raise ConfigError("gradient checkpointing is on, and Opacus' per-sample gradients fail with it; "
                          "load the model without it (or call model.gradient_checkpointing_disable())")


def tied_trainable(model: Any) -> list[list[str]]:
    """Groups of parameter names that share one trainable tensor (e.g. an LM head tied to the embeddings)."""
    groups: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        if p.requires_grad:
            groups.setdefault(id(p), []).append(name)
    return [names for names in groups.values() if len(names) > 1]


def resolve_mode(model: Any, cfg: DPConfig) -> str:
    """``auto`` -> bookkeeping for full fine-tuning (when every Linear/Embedding parameter qualifies), else hooks
    (1.05-1.2x for LoRA). ``bookkeeping`` must qualify; ``ghost`` only when no trainable weight is tied."""
    mode = cfg.grad_sample_mode
    if mode == "auto":
        mode = "bookkeeping" if cfg.method == "full" and not bookkeeping_problems(model) else "hooks"
    if mode == "bookkeeping":
        refuse_bookkeeping(model)
    tied = tied_trainable(model) if mode == "ghost" else []
    if tied:
        raise ConfigError(
            f"grad_sample_mode=ghost cannot train tied weights ({' = '.join(tied[0])}): ghost clipping computes one "
            f"gradient norm per layer and refuses a parameter used by two layers. Use grad_sample_mode=hooks "
            f"(or auto), or method=lora, which leaves the tied weights frozen"
        )
    return mode


@dataclasses.dataclass
class Private:
    """What ``make_private`` returns, unpacked: the engine (accountant), hooks, DP optimiser, Poisson loader."""

    engine: Any
    hooks: Any
    optimizer: Any
    loader: Any
    keeper: BookKeeper | None = None


def make_private(model: Any, cfg: DPConfig, plan: PrivacyPlan, mode: str) -> Private:
    """Hooks on the unwrapped model (``wrap_model=False``), a DP AdamW, and a seeded Poisson loader; with
    ``bookkeeping`` the keeper takes the Linear/Embedding parameters and Opacus' hooks the rest. On several
    processes (:mod:`.distributed`) each rank samples its shard of the one-process Poisson batch, and the
    optimiser adds the noise on rank 0 only and sums the gradients over the ranks."""
    optimizer = loop.make_optimizer(model, cfg)  # before the keeper turns its parameters' requires_grad off
    keeper = BookKeeper(model) if mode == "bookkeeping" else None
    try:
        private = _opacus_private(model, optimizer, cfg, plan, "hooks" if keeper else mode)
    except BaseException:
        if keeper:
            keeper.remove()
        raise
    if keeper:
        private.optimizer, private.keeper = bookkeeping_optimizer(private.optimizer, keeper), keeper
    private.optimizer = procs.share_steps(private.optimizer)
    return private


def _opacus_private(model: Any, optimizer: Any, cfg: DPConfig, plan: PrivacyPlan, mode: str) -> Private:
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    engine = PrivacyEngine(accountant=cfg.accountant)
    loader = DataLoader(TensorDataset(torch.arange(plan.n)), batch_size=cfg.train_batch_size)
    out = engine.make_private(
        module=model, optimizer=optimizer, data_loader=loader,
        noise_multiplier=plan.noise_multiplier, max_grad_norm=cfg.max_grad_norm, poisson_sampling=True,
        loss_reduction="mean", grad_sample_mode=mode, wrap_model=False,
        noise_generator=noise_generator(optimizer, cfg.seed + 1),
    )
    return Private(engine, out[0], out[1], sharded_loader(out[-1], plan, cfg.seed))


def seeded_generator(device: torch.device | str, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def noise_generator(optimizer: torch.optim.Optimizer, seed: int) -> torch.Generator:
    """The noise generator, on the trainable parameters' device: Opacus draws the noise with it on the
    gradients' device, and a CPU generator fails there on CUDA. The one device is required (a ConfigError)."""
    devices = {p.device for group in optimizer.param_groups for p in group["params"]}
    if len(devices) != 1:
        raise ConfigError(f"dp needs every trainable parameter on one device, but they are on "
                          f"{', '.join(sorted(map(str, devices))) or 'none'}; load the model on one device "
                          f"(--device cuda:0, no device_map)")
    return seeded_generator(devices.pop(), seed)


def sharded_loader(loader: Any, plan: PrivacyPlan, seed: int) -> Any:
    """Opacus' Poisson loader, but over this rank's shard of each global Poisson batch (all of it with one
    process); its index generator stays on the CPU (it samples indices, not noise)."""
    from torch.utils.data import DataLoader

    gen = seeded_generator("cpu", seed)  # the loader draws its base seed from it too, as Opacus' loader did
    sampler = procs.sharded_sampler(plan.n, plan.sample_rate, gen, procs.rank(), procs.world_size())
    return DataLoader(loader.dataset, batch_sampler=sampler, collate_fn=loader.collate_fn, generator=gen)


def poisson_plan(private: Private, examples: Sequence[Example], cfg: DPConfig) -> loop.Plan:
    """Physical batches of the Poisson-sampled logical batches; the DP optimiser decides when a step is real."""
    from opacus.utils.batch_memory_manager import BatchMemoryManager

    physical = cfg.physical_batch_size or cfg.train_batch_size
    for _ in range(cfg.epochs):
        with BatchMemoryManager(data_loader=private.loader, max_physical_batch_size=physical,
                                optimizer=private.optimizer) as loader:
            for batch in loader:
                indices = batch[0].tolist() if len(batch) else []
                yield [examples[i] for i in indices], 1.0, True


def dp_backward(model: Any, pad: int, private: Private, mode: str) -> loop.Backward:
    """Per-sequence losses, mean over the physical batch (``loss_reduction="mean"``), per-sample backward.

    An empty Poisson batch skips the forward but leaves zero per-sample gradients, so the step still adds noise
    and the accountant still counts it. Batches are collated on the model's device; the loss is returned as a
    0-dim tensor (the loop reads it once per step).
    """
    device = loop.model_device(model)

    def backward(examples: list[Example], weight: float) -> torch.Tensor | None:
        if not examples:
            _empty_gradients(private.optimizer, mode)
            return None
        losses = loop.forward_losses(model, loop.collate(examples, pad, device))
        if mode == "ghost":
            _ghost_backward(private, losses)
        else:
            (losses.mean() * weight).backward()
        return losses.detach().mean()

    return backward


def _ghost_backward(private: Private, losses: torch.Tensor) -> None:
    from opacus.utils.fast_gradient_clipping_utils import DPTensorFastGradientClipping

    DPTensorFastGradientClipping(private.hooks, private.optimizer, losses, "mean").backward()


def _empty_gradients(optimizer: Any, mode: str) -> None:
    for p in optimizer.params:
        if mode == "ghost":
            p.grad = torch.zeros_like(p)
        else:
            p.grad_sample = p.new_zeros((0, *p.shape))


def release(private: Private) -> None:
    """Remove Opacus' hooks and the keeper's, and the per-parameter buffers they attached (per-sample and summed
    gradients)."""
    private.hooks.cleanup()
    if private.keeper is not None:
        private.keeper.remove()
    for p in private.optimizer.params:
        for attr in ("summed_grad", "grad_sample"):
            if hasattr(p, attr):
                delattr(p, attr)


def spent_epsilon(engine: Any, delta: float, noise: float) -> float | None:
    """Epsilon from the accountant that calibrated the noise, after the steps taken; None without noise or when
    infinite. A negative value is never returned: it means inputs :func:`check_planned_epsilon` should have
    refused, so it is raised rather than recorded."""
    if noise <= 0 or not engine.accountant.history:
        return None
    eps = float(engine.accountant.get_epsilon(delta=delta))
    if eps < 0:
        raise ConfigError(f"the accountant reports a negative epsilon ({eps:.3g}) at delta={delta:.3g} and "
                          f"noise_multiplier {noise:.3g}: the bound is meaningless at so large a delta and is not "
                          f"recorded. Give a smaller dp_delta or train on more records")
    return eps if math.isfinite(eps) else None


def refuse_distributed_ghost(mode: str) -> None:
    if mode == "ghost" and procs.is_distributed():
        raise ConfigError("grad_sample_mode=ghost is not supported on several processes (torchrun); use "
                          "grad_sample_mode=hooks, bookkeeping or auto")


def process_facts(private: Private) -> dict[str, Any]:
    """The processes the run was split over and the noise draws of all of them (one per logical step)."""
    params = private.optimizer.params
    draws = procs.total(private.optimizer.noise_draws, params[0].device if params else "cpu")
    steps = sum(h[-1] for h in private.engine.accountant.history)
    return {"world_size": procs.world_size(), "noise_draws": draws, "noise_once_per_step": draws == steps}


def privacy_facts(private: Private, plan: PrivacyPlan, cfg: DPConfig, mode: str) -> dict[str, Any]:
    eps = spent_epsilon(private.engine, plan.delta, plan.noise_multiplier)
    return {
        "private": eps is not None, "epsilon": eps, "target_epsilon": cfg.epsilon, "delta": plan.delta,
        "delta_rule": plan.delta_rule, "accountant": cfg.accountant, "noise_multiplier": plan.noise_multiplier,
        "max_grad_norm": cfg.max_grad_norm, "sample_rate": plan.sample_rate, "planned_steps": plan.steps,
        "accountant_steps": sum(h[-1] for h in private.engine.accountant.history),
        "expected_batch_size": plan.n * plan.sample_rate, "sampling": "poisson",
        "physical_batch_size": cfg.physical_batch_size or cfg.train_batch_size, "grad_sample_mode": mode,
        "clipping": "flat", "privacy_unit": "sequence", "privacy_unit_note": PRIVACY_UNIT_NOTE,
        "records_per_original": 2 if cfg.cda_ratio and cfg.cda_mode == "two-sided" else 1,
        "secure_rng": False, "loss_note": "train/eval losses are computed on raw data and are not privatised",
        **process_facts(private),
    }


@contextlib.contextmanager
def _quiet_hooks() -> Iterator[None]:
    """Silence torch's note that a backward hook fires for outputs only (true of the first layer: expected)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        yield


class DP(TrainingSummary, TrainingIntervention):  # summary (epsilon, delta, accountant, data): TrainingSummary
    name = "dp"
    Config = DPConfig
    version = "1"
    description = "DP fine-tuning (DP-Adam via Opacus: Poisson sampling, per-sequence clipping, accountant epsilon)"

    def train(self, model: Any, tokenizer: Any, records: Sequence[dict]) -> tuple[Any, dict[str, Any]]:
        """Fine-tune ``model`` in place with DP; returns the merged model and the run's facts (epsilon, ...)."""
        cfg = self.config
        refuse_checkpointing(model)
        session = loop.encode(tokenizer, records, cfg)
        plan = plan_privacy(len(session.train), cfg)  # refuses an impossible budget before the model is touched
        session.model = loop.prepare(model, cfg)
        mode = resolve_mode(session.model, cfg)
        refuse_distributed_ghost(mode)
        procs.broadcast_parameters([p for p in session.model.parameters() if p.requires_grad])
        with loop.train_mode(session.model, cfg.train_dropout), _quiet_hooks():  # Opacus refuses eval mode
            private = make_private(session.model, cfg, plan, mode)
            try:
                backward = dp_backward(session.model, session.pad, private, mode)
                result = loop.run(private.optimizer, poisson_plan(private, session.train, cfg), backward,
                                    plan.steps, "dp")
            finally:
                release(private)
        model, facts = loop.conclude(session, result, cfg)
        return model, {**facts, **privacy_facts(private, plan, cfg, mode)}
