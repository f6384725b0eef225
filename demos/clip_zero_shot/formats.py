"""The tables the CLIP tab shows (and an API caller gets back): label scores per image, the bar-chart data of the
first image, and a search ranking. pandas is imported when a table is built; no gradio here."""

from __future__ import annotations

from pathlib import Path


def path_of(item):
    """The file of a gallery item ((path, caption) pair or a path)."""
    return item[0] if isinstance(item, (tuple, list)) else item


def display_name(item, i: int) -> str:
    """The file name of a gallery item, or "image <n>" for one that is not a file."""
    p = path_of(item)
    return Path(p).name if isinstance(p, (str, Path)) else f"image {i + 1}"


class ScoreTable:
    """A `Classification` as tables. Scores are rounded to 4 decimals as float64, so a table shows 0.2232, not
    float32 noise like 0.2231999933719635.

    `bars()`: every label's score for the first image (label, score); `frame()`: one row per image with its name,
    the best label (single-label mode) or the labels present (multi-label mode), then every label's score.
    """

    def __init__(self, result, names: list[str]):
        self.result, self.names = result, names
        self.scores = result.scores.astype(float).round(4)

    def bars(self):
        import pandas as pd

        return pd.DataFrame({"label": self.result.labels, "score": self.scores[0]})

    def frame(self):
        import pandas as pd

        res = self.result
        rows = pd.DataFrame(self.scores, columns=res.labels)
        rows.insert(0, "image", self.names)
        if res.mode == "multi":
            rows.insert(1, "present", [", ".join(res.present(i)) or "(none)" for i in range(len(self.names))])
        else:
            rows.insert(1, "best", [res.present(i)[0] for i in range(len(self.names))])
        return rows


class RankingTable:
    """A `SearchResult` over gallery `items`: `gallery()` the files best first, captioned "#rank · similarity";
    `frame()` the (rank, image, similarity) rows."""

    def __init__(self, result, items: list):
        self.result = result
        self.paths = [path_of(im) for im in items]
        self.names = [display_name(im, i) for i, im in enumerate(items)]

    def gallery(self) -> list[tuple]:
        sims = self.result.similarities
        return [(self.paths[i], f"#{r + 1} · {float(sims[i]):.3f}") for r, i in enumerate(self.result.order)]

    def frame(self):
        import pandas as pd

        order, sims = self.result.order, self.result.similarities
        return pd.DataFrame({"rank": list(range(1, len(order) + 1)), "image": [self.names[i] for i in order],
                             "similarity": [round(float(sims[i]), 4) for i in order]})
