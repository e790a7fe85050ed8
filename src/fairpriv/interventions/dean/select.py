"""DEAN's selection of coupled weights (arXiv 2410.16672, §1 of docs/science.md): pure kernels on flat index tensors.

For one weight matrix with N entries and importance scores for three data sets:

    G = top(utility, floor(p*N))          the weights general utility needs
    P = top(privacy, floor(q*N)) \\ G      important for privacy, not for utility
    F = top(fairness, floor(q*N)) \\ G     important for fairness, not for utility
    C = P ∩ F                             coupled: zeroed by DEAN ("set" mode, the paper's stated method)

The released code (ChnQ/DEAN, ``src/dean.py``) computes something else ("official" mode, kept for reproducing
published numbers). It takes the top-floor(q*N) privacy and fairness entries as two lists of flat indices sorted
by INDEX (ascending, as ``torch.unique`` returns them), marks in each list the entries outside G, ANDs the two
marks position by position and zeroes the privacy list's entries at the surviving positions. Entry i is zeroed
when the i-th smallest privacy-top index and the i-th smallest fairness-top index are both outside G, whether or
not that privacy weight matters for fairness. Both lists hold floor(q*N) entries, so p may differ from q (G is
the top floor(p*N) utility entries). The privacy list supplies the indices because the release's README runs it
with ``--dataset1`` = privacy, ``--dataset2`` = fairness (the code takes them from dataset1).

Ties: the release uses ``torch.topk``, whose choice among equal scores at the cut is implementation-defined.
fairpriv's rule: among equal scores the LOWER flat index is taken first (:func:`topk_stable`), so every selection
is deterministic; without ties both choose the same sets, so the masks are identical. Only the membership of the
top sets matters in both modes (official mode re-sorts by index), never their order by score.

:func:`select_mask` is the public entry point on full score tensors; the intervention selects from cached top
lists through the same kernel, :func:`select_matrix`. Nothing here touches a model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

MODES = ("set", "official")
COUNTINGS = ("floor", "release")


def top_count(fraction: float, numel: int) -> int:
    """floor(fraction * numel): how many entries a top fraction holds."""
    return math.floor(fraction * numel)


def release_count(fraction: float, shape: tuple[int, ...] | torch.Size) -> int:
    """The released code's count, ``int(fraction * cols * rows)`` multiplied left to right in floating point; it
    can differ from :func:`top_count` by one where the product rounds across an integer (tiny shapes)."""
    value = fraction
    for dim in reversed(tuple(shape)):
        value = value * dim
    return int(value)


def counter(counting: str) -> Callable[[float, tuple[int, ...]], int]:
    """The count function of ``counting`` (``floor`` or ``release``), taking a fraction and a shape."""
    if counting not in COUNTINGS:
        raise ValueError(f"counting must be one of {', '.join(COUNTINGS)}; got {counting!r}")
    return release_count if counting == "release" else lambda f, shape: top_count(f, math.prod(shape))


def topk_stable(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Flat indices of the ``k`` largest scores, by decreasing score, ties by increasing index (on the scores'
    device)."""
    flat = scores.reshape(-1)
    if k <= 0:
        return torch.empty(0, dtype=torch.long, device=flat.device)
    if k >= flat.numel():
        return _sort_desc(flat, torch.arange(flat.numel(), device=flat.device))
    kth = torch.topk(flat, k, sorted=False).values.min()
    above = torch.nonzero(flat > kth).reshape(-1)
    ties = torch.nonzero(flat == kth).reshape(-1)[: k - above.numel()]
    return _sort_desc(flat, torch.cat([above, ties]))


