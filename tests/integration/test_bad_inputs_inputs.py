"""Bad data files, experiment specs and command lines (issue 18).

Each bad input fails with one message that names the file, key or flag, the problem and the fix; results folders
and caches are byte-identical afterwards (nothing half-written); the good neighbours (did-you-mean for unknown
names, refused YAML tags, paths with spaces and non-ASCII letters) stay good. The CLI cases call ``main`` in process.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest

from fairpriv.cli import is_user_error, main
from fairpriv import files
from fairpriv.data.pairs import load_pairs
from fairpriv.data.texts import load_text
from fairpriv.experiment import spec
from fairpriv.experiment.spec import SpecError
from fairpriv.tasks import loaders
from fairpriv.tasks.awareness import sources as awareness
from fairpriv.tasks.gender_bias import sources as gender
from fairpriv.text.gender_pairs import load_name_pairs

from conftest import TEST_TASKS


def snapshot(*folders: Path) -> dict[str, str]:
    """Every path under ``folders`` with the sha256 of its bytes ("dir" for folders)."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for folder in folders if folder.exists() for p in sorted(folder.rglob("*"))}


def no_leftovers(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.name.endswith((".tmp", ".partial")) or ".tmp-" in p.name]


# --- data files: one shared reader behind every loader --------------------------------------------------------
# name: (suffix, good content with a non-ASCII letter, the loader, what the messages call the file)
READERS = {
    "pairs-csv": (".csv", "prompt,response\nHi there,Hello é\n", lambda p: load_pairs(str(p), "utility").records,
                  "pair file"),
    "pairs-jsonl": (".jsonl", '{"prompt": "Hi", "response": "Hello é"}\n',
                    lambda p: load_pairs(str(p), "utility").records, "pair file"),
    "pairs-json": (".json", '[{"prompt": "Hi", "response": "Hello é"}]\n',
                   lambda p: load_pairs(str(p), "utility").records, "pair file"),
    "texts-txt": (".txt", "A line of text, é\n", lambda p: load_text(str(p)).records, "text file"),
    "texts-jsonl": (".jsonl", '{"text": "A line of text, é"}\n', lambda p: load_text(str(p)).records, "text file"),
    "awareness-csv": (".csv", "questions\nWhy é?\n", lambda p: awareness.read_source("fairness", str(p))[0],
                      "awareness source file"),
    "awareness-jsonl": (".jsonl", '{"prompt": "Why é?"}\n', lambda p: awareness.read_source("privacy", str(p))[0],
                        "awareness source file"),
    "gender-csv": (".csv", "prompt\nThe nurse é said\n",
                   lambda p: gender.read_prompt_file(str(p), "count_source", ("prompt",))[0],
                   "metadata key 'count_source': prompt file"),
    "gender-jsonl": (".jsonl", '{"prompt": "The nurse é said"}\n',
                     lambda p: gender.read_prompt_file(str(p), "count_source", ("prompt",))[0],
                     "metadata key 'count_source': prompt file"),
    "names-csv": (".csv", "first_name,sex,count\nJohn,M,9\nMary,F,8\nJosé,M,3\n", lambda p: load_name_pairs(str(p)),
                  "first-name CSV"),
    "task-data": (".jsonl", '{"question": "é?"}\n', loaders.read_jsonl, "task data file"),
    "spec": (".yaml", "models: [m]  # é\ntasks: [a]\n", lambda p: [c.folder for c in spec.load(p).cells],
             "experiment spec"),
}
JSONL = [name for name, (suffix, *_) in READERS.items() if suffix == ".jsonl"]
SAVE = "save it as UTF-8 (your editor's 'Save as' > UTF-8, or `iconv -f "


def load(name: str, path: Path):
    return READERS[name][2](path)


def write(folder: Path, name: str, data: bytes | None = None) -> Path:
    suffix, text, *_ = READERS[name]
    path = folder / f"data{suffix}"
    path.write_bytes(text.encode() if data is None else data)
    return path


