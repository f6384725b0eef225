"""Speech to notes: a chain over the Whisper and chat demos' models, with no model of its own (hub.chain).

Whisper transcribes; the chat model writes a summary, a list of action items, or a translation of the subtitles into
another language (one segment at a time, so the SRT / VTT keep Whisper's timings). A long transcript is summarized in
parts (this demo's `split` work method cuts it at segment ends), then the parts together. notes.py runs the steps,
engine.py splits, ui.py builds the /summarize_audio API (and the tab, left out of the tab bar when the Whisper tab's
Notes section, demos/whisper_asr/ui_notes.py, runs the same chain on the transcript it shows).
"""

from hub.contract import Demo, Example, Sample
from hub.spec import DemoSpec, ModelChoice

__all__ = ["DEMO", "SPEC", "STEPS"]

STEPS = ("whisper_asr", "llm_chat")
TASKS = ("Summary", "Action items", "Translate subtitles")

SPEC = DemoSpec(
    name="speech_notes",
    title="Speech to notes",
    description="Transcribe speech with Whisper, then the chat model writes a summary, the action items, or the "
                "subtitles in another language (SRT/VTT in step with the speech): one request over two models.",
    models=(ModelChoice("tiny-random", "random", label="no model (splitting only)", hidden=True),),
    default_model={"cpu": "tiny-random"},
    api_names=("summarize_audio",),
    zero_gpu_seconds=180,
    gpu_share=0.0,  # Ray backend: no GPU of its own (CPU work; a chain's steps run on their demos' replicas)
)

DEMO = Demo(
    spec=SPEC,
    load="demos.speech_notes.engine:load",
    work="demos.speech_notes.engine:WORK",
    ui="demos.speech_notes.ui:build",
    examples=(
        Example("summarize_audio", {"audio": Sample("audio"), "task": "Summary", "language": "French",
                                    "part_chars": 2000, "max_new_tokens": 8, "vad": False,
                                    "asr_model": "tiny-random",
                                    "chat_model": "tiny-random"},
                bad={"task": "Poetry"}, model_arg=None),
    ),
    extra={"chain": STEPS},
)
