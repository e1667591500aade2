"""The one manifest type: read and checked once, with errors that name the file, the key and the fix."""

import json

import pytest

from harness.manifest import Manifest, ManifestError


def _write(tmp_path, values) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps(values))


def test_a_manifest_reads_into_its_fields(tmp_path):
    _write(tmp_path, {"competition": "B", "trained": True, "family": "ridge_poly", "train": {"top_k": 3},
                      "artifacts": ["model.json"], "gate": {"min_score": 0.1}})
    manifest = Manifest.read(tmp_path)
    assert (manifest.competition, manifest.family, manifest.artifacts) == ("B", "ridge_poly", ("model.json",))
    assert manifest.trained and manifest.train == {"top_k": 3} and manifest.gate == {"min_score": 0.1}
    _write(tmp_path, {"competition": "A"})
    bare = Manifest.read(tmp_path)
    assert (bare.trained, bare.family, bare.artifacts, bare.train) == (False, None, (), {})


@pytest.mark.parametrize("values,message", [
    ({"competition": "A", "familly": "gru"}, r"unknown key\(s\) \['familly'\]; valid keys are .*'family'"),
    ({"competition": "C"}, "'competition' must be one of"),
    ({"competition": "A", "artifacts": "model.npz"}, "'artifacts' must be a list"),
    ({"competition": "A", "train": [1]}, "'train' must be a JSON object"),
    ({"competition": "A", "trained": "yes"}, "'trained' must be a JSON true/false"),
])
def test_malformed_manifests_are_refused_with_the_key(tmp_path, values, message):
    _write(tmp_path, values)
    with pytest.raises(ManifestError, match=message):
        Manifest.read(tmp_path)


def test_a_missing_or_broken_file_names_the_path(tmp_path):
    with pytest.raises(ManifestError, match="manifest.json: missing"):
        Manifest.read(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.read(tmp_path)
