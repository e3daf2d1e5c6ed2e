"""File sources on real clips: every frame in order with container time; broken files fail clearly."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from streams import Frame, HealthState, SourceOptions, StreamError, open_source


def test_real_file_every_frame_in_order(videos_dir: Path) -> None:
    path = videos_dir / "hanoi_giangvo_langha.mp4"
    with open_source(str(path), camera_id="giangvo") as source:
        assert source.fps == pytest.approx(6.0)
        assert source.resolution_wh == (640, 480)
        assert source.queue_size == 8 and not source.realtime
        frames: list[tuple[int, float, str]] = []
        shapes = set()
        for frame in source:
            assert isinstance(frame, Frame)
            frames.append((frame.index, frame.ts, frame.camera_id))
            shapes.add((frame.image.shape, frame.image.dtype))
        health = source.health()
    assert [index for index, _, _ in frames] == list(range(360))
    ts = np.array([t for _, t, _ in frames])
    assert np.all(np.diff(ts) > 0)
    np.testing.assert_allclose(ts, np.arange(360) / 6.0, atol=1e-3)
    assert {cam for _, _, cam in frames} == {"giangvo"}
    assert shapes == {((480, 640, 3), np.dtype(np.uint8))}
    assert health.state is HealthState.ENDED
    assert (health.frames_read, health.frames_delivered, health.frames_dropped) == (360, 360, 0)
    assert health.last_error is None
    assert source.queue_high_water <= 8


def test_file_back_pressure_drops_nothing_for_a_slow_consumer(videos_dir: Path) -> None:
    options = SourceOptions(queue_size=3)
    with open_source(str(videos_dir / "us_street.mp4"), options=options) as source:
        indices = []
        for frame in source:
            indices.append(frame.index)
            if len(indices) <= 5:
                time.sleep(0.05)  # the reader fills the buffer and must wait, not drop
        health = source.health()
    assert indices == list(range(361))
    assert health.frames_dropped == 0
    assert source.queue_high_water == 3


def test_closing_a_file_early_returns_quickly_without_error(videos_dir: Path) -> None:
    source = open_source(str(videos_dir / "hanoi_giangvo_langha.mp4"), options=SourceOptions(queue_size=2))
    first = [frame.index for _, frame in zip(range(3), source, strict=False)]
    time.sleep(0.1)  # let the reader block on the full buffer
    start = time.monotonic()
    source.close()
    source.close()  # idempotent
    assert time.monotonic() - start < 1.0
    assert first == [0, 1, 2]
    health = source.health()
    assert health.state is HealthState.ENDED
    assert health.last_error is None
    assert list(source) == []


def test_realtime_file_is_paced_and_drops_for_a_slow_consumer(videos_dir: Path) -> None:
    # A file standing in for a camera: paced at its 29.97 fps, newest frames kept.
    options = SourceOptions(realtime=True)
    with open_source(str(videos_dir / "us_street.mp4"), options=options) as source:
        assert source.queue_size == 2
        start = time.monotonic()
        indices = []
        for frame in source:
            indices.append(frame.index)
            time.sleep(0.1)
            if time.monotonic() - start > 1.0:
                break
        health = source.health()
    assert health.frames_dropped > 0
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    # Paced: about 30 frames read in about 1 s, not the whole 361-frame file.
    assert 15 <= health.frames_read <= 60


def _write_truncated(videos_dir: Path, tmp_path: Path, fraction: float) -> Path:
    data = (videos_dir / "us_street.mp4").read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def test_truncated_file_ends_with_last_error(videos_dir: Path, tmp_path: Path) -> None:
    # us_street.mp4 has its index (moov) up front, so 30 % of it opens and decodes ~80 of 361 frames.
    path = _write_truncated(videos_dir, tmp_path, 0.30)
    start = time.monotonic()
    with open_source(str(path), camera_id="cut") as source:
        indices = [frame.index for frame in source]
        health = source.health()
    assert time.monotonic() - start < 10.0
    assert 10 < len(indices) < 361
    assert indices == list(range(len(indices)))
    assert health.state is HealthState.ENDED
    assert health.last_error is not None
    assert f"ended after {len(indices)} of 361 frames" in health.last_error
    assert "truncated" in health.last_error


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("random.mp4", os.urandom(200_000), "not a readable video"),
        ("empty.mp4", b"", "the file is empty"),
        ("notes.mp4", b"hello, not a video\n" * 100, "not a readable video"),
        ("random.avi", os.urandom(5_000), "not a readable video"),
    ],
)
def test_broken_files_raise_one_clear_line(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    start = time.monotonic()
    with pytest.raises(StreamError) as info:
        open_source(str(path))
    assert time.monotonic() - start < 10.0
    text = str(info.value)
    assert text.startswith(f"cannot open video file '{path}'")
    assert message in text
    assert "\n" not in text


def test_file_truncated_before_its_first_frame_raises(videos_dir: Path, tmp_path: Path) -> None:
    path = _write_truncated(videos_dir, tmp_path, 0.05)
    with pytest.raises(StreamError) as info:
        open_source(str(path))
    assert str(info.value).startswith(f"cannot open video file '{path}'")
    assert "\n" not in str(info.value)


def test_missing_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "nothing_here.mp4"
    with pytest.raises(StreamError, match=r"^cannot open video file '.*nothing_here\.mp4': no such file$"):
        open_source(str(path))


def test_unreadable_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "locked.mp4"
    path.write_bytes(b"x" * 100)
    path.chmod(0)
    if os.access(path, os.R_OK):
        pytest.skip("running as a user who can read any file (root)")
    with pytest.raises(StreamError, match="Permission denied"):
        open_source(str(path))


def test_frame_count_of_a_file_survives_the_reader_start(videos_dir) -> None:  # type: ignore[no-untyped-def]
    from streams import open_source

    with open_source(str(videos_dir / "hanoi_giangvo_langha.mp4")) as src:
        next(iter(src))
        assert src.frame_count == 360