def bad_encodings(text: str) -> dict[str, tuple[bytes, str]]:
    """Bytes of ``text`` in another encoding, and what the message must say (after the file's name)."""
    offset = text.encode("latin-1").index("é".encode("latin-1"))
    return {
        "utf-16": (text.encode("utf-16"), f" is UTF-16 text (it starts with a UTF-16 byte-order mark), not UTF-8; "
                                          f"{SAVE}UTF-16 -t UTF-8"),
        "utf-32": (text.encode("utf-32"), f" is UTF-32 text (it starts with a UTF-32 byte-order mark), not UTF-8; "
                                          f"{SAVE}UTF-32 -t UTF-8"),
        "latin-1": (text.encode("latin-1"), f" is not UTF-8: byte 0xe9 at byte offset {offset} cannot start or "
                                            "continue a UTF-8 character (Latin-1 or Windows-1252 text?); "
                                            f"{SAVE}LATIN1"),
        "empty": (b"", " is empty; it needs "),
        "blank": (b"\n  \n", " is empty; it needs "),
    }


def refused(name: str, path: Path, home: Path, message: str) -> None:
    """``path`` is refused with ``message``; the folder and the cache are unchanged and nothing is half-written."""
    before = snapshot(path.parent, home)
    with pytest.raises(ValueError) as caught:
        load(name, path)
    assert message in str(caught.value), str(caught.value)
    assert snapshot(path.parent, home) == before and not no_leftovers(path.parent)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "latin-1", "empty", "blank"])
@pytest.mark.parametrize("name", READERS)
def test_a_file_in_another_encoding_or_empty_is_refused_by_name(name, encoding, tmp_path, fairpriv_home):
    if (name, encoding) == ("names-csv", "blank"):
        pytest.skip("a blank name CSV is streamed into the CSV parser, which refuses its missing header")
    data, said = bad_encodings(READERS[name][1])[encoding]
    path = write(tmp_path, name, data)
    refused(name, path, fairpriv_home, f"{READERS[name][3]} {path}{said}")


@pytest.mark.parametrize("name", READERS)
def test_a_folder_given_for_a_file_is_named_as_a_folder(name, tmp_path, fairpriv_home):
    folder = tmp_path / f"data{READERS[name][0]}"
    folder.mkdir()
    refused(name, folder, fairpriv_home, f"{folder} is a folder, expected a file ({READERS[name][3]}); pass the path "
                                         "of a file in it")


@pytest.mark.parametrize("name", JSONL)
def test_a_broken_jsonl_line_is_named_by_file_and_line(name, tmp_path, fairpriv_home):
    path = write(tmp_path, name, (READERS[name][1] + '{"prompt": oops}\n').encode())
    refused(name, path, fairpriv_home, f"{path}:2: not valid JSON (Expecting value at column 12); fix that line or "
                                       "delete it")


@pytest.mark.parametrize("name", JSONL)
def test_a_jsonl_line_that_is_not_an_object_is_named(name, tmp_path, fairpriv_home):
    path = write(tmp_path, name, (READERS[name][1] + '["a list"]\n').encode())
    refused(name, path, fairpriv_home, f"{path}:2: expected a JSON object {{...}} on every line, got a list")


@pytest.mark.parametrize("name", READERS)
def test_a_utf8_byte_order_mark_is_accepted(name, tmp_path):
    plain = load(name, write(tmp_path, name))
    (tmp_path / "bom").mkdir()
    assert load(name, write(tmp_path / "bom", name, b"\xef\xbb\xbf" + READERS[name][1].encode())) == plain


@pytest.mark.parametrize("name", READERS)
def test_paths_with_spaces_and_non_ascii_letters_are_accepted(name, tmp_path):
    plain = load(name, write(tmp_path, name))
    folder = tmp_path / "my data é ü"
    folder.mkdir()
    path = folder / f"fichier été{READERS[name][0]}"
    path.write_text(READERS[name][1], encoding="utf-8")
    assert load(name, path) == plain


