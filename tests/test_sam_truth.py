"""SAM's ordering against masks and scores built by hand (issue #22): each mask travels with its own score."""

import numpy as np

from demos.sam_segment.engine import Embedding, segment


class HandEngine:
    """decode() answers three masks whose pixel counts say which they are (mask k has k+1 pixels), scores given."""

    uid = "hand"

    def __init__(self, scores):
        self.scores = np.array(scores, dtype=np.float32)

    def decode(self, embedding, points, labels, box, multimask):
        masks = np.zeros((3, 4, 5), dtype=bool)
        for k in range(3):
            masks[k].flat[: k + 1] = True
        return masks, self.scores, None


def _embedding() -> Embedding:
    return Embedding(features=None, original_size=(4, 5), input_size=(4, 5), key="k", engine_uid="hand")


def test_masks_are_reordered_with_their_scores_best_first():
    seg = segment(HandEngine([0.2, 0.9, 0.5]), _embedding(), points=[[1, 1]], labels=[1])
    assert seg.scores == [np.float32(0.9), np.float32(0.5), np.float32(0.2)]
    assert [int(m.sum()) for m in seg.masks] == [2, 3, 1]  # mask 1 (0.9), mask 2 (0.5), mask 0 (0.2)


def test_equal_scores_keep_the_model_order():
    seg = segment(HandEngine([0.5, 0.5, 0.7]), _embedding(), points=[[1, 1]], labels=[1])
    assert [int(m.sum()) for m in seg.masks] == [3, 1, 2]
