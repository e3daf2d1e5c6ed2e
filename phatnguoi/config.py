"""Camera configuration files (YAML → strict pydantic trees) and the errors the CLI maps.

A typo or an out-of-range value is a `ConfigError` that names the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from detector.config import DetectorConfig, TrackerConfig


class ConfigError(ValueError):
    """A configuration file or value is invalid. The message names the file and field."""


class CameraConfig(BaseModel):
    """One camera: where its video comes from and how it is processed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(
        "cam0", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="Camera id."
    )
    source: str | None = Field(None, description="File path, rtsp://, http(s):// URL or device index.")
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)


M = TypeVar("M", bound=BaseModel)


def format_validation_error(e: ValidationError, origin: str) -> str:
    """One line per bad field: 'file: detector.confidence: Input should be less than 1'."""
    parts = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{origin}: {loc}: {err['msg']}")
    return "; ".join(parts)


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Parse a YAML file into `model`. Raises `ConfigError` naming the file and each bad field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} is not valid YAML") from e
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, str(path))) from None


def load_camera(path: Path) -> CameraConfig:
    """Load a camera config file."""
    return load_yaml_model(path, CameraConfig)
