"""Speech to notes, step by step (no gradio: the API, the Whisper tab's Notes, the tests and the bench run it the same
way).

transcribe (Whisper `transcribe`) -> split (this demo's `split`) -> the chat model (`complete`): a summary or the
action items of each part, then of the parts together; or each subtitle segment translated on its own, so the SRT /
VTT keep Whisper's timings. Each step is a hub.chain step, under the one budget, in the one record. `run` starts from
the audio (/summarize_audio); `from_transcript` from a transcript the Whisper tab already shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from demos.speech_notes import TASKS
from demos.speech_notes.engine import check_part_chars
from demos.speech_notes.types import SplitRequest
from hub import validate
from hub.errors import UserError

ASR, SPLIT, CHAT = "Transcribe (Whisper)", "Split the transcript", "Write notes (chat model)"
SYSTEM = "You are a careful note taker. Answer only from the transcript; never invent facts."
ASK = {
    "Summary": "Summarize this transcript in a few sentences:\n\n{text}",
    "Action items": "List the action items (tasks, decisions, follow-ups) in this transcript, one per line "
                    "starting with '- ':\n\n{text}",
}
COMBINE = {
    # plain words: a 135 M-parameter model answers a short, direct request best
    "Summary": "Summarize this text in a few sentences:\n\n{text}",
    "Action items": "These are action-item lists of consecutive parts of one recording. Merge them into one list, "
                    "one per line starting with '- ', without repeats:\n\n{text}",
}
TRANSLATE = "Translate this subtitle line into {language}. Reply with the translation only.\n\n{text}"
MAX_SEGMENTS = 400  # subtitle lines one request translates (one chat call each)


@dataclass
class Notes:
    """What the chain made: the transcript, the notes (or the translated text), the subtitles' segments."""

    transcript: object  # demos.whisper_asr.types.Transcript
    notes: str = ""
    segments: list = field(default_factory=list)  # translated Segments (Translate subtitles)
    parts: int = 0


def check_task(task) -> str:
    return validate.choice(task, "the task", TASKS, default="Summary")


def check_language(task: str, language) -> str:
    language = " ".join(str(language or "").split())[:40]
    if task == "Translate subtitles" and not language:
        raise UserError("Translate subtitles: name the language to translate into (for example French).")
    return language


def transcribe(chain, samples, model, max_seconds=None, vad: bool = True):
    from demos.whisper_asr import engine as W
    from demos.whisper_asr.types import TranscribeRequest

    opts = W.check_options(task="transcribe", vad=vad, beam_size=5)
    result = chain.call(ASR, "whisper_asr", "transcribe", TranscribeRequest(samples, opts, max_seconds), model)
    if result is None or not result.transcript.text.strip():
        raise UserError(f"{ASR}: no speech was heard in the audio; try a recording with someone talking.")
    return result.transcript


def ask(chain, step: str, prompt: str, model, max_new_tokens: int) -> str:
    from demos.llm_chat.engine import check_params
    from demos.llm_chat.types import ChatRequest

    params = check_params(temperature=0, max_new_tokens=max_new_tokens, seed=0)
    msgs = ({"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt})
    done = chain.call(step, "llm_chat", "complete", ChatRequest(msgs, params), model)
    return done.answer.text.strip() if done is not None else ""


def write_notes(chain, transcript, task: str, model, *, part_chars=6000, max_new_tokens=256) -> Notes:
    """A summary or action items: each part, then (for more than one part) the parts together."""
    segs = tuple((s.start, s.end, s.text) for s in transcript.segments) or ((0.0, transcript.duration,
                                                                            transcript.text),)
    parts = chain.call(SPLIT, "speech_notes", "split", SplitRequest(segs, part_chars)).parts
    answers = []
    for i, (_, _, text) in enumerate(parts, 1):
        step = CHAT if len(parts) == 1 else f"{CHAT}, part {i} of {len(parts)}"
        answers.append(ask(chain, step, ASK[task].format(text=text), model, max_new_tokens))
    notes = answers[0]
    if len(answers) > 1:
        joined = "\n\n".join(answers)
        notes = ask(chain, f"{CHAT}, all parts together", COMBINE[task].format(text=joined), model, max_new_tokens)
    return Notes(transcript, notes, parts=len(parts))


def translate(chain, transcript, language: str, model, *, max_new_tokens=128) -> Notes:
    """Every subtitle segment translated on its own: the same start and end times, so SRT / VTT stay in step."""
    if len(transcript.segments) > MAX_SEGMENTS:
        raise UserError(f"Translate subtitles: the transcript has {len(transcript.segments)} lines; at most "
                        f"{MAX_SEGMENTS} are translated in one request, so cut the recording shorter.")
    out = []
    for i, seg in enumerate(transcript.segments, 1):
        step = f"Translate (chat model), line {i} of {len(transcript.segments)}"
        text = ask(chain, step, TRANSLATE.format(language=language, text=seg.text.strip()), model, max_new_tokens)
        out.append(replace(seg, text=" " + " ".join(text.split()), words=[]))
    return Notes(transcript, "\n".join(s.text.strip() for s in out), segments=out, parts=len(out))


def check(task, language, part_chars, max_new_tokens) -> tuple[str, str, int, int]:
    """The request's settings, checked before any model: (task, language, part_chars, max_new_tokens)."""
    task = check_task(task)
    return (task, check_language(task, language), check_part_chars(part_chars),
            validate.number(max_new_tokens, "max new tokens", 1, 2048, integer=True))


def run(chain, samples, task, language, asr_model, chat_model, *, part_chars=6000, max_new_tokens=256,
        max_seconds=None, vad: bool = True) -> Notes:
    """The whole chain: checks first (before any model), then transcribe and the notes."""
    task, language, part_chars, max_new = check(task, language, part_chars, max_new_tokens)
    transcript = transcribe(chain, samples, asr_model, max_seconds, vad)
    return from_transcript(chain, transcript, task, language, chat_model, part_chars=part_chars,
                           max_new_tokens=max_new)


def from_transcript(chain, transcript, task, language, chat_model, *, part_chars=6000,
                    max_new_tokens=256) -> Notes:
    """The notes of a transcript Whisper already made (the Whisper tab's Notes: the speech is not heard twice)."""
    task, language, part_chars, max_new = check(task, language, part_chars, max_new_tokens)
    if not transcript.text.strip():
        raise UserError(f"{ASR}: no speech was heard in the audio; try a recording with someone talking.")
    if task == "Translate subtitles":
        return translate(chain, transcript, language, chat_model, max_new_tokens=max_new)
    return write_notes(chain, transcript, task, chat_model, part_chars=part_chars, max_new_tokens=max_new)
