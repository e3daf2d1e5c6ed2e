"""PP-OCR pre/post-processing in `plates.ocr`: CTC decoding, alphabet masking, head restriction, batching."""

from __future__ import annotations

import numpy as np
import pytest

from models.runtime import InferenceError, OnnxSession
from plates.ocr import (
    BLANK,
    alphabet_indices,
    ctc_decode_topk,
    det_input_size,
    mask_probabilities,
    normalise,
    prepare_rec_batch,
    rec_dictionary,
    rec_width,
    restrict_rec_head,
)

CHARSET = (BLANK, "1", "7", "A", "-")


def frames(*rows: dict[str, float]) -> np.ndarray:
    """(T, 5) probabilities over CHARSET; each row names its non-blank mass, the rest is blank."""
    out = np.zeros((len(rows), len(CHARSET)), np.float32)
    for t, row in enumerate(rows):
        for ch, p in row.items():
            out[t, CHARSET.index(ch)] = p
        out[t, 0] = 1.0 - sum(row.values())
    return out


def test_ctc_collapses_repeats_and_drops_blanks() -> None:
    probs = frames({"1": 0.9}, {"1": 0.8}, {}, {"1": 0.95}, {"-": 0.9}, {"A": 0.7, "1": 0.2}, {})
    line = ctc_decode_topk(probs, CHARSET, k=3, min_prob=0.05)
    assert line.text == "11-A"
    assert line.spans == ((0, 2), (3, 4), (4, 5), (5, 6))
    # The best character comes first with its highest probability over its frames.
    assert line.positions[0][0] == ("1", pytest.approx(0.9))
    # Alternatives of the 'A' position: A, then 1 at 0.2; 7 and '-' have 0 < min_prob.
    assert [c for c, _ in line.positions[3]] == ["A", "1"]
    assert line.positions[3][1][1] == pytest.approx(0.2)


def test_ctc_alternative_is_max_over_the_span() -> None:
    # '1' wins both frames, but '7' reaches 0.4 on the second: the 7 alternative keeps 0.4.
    probs = frames({"1": 0.8, "7": 0.1}, {"1": 0.55, "7": 0.4})
    line = ctc_decode_topk(probs, CHARSET, k=2)
    assert line.text == "1"
    assert line.positions == ((("1", pytest.approx(0.8)), ("7", pytest.approx(0.4))),)
    assert line.confidence == pytest.approx(0.8)


def test_ctc_all_blank_is_empty() -> None:
    line = ctc_decode_topk(frames({}, {}, {}), CHARSET)
    assert line.text == ""
    assert line.positions == ()
    assert line.confidence == 0.0


@pytest.mark.parametrize(
    ("shape", "error"),
    [((4,), ValueError), ((3, 4), ValueError), ((2, 3, 5), ValueError)],
)
def test_ctc_rejects_wrong_shapes(shape: tuple[int, ...], error: type[Exception]) -> None:
    with pytest.raises(error, match="probs must be"):
        ctc_decode_topk(np.zeros(shape, np.float32), CHARSET)


def test_mask_probabilities_equals_softmax_of_masked_logits() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 7)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    keep = np.array([0, 2, 5])
    masked = np.full_like(logits, -np.inf)
    masked[..., keep] = logits[..., keep]
    expected = (np.exp(masked) / np.exp(masked).sum(-1, keepdims=True))[..., keep]
    got = mask_probabilities(probs, keep)
    assert got.shape == (2, 3, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_masking_changes_the_argmax_to_a_plate_character() -> None:
    # A CJK-like class (index 3) wins unmasked; masked to blank/'1'/'7', '7' wins.
    probs = np.array([[0.05, 0.1, 0.25, 0.6]], np.float32)
    assert int(mask_probabilities(probs, [0, 1, 2]).argmax()) == 2


def test_alphabet_indices_in_alphabet_order() -> None:
    dictionary = rec_dictionary({"character": "a\n7\n-\n1"})
    assert dictionary == (BLANK, "a", "7", "-", "1", " ")
    np.testing.assert_array_equal(alphabet_indices(dictionary, "17-"), [0, 4, 2, 3])
    with pytest.raises(ValueError, match="'Q'"):
        alphabet_indices(dictionary, "1Q")


def test_rec_dictionary_needs_metadata() -> None:
    with pytest.raises(InferenceError, match="character"):
        rec_dictionary({"other": "x"})


def _tiny_classifier(weight: np.ndarray, bias: np.ndarray, identity: bool = True) -> bytes:
    """x (N, T, D) -> MatMul(W) -> Add(b) -> [Identity] -> Softmax(axis 2): the PP-OCR rec head."""
    from onnx import TensorProto, helper, numpy_helper

    d, c = weight.shape
    nodes = [helper.make_node("MatMul", ["x", "W"], ["mm"]), helper.make_node("Add", ["mm", "b"], ["logits"])]
    last = "logits"
    if identity:
        nodes.append(helper.make_node("Identity", ["logits"], ["id"]))
        last = "id"
    nodes.append(helper.make_node("Softmax", [last], ["probs"], axis=2))
    graph = helper.make_graph(
        nodes,
        "head",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T", d])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", "T", c])],
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


