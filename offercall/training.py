"""Training the Rasa model. Rasa fingerprints config, domain and data and skips training
when nothing changed, so running this on every start is cheap."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from core.settings import PROJECT_ROOT, Settings

BOT_DIR = PROJECT_ROOT / "bot"
TRAIN_DATA = [BOT_DIR / "data", PROJECT_ROOT / "nlu_data" / "train"]
TEST_NLU_DATA = PROJECT_ROOT / "nlu_data" / "test"


class TrainingError(RuntimeError):
    """Rasa training failed."""


def train_command(settings: Settings) -> list[str]:
    """The ``rasa train`` command line for the project's config, domain and data."""
    return [
        sys.executable, "-m", "rasa", "train",
        "--config", str(BOT_DIR / "config.yml"),
        "--domain", str(BOT_DIR / "domain.yml"),
        "--data", *[str(path) for path in TRAIN_DATA],
        "--out", str(settings.models_dir),
    ]


def latest_model(models_dir: Path) -> Path | None:
    """The newest trained model archive in ``models_dir``, as Rasa itself would pick it."""
    models = sorted(models_dir.glob("*.tar.gz"), key=lambda path: path.stat().st_mtime)
    return models[-1] if models else None


def training_inputs() -> list[Path]:
    """Every file the trained model depends on: config, domain, stories, rules, NLU, dictionary."""
    files = [BOT_DIR / "config.yml", BOT_DIR / "domain.yml", BOT_DIR / "polarity.py", BOT_DIR / "polarity_guard.py",
             PROJECT_ROOT / "zhnorm" / "sounds.py"]  # the polarity guard hears negations with it
    for folder in [*TRAIN_DATA, BOT_DIR / "jieba_dict"]:
        files += sorted(path for path in folder.rglob("*") if path.is_file())
    return files


def data_fingerprint() -> str:
    """A hash of the training inputs and the Rasa version."""
    from importlib.metadata import version

    digest = hashlib.sha256(f"rasa {version('rasa')}".encode())
    for path in training_inputs():
        digest.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def train(settings: Settings, keep: int = 3) -> Path:
    """Train the model, or reuse the one trained from the same inputs; return its path.

    Rasa's own cache restores unchanged components but still packs a new archive each
    time (its entity extractors are never cached), so the model is looked up by our
    fingerprint of the inputs first. Only the newest ``keep`` archives are kept.
    """
    models_dir = settings.models_dir
    models_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = data_fingerprint()
    marker = models_dir / f"{fingerprint[:24]}.fingerprint"
    if marker.is_file() and (models_dir / marker.read_text().strip()).is_file():
        return models_dir / marker.read_text().strip()
    result = subprocess.run(train_command(settings), cwd=PROJECT_ROOT, check=False)
    model = latest_model(models_dir)
    if result.returncode != 0 or model is None:
        raise TrainingError(f"rasa train failed with exit code {result.returncode}")
    marker.write_text(model.name)
    _prune(models_dir, keep)
    return model


def _prune(models_dir: Path, keep: int) -> None:
    models = sorted(models_dir.glob("*.tar.gz"), key=lambda path: path.stat().st_mtime)
    for old in models[:-keep]:
        old.unlink()
    for marker in models_dir.glob("*.fingerprint"):
        if not (models_dir / marker.read_text().strip()).is_file():
            marker.unlink()