def test_a_gzip_name_csv_that_is_not_gzip_is_named(tmp_path):
    path = tmp_path / "names.csv.gz"
    path.write_text("first_name,sex,count\n")
    with pytest.raises(files.DataError, match=f"first-name CSV {path} is not a readable gzip file "):
        load_name_pairs(str(path))


# --- experiment specs, through `fairpriv run` -------------------------------------------------------------------
SPEC_HEAD = "name: t\nmodels: [fairpriv:smollm2-135m-instruct-q4_1]\ntasks: [a]\n"
BOOL = "YAML reads true/false/yes/no/on/off as booleans"
BAD_SPECS = {
    "duplicate-variant": (SPEC_HEAD + "variants:\n  dean: {intervention: dean}\n  dean: {intervention: dp}\n",
                          "line 6: the key 'dean' is given twice in one mapping (first on line 5) and YAML would keep "
                          "only the last; give each key (each variant) its own name, or delete the repeat"),
    "duplicate-config-key": (SPEC_HEAD + "variants:\n  dp:\n    intervention: dp\n    config: {epsilon: 1, "
                                         "epsilon: 8}\n", "line 7: the key 'epsilon' is given twice"),
    "names-differ-in-case": (SPEC_HEAD + "variants:\n  Dean: {}\n  dean: {intervention: dean}\n",
                             "variants: variants 'Dean' and 'dean' would write to the same results folder 'dean': "
                             "give them names that differ in more than case or punctuation"),
    "sweep-value-twice": (SPEC_HEAD + "variants:\n  dean: {intervention: dean, sweep: {p: [1.0e-4, 0.0001]}}\n",
                          "variants 'dean@p=0.0001' and 'dean@p=0.0001' would write to the same results folder "
                          "'dean@p=0.0001': a sweep gives one value twice (1e-4 and 0.0001 are one value); drop the "
                          "repeat"),
    "base-with-intervention": (SPEC_HEAD + "variants:\n  base: {intervention: dean}\n",
                               "variants.base has an intervention, but 'base' names the plain model that is added "
                               "when no variant is plain; rename it"),
    "models-share-a-folder": ("models: ['org/model', 'org:model']\ntasks: [a]\n",
                              "models: models 'org/model' and 'org:model' would write to the same results folder "
                              "'org_model'"),
    "name-with-slash": (SPEC_HEAD + "variants:\n  dp/eps8: {}\n", "variant name 'dp/eps8' would point outside its "
                        "results folder; name it with letters, digits and . _ - + = , only, e.g. 'dp-eps8'"),
    "name-dot-dot": (SPEC_HEAD + "variants:\n  '..': {}\n", "variant name '..' would point outside its results "
                     "folder; name it with letters, digits and . _ - + = , only"),
    "name-absolute": (SPEC_HEAD + "variants:\n  /tmp/x: {}\n", "variant name '/tmp/x' would point outside its "
                      "results folder"),
    "name-empty": (SPEC_HEAD + "variants:\n  '': {}\n", "variant name '' is empty; name it with letters"),
    "name-hidden": (SPEC_HEAD + "variants:\n  .dean: {intervention: dean}\n", "variant name '.dean' would be a "
                    "hidden folder; name it with letters, digits and . _ - + = , only, e.g. 'dean'"),
    "name-unsafe-characters": (SPEC_HEAD + "variants:\n  'dp: ε*8': {}\n", "variant name 'dp: ε*8' holds characters "
                               "that are unsafe in a folder name (' *:ε')"),
    "name-with-at": (SPEC_HEAD + "variants:\n  dean@2: {intervention: dean}\n", "variant name 'dean@2' holds '@', "
                     "which marks the points of a sweep"),
    "name-is-a-boolean": (SPEC_HEAD + "variants:\n  yes: {}\n", "variant name True is a bool, not text (YAML reads "
                          "yes, no, on, off, true, false, null and numbers as values); put the name in quotes"),
    "experiment-name-escapes": ("name: ../../elsewhere\nmodels: [m]\ntasks: [a]\n", "name '../../elsewhere' cannot "
                                "name the results folder results/runs/<name>"),
    "limit-true": (SPEC_HEAD + "settings: {limit: true}\n", "settings.limit must be a positive number (items per "
                   f"task, a whole number, or a fraction < 1); got True, a boolean ({BOOL})"),
    "batch-size-on": (SPEC_HEAD + "settings: {batch_size: on}\n", "settings.batch_size must be a positive integer "
                      "or auto (HF: lm-eval's search, which picks 64 on CPU; vLLM: its own scheduling); got True, a "
                      f"boolean ({BOOL})"),
    "seed-yes": (SPEC_HEAD + "settings: {seed: yes}\n", "settings.seed must be a whole number >= 0"),
    "epsilon-yes": (SPEC_HEAD + "variants:\n  dp: {intervention: dp, config: {epsilon: yes}}\n",
                    f"variants.dp: 'epsilon' is True, a boolean, but 'epsilon' takes a number; write a number, "
                    f"e.g. 8 ({BOOL})"),
    "sweep-true-for-a-number": (SPEC_HEAD + "variants:\n  dp: {intervention: dp, sweep: {n_samples: [true, 8]}}\n",
                                "variants.dp: 'n_samples' is True, a boolean, but 'n_samples' takes a number"),
    "text-key-yes": (SPEC_HEAD + "variants:\n  dean: {intervention: dean, config: {fairness_data: no}}\n",
                     "'fairness_data' is False, a boolean, but 'fairness_data' takes text; put the value in quotes"),
    "utf-16-spec": ((SPEC_HEAD + "# é\n").encode("utf-16"), "is UTF-16 text (it starts with a UTF-16 byte-order "
                    "mark), not UTF-8"),
}


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    """A results folder holding one finished cell, which a refused spec must leave alone."""
    cell = tmp_path / "out" / "model" / "base" / "a"
    cell.mkdir(parents=True)
    (cell / "cell.json").write_text(json.dumps({"fingerprint": "x", "seconds": 1.0}))
    (cell / "results_2026.json").write_text("{}")
    return tmp_path / "out"


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def one_line(err: str, message: str) -> None:
    assert err.startswith("fairpriv: error: ") and err.count("\n") == 1 and message in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("case", BAD_SPECS)
