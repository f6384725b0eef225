"""Small generated media for the demos' example requests (`hub.contract.Sample`): the contract test, the
bad-input corpus, the load test and the benchmarks fill the placeholders with these files. Nothing is committed.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Callable

from hub.contract import Sample


def make_samples(folder: Path | str, seed: int = 0, size: tuple[int, int] = (128, 96)) -> dict[str, str]:
    """{"image": PNG, "audio": 2-second WAV at 16 kHz, "video": 12-frame MP4} in `folder`; `seed` varies the picture
    and its width (load tests give each session a different image)."""
    import numpy as np
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size[0] + seed, size[1]
    y, x = np.mgrid[0:h, 0:w]
    picture = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    picture[h // 4: h // 2, w // 4: w // 2] = rng.integers(0, 255, 3, dtype=np.uint8)  # a block: something to find
    paths = {"image": folder / f"sample{seed}.png", "audio": folder / f"sample{seed}.wav",
             "video": folder / f"sample{seed}.mp4"}
    Image.fromarray(picture).save(paths["image"])
    t = np.arange(16000 * 2) / 16000
    pcm = (0.3 * np.sin(2 * np.pi * (440 + seed) * t) * 32767).astype(np.int16)
    with wave.open(str(paths["audio"]), "wb") as f:
        f.setnchannels(1), f.setsampwidth(2), f.setframerate(16000), f.writeframes(pcm.tobytes())
    _video(paths["video"], picture[:96, :128])
    return {k: str(v) for k, v in paths.items()}


def _video(path: Path, frame, frames: int = 12, rate: int = 12) -> None:
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        s = out.add_stream("mpeg4", rate=rate)
        s.width, s.height, s.pix_fmt = frame.shape[1] // 2 * 2, frame.shape[0] // 2 * 2, "yuv420p"
        for i in range(frames):
            a = np.ascontiguousarray(np.roll(frame, 4 * i, axis=1)[: s.height, : s.width])
            for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


def fill(value, paths: dict[str, str], wrap: Callable[[str], object] = str):
    """`value` with every Sample replaced by `wrap(path of its kind)` (wrap: gradio_client.handle_file for the API)."""
    if isinstance(value, Sample):
        return wrap(paths[value.kind])
    if isinstance(value, dict):
        return {k: fill(v, paths, wrap) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(fill(v, paths, wrap) for v in value)
    return value


def has_sample(value) -> bool:
    if isinstance(value, Sample):
        return True
    if isinstance(value, dict):
        return any(has_sample(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_sample(v) for v in value)
    return False
