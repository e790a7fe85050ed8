"""``fairpriv export``: a variant (base model + intervention artifact) as a plain Hugging Face folder that any engine
loads, vLLM included, with a ``fairpriv_export.json`` that says which variant it is.

An artifact is not a checkpoint: DEAN's holds a mask, the training interventions' hold the trained weights, and
``<name>-hf`` applies them to a freshly loaded base model inside HFLM. ``export`` does the same outside lm-eval:

1. open the artifact (``load_artifact`` re-checks every file's sha256), or fit / reuse the cached one for
   ``NAME --model_args pretrained=...,<config>`` exactly as ``<name>-hf`` and ``fairpriv fit`` do;
2. load the base model recorded in the manifest (an embedded ``fairpriv:NAME`` asset, a local folder whose weights
   still hash the same, a parent artifact, a Hub id), or the one given with ``pretrained=``, which must be the same
   model (:func:`fairpriv.modelref.same_base_model`);
3. apply the intervention in float32, merge LoRA adapters (``merge_and_unload``), cast to ``dtype`` (default: the
   dtype the artifact was fitted in, float32 today) and ``save_pretrained`` the model (safetensors), its
   tokenizer and generation config; or, with ``adapter=True``, write a peft LoRA adapter folder instead (vLLM's
   ``--enable-lora``), whose ``base_model_name_or_path`` is the base model;
4. write ``fairpriv_export.json`` (intervention, version, config, artifact hash, facts, base-model identity,
   dtype, format, fairpriv version, sha256 of every file written) and rename the temporary folder into place.

An existing destination that is the export of the same artifact, dtype and format is left as is; any other
non-empty folder is refused, and nothing is deleted.

The training interventions store their LoRA-trained weights merged, so ``adapter=True`` recovers the adapter from
the difference to the base model: for a LoRA of rank r that difference is a rank-r matrix per layer, factored here
(:func:`low_rank_factors`) and checked to reproduce the trained weights to float rounding; DEAN (zeroed entries),
full fine-tuning and DoRA change the weights in ways no LoRA adapter expresses, and are refused.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from fairpriv.artifacts import (
    Artifact, ArtifactError, clear_stale, library_versions, load_artifact, missing_folders, read_manifest,
    remove_if_empty,
)
from fairpriv.fit import artifact_for, load_model, parse_model_args
from fairpriv.hashing import canonical_hash, sha256_file
from fairpriv.interventions import UnknownInterventionError, get
from fairpriv.modelargs import MODEL_KEYS, load_options, split_args, split_model_args
from fairpriv.modelref import base_model_identity, resolve, same_base_model, state_dict_sha256
from fairpriv.options import ConfigError

log = logging.getLogger(__name__)

PROVENANCE = "fairpriv_export.json"
FORMAT = 1
DTYPES = ("bfloat16", "float16", "float32")
BASE_KEYS = ("pretrained", "revision", "trust_remote_code")
ADAPTER_MODIFIERS = ("peft", "delta")  # HFLM's adapters on the base model, recorded in its identity


class ExportError(RuntimeError):
    """An export that cannot be made as asked; the message names the problem and the fix."""


@dataclasses.dataclass(frozen=True)
class Export:
    path: Path
    provenance: dict[str, Any]
    created: bool  # False: the destination already held this export and was left as is


@dataclasses.dataclass(frozen=True)
class Base:
    """The base model to load: what to pass to ``from_pretrained`` (``fairpriv:NAME`` resolved later)."""

    ref: str
    revision: str | None = None
    trust_remote_code: bool = False


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------


def export_artifact(artifact: Artifact | str | Path, base_model_path_or_ref: str | None, out: str | Path,
                    dtype: str | None = None, adapter: bool = False) -> Path:
    """Export ``artifact`` applied to its base model (``None``: the one its manifest records) into ``out``;
    returns ``out``. An existing identical export is left as is."""
    base = Base(base_model_path_or_ref) if base_model_path_or_ref is not None else None
    return export(artifact, base, Path(out), dtype, adapter).path


def export(artifact: Artifact | str | Path, base: Base | None, out: Path, dtype: str | None = None,
           adapter: bool = False, device: str = "cpu") -> Export:
    """Everything is checked (artifact files, dtype, base model, destination) before a model is loaded."""
    art = open_artifact(artifact)
    dtype = check_dtype(dtype) or fitted_dtype(art.manifest)
    key = export_key(art.hash, dtype, adapter)
    if destination_state(Path(out), key) == "same":
        return _existing(Path(out))
    rank = adapter_rank(art) if adapter else None
    base = base or recorded_base(art.manifest)
    check_identity(art, base)
    return _write(Path(out), key, lambda tmp: _build(tmp, art, base, dtype, rank, device))


def export_variant(name: str, model_args: str, out: Path, dtype: str | None = None, adapter: bool = False,
                   device: str | None = None) -> Export:
    """``fairpriv export NAME --model_args pretrained=...,<config>``: the artifact ``<name>-hf`` would use with
    these arguments (reused from the on-demand cache, or fitted into it), exported. The model keys are
    ``fairpriv fit``'s (``dtype``, ``device``, ``device_map``...), so a bfloat16 fit is found under its own key."""
    base_kw, config_kw = split_variant_args(name, parse_model_args(model_args or "", "--model_args"))
    check_dtype(dtype)
    options = load_options(base_kw, device)
    if Path(out).exists():  # refuse a foreign destination before any fitting
        destination_state(Path(out), None)
    art = cached_artifact(name, config_kw, options)
    return export(art, _base(base_kw), Path(out), dtype, adapter, options.get("device", "cpu"))


