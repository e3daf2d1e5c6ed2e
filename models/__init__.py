"""Model manifest and resolver: where every model file comes from, and a check that it is the right one.

Light on purpose: importing this package loads no runtime. `models.runtime` holds the ONNX Runtime
wrapper and imports onnxruntime when used.
"""

from models.registry import (
    ModelEntry,
    ModelError,
    ModelStatus,
    Registry,
    default_registry,
    resolve,
)

__all__ = ["ModelEntry", "ModelError", "ModelStatus", "Registry", "default_registry", "resolve"]
