"""What ``pretrained=X`` means, answered once: :class:`ModelRef` parses a model reference into one of

* ``asset``: ``fairpriv:NAME``, an embedded model (the verified converted folder; identity: the asset's pinned
  source sha256 and converted-weights sha256);
* ``artifact``: a fairpriv artifact folder with a ``model/`` folder (composition, e.g. DEAN on an SFT artifact;
  identity: the parent artifact's manifest facts and hash, and the sha256 of the model files);
* ``export``: a folder written by ``fairpriv export`` (it holds ``fairpriv_export.json``);
* ``local``: any other local folder (identity: the sha256 of its config and weight files);
* ``hub``: anything else, a Hugging Face Hub id (identity: the id and the requested revision);

with ``.path`` (what to hand ``from_pretrained``) and ``.identity()`` (what an artifact was fitted on and what a cache
entry belongs to). An in-memory model (Python API) is identified by the sha256 of its parameters.

The dtype the weights are loaded in is added as ``dtype`` when it is not float32 (a fit in bfloat16 is another
artifact than one in float32, while float32 identities stay as they were before the key existed); it names how the
weights were loaded, not other weights, so :func:`same_base_model` leaves it out.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Literal

from fairpriv import assets
from fairpriv.artifacts import artifact_model_folder, parent_identity
from fairpriv.hashing import canonical_hash, sha256_file

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")
EXPORT_RECORD = "fairpriv_export.json"  # what `fairpriv export` writes beside an exported model's files
Kind = Literal["asset", "artifact", "export", "local", "hub"]


@dataclasses.dataclass(frozen=True)
class ModelRef:
    """A parsed ``pretrained=`` reference: its ``kind`` (see the module docstring), the text given and the revision."""

    ref: str
    kind: Kind
    revision: str | None = None

    @classmethod
    def parse(cls, ref: str, revision: str | None = None) -> "ModelRef":
        return cls(ref, _kind(ref), revision)

    @property
    def path(self) -> str:
        """The folder or Hub id to load: the embedded model's verified folder, an artifact's checked ``model/``
        folder, or the reference itself."""
        if self.kind == "asset":
            return str(assets.model_folder(self.ref))
        if self.kind == "artifact":
            return str(artifact_model_folder(self.ref))
        return self.ref

    def identity(self) -> dict[str, Any]:
        """What the weights are (see the module docstring); the same weights give the same identity."""
        if self.kind == "asset":
            return {"fairpriv_asset": self.ref, **assets.model_identity(self.ref)}
        if self.kind == "artifact":
            return {"parent_artifact": parent_identity(self.ref),
                    "files_sha256": folder_sha256(Path(self.ref) / "model")}
        if self.kind in ("export", "local"):
            return {"local_path": str(Path(self.ref).resolve()), "files_sha256": folder_sha256(Path(self.ref))}
        return {"hub_id": self.ref, "revision": self.revision or "main"}


def _kind(ref: str) -> Kind:
    if ref.startswith(assets.MODEL_PREFIX):
        return "asset"
    if artifact_model_folder(ref) is not None:
        return "artifact"
    if Path(ref).is_dir():
        return "export" if (Path(ref) / EXPORT_RECORD).is_file() else "local"
    return "hub"


def resolve(ref: Any) -> Any:
    """What to load for ``pretrained=ref``: :attr:`ModelRef.path` for a string, anything else (a model) unchanged."""
    return ModelRef.parse(ref).path if isinstance(ref, str) else ref


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
    if not isinstance(pretrained, str):
        return {"in_memory_sha256": state_dict_sha256(pretrained)}
    return ModelRef.parse(pretrained, revision).identity()


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
