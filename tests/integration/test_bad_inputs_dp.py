"""Issue 18 through ``fairpriv fit dp`` on the tiny llama with a 16-record training file: an impossible budget or
a bad value is refused with its message, and nothing is written (no ``--out`` folder, no half-built temporary
folder beside it, no artifact cache under FAIRPRIV_HOME). One good fit of the same shape still runs."""

from __future__ import annotations

import pytest

import fairpriv  # noqa: F401  (activates the plugin for the Python API)
from fairpriv.interventions.base import ConfigError

from conftest import write_pair_csvs

RECORDS = [(f"Question {i}: what is {i} plus one?", f" The answer is {i + 1}.") for i in range(16)]


@pytest.fixture(scope="module")
def data16(tmp_path_factory):
    return write_pair_csvs(tmp_path_factory.mktemp("dp-data"), {"privacy": RECORDS})["privacy"]


def fit(tiny_model, data, extra: str, out):
    from fairpriv.fit import fit_from_args

    return fit_from_args("dp", f"pretrained={tiny_model},data={data},train_batch_size=8,{extra}", out=out)


@pytest.mark.parametrize(("extra", "message"), [
    pytest.param("epsilon=1e-9",
                 "dp refuses this budget: with epsilon=1e-09, delta=0.0474 (1/n^1.1, n=16 training sequences), "
                 "sample rate 0.5 and 2 steps, the rdp accountant gives a negative epsilon (-0.00629) at "
                 "noise_multiplier 10: its bound means nothing at so large a delta, and no privacy can be claimed "
                 "from it. Fixes: a larger epsilon (or a smaller noise_multiplier), a smaller dp_delta (e.g. "
                 "dp_delta=0.0063), or more training records (the default delta 1/n^1.1 falls with n)",
                 id="epsilon=1e-9 (was recorded as -0.006)"),
    pytest.param("epsilon=1e-9,dp_delta=1e-5",
                 "dp cannot reach epsilon=1e-09 at delta=1e-05 (sample rate 0.5, 2 steps): the privacy budget is too "
                 "low for the rdp accountant, whose epsilon at this delta is at least 0.103 whatever the noise, "
                 "sample rate and steps. Fixes: an epsilon above 0.103, a larger dp_delta (below 1/n = 0.0625), or "
                 "accountant=prv (tighter at small epsilon)", id="budget too low"),
    pytest.param("dp_delta=0.1",
                 "dp needs delta below 1/n for n=16 training sequences (1/n = 0.0625): at delta >= 1/n the guarantee "
                 "allows leaking about one sequence outright; delta=0.1 (dp_delta) is not below it. Fixes: a smaller "
                 "dp_delta (e.g. dp_delta=0.0063), or more training records (the default 1/n^1.1 is below 1/n from "
                 "n=2 on)", id="delta above 1/n"),
    pytest.param("epsilon=inf",
                 "'epsilon' must be a finite number (float); got inf. nan and inf are not accepted: give a finite "
                 "number, e.g. 8 or 1e-5.", id="epsilon=inf (was noise 10)"),
    pytest.param("epsilon=true",
                 "'epsilon' must be a number (float), not a boolean; got True (lm-eval and YAML read a bare "
                 "true/false as a boolean). Give a number instead, e.g. 8 or 1e-5.", id="epsilon=true"),
])
def test_bad_budget_is_refused_and_nothing_is_written(tiny_model, data16, fairpriv_home, tmp_path, extra, message):
    out = tmp_path / "dp-run"
    with pytest.raises(ConfigError) as err:
        fit(tiny_model, data16, extra, out)
    assert str(err.value) == message
    assert not out.exists() and not [p.name for p in tmp_path.iterdir() if p.name.startswith(".dp-run")]
    assert not (fairpriv_home / "artifacts").exists()


def test_a_good_budget_of_the_same_shape_still_fits(tiny_model, data16, fairpriv_home, tmp_path):
    art = fit(tiny_model, data16, "epsilon=8,max_steps=1", tmp_path / "dp-run")
    facts = art.manifest["facts"]
    assert facts["n_train"] == 16 and facts["private"] is True and 0 < facts["epsilon"] <= 8.0
    assert facts["delta"] == pytest.approx(16 ** -1.1) and facts["planned_steps"] == 1


def test_a_refused_fit_leaves_no_folders_it_created_for_out(tiny_model, data16, fairpriv_home, tmp_path):
    """--out a/b/c under a missing a/: the refusal comes after the parents were made; they are removed again."""
    out = tmp_path / "a" / "b" / "c"
    with pytest.raises(ConfigError, match="dp refuses this budget"):
        fit(tiny_model, data16, "epsilon=1e-9", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
