"""The LLM chat tab: a ChatInterface whose handler streams through `ctx.stream` (allow-list, lease, OOM recovery).

Two things in gradio 6.31's ChatInterface shape it. Its submit event disables the textbox and shows Stop, and gives
them back in `.then()` steps; its front end runs `.then()` only after a success (an error dispatches `.failure()`
listeners alone), so any error (an empty message, an unlisted model, a failed load) left the input disabled behind a
Stop icon until the page was reloaded. `ChatTab` adds the missing `.failure()` step. And an empty message never
starts the chat's events at all: the submit event's validator refuses it before the textbox is cleared and disabled
or the message is added to the chat (so the example prompts stay), and a listener of its own says the sentence
(gradio puts a refused validator's message in the textbox's label, which a ChatInterface hides). The API, which has
no validator, gets the handler's sentence.

The message box takes pictures too (a MultimodalTextbox whose API still takes a plain string): a conversation with
pictures is answered by the vision demo (ui_images.py), and the validator also refuses a message whose pictures the
vision demo would refuse, so the text and the pictures stay in the box.
"""

from __future__ import annotations

import time

import gradio as gr

from demos.llm_chat import ui_images
from demos.llm_chat.engine import check_params
from demos.llm_chat.messages import EMPTY, build_messages
from demos.llm_chat.types import ChatDelta, ChatRequest
from hub import fields
from hub.device import probe_kind
from hub.errors import UserError

EXAMPLES = [["Explain what a neural network is in two sentences."],
            ["Write a haiku about a GPU running out of memory."],
            ["Give me three tips for writing clear Python code."],
            ["Translate 'Where is the train station?' into French and German."]]


PLACEHOLDER = "Type a message…"
THOUGHT = "💭 Thinking"  # the title of the collapsible message that holds a thinking model's reasoning


def reply(thinking: str, thinking_done: bool, text: str):
    """What the chat shows: the answer `text`, after the model's reasoning (if any) as a collapsible message, open
    with a spinner while the model thinks and closed once the answer starts."""
    if not thinking:
        return text
    status = "done" if thinking_done else "pending"
    return [{"role": "assistant", "content": thinking, "metadata": {"title": THOUGHT, "status": status}},
            {"role": "assistant", "content": text}]


def answer(ctx, message, history, model, system_prompt, temperature, top_p, top_k, max_new_tokens,
           repetition_penalty, thinking=None, request=None):
    """(answer so far, details) pairs for the chat: a loading line while the model loads, the growing text (after
    the reasoning of a thinking model, collapsible), then the text with notes, the stats footer (first token timed
    from the click) and the reproducibility record. Inputs are checked before anything loads. A message with
    pictures, or any message of a conversation that has them, is answered by the vision demo (ui_images.py)."""
    sent_at = time.time()
    params = check_params(temperature, top_p, top_k, max_new_tokens, repetition_penalty, thinking=thinking)
    message, files = ui_images.split(message)
    if files or ui_images.has_images(history):
        if not message.strip() and not files:
            raise UserError(EMPTY)
        yield from ui_images.answer(ctx, message, files, history, model, system_prompt, params, request)
        return
    msgs = build_messages(system_prompt, history, message)
    ctx.choice(model)  # the allow-list: an unknown model is named before anything loads
    loading = ctx.loading_text(model)
    if loading:  # a chat bubble, not a progress bar: ChatInterface shows only a running clock while it waits
        yield loading, gr.skip()
    work = ctx.stream("chat", ChatRequest(tuple(msgs), params, sent_at, loading=bool(loading)), model)
    text = thought = ""
    try:  # a Stop (gradio closes this generator) closes the stream: generation ends at the next token
        for item in work:
            if isinstance(item, ChatDelta):
                text, thought = text + item.content, thought + item.reasoning
                yield reply(thought, item.thinking_done, text), gr.skip()
                continue
            final = item.answer
            notes = "".join(f"\n\n<sub>ℹ️ {n}</sub>" for n in final.notes)
            yield reply(final.thinking, True, final.text + notes + "\n\n" + final.footer(item.loading_s)), item.record
    finally:
        work.close()


