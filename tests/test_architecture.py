"""The packages keep the layering of ../shared/DESIGN.md (import-linter contracts in
pyproject.toml): a broken contract names the import chain that breaks it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.settings import PROJECT_ROOT


def test_the_import_contracts_hold():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint_imports), "--no-cache"], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