def read_provenance(folder: str | Path, verify: bool = False) -> dict[str, Any] | None:
    """The ``fairpriv_export.json`` of an exported folder, ``None`` when the folder has none. ``verify`` re-checks
    the sha256 of every file it lists. An unreadable or foreign record is an :class:`ExportError`."""
    path = Path(folder) / PROVENANCE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"{path} cannot be read ({exc}); remove {folder} and export again") from None
    if not isinstance(record, dict) or record.get("fairpriv_export") != FORMAT or not isinstance(
            record.get("files"), dict):
        raise ExportError(f"{path} is not a fairpriv export record (format {FORMAT}); remove {folder} and export "
                          "again")
    if verify:
        verify_files(Path(folder), record)
    return record


def verify_files(folder: Path, record: dict[str, Any]) -> None:
    """Every file the provenance lists must exist with its recorded sha256."""
    for rel, want in record["files"].items():
        file = Path(folder) / rel
        if not file.is_file() or sha256_file(file) != want:
            raise ExportError(f"{file} is missing or changed since the export (sha256 mismatch); remove {folder} "
                              "and export again")


def open_artifact(artifact: Artifact | str | Path) -> Artifact:
    """The artifact, with every file's sha256 checked (also for an already opened one: it may have changed)."""
    path = artifact.path if isinstance(artifact, Artifact) else Path(artifact)
    return load_artifact(path, read_manifest(path).get("intervention"))


def check_dtype(dtype: str | None) -> str | None:
    if dtype is not None and dtype not in DTYPES:
        raise ExportError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}; pass --dtype with one of them")
    return dtype


def fitted_dtype(manifest: dict[str, Any]) -> str:
    """The dtype the artifact was fitted in, where its manifest records one; float32 (what fits use by default)."""
    recorded = manifest.get("dtype") or manifest.get("facts", {}).get("dtype") or "float32"
    name = str(recorded).removeprefix("torch.")
    return name if name in DTYPES else "float32"


def recorded_base(manifest: dict[str, Any]) -> Base:
    """The loadable base model a manifest names; an :class:`ExportError` asking for ``pretrained=`` otherwise."""
    ident = manifest.get("base_model") or {}
    check_plain(ident)
    if "fairpriv_asset" in ident:
        return Base(str(ident["fairpriv_asset"]))
    if "hub_id" in ident:
        return Base(str(ident["hub_id"]), ident.get("revision"))
    folder = ident.get("local_path") or (ident.get("parent_artifact") or {}).get("path")
    if folder is not None and Path(folder).exists():
        return Base(str(folder))
    where = f"the folder {folder}, which is not there any more" if folder else f"no loadable model ({_show(ident)})"
    raise ExportError(f"the artifact's manifest names as its base model {where}; pass the model it was fitted on "
                      "with --model_args pretrained=<model id or folder>")


