"""Experiment specs: expansion into cells, sweeps, validation messages, fingerprints, ETA."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairpriv.experiment import runner, spec
from fairpriv.experiment.spec import SpecError

REPO = Path(__file__).resolve().parents[2]
MODEL = "fairpriv:smollm2-135m-instruct-q4_1"


def parse(**over):
    raw = {"name": "t", "models": [MODEL], "tasks": ["a", "b"], "variants": {}}
    raw.update(over)
    return spec.parse(raw)


def test_plain_spec_gets_a_base_variant_and_one_cell_per_task():
    exp = parse()
    assert [v.name for v in exp.variants] == ["base"]
    assert [(c.variant.name, c.task) for c in exp.cells] == [("base", "a"), ("base", "b")]
    assert exp.cells[0].model_args == {"pretrained": MODEL}
    assert exp.variants[0].lm_eval_model() == "hf"


def test_zipped_sweep_makes_one_variant_per_position_with_the_first_key_as_axis():
    exp = parse(variants={"dean": {"intervention": "dean", "config": {"mode": "set"},
                                   "sweep": {"p": [1e-4, 3e-4], "q": [1e-4, 3e-4]}}})
    names = [v.name for v in exp.variants]
    assert names == ["base", "dean@p=0.0001,q=0.0001", "dean@p=0.0003,q=0.0003"]
    point = exp.variants[2]
    assert point.config == {"mode": "set", "p": 3e-4, "q": 3e-4}
    assert point.sweep == ("p", 3e-4) and point.family == "dean" and point.lm_eval_model() == "dean-hf"
    assert len(exp.cells) == 3 * 2


def test_variant_tasks_replace_the_spec_tasks():
    exp = parse(variants={"base": {"tasks": ["a", "b", "c"]}, "dean": {"intervention": "dean", "tasks": ["a"]}})
    assert [(c.variant.name, c.task) for c in exp.cells] == [("base", "a"), ("base", "b"), ("base", "c"), ("dean", "a")]


@pytest.mark.parametrize("over, message", [
    ({"colour": "red"}, "unknown key 'colour'"),
    ({"tasks": []}, "tasks: expected a non-empty list"),
    ({"tasks": ["a", "a"]}, "lists a name twice"),
    ({"models": None}, "models: expected a non-empty list"),
    ({"settings": {"limit": -1}}, "settings.limit must be a positive number"),
    ({"settings": {"batch_size": "max"}}, "settings.batch_size must be a positive integer or auto"),
    ({"settings": {"metadata": [1]}}, "settings.metadata must be a mapping"),
    ({"settings": {"threads": 2}}, "unknown key 'threads'"),
    ({"variants": ["dean"]}, "variants must be a mapping"),
    ({"variants": {"x": {"config": {"p": 1}}}}, "config and sweep need an intervention"),
    ({"variants": {"x": {"intervention": "dean", "sweep": {"p": [1e-4, 2e-4], "q": [1e-4]}}}}, "equal lengths"),
    ({"variants": {"x": {"intervention": "dean", "sweep": {"p": []}}}}, "non-empty lists"),
    ({"variants": {"x": {"intervention": "dean", "config": {"p": 1e-4}, "sweep": {"p": [1e-3]}}}},
     "'p' is both in config and sweep"),
    ({"variants": {"x": {"intervention": "deen"}}}, "dean"),
    ({"variants": {"x": {"intervention": "dean", "config": {"pp": 1}}}}, "pp"),
    ({"variants": {"x": {"intervention": "dean", "config": {"target": "everything"}}}}, "one of mlp, attn, all"),
    ({"variants": {"x": {"intervention": "dean", "flavour": 1}}}, "unknown key 'flavour'"),
])
def test_bad_specs_name_the_problem(over, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(**over)


def test_load_reports_missing_and_malformed_files(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        spec.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [a\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        spec.load(bad)


def test_include_path_resolves_against_the_spec_file(tmp_path):
    (tmp_path / "mytasks").mkdir()
    path = tmp_path / "exp.yaml"
    path.write_text(f"models: [{MODEL}]\ntasks: [a]\nsettings: {{include_path: mytasks}}\n")
    exp = spec.load(path)
    assert exp.settings["include_path"] == str((tmp_path / "mytasks").resolve()) and exp.name == "exp"
    path.write_text(f"models: [{MODEL}]\ntasks: [a]\nsettings: {{include_path: missing}}\n")
    with pytest.raises(SpecError, match="is not a folder"):
        spec.load(path)


def test_limit_override_and_fingerprints():
    plain, limited = parse(), parse(settings={"limit": 8})
    assert spec.parse({"models": [MODEL], "tasks": ["a"]}, limit=4).settings["limit"] == 4
    assert plain.cells[0].fingerprint == parse().cells[0].fingerprint  # deterministic
    assert plain.cells[0].fingerprint != limited.cells[0].fingerprint
    assert plain.cells[0].fingerprint != plain.cells[1].fingerprint  # task is part of it
    default_batch = parse(settings={"batch_size": 16})
    assert default_batch.cells[0].fingerprint == plain.cells[0].fingerprint  # defaults do not count


def test_cell_folders_are_filesystem_safe():
    exp = parse(variants={"cda+dp": {"intervention": "dp", "config": {"epsilon": 8}}})
    folder = exp.cells[-1].folder
    assert folder == Path("fairpriv_smollm2-135m-instruct-q4_1") / "cda+dp" / "b"
    assert spec.slug("a/b c:d") == "a_b_c_d"


def test_eta_uses_the_mean_time_of_finished_cells_of_the_same_task():
    exp = parse(variants={"dean": {"intervention": "dean"}})
    base_a, base_b, dean_a, dean_b = exp.cells
    plan = runner.Plan(done={base_a: 10.0, base_b: 30.0}, pending=[dean_a, dean_b])
    assert plan.eta([dean_a, dean_b]) == 10.0 + 30.0
    only_a = runner.Plan(done={base_a: 10.0}, pending=[base_b])
    assert only_a.eta([base_b]) == 0.0 and only_a.untimed([base_b]) == 1  # task b not timed: not guessed
    assert only_a.eta([base_b, dean_a]) == 10.0 and only_a.untimed([base_b, dean_a]) == 1
    assert runner.Plan().eta([base_a]) is None and runner.Plan().untimed([base_a]) == 1


def test_published_specs_parse():
    for path in sorted((REPO / "experiments").glob("*.yaml")):
        exp = spec.load(path)
        assert exp.cells and any(v.intervention is None for v in exp.variants), path


def test_readme_demo_spec_is_the_real_one():
    import re

    block = re.findall(r"```yaml\n# experiments/demo.yaml\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    assert len(block) == 1
    shown = spec.parse(__import__("yaml").safe_load(block[0]), source="README")
    real = spec.load(REPO / "experiments" / "demo.yaml")
    assert [c.fingerprint for c in shown.cells] == [c.fingerprint for c in real.cells]