def test_a_bad_spec_is_refused_before_anything_is_written(case, tmp_path, results, fairpriv_home, capsys):
    text, message = BAD_SPECS[case]
    path = tmp_path / "exp.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    before = snapshot(results, fairpriv_home)
    code, err = run_cli(capsys, "run", path, "--out", results)
    assert code == 2
    one_line(err, message)
    assert snapshot(results, fairpriv_home) == before and not no_leftovers(tmp_path)


def test_spec_keeps_refusing_unsafe_yaml_tags(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: !!python/object/apply:os.system ['touch pwned']\nmodels: [m]\ntasks: [a]\n")
    with pytest.raises(SpecError, match="is not valid YAML: could not determine a constructor for the tag "
                                        "'tag:yaml.org,2002:python/object/apply:os.system'"):
        spec.load(path)
    assert not (tmp_path / "pwned").exists()


def test_spec_unknown_intervention_and_config_key_still_suggest(tmp_path):
    with pytest.raises(SpecError, match=r"variants\.x: Unknown intervention 'deen'\. Did you mean 'dean'\?"):
        spec.parse({"models": ["m"], "tasks": ["a"], "variants": {"x": {"intervention": "deen"}}})
    with pytest.raises(SpecError, match=r"variants\.x: config does not accept the argument 'qq'\. Did you mean 'q'\?"):
        spec.parse({"models": ["m"], "tasks": ["a"], "variants": {"x": {"intervention": "dean", "config": {"qq": 1}}}})


def test_spec_in_a_path_with_spaces_and_non_ascii_letters_with_merge_keys_loads(tmp_path):
    folder = tmp_path / "mes expériences ü"
    folder.mkdir()
    path = folder / "été 2026.yaml"
    path.write_text("models: [m]\ntasks: [a]\nvariants:\n  dean: &d {intervention: dean, config: {p: 1.0e-4}}\n"
                    "  dean-wide: {<<: *d, config: {p: 1.0e-3}}\n  'dp+cda_v2=1,x': {intervention: dp}\n",
                    encoding="utf-8")
    exp = spec.load(path)
    assert exp.name == "été 2026" and [v.name for v in exp.variants] == ["base", "dean", "dean-wide", "dp+cda_v2=1,x"]
    assert exp.variants[2].config == {"p": 1e-3}


def test_unknown_task_in_a_spec_suggests_before_any_folder_exists(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text(f"models: [m]\ntasks: [fairpriv_test_toyy]\nsettings: {{include_path: {TEST_TASKS}}}\n")
    code, err = run_cli(capsys, "run", path, "--out", tmp_path / "out")
    assert code == 2
    one_line(err, "unknown task 'fairpriv_test_toyy'. Did you mean 'fairpriv_test_toy'")
    assert not (tmp_path / "out").exists()


# --- the command line -------------------------------------------------------------------------------------------
BAD_FLAGS = [
    (["run", "exp.yaml", "--limit", "0"], "argument --limit: 0 is not allowed; use a whole number of items >= 1, "
                                          "or a fraction of each task between 0 and 1 (see `fairpriv run --help`)"),
    (["run", "exp.yaml", "--limit", "-3"], "argument --limit: -3 is not allowed"),
    (["run", "exp.yaml", "--limit", "2.5"], "argument --limit: 2.5 is not allowed"),
    (["run", "exp.yaml", "--limit", "many"], "argument --limit: 'many' is not a number; use a whole number of items"),
    (["run", "exp.yaml", "--jobs", "0"], "argument --jobs: 0 is not allowed; use a whole number >= 1"),
    (["report", "runs", "--alpha", "1.5"], "argument --alpha: 1.5 is not allowed; use a number strictly between 0 "
                                           "and 1 (see `fairpriv report --help`)"),
    (["report", "runs", "--alpha", "0"], "argument --alpha: 0 is not allowed"),
    (["report", "runs", "--alpha", "nan"], "argument --alpha: nan is not allowed"),
    (["report", "runs", "--seed", "-1"], "argument --seed: -1 is not allowed; use a whole number >= 0"),
    (["analyze", "coupling", "--model_args", "pretrained=m", "--m", "2"],
     "argument --m: 2 is not allowed; use a whole number >= 4 (see `fairpriv analyze coupling --help`)"),
    (["analyze", "coupling", "--model_args", "pretrained=m", "--permutations", "-1"],
     "argument --permutations: -1 is not allowed; use a whole number >= 0"),
    (["analyze", "coupling", "--model_args", "pretrained=m", "--bandwidth", "0"],
     "argument --bandwidth: 0 is not allowed; use a number > 0"),
    (["analyze", "grad-norms", "--checkpoints", "m", "--n", "0"], "argument --n: 0 is not allowed; use a whole "
                                                                  "number >= 1"),
    (["analyze", "grad-norms", "--checkpoints", "m", "--max-length", "0"],
     "argument --max-length: 0 is not allowed; use a whole number >= 2"),
    (["analyze", "grad-norms", "--checkpoints", "m", "--n", "1.5"], "argument --n: '1.5' is not a whole number"),
]


@pytest.mark.parametrize("argv, message", BAD_FLAGS, ids=[" ".join(a[-2:]) for a, _ in BAD_FLAGS])
def test_a_numeric_flag_out_of_range_names_flag_value_and_range(argv, message, tmp_path, results, fairpriv_home,
                                                                 capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    code, err = run_cli(capsys, *argv, *(["--out", results] if argv[0] != "analyze" else []))
    assert code == 2
    one_line(err, message)
    assert snapshot(tmp_path) == before


def test_a_config_error_under_a_command_is_one_line(fairpriv_home, capsys):
    code, err = run_cli(capsys, "fit", "dean", "--model_args", "pretrained=m,p=1e-4,target=everything")
    assert code == 2
    one_line(err, "'target' must be one of mlp, attn, all; got 'everything'.")
    assert not fairpriv_home.exists()


def test_user_errors_are_one_line_and_bugs_keep_their_traceback():
    def caught(action) -> BaseException:
        try:
            action()
        except Exception as exc:  # noqa: BLE001  (the real exceptions, raised where they are raised)
            return exc
        raise AssertionError("no exception")

    assert is_user_error(caught(lambda: spec.parse({"tasks": []})))  # SpecError
    assert is_user_error(caught(lambda: awareness.check_kind("toxicity")))  # a plain ValueError that fairpriv raised
    assert is_user_error(caught(lambda: open("/nonexistent/fairpriv/x")))  # a file error
    assert not is_user_error(caught(lambda: json.loads("{")))  # a library's ValueError subclass
    assert not is_user_error(caught(lambda: {}["key"]))  # KeyError: a bug
    assert not is_user_error(caught(lambda: int("x")))  # a plain ValueError raised outside fairpriv


@pytest.fixture()
def lm_eval_logging(monkeypatch):
    """lm-eval's CLI configures its logger once per process (a handler on this test's stderr): undo it after."""
    import lm_eval.utils

    for name in ("lm_eval", "fairpriv", None):  # fairpriv's logger follows lm-eval's (models.hf), the root too
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "handlers", list(logger.handlers))
        monkeypatch.setattr(logger, "propagate", logger.propagate)
        monkeypatch.setattr(logger, "level", logger.level)
    monkeypatch.setattr(lm_eval.utils, "_LOGGING_CONFIGURED", lm_eval.utils._LOGGING_CONFIGURED)
    monkeypatch.setattr("sys.argv", ["pytest"])


def test_eval_with_an_unknown_task_is_one_line_with_a_suggestion(tmp_path, fairpriv_home, capsys, lm_eval_logging):
    out = tmp_path / "out"
    code, err = run_cli(capsys, "eval", "--model", "hf", "--model_args", "pretrained=m", "--tasks", "fairpriv_sanit",
                        "--device", "cpu", "--output_path", out)
    assert code == 2
    line = [x for x in err.splitlines() if x.startswith("fairpriv: error:")]
    assert line == ["fairpriv: error: unknown task 'fairpriv_sanit'. Did you mean 'fairpriv_sanity', "
                    "'fairness_privacy'? `lm_eval ls tasks` lists lm-eval's tasks; fairpriv adds fairness_privacy, "
                    "gender_bias, social_bias, general_capability and fairpriv_sanity; your own task folder goes in --include_path"]
    assert "Traceback" not in err and not out.exists() and not fairpriv_home.exists()


def test_eval_config_error_of_an_intervention_model_is_one_line(tmp_path, fairpriv_home, capsys, lm_eval_logging):
    out = tmp_path / "out"
    code, err = run_cli(capsys, "eval", "--model", "dean-hf", "--model_args", "pretrained=m,target=everything",
                        "--tasks", "fairpriv_sanity", "--device", "cpu", "--output_path", out)
    assert code == 2
    line = [x for x in err.splitlines() if x.startswith("fairpriv: error:")]
    assert line == ["fairpriv: error: 'target' must be one of mlp, attn, all; got 'everything'."], err
    assert "Traceback" not in err and not out.exists() and not fairpriv_home.exists()