def check_plain(ident: dict[str, Any]) -> None:
    """Refuse a base model that HFLM loaded with a ``peft=`` or ``delta=`` adapter: export cannot rebuild it."""
    given = [key for key in ADAPTER_MODIFIERS if ident.get(key)]
    if given:
        raise ExportError(f"the artifact was fitted on a base model loaded with an adapter ({given[0]}="
                          f"{ident[given[0]]}); export handles plain base models only: merge the adapter into a "
                          "folder first and fit on that")


def check_identity(art: Artifact, base: Base) -> None:
    """The base model to load must be the one the artifact was fitted on (weights, not the place they are in)."""
    theirs = art.manifest.get("base_model") or {}
    if "in_memory_sha256" in theirs:
        return  # compared with the loaded weights in _load_base
    mine = base_model_identity(base.ref, base.revision or "main")
    if not same_base_model(theirs, mine):
        raise ExportError(mismatch_message(art, theirs, mine, base.ref))


def mismatch_message(art: Artifact, theirs: dict, mine: dict, ref: str) -> str:
    return (f"artifact {art.path} was fitted on the base model {_show(theirs)}, but pretrained={ref} names "
            f"{_show(mine)}; pass the model it was fitted on with --model_args pretrained=...")


def _show(identity: Any) -> str:
    return json.dumps(identity, sort_keys=True, default=str)


def base_from_args(model_args: str | None) -> Base | None:
    """``--model_args`` next to an artifact folder: only the base model's keys (the config is the artifact's)."""
    args = parse_model_args(model_args or "", "--model_args")
    try:
        split_args(args, [BASE_KEYS], "fairpriv export ARTIFACT_FOLDER")
    except ConfigError as exc:
        raise ConfigError(f"{exc} The config comes from the artifact's manifest; to export another config, give the "
                          "intervention's name instead of the folder") from None
    if args and "pretrained" not in args:
        raise ConfigError("--model_args names the base model with pretrained=<model id, folder or fairpriv:NAME>")
    return _base(args) if args else None


def _base(args: dict[str, Any]) -> Base:
    trust = str(args.get("trust_remote_code", False)).strip().lower() in ("true", "1", "yes")
    return Base(str(args["pretrained"]), args.get("revision"), trust)


def split_variant_args(name: str, args: dict[str, Any]) -> tuple[dict, dict]:
    """``--model_args`` of ``export NAME``: the base-model keys and the intervention's config keys."""
    try:
        config_keys = get(name).Config.keys()
    except UnknownInterventionError as exc:
        raise ExportError(f"{name} is neither an artifact folder nor an intervention. {exc}") from None
    return split_model_args(args, config_keys, f"fairpriv export {name}", MODEL_KEYS,
                            f"fairpriv export {name} needs --model_args pretrained=<model id, folder or fairpriv:NAME>")


def cached_artifact(name: str, config_kw: dict, options: dict[str, Any]) -> Artifact:
    """The artifact ``<name>-hf`` uses for these arguments: the on-demand cache's, fitted there when missing.
    ``options``: :func:`fairpriv.modelargs.load_options` of the model keys."""
    cls = get(name)
    intervention = cls(cls.Config.from_args(config_kw, owner=f"fairpriv export {name}"))
    if not intervention.requires_fit:
        raise ExportError(f"intervention '{name}' has no artifact to export (it needs no fit); evaluate it with "
                          f"--model {name}-hf")
    return artifact_for(intervention, options)[0]


# --------------------------------------------------------------------------------------------------------------
# Destination: keys, state, atomic write
# --------------------------------------------------------------------------------------------------------------