def _sort_desc(flat: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``index`` ordered by decreasing ``flat[index]``, equal scores by increasing index."""
    index = index.sort().values
    order = torch.sort(flat[index], descending=True, stable=True).indices
    return index[order]


def select_set(g: torch.Tensor, p_list: torch.Tensor, f_list: torch.Tensor) -> torch.Tensor:
    """C = (P \\ G) ∩ (F \\ G), as sorted flat indices."""
    p_only = p_list[~torch.isin(p_list, g)]
    return p_only[torch.isin(p_only, f_list)].sort().values


def select_official(g: torch.Tensor, p_list: torch.Tensor, f_list: torch.Tensor) -> torch.Tensor:
    """The released code's selection: both top lists sorted by flat index, the position-wise AND of "outside G",
    indices from the privacy list (sorted). The order of the given lists does not matter, only their members."""
    if p_list.numel() != f_list.numel():
        raise ValueError(
            f"official mode needs top lists of equal length (got {p_list.numel()} and {f_list.numel()}): "
            "the released code takes both with the same fraction q; cut both lists at floor(q*N)"
        )
    p_sorted, f_sorted = p_list.sort().values, f_list.sort().values
    keep = ~torch.isin(p_sorted, g) & ~torch.isin(f_sorted, g)
    return p_sorted[keep]


@dataclasses.dataclass(frozen=True)
class MatrixSelection:
    """What DEAN selected in one matrix: the zeroed indices and the set sizes the report needs."""

    zeroed: torch.Tensor
    numel: int
    g: int
    p: int
    f: int
    coupled: int
    other_mode_zeroed: int | None

    def counts(self) -> dict[str, int | None]:
        return {"numel": self.numel, "G": self.g, "P": self.p, "F": self.f, "P_and_F": self.coupled,
                "zeroed": int(self.zeroed.numel()), "other_mode_zeroed": self.other_mode_zeroed}


def select_matrix(g: torch.Tensor, p_list: torch.Tensor, f_list: torch.Tensor, numel: int,
                  mode: str = "set") -> MatrixSelection:
    """Select one matrix's zeroed entries in ``mode`` and count what the other mode would have zeroed."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    coupled = select_set(g, p_list, f_list)
    # official mode raises for lists of unequal length; set mode then just has no official count
    runs_official = mode == "official" or p_list.numel() == f_list.numel()
    official = select_official(g, p_list, f_list) if runs_official else None
    zeroed, other = (coupled, official) if mode == "set" else (official, coupled)
    return MatrixSelection(
        zeroed=zeroed, numel=numel, g=int(g.numel()), p=int((~torch.isin(p_list, g)).sum()),
        f=int((~torch.isin(f_list, g)).sum()), coupled=int(coupled.numel()),
        other_mode_zeroed=None if other is None else int(other.numel()),
    )


def total_counts(per_module: dict[str, dict[str, int | None]]) -> dict[str, int | None]:
    """Sum of per-module counts; ``other_mode_zeroed`` is None when any module could not run the other mode."""
    keys = ("numel", "G", "P", "F", "P_and_F", "zeroed")
    out: dict[str, int | None] = {k: sum(c[k] for c in per_module.values()) for k in keys}
    others = [c["other_mode_zeroed"] for c in per_module.values()]
    out["other_mode_zeroed"] = None if any(o is None for o in others) else sum(others)
    return out


def select_mask(utility: torch.Tensor, privacy: torch.Tensor, fairness: torch.Tensor, p: float, q: float,
                mode: str = "set", *, counting: str = "floor") -> torch.Tensor:
    """DEAN's selection on full score tensors of one weight matrix: a boolean tensor of the scores' shape and
    device, True where DEAN zeroes the weight. ``mode`` is ``set`` (P ∩ F) or ``official`` (the released code);
    ``counting`` is ``floor`` (floor(p*N), the default) or ``release`` (``int(p * cols * rows)`` as released).
    Ties at a cut take the lower flat index first. The intervention runs the same kernel on its cached lists."""
    shape = _check_scores(utility, privacy, fairness, p, q)
    count = counter(counting)
    kp, kq = count(p, shape), count(q, shape)
    lists = [topk_stable(s.detach(), k) for s, k in ((utility, kp), (privacy, kq), (fairness, kq))]
    zeroed = select_matrix(*lists, utility.numel(), mode).zeroed
    mask = torch.zeros(utility.numel(), dtype=torch.bool, device=utility.device)
    mask[zeroed] = True
    return mask.reshape(shape)


def _check_scores(utility: torch.Tensor, privacy: torch.Tensor, fairness: torch.Tensor, p: float, q: float):
    """The common shape of three real, NaN-free score tensors on one device; ValueError naming the fix otherwise."""
    tensors = {"utility": utility, "privacy": privacy, "fairness": fairness}
    if any(not isinstance(t, torch.Tensor) or t.is_complex() for t in tensors.values()):
        raise ValueError("select_mask needs three real torch tensors of scores (utility, privacy, fairness)")
    if len({(tuple(t.shape), t.device) for t in tensors.values()}) != 1:
        found = {k: (tuple(t.shape), str(t.device)) for k, t in tensors.items()}
        raise ValueError(f"select_mask needs score tensors of one shape on one device; got {found}")
    nan = [k for k, t in tensors.items() if t.is_floating_point() and bool(torch.isnan(t).any())]
    if nan:
        raise ValueError(f"the {', '.join(nan)} scores contain NaN; fix the scoring (an example without response "
                         "tokens gives a NaN loss) before selecting")
    if not (0 <= p <= 1 and 0 <= q <= 1):
        raise ValueError(f"p and q are fractions of the matrix and must be in [0, 1]; got p={p}, q={q}")
    return tuple(utility.shape)
