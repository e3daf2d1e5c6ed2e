"""The labelled dataset of datasets/vn_traffic and the detector evaluation maths."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from detector.dataset import ClipSpec, Dataset, DatasetError, crop_boxes, read_yolo_labels
from detector.evaluate import average_precision, box_iou, match, near_line
from tests.conftest import REPO_ROOT

DATASET = REPO_ROOT / "datasets" / "vn_traffic" / "clips.yaml"


def f32(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, np.float32).reshape(-1, 4)


# --- labels and clip specs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("3 0.5 0.5 0.1", "expected 'class cx cy w h'"),
        ("x 0.5 0.5 0.1 0.1", "expected 'class cx cy w h'"),
        ("3 1.5 0.5 0.1 0.1", "normalised to 0..1"),
        ("3 0.5 0.5 0 0.1", "normalised to 0..1"),
        ("3 0.5 0.5 0.1 0.1 7", "normalised to 0..1"),
        ("4 0.5 0.5 0.1 0.1", "class 4 is not in the dataset's classes"),
    ],
)
def test_bad_label_line_names_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "000003.txt"
    path.write_text(f"# checked\n2 0.5 0.5 0.2 0.2\n{line}\n")
    with pytest.raises(DatasetError, match=rf"000003.txt:3: .*{reason}"):
        read_yolo_labels(path, (480, 640), {0, 1, 2, 3, 5, 7})


def test_labels_scale_to_frame_pixels(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("3 0.5 0.25 0.1 0.5\n\n2 0.05 0.05 0.1 0.1\n")
    xyxy, cls = read_yolo_labels(path, (400, 600))
    np.testing.assert_allclose(xyxy, [[270, 0, 330, 200], [0, 0, 60, 40]], atol=1e-4)
    assert cls.tolist() == [3, 2]


@pytest.mark.parametrize(
    ("zone", "splits", "error"),
    [
        ((0, 0, 0, 10), {"train": (0, 10)}, "zone must be"),
        ((0, 0, 10, 10), {"train": (0, 10), "test": (5, 20)}, "overlap"),
        ((0, 0, 10, 10), {"train": (10, 10)}, "empty split"),
    ],
)
def test_clip_spec_refuses_bad_zones_and_splits(
    zone: tuple[int, int, int, int], splits: dict[str, tuple[int, int]], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        ClipSpec(file="a.mp4", zone=zone, step=2, splits=splits)  # type: ignore[arg-type]


def test_clip_frames_and_split_of() -> None:
    clip = ClipSpec(file="a.mp4", zone=(0, 0, 9, 9), step=4, splits={"train": (0, 10), "test": (12, 20)})
    assert clip.frames() == [0, 4, 8, 12, 16]
    assert clip.frames("test") == [12, 16]
    assert [clip.split_of(i) for i in (0, 9, 10, 12, 19, 20)] == [
        "train",
        "train",
        None,
        "test",
        "test",
        None,
    ]


def test_dataset_file_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read the dataset file"):
        Dataset(tmp_path / "missing.yaml")
    bad = tmp_path / "clips.yaml"
    bad.write_text("classes: {3: motorcycle}\nclips: {}\n")
    with pytest.raises(DatasetError, match="not a valid dataset file"):
        Dataset(bad)


@pytest.mark.parametrize(
    ("box", "kept", "clipped"),
    [
        ([10, 110, 50, 150], True, [10, 10, 50, 50]),  # inside
        ([10, 80, 50, 120], True, [10, 0, 50, 20]),  # half in: kept, clipped to the zone
        ([10, 60, 50, 110], False, [10, 0, 50, 10]),  # a quarter in: dropped
        ([10, 90, 50, 102], False, [10, 0, 50, 2]),  # a 2-px sliver: dropped
        ([700, 110, 750, 150], False, [600, 10, 600, 50]),  # outside
    ],
)
def test_crop_boxes(box: list[float], kept: bool, clipped: list[float]) -> None:
    out, keep = crop_boxes(f32([box]), (0, 100, 600, 400))
    assert bool(keep[0]) is kept
    np.testing.assert_allclose(out[0], clipped)


def test_shipped_dataset_is_large_enough_and_split_by_time() -> None:
    """Issue 12: at least 300 labelled frames, at least 60 of them in the test split, every label file
    valid, and each clip's splits separated in time."""
    ds = Dataset(DATASET)
    files = sorted(ds.labels_dir.rglob("*.txt"))
    per_split = {"train": 0, "val": 0, "test": 0}
    for name, clip in ds.spec.clips.items():
        ranges = sorted(clip.splits.values())
        assert all(b < c for (_, b), (c, _) in itertools.pairwise(ranges)), name
        for path in sorted((ds.labels_dir / name).glob("*.txt")):
            index = int(path.stem)
            split = clip.split_of(index)
            assert split is not None and index % clip.step == clip.splits[split][0] % clip.step, path
            read_yolo_labels(path, (720, 1280), set(ds.spec.classes))
            per_split[split] += 1
    assert len(files) == sum(per_split.values()), "label files outside a clip folder"
    assert sum(per_split.values()) >= 300, per_split
    assert per_split["test"] >= 60, per_split