def export_key(artifact_hash: str, dtype: str, adapter: bool) -> str:
    """What makes two exports the same: the artifact, the dtype and the format (merged model or adapter)."""
    return canonical_hash({"format": FORMAT, "artifact_hash": artifact_hash, "dtype": dtype,
                           "kind": "adapter" if adapter else "merged"})


def destination_state(out: Path, key: str | None) -> str:
    """``absent``, ``empty`` or ``same`` (an intact export with ``key``); anything else is refused, untouched.
    ``key`` None accepts any intact export (the key is known only once the artifact is)."""
    if not out.exists() and not out.is_symlink():
        return "absent"
    if not out.is_dir():
        raise ExportError(f"the export destination {out} is a file, not a folder; choose a new or empty folder (--out)")
    if not any(out.iterdir()):
        return "empty"
    record = _record_or_refuse(out)
    if key is not None and record.get("export_key") != key:
        raise ExportError(f"{out} already holds another export ({_describe(record)}), so fairpriv will not replace it "
                          "(nothing was deleted); choose a new or empty folder (--out), or remove that one yourself")
    verify_files(out, record)
    return "same"


def _record_or_refuse(out: Path) -> dict[str, Any]:
    try:
        record = read_provenance(out)
    except ExportError as exc:
        record, why = None, f"its {PROVENANCE} is unreadable: {exc}"
    else:
        why = f"has no {PROVENANCE} (it is not a fairpriv export)"
    if record is None:
        raise ExportError(f"the export destination {out} is not empty and {why}, so fairpriv will not write into it "
                          "(nothing was deleted); choose a new or empty folder (--out)")
    return record


def _describe(record: dict[str, Any]) -> str:
    art = str(record.get("artifact_hash") or "?")[:16]
    return f"{record.get('intervention')} artifact {art}, {record.get('dtype')}, {record.get('kind')}"


def _existing(out: Path) -> Export:
    record = read_provenance(out)
    log.info("fairpriv: %s already holds this export (%s); left as is", out, _describe(record))
    return Export(out, record, created=False)