def has_thinking(ctx, model) -> bool:
    """Whether the Thinking switch is shown for `model`: a listed model with a thinking template, or a model this
    hub does not list (its template is known only once it loads; without the switch the setting is ignored)."""
    try:
        choice = ctx.choice(model)
    except UserError:
        return False
    listed = next((m for m in ctx.spec.models if m.id == choice.id), None)  # random weights keep the listed id
    if listed is not None or choice.source == "random":
        return bool(choice.options.get("thinking") or (listed and listed.options.get("thinking")))
    return True


def refuse_empty(message):
    """The submit event's validator: gradio runs ChatInterface's send only when the message has some text (or, from
    the box, a picture)."""
    text, files = ui_images.split(message)
    return gr.validate(bool(text.strip() or files), EMPTY)


def say_if_empty(message) -> None:
    """The sentence for an empty or whitespace-only message, as an info toast (the validator stops the send)."""
    text, files = ui_images.split(message)
    if not (text.strip() or files):
        gr.Info(EMPTY)  # a gentle notice, not an error: nothing went wrong


def refuse(ctx):
    """The validator of the send (`refuse_empty`, and the pictures' checks) and the listener that says its sentence
    as a toast: a warning for pictures the vision demo would refuse, the info notice for an empty message."""
    def validator(message):
        why = ui_images.refusal(ctx, message)
        return gr.validate(why is None, why or "")

    def say(message) -> None:
        why = ui_images.refusal(ctx, message)
        if why == EMPTY:
            say_if_empty(message)
        elif why:
            gr.Warning(why)
    return validator, say


class ChatTab(gr.ChatInterface):
    """gr.ChatInterface whose input comes back after an error: the Send button, the message (to fix and send again)
    and the conversation as it was before it (see the module docstring for why gradio 6.31 needs this).

    Stop cancels the answer, and gradio's front end runs a cancelled event's `.failure()` listeners too (and its
    `.then()` ones, which give the input back and keep the partial answer): a Stop flag, set in the browser before
    the cancel, keeps this recovery out of that case."""

    def _setup_stop_events(self, event_triggers, events_to_cancel, after_success) -> None:
        stopped = gr.Checkbox(False, visible=False, label="Stopped")  # not a State: those live on the server
        # registered before ChatInterface's own Stop listener, whose cancel runs the `.failure()` listeners
        self.textbox.stop(None, None, stopped, js="() => true", api_visibility="undocumented", queue=False)
        super()._setup_stop_events(event_triggers, events_to_cancel, after_success)
        send = self.textbox.submit_btn

        def recover(message, history, was_stopped):
            if was_stopped:  # Stop, not an error: the answer so far stays, and the input is emptied by `.then()`
                return gr.update(interactive=True, submit_btn=send, stop_btn=False), gr.skip(), False
            # the message comes back with its pictures (the box's {"text", "files"})
            return (gr.update(value=message, interactive=True, submit_btn=send, stop_btn=False,
                              placeholder=PLACEHOLDER), history, False)

        for event in events_to_cancel:  # sending, retrying, an example prompt
            # gradio blanks the placeholder while an answer streams and never gives it back
            event.then(lambda: gr.update(placeholder=PLACEHOLDER), None, self.textbox, api_visibility="undocumented",
                       queue=False, show_progress="hidden")
            event.failure(recover, [self.saved_input, self.chatbot_state, stopped],
                          [self.textbox, self.chatbot, stopped], api_visibility="undocumented", queue=False,
                          show_progress="hidden")


