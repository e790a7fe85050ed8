"""Artifacts: manifest contents, atomic creation, refusal of foreign or corrupt artifacts, cache keys."""

import json

import pytest

from fairpriv.artifacts import (
    MANIFEST, ArtifactError, build_artifact, cache_key, canonical_hash, load_artifact, sha256_file,
)

IDENTITY = {"intervention": "demo", "intervention_version": "1", "config": {"p": 0.1}, "base_model": {"hub_id": "m"}}


def write_two_files(folder):
    (folder / "a.bin").write_bytes(b"alpha")
    (folder / "sub").mkdir()
    (folder / "sub" / "b.bin").write_bytes(b"beta")
    return {"n": 2}


def test_build_writes_manifest_with_hashes_and_facts(tmp_path):
    art = build_artifact(tmp_path / "art", write_two_files, IDENTITY)
    mf = json.loads((tmp_path / "art" / MANIFEST).read_text())
    assert mf["intervention"] == "demo" and mf["facts"] == {"n": 2} and mf["base_model"] == {"hub_id": "m"}
    assert mf["files"] == {"a.bin": sha256_file(tmp_path / "art" / "a.bin"), "sub/b.bin": sha256_file(tmp_path / "art/sub/b.bin")}
    content = {"intervention": "demo", "config": {"p": 0.1}, "files": mf["files"]}
    assert art.hash == canonical_hash(content) == mf["artifact_hash"]
    assert art.file("a.bin").read_bytes() == b"alpha"


def test_sha256_matches_hashlib(tmp_path):
    import hashlib

    (tmp_path / "f").write_bytes(b"x" * 3_000_000)
    assert sha256_file(tmp_path / "f", chunk=1000) == hashlib.sha256(b"x" * 3_000_000).hexdigest()


def test_failed_fit_leaves_nothing(tmp_path):
    def boom(folder):
        (folder / "half.bin").write_bytes(b"half")
        raise RuntimeError("fit failed")

    with pytest.raises(RuntimeError):
        build_artifact(tmp_path / "art", boom, IDENTITY)
    assert list(tmp_path.iterdir()) == []


def test_refit_replaces_previous_folder_completely(tmp_path):
    build_artifact(tmp_path / "art", write_two_files, IDENTITY)
    art = build_artifact(tmp_path / "art", lambda f: (f / "c.bin").write_bytes(b"c") and {}, IDENTITY)
    assert sorted(art.manifest["files"]) == ["c.bin"] and not (tmp_path / "art" / "a.bin").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["art"]


def test_artifact_of_another_intervention_is_refused(tmp_path):
    build_artifact(tmp_path / "art", write_two_files, IDENTITY)
    with pytest.raises(ArtifactError, match="made by intervention 'demo', not 'dean'.*--model demo-hf"):
        load_artifact(tmp_path / "art", "dean")


def test_corrupt_file_is_refused(tmp_path):
    build_artifact(tmp_path / "art", write_two_files, IDENTITY)
    (tmp_path / "art" / "a.bin").write_bytes(b"alphA")
    with pytest.raises(ArtifactError, match="a.bin is missing or corrupt"):
        load_artifact(tmp_path / "art", "demo")


@pytest.mark.parametrize(
    "setup,fragment",
    [(lambda p: None, "does not exist"), (lambda p: p.mkdir(), "has no manifest.json"),
     (lambda p: (p.mkdir(), (p / MANIFEST).write_text("{oops")), "not valid JSON"),
     (lambda p: (p.mkdir(), (p / MANIFEST).write_text("[1]")), "not a fairpriv artifact manifest")],
)
def test_not_an_artifact(tmp_path, setup, fragment):
    setup(tmp_path / "x")
    with pytest.raises(ArtifactError, match=fragment):
        load_artifact(tmp_path / "x", "demo")


def test_missing_file_name_is_reported(tmp_path):
    art = build_artifact(tmp_path / "art", write_two_files, IDENTITY)
    with pytest.raises(ArtifactError, match="no file 'nope'"):
        art.file("nope")


def test_cache_key_depends_on_every_input():
    base = cache_key("demo", "1", {"p": 0.1}, {"hub_id": "m"})
    assert base == cache_key("demo", "1", {"p": 0.1}, {"hub_id": "m"})
    variants = [("dean", "1", {"p": 0.1}, {"hub_id": "m"}), ("demo", "2", {"p": 0.1}, {"hub_id": "m"}),
                ("demo", "1", {"p": 0.2}, {"hub_id": "m"}), ("demo", "1", {"p": 0.1}, {"hub_id": "n"})]
    assert len({base, *(cache_key(*v) for v in variants)}) == 5


def test_cache_key_follows_the_content_of_a_local_data_file(tmp_path):
    data = tmp_path / "pairs.csv"
    data.write_text("prompt,response\na,b\n")
    first = cache_key("demo", "1", {"data": str(data)}, {"hub_id": "m"})
    assert first == cache_key("demo", "1", {"data": str(data)}, {"hub_id": "m"})
    data.write_text("prompt,response\na,c\n")  # same path, new content: a new fit
    assert cache_key("demo", "1", {"data": str(data)}, {"hub_id": "m"}) != first