def _write(out: Path, key: str, build) -> Export:
    """``build(tmp)`` into ``.NAME.tmp-PID`` beside ``out``, then rename it into place (``out`` absent or empty)."""
    new_parents = missing_folders(out.parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    clear_stale(out)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        return _rename(tmp, out, key, build(tmp))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        remove_if_empty(new_parents)  # a failed export leaves no folders it created on the way
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _rename(tmp: Path, out: Path, key: str, record: dict[str, Any]) -> Export:
    """``rename(2)`` replaces only an absent or empty folder, so a destination filled meanwhile is never lost."""
    try:
        os.rename(tmp, out)
    except OSError:
        if destination_state(out, key) == "same":  # a concurrent export of the same variant won
            return _existing(out)
        raise
    log.info("fairpriv: exported %s to %s", _describe(record), out)
    return Export(out, record, created=True)


# --------------------------------------------------------------------------------------------------------------
# Building the folder
# --------------------------------------------------------------------------------------------------------------


def _build(tmp: Path, art: Artifact, base: Base, dtype: str, rank: int | None, device: str) -> dict[str, Any]:
    """The model (merged, or a LoRA adapter of rank ``rank``), tokenizer and provenance, written into ``tmp``."""
    model, tokenizer, loaded_from = _load_base(art, base, device)
    applied = _apply(art, model)
    if rank is None:
        extra = _save_merged(applied, dtype, tmp)
    else:
        extra = _save_adapter(applied, art, base, dtype, rank, device, tmp)
    tokenizer.save_pretrained(tmp)
    record = provenance(art, base, loaded_from, dtype, rank is not None, files=_file_hashes(tmp))
    record.update(extra)
    (tmp / PROVENANCE).write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
    return record


def _load_base(art: Artifact, base: Base, device: str):
    """The base model in float32 (as fits load it) and its tokenizer; an in-memory fit's weights are compared."""
    model, tokenizer = load_model(base.ref, base.revision, base.trust_remote_code, device=device)
    want = (art.manifest.get("base_model") or {}).get("in_memory_sha256")
    if want is not None and state_dict_sha256(model) != want:
        raise ExportError(f"the weights of {base.ref} are not those artifact {art.path} was fitted on (sha256 of the "
                          "parameters differs); pass the model it was fitted on with --model_args pretrained=...")
    return model, tokenizer, resolve(base.ref)


def _apply(art: Artifact, model: Any) -> Any:
    """What ``<name>-hf`` does to the loaded model: the intervention, with the artifact's own config."""
    cls = get(art.manifest["intervention"])
    if str(art.manifest.get("intervention_version")) != str(cls.version):
        log.warning("fairpriv: artifact %s was made by %s version %s; the installed one is version %s",
                    art.path, cls.name, art.manifest.get("intervention_version"), cls.version)
    intervention = cls(cls.Config.from_args(art.manifest["config"], owner=f"artifact {art.path}"))
    return (intervention.apply(model, art) or model).eval()


def _save_merged(model: Any, dtype: str, tmp: Path) -> dict[str, Any]:
    import torch

    if hasattr(model, "merge_and_unload"):  # an intervention whose apply leaves peft adapters
        model = model.merge_and_unload()
    model.to(getattr(torch, dtype)).save_pretrained(tmp)
    return {}


def _save_adapter(applied: Any, art: Artifact, base: Base, dtype: str, rank: int, device: str,
                  tmp: Path) -> dict[str, Any]:
    """A peft LoRA folder holding the low-rank difference between the applied model and a fresh base model."""
    import torch

    fresh, _, _ = _load_base(art, base, device)
    factors, residual = weight_factors(applied, fresh, rank)
    peft_model = lora_model(fresh, factors, rank)
    peft_model.to(getattr(torch, dtype)).save_pretrained(tmp)
    return {"adapter": {"source": "low-rank factors of the trained weights minus the base weights", "rank": rank,
                        "modules": sorted(factors), "max_residual_over_rounding": residual}}


def adapter_rank(art: Artifact) -> int:
    """The LoRA rank of an artifact trained with ``method=lora``; refused for anything a LoRA cannot express."""
    config, name = art.manifest.get("config", {}), art.manifest.get("intervention")
    if config.get("method") != "lora" or not isinstance(config.get("lora_r"), int):
        what = f"method={config['method']}" if "method" in config else "its change"
        raise ExportError(f"--adapter needs an artifact trained with method=lora; the {name} artifact {art.path} "
                          f"({what}) changes weights in a way no LoRA adapter expresses: export the merged model "
                          "(drop --adapter)")
    return config["lora_r"]


def weight_factors(applied: Any, base: Any, rank: int) -> tuple[dict[str, tuple], float]:
    """``{module: (B, A)}`` with ``B @ A`` = applied weight - base weight for every changed Linear, and the largest
    residual relative to the rounding scale of the weight; refused when a change is not a rank-``rank`` update."""
    import torch

    mine, theirs = applied.state_dict(), base.state_dict()
    changed = [k for k in mine if not torch.equal(mine[k].cpu(), theirs[k].cpu())]
    _check_linear(applied, changed)
    if not changed:
        raise ExportError("the artifact changes no weight of the base model, so there is no adapter to write; "
                          "export the merged model (drop --adapter)")
    factors, worst = {}, 0.0
    for key in changed:
        weight = mine[key].detach().double().cpu()
        b, a, residual = low_rank_factors(weight - theirs[key].detach().double().cpu(), rank)
        worst = max(worst, _check_residual(key, residual, weight, mine[key].dtype, rank))
        factors[key.removesuffix(".weight")] = (b, a)
    return factors, worst


def _check_linear(model: Any, changed: list[str]) -> None:
    import torch

    for key in changed:
        module = model.get_submodule(key.rpartition(".")[0]) if "." in key else None
        if not (key.endswith(".weight") and isinstance(module, torch.nn.Linear)):
            raise ExportError(f"the artifact changes {key}, which is not the weight of a linear layer, so no LoRA "
                              "adapter expresses it: export the merged model (drop --adapter)")


def _check_residual(key: str, residual: float, weight: Any, dtype: Any, rank: int) -> float:
    """``residual`` (Frobenius) against the rounding of the stored weights: eps of their dtype times their norm."""
    import torch

    scale = torch.finfo(dtype).eps * float(weight.norm())
    if residual > 4 * scale:
        raise ExportError(f"the change to {key} is not a rank-{rank} update (residual {residual:.3g} vs rounding "
                          f"{scale:.3g}), so a LoRA adapter cannot reproduce it: export the merged model "
                          "(drop --adapter)")
    return residual / scale if scale else 0.0


def low_rank_factors(delta: Any, rank: int) -> tuple[Any, Any, float]:
    """``B`` (out x r), ``A`` (r x in) of the best rank-``rank`` approximation of ``delta`` (truncated SVD, the
    singular values split evenly) and the Frobenius norm of what it leaves, ``||delta - B @ A||``.

    The SVD is randomized (``torch.svd_lowrank``, seeded, 8 extra directions and 2 power iterations), so a large
    matrix costs a few thin products; it is exact when the oversampled width reaches the matrix's smaller side."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        u, s, v = torch.svd_lowrank(delta, q=min(rank + 8, *delta.shape), niter=2)
    r = min(rank, s.numel())
    root = s[:r].sqrt()
    b, a = u[:, :r] * root, root[:, None] * v[:, :r].T
    if r < rank:  # a matrix narrower than the rank: pad with zero directions so every module has rank r
        b = torch.cat([b, b.new_zeros(b.shape[0], rank - r)], 1)
        a = torch.cat([a, a.new_zeros(rank - r, a.shape[1])], 0)
    return b, a, float((delta - b @ a).norm())


def lora_model(base: Any, factors: dict[str, tuple], rank: int) -> Any:
    """``base`` wrapped with LoRA adapters (scaling 1: ``lora_alpha = r``) holding ``factors``."""
    import torch
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                        target_modules=target_names(base, sorted(factors)))
    model = get_peft_model(base, config)
    with torch.no_grad():
        for name, (b, a) in factors.items():
            layer = model.base_model.model.get_submodule(name)
            layer.lora_A["default"].weight.copy_(a)
            layer.lora_B["default"].weight.copy_(b)
    return model


def target_names(model: Any, modules: list[str]) -> list[str]:
    """The modules' last names (``q_proj``...) when those select exactly ``modules`` (the usual peft config,
    what vLLM expects), else the full names."""
    import torch

    suffixes = sorted({m.rpartition(".")[2] for m in modules})
    linear = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    selected = [n for n in linear if n.rpartition(".")[2] in suffixes]
    return suffixes if sorted(selected) == sorted(modules) else list(modules)


# --------------------------------------------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------------------------------------------


def provenance(art: Artifact, base: Base, loaded_from: str, dtype: str, adapter: bool,
               files: dict[str, str]) -> dict[str, Any]:
    """The record that ties an exported folder to its variant (``fairpriv report`` reads it back)."""
    m = art.manifest
    versions = library_versions()
    return {
        "fairpriv_export": FORMAT, "export_key": export_key(art.hash, dtype, adapter),
        "intervention": m.get("intervention"), "intervention_version": m.get("intervention_version"),
        "config": m.get("config"), "artifact_hash": art.hash, "artifact_path": str(art.path.resolve()),
        "facts": m.get("facts", {}), "base_model": m.get("base_model"),
        "base_model_ref": {"pretrained": base.ref, "revision": base.revision, "loaded_from": loaded_from},
        "dtype": dtype, "kind": "adapter" if adapter else "merged",
        "fairpriv_version": versions.get("fairpriv"), "library_versions": versions,
        "files": files, "created_unix": int(time.time()),
    }


def _file_hashes(folder: Path) -> dict[str, str]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != PROVENANCE)
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in files}


__all__ = ["Export", "ExportError", "export", "export_artifact", "export_variant", "read_provenance",
           "low_rank_factors", "export_key", "destination_state", "ArtifactError"]