# --- evaluation maths -----------------------------------------------------------------------------


def test_box_iou_table() -> None:
    a = f32([[0, 0, 10, 10], [0, 0, 10, 10]])
    b = f32([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(box_iou(a, b)[0], [1.0, 50 / 150, 0.0], atol=1e-6)


def test_match_is_greedy_by_confidence_and_one_to_one() -> None:
    gt = f32([[0, 0, 10, 10], [100, 100, 110, 110]])
    pred = f32([[0, 0, 10, 10], [1, 0, 11, 10], [100, 100, 110, 111], [50, 50, 60, 60]])
    conf = np.asarray([0.6, 0.9, 0.5, 0.8], np.float32)
    # the 0.9 box takes the first target, the 0.6 duplicate is a false positive
    assert match(pred, conf, gt, 0.5).tolist() == [False, True, True, False]
    assert match(pred[:0], conf[:0], gt, 0.5).tolist() == []
    assert match(pred, conf, gt[:0], 0.5).tolist() == [False] * 4


@pytest.mark.parametrize(
    ("tp", "conf", "n_gt", "ap"),
    [
        ([True, True], [0.9, 0.8], 2, 1.0),
        ([True, False], [0.9, 0.8], 2, 0.5),
        ([False, True], [0.9, 0.8], 2, 0.25),  # recall 0.5 reached at precision 0.5
        ([True, True], [0.9, 0.8], 4, 0.5),  # half the targets never found
        ([], [], 3, 0.0),
    ],
)
def test_average_precision_table(tp: list[bool], conf: list[float], n_gt: int, ap: float) -> None:
    got = average_precision(np.asarray(tp, bool), np.asarray(conf, np.float32), n_gt)
    assert got == pytest.approx(ap)


def test_near_line_uses_bottom_centre_and_the_zone_height() -> None:
    line = ((0, 300), (600, 300))
    zone = (0, 100, 640, 500)  # band = 0.15 * 400 = 60 px
    boxes = f32([[10, 200, 50, 290], [10, 200, 50, 359], [10, 200, 50, 361], [700, 250, 740, 300]])
    assert near_line(boxes, line, zone).tolist() == [True, True, False, False]


def test_best_confidence_needs_targets() -> None:
    """An operating confidence "chosen on val" with nothing labelled there would be a made-up number."""
    from detector.evaluate import Evaluation, _Pool

    ev = Evaluation(classes={3: "motorcycle"}, iou=0.5, per_class={3: _Pool()})
    with pytest.raises(ValueError, match="no labelled targets"):
        ev.best_confidence()
    ev.per_class[3].add(np.array([True, False]), np.array([0.9, 0.3], np.float32), 1)
    assert ev.best_confidence() == pytest.approx(0.35)  # the false alarm at 0.3 drops out above it
