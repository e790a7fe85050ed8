"""``fairpriv report`` attributes a run of an exported folder (``--model vllm|hf pretrained=EXPORT``, or vLLM's
``lora_local_path=EXPORT``) to its variant through the folder's ``fairpriv_export.json``: it joins the row of the
same artifact evaluated with ``<name>-hf``, or gets a row of its own named by the artifact; engine keys
(``tensor_parallel_size``, ``gpu_memory_utilization``...) never split a row."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fairpriv.report.build import build
from fairpriv.report.collect import export_block, find_runs, read_export_record

RUNS = Path(__file__).resolve().parents[1] / "data" / "report" / "runs"
MODEL = "fairpriv:smollm2-135m-instruct-q4_1"
HASH = "ab12" * 16
FACTS = {"total": {"zeroed": 777}, "scoring": {"data": {"fairness": {"source": "builtin"},
                                                          "privacy": {"source": "builtin"}}}}


def write_export(folder: Path, base: str = MODEL) -> Path:
    folder.mkdir(parents=True)
    record = {"fairpriv_export": 1, "intervention": "dean", "intervention_version": "1", "config": {"p": 0.001},
              "artifact_hash": HASH, "artifact_path": "/a", "facts": FACTS, "base_model": {"fairpriv_asset": base},
              "base_model_ref": {"pretrained": base, "revision": None, "loaded_from": "/x"}, "dtype": "bfloat16",
              "kind": "merged", "files": {}}
    (folder / "fairpriv_export.json").write_text(json.dumps(record))
    return folder


def edit_results(folder: Path, edit) -> None:
    path = next(folder.glob("results_*.json"))
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def runs_with_vllm_export(tmp_path: Path, native_hash: str | None, args: str) -> Path:
    """The fixture runs, with the dean run's artifact hash set and a copy of it as a plain vLLM run of an export."""
    runs = tmp_path / "runs"
    shutil.copytree(RUNS, runs)
    if native_hash:
        edit_results(runs / "dean", lambda d: d["config"]["fairpriv"].update(artifact_hash=native_hash))
    shutil.copytree(runs / "dean", runs / "dean-vllm")

    def as_vllm(data):
        data["config"].pop("fairpriv")
        data["config"].update(model="vllm", model_args=args)
        data["date"] = 9.0  # newer than the HF run: its numbers are shown
    edit_results(runs / "dean-vllm", as_vllm)
    return runs


def test_an_export_run_joins_the_hf_row_of_its_artifact(tmp_path):
    export = write_export(tmp_path / "export")
    args = f"pretrained={export},tensor_parallel_size=2,gpu_memory_utilization=0.3,max_model_len=2048"
    board = build(find_runs(runs_with_vllm_export(tmp_path, HASH, args)), tmp_path / "out")
    assert sorted(r.variant for r in board.rows) == ["base", "dean p=0.001 q=0.001", "dp epsilon=8"]
    dean = next(r for r in board.rows if r.intervention == "dean")
    assert dean.config == {"p": 0.001, "q": 0.001}  # named by the HF run's keys
    assert dean.values["fairness_awareness_mc/awareness"].delta == pytest.approx(0.35)  # compared with the base
    clash = [n for n in board.notes if "also evaluated by another run of the same variant" in n]
    assert len(clash) == 1 and "dean" in clash[0]


def test_an_export_run_without_an_hf_run_gets_a_row_named_by_its_artifact(tmp_path):
    export = write_export(tmp_path / "export")
    runs = runs_with_vllm_export(tmp_path, "cd34" * 16, f"pretrained={export},tensor_parallel_size=1")
    board = build(find_runs(runs), tmp_path / "out")
    assert sorted(r.variant for r in board.rows) == ["base", f"dean artifact={HASH[:12]}",
                                                     "dean p=0.001 q=0.001", "dp epsilon=8"]
    row = next(r for r in board.rows if r.variant.startswith("dean artifact"))
    assert row.base_model == MODEL and row.intervention == "dean" and not row.is_base
    assert row.info["zeroed"] == "777"  # the facts come from the export record
    assert row.values["fairness_awareness_mc/awareness"].delta == pytest.approx(0.35)


def test_a_lora_adapter_export_names_the_variant_of_a_vllm_run_on_the_base(tmp_path):
    export = write_export(tmp_path / "adapter")
    board = build(find_runs(runs_with_vllm_export(tmp_path, HASH, f"pretrained={MODEL},lora_local_path={export}")),
                  tmp_path / "out")
    assert sorted(r.variant for r in board.rows) == ["base", "dean p=0.001 q=0.001", "dp epsilon=8"]


def test_a_plain_vllm_run_of_the_base_model_is_the_base_row(tmp_path):
    runs = runs_with_vllm_export(tmp_path, HASH, f"pretrained={MODEL},tensor_parallel_size=2,enforce_eager=True")
    board = build(find_runs(runs), tmp_path / "out")
    assert sorted(r.variant for r in board.rows) == ["base", "dean p=0.001 q=0.001", "dp epsilon=8"]
    assert any("also evaluated by another run" in n and "base" not in n.split(":")[0] for n in board.notes)


@pytest.mark.parametrize("content", [None, "{not json", json.dumps({"fairpriv_export": 2, "intervention": "d"}),
                                     json.dumps(["a list"]), json.dumps({"fairpriv_export": 1})])
def test_missing_or_foreign_export_records_are_ignored(tmp_path, content):
    (tmp_path / "f").mkdir()
    if content is not None:
        (tmp_path / "f" / "fairpriv_export.json").write_text(content)
    assert read_export_record(tmp_path / "f") == {} and read_export_record(None) == {}
    assert export_block({}) == {}


def test_the_export_block_mirrors_the_hf_models_block(tmp_path):
    block = export_block(read_export_record(write_export(tmp_path / "e")))
    assert block["intervention"] == "dean" and block["artifact_hash"] == HASH and block["facts"] == FACTS
    assert block["artifact_source"] == "export" and block["dtype"] == "bfloat16"


def test_a_name_vllm_run_joins_the_hf_row_even_with_engine_keys_the_report_does_not_know(tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(RUNS, runs)
    shutil.copytree(runs / "dean", runs / "dean-vllm")

    def as_dean_vllm(data):
        data["config"]["fairpriv"].update(engine="vllm", engine_args=["kv_cache_dtype", "tensor_parallel_size"])
        data["config"]["model"] = "dean-vllm"
        data["config"]["model_args"].update(kv_cache_dtype="auto", tensor_parallel_size=2)
        data["date"] = 9.0
    edit_results(runs / "dean-vllm", as_dean_vllm)
    board = build(find_runs(runs), tmp_path / "out")
    assert sorted(r.variant for r in board.rows) == ["base", "dean p=0.001 q=0.001", "dp epsilon=8"]
    assert any("also evaluated by another run of the same variant" in n for n in board.notes)