def build(ctx) -> None:
    model, _notice = ctx.model_picker(
        info="A listed model; on a hub only this machine can reach, also any Hugging Face repo id, a local folder or "
             "a local .gguf file.")
    system = gr.Textbox("You are a helpful assistant.", label="System prompt", lines=2, render=False)
    temperature = fields.slider("Temperature", 0.0, 2.0, 0.7, 0.05, info="0 = always the most likely token",
                                render=False)
    top_p = fields.slider("Top-p", 0.05, 1.0, 0.9, 0.05, info="sample from the most likely tokens that make up this "
                                                                 "share of the probability", render=False)
    top_k = fields.slider("Top-k", 0, 200, 50, 1, info="0 = off", render=False)
    max_new = fields.slider("Max new tokens", 1, 4096, 512, 1, render=False)
    rep = fields.slider("Repetition penalty", 1.0, 2.0, 1.05, 0.01, info="1 = none", render=False)
    record = gr.JSON(label="Details of the last answer", render=False)
    thinking = gr.Checkbox(probe_kind(ctx.settings.device) != "cpu", label="Thinking",
                           info="The model reasons first (shown collapsed above its answer): better answers, many more "
                                "tokens. Off by default on a CPU. For models with a thinking switch (Qwen3, SmolLM3).",
                           visible=has_thinking(ctx, None), render=False)
    model.change(lambda m: gr.Checkbox(visible=has_thinking(ctx, m)), model, thinking, show_progress="hidden",
                 api_visibility="private", queue=False)

    @ctx.handler
    def respond(message, history, model, system_prompt, temperature, top_p, top_k, max_new_tokens,
                repetition_penalty, thinking, request: gr.Request = None):
        """Chat with a small instruction-tuned model; the answer streams, ending with a stats footer.

        Args:
            message: what you say to the model (not empty): a string, or {"text": ..., "files": [images]} to ask
                about pictures (answered by the hub's vision model; the conversation keeps them).
            history: the conversation so far (kept per session by the server; not an API parameter).
            model: a model this hub lists (GET /v1/models); optional, the tab's default.
            system_prompt: instructions the model reads before the conversation; optional, empty for none.
            temperature: optional, 0 to 2 (default 0.7); 0 always picks the most likely token.
            top_p: optional, 0.05 to 1 (default 0.9); sample from the likeliest tokens that hold this much probability.
            top_k: optional, 0 to 200 (default 50); sample from this many likeliest tokens; 0 = off.
            max_new_tokens: optional, 1 to 4096 (default 512); the longest answer in tokens (less for a short model).
            repetition_penalty: optional, 1 to 2 (default 1.05); above 1 makes repeating earlier tokens less likely.
            thinking: optional, true or false (default: off on a CPU, on on a GPU); models with a thinking switch
                (Qwen3, SmolLM3) reason first; the answer is then a list of two messages, the reasoning (metadata
                title "💭 Thinking") and the answer; other models ignore it.
        """
        yield from answer(ctx, message, history, model, system_prompt, temperature, top_p, top_k, max_new_tokens,
                          repetition_penalty, thinking, request)

    # max_plain_text_length: gradio turns a longer paste into a .txt attachment, which is not a picture
    message = gr.MultimodalTextbox(label="Message", placeholder=PLACEHOLDER, scale=7, autofocus=True, submit_btn=True,
                                   stop_btn=True, render=False, file_types=["image"], file_count="multiple",
                                   sources=["upload"], max_plain_text_length=1_000_000, elem_id="chat-message")
    ui_images.adapt(message)
    from gradio.context import Context

    Context.root_block.load(None, None, None, js=ui_images.NAME_BOX, api_visibility="private", queue=False)
    validator, say = refuse(ctx)
    # The validator keeps the chat as it is, but its sentence would go to the hidden label: this listener says it.
    # It is registered before ChatInterface's own: gradio's front end stops at a refused validator and would never
    # reach a listener after it.
    message.submit(say, message, None, show_progress="hidden", api_visibility="private")
    tab = ChatTab(
        respond, additional_inputs=[model, system, temperature, top_p, top_k, max_new, rep, thinking],
        additional_inputs_accordion=gr.Accordion("Settings", open=False, render=False), additional_outputs=[record],
        chatbot=gr.Chatbot(height=480, label="Chat", buttons=["copy"], render=False),
        textbox=message, multimodal=True,
        validator=validator, api_name="chat", concurrency_limit=ctx.events["concurrency_limit"], fill_height=False,
        # Shown in the empty chat; a click sends the prompt with the current settings (never run at page load)
        examples=EXAMPLES, cache_examples=False,
    )
    from demos.llm_chat import voice

    voice.build(ctx, tab, record)  # the microphone row: ask by voice, hear the answer (voice.py)
    with gr.Accordion("Details", open=False):
        record.render()