@pytest.mark.parametrize("identity", [True, False])
def test_restrict_rec_head_is_softmax_over_kept_classes(identity: bool) -> None:
    rng = np.random.default_rng(1)
    weight = rng.normal(size=(4, 6)).astype(np.float32)
    bias = rng.normal(size=6).astype(np.float32)
    keep = [0, 2, 5]
    x = rng.normal(size=(2, 3, 4)).astype(np.float32)
    full = OnnxSession(_tiny_classifier(weight, bias, identity)).run({"x": x})[0]
    cut = OnnxSession(restrict_rec_head(_tiny_classifier(weight, bias, identity), keep)).run({"x": x})[0]
    assert cut.shape == (2, 3, 3)
    np.testing.assert_allclose(cut, mask_probabilities(full, keep), rtol=1e-5, atol=1e-6)


def test_restrict_rec_head_rejects_other_graphs() -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(InferenceError, match="Softmax"):
        restrict_rec_head(model, [0])


@pytest.mark.parametrize(
    ("h", "w", "expected"),
    [(48, 48, 48), (24, 100, 200), (100, 24, 12), (1000, 1, 1)],
)
def test_rec_width(h: int, w: int, expected: int) -> None:
    assert rec_width(h, w) == expected


def test_rec_width_rejects_empty() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        rec_width(0, 10)


def test_prepare_rec_batch_pads_to_the_widest_line() -> None:
    white = np.full((24, 40, 3), 255, np.uint8)  # -> 48 x 80
    black = np.zeros((48, 30, 3), np.uint8)  # -> 48 x 30
    batch = prepare_rec_batch([white, black])
    assert batch.shape == (2, 3, 48, 80) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[0], 1.0)  # white -> +1
    np.testing.assert_allclose(batch[1, :, :, :30], -1.0)  # black -> -1
    np.testing.assert_allclose(batch[1, :, :, 30:], 0.0)  # padding is mid grey
    # Widths round up to the recogniser's stride and are capped.
    assert prepare_rec_batch([np.zeros((10, 11, 3), np.uint8)]).shape[-1] == 56
    assert prepare_rec_batch([np.zeros((10, 500, 3), np.uint8)], max_width=160).shape[-1] == 160
    with pytest.raises(ValueError, match="no line"):
        prepare_rec_batch([])


def test_normalise_range_and_layout() -> None:
    img = np.array([[[0, 128, 255]]], np.uint8)
    out = normalise(img)
    assert out.shape == (3, 1, 1)
    np.testing.assert_allclose(out[:, 0, 0], [-1.0, 128 / 127.5 - 1, 1.0], atol=1e-6)


@pytest.mark.parametrize(
    ("h", "w", "short", "cap", "expected"),
    [
        (147, 200, 96, 320, (96, 128)),  # two-line crop
        (63, 300, 96, 320, (64, 320)),  # one-line crop: long side capped
        (10, 10, 96, 320, (96, 96)),
        (1, 500, 96, 320, (32, 320)),  # never below 32
    ],
)
def test_det_input_size(h: int, w: int, short: int, cap: int, expected: tuple[int, int]) -> None:
    assert det_input_size(h, w, short, cap) == expected
