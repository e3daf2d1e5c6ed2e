"""Model manifest and resolver: resolution order, checksums, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.registry import ENV_DIR, MANIFEST_PATH, ModelError, Registry, default_registry


def test_shipped_manifest_is_valid_and_complete() -> None:
    reg = default_registry()
    names = {e.name for e in reg}
    assert {"yolov8n-coco", "ppocrv6-det", "ppocrv6-rec"} <= names
    coco = reg.entry("yolov8n-coco")
    assert coco.classes is not None and coco.classes[3] == "motorcycle" and len(coco.classes) == 80
    for e in reg:
        assert e.license and (e.package or (Path(MANIFEST_PATH).parent / "files" / e.file).is_file())


def test_every_model_resolves_with_a_matching_checksum() -> None:
    rows = default_registry().status()
    problems = [f"{r.name}: {r.problem}" for r in rows if not r.checksum_ok]
    assert not problems, problems


def _tiny_registry(tmp_path: Path, content: bytes = b"weights", package: bool = True) -> tuple[Registry, str]:
    import hashlib

    digest = hashlib.sha256(content).hexdigest()
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(
        "models:\n"
        "  - name: tiny\n    task: detect\n    file: tiny.onnx\n"
        f"    sha256: {digest}\n"
        + ("    package: tinypkg==1.0\n    package_path: tinypkg/tiny.onnx\n" if package else "")
        + "    license: MIT\n"
    )
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    return Registry.from_file(manifest, shipped_dir=shipped), digest


def test_resolution_order_explicit_env_shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg, _ = _tiny_registry(tmp_path)
    with pytest.raises(
        ModelError, match=r"'tiny' \(tiny.onnx\) is not installed: pip install --no-deps 'tinypkg==1.0'"
    ):
        reg.resolve("tiny")
    (tmp_path / "shipped" / "tiny.onnx").write_bytes(b"weights")
    assert reg.locate("tiny")[1] == "shipped"
    env = tmp_path / "env"
    env.mkdir()
    (env / "tiny.onnx").write_bytes(b"weights")
    monkeypatch.setenv(ENV_DIR, str(env))
    assert reg.locate("tiny") == (env / "tiny.onnx", "env")
    explicit = tmp_path / "mine.onnx"
    explicit.write_bytes(b"weights")
    assert reg.resolve("tiny", explicit) == explicit


def test_altered_file_is_refused(tmp_path: Path) -> None:
    reg, _ = _tiny_registry(tmp_path)
    (tmp_path / "shipped" / "tiny.onnx").write_bytes(b"weightz")
    with pytest.raises(ModelError, match="altered or the wrong version"):
        reg.resolve("tiny")
    assert reg.status()[0].checksum_ok is False


def test_a_missing_shipped_model_says_how_to_get_it_back(tmp_path: Path) -> None:
    """The default detector ships in models/files/, in no package: the hint is to restore that file."""
    shipped = tmp_path / "files"
    shipped.mkdir()
    reg = Registry.from_file(MANIFEST_PATH, shipped_dir=shipped)
    with pytest.raises(ModelError) as caught:
        reg.resolve("yolov8n-vn-traffic")
    assert str(caught.value) == (
        "model 'yolov8n-vn-traffic' (yolov8n_vn_traffic.onnx) is not installed: phatnguoi ships it as "
        f"{shipped / 'yolov8n_vn_traffic.onnx'}, which is gone; restore it (reinstall phatnguoi, or "
        "`git checkout -- models/files/yolov8n_vn_traffic.onnx` in a source checkout), or put "
        "yolov8n_vn_traffic.onnx in $PHATNGUOI_MODELS"
    )


@pytest.mark.parametrize(
    ("origin", "package", "hint"),
    [
        ("package", True, "reinstall its package: pip install --force-reinstall --no-deps 'tinypkg==1.0'"),
        (
            "shipped",
            False,
            "restore it: reinstall phatnguoi, or `git checkout -- models/files/tiny.onnx`",
        ),
        ("env", True, "replace it with the right version, or remove it from $PHATNGUOI_MODELS"),
        ("explicit", True, "give the file of this model, or no explicit path"),
    ],
)
def test_an_altered_file_says_what_to_reinstall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, origin: str, package: bool, hint: str
) -> None:
    reg, _ = _tiny_registry(tmp_path, package=package)
    folder = {
        "package": tmp_path / "site" / "tinypkg",
        "shipped": tmp_path / "shipped",
        "env": tmp_path / "env",
        "explicit": tmp_path / "mine",
    }[origin]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.onnx").write_bytes(b"weightz")  # another version of the weights
    if origin == "package":  # a real installed package, found by the import system
        (folder / "__init__.py").write_text("")
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
    if origin == "env":
        monkeypatch.setenv(ENV_DIR, str(folder))
    with pytest.raises(ModelError) as caught:
        reg.resolve("tiny", folder / "tiny.onnx" if origin == "explicit" else None)
    message = str(caught.value)
    assert f"({origin}) has sha256" in message
    assert message.split("the file is altered or the wrong version; ", 1)[1].startswith(hint), message


def test_real_model_altered_copy_in_env_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = default_registry().resolve("yolov8n-coco")
    copy = tmp_path / real.name
    shutil.copyfile(real, copy)
    with copy.open("r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01")
    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    with pytest.raises(ModelError, match="sha256"):
        Registry.from_file(MANIFEST_PATH).resolve("yolov8n-coco")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [{name: a}]", r"models\.0\.task: Field required"),
        (
            "models:\n  - {name: a, task: fly, file: f, sha256: " + "0" * 64 + ", license: x}",
            r"models\.0\.task",
        ),
        ("models:\n  - {name: a, task: detect, file: f, sha256: abc, license: x}", r"sha256"),
        ("models: [}", "cannot read model manifest"),
    ],
)
def test_invalid_manifest_names_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ModelError, match=message):
        Registry.from_file(path)


def test_unknown_model_lists_known_ones() -> None:
    with pytest.raises(ModelError, match=r"unknown model 'nope' \(known: .*yolov8n-coco"):
        default_registry().entry("nope")
