"""Training the Rasa model. Rasa fingerprints config, domain and data and skips training
when nothing changed, so running this on every start is cheap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from offercall.settings import PROJECT_ROOT, Settings

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


def train(settings: Settings) -> Path:
    """Train (or reuse, when unchanged) the model and return its path."""
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(train_command(settings), cwd=PROJECT_ROOT, check=False)
    model = latest_model(settings.models_dir)
    if result.returncode != 0 or model is None:
        raise TrainingError(f"rasa train failed with exit code {result.returncode}")
    return model
