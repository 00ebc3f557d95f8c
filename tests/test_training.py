"""The trained model is found by the fingerprint of its inputs, so unchanged data never retrains."""

from __future__ import annotations

from core.settings import Settings
from offercall.training import _prune, data_fingerprint, train, training_inputs


def test_the_fingerprint_covers_config_domain_stories_and_nlu():
    names = {path.name for path in training_inputs()}
    assert {"config.yml", "domain.yml", "rules.yml", "affirm.yml"} <= names
    assert data_fingerprint() == data_fingerprint()


def test_a_model_trained_from_the_same_inputs_is_reused_without_training(tmp_path):
    settings = Settings.from_environ({"OFFERCALL_MODELS_DIR": str(tmp_path)})
    archive = tmp_path / "20260101-000000-known.tar.gz"
    archive.write_bytes(b"model")
    (tmp_path / f"{data_fingerprint()[:24]}.fingerprint").write_text(archive.name)
    assert train(settings) == archive  # no `rasa train` ran: it would have written a new archive
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [archive.name, f"{data_fingerprint()[:24]}.fingerprint"])


def test_old_archives_and_their_markers_are_pruned(tmp_path):
    import os

    for index in range(5):
        archive = tmp_path / f"m{index}.tar.gz"
        archive.write_bytes(b"x")
        os.utime(archive, (index, index))
        (tmp_path / f"f{index}.fingerprint").write_text(archive.name)
    _prune(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.glob("*.tar.gz")) == ["m3.tar.gz", "m4.tar.gz"]
    assert sorted(p.name for p in tmp_path.glob("*.fingerprint")) == ["f3.fingerprint", "f4.fingerprint"]
