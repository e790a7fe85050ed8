"""The identity of a base model: what an artifact was fitted on and what a cache entry belongs to.

* ``fairpriv:NAME`` embedded assets: the asset's pinned source sha256 and converted-weights sha256;
* a fairpriv artifact with a ``model/`` folder (composition): the parent artifact's manifest facts and hash;
* a local folder: the sha256 of its config and weight files;
* anything else is a Hugging Face Hub id: the id and the requested revision;
* an in-memory model (Python API): the sha256 of its parameters.

The dtype the weights are loaded in is added as ``dtype`` when it is not float32 (a fit in bfloat16 is another
artifact than one in float32, while float32 identities stay as they were before the key existed); it names how the
weights were loaded, not other weights, so :func:`same_base_model` leaves it out.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")


def base_model_identity(pretrained: Any, revision: str | None = None, dtype: Any = None,
                        **modifiers: Any) -> dict[str, Any]:
    """A JSON-able description that changes whenever the base model's weights, or the dtype they are loaded in
    (``dtype``: a torch dtype or its name; float32 or None add nothing), change."""
    out = _identity(pretrained, revision)
    out.update({k: str(v) for k, v in modifiers.items() if v})  # e.g. peft / delta adapters
    if dtype is not None and dtype_name(dtype) != "float32":
        out["dtype"] = dtype_name(dtype)
    return out


def dtype_name(dtype: Any) -> str:
    """``torch.bfloat16`` or ``"bfloat16"`` -> ``"bfloat16"``."""
    return str(dtype).removeprefix("torch.")


def _identity(pretrained: Any, revision: str | None) -> dict[str, Any]:
    from fairpriv import assets
    from fairpriv.interventions.artifacts import parent_identity

    if not isinstance(pretrained, str):
        return {"in_memory_sha256": state_dict_sha256(pretrained)}
    if pretrained.startswith(assets.MODEL_PREFIX):
        return {"fairpriv_asset": pretrained, **assets.model_identity(pretrained)}
    parent = parent_identity(pretrained)
    if parent is not None:
        return {"parent_artifact": parent, "files_sha256": folder_sha256(Path(pretrained) / "model")}
    if Path(pretrained).is_dir():
        return {"local_path": str(Path(pretrained).resolve()), "files_sha256": folder_sha256(Path(pretrained))}
    return {"hub_id": pretrained, "revision": revision or "main"}


def same_base_model(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Whether two identities name the same weights: equal once the places they were read from and the dtype they
    were loaded in are left out (a copied folder, a moved parent artifact or a bfloat16 load is the same model)."""
    return _content(a or {}) == _content(b or {})


def _content(identity: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in identity.items() if k not in ("local_path", "dtype")}
    parent = out.get("parent_artifact")
    if isinstance(parent, dict):
        out["parent_artifact"] = {k: _content(v) if k == "base_model" and isinstance(v, dict) else v
                                  for k, v in parent.items() if k != "path"}
    return out


def folder_sha256(folder: Path) -> str:
    from fairpriv.hashing import canonical_hash, sha256_file

    files = sorted(p for p in folder.rglob("*") if p.suffix in WEIGHT_SUFFIXES or p.name == "config.json")
    return canonical_hash({p.relative_to(folder).as_posix(): sha256_file(p) for p in files})


def state_dict_sha256(model: Any) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(dtype=_byte_dtype()).numpy().tobytes())
    return digest.hexdigest()


def _byte_dtype():
    import torch

    return torch.uint8
