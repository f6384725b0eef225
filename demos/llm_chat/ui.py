"""The LLM chat tab: a ChatInterface whose handler streams through `ctx.stream` (allow-list, lease, OOM recovery)."""

from __future__ import annotations

from dataclasses import asdict

from demos.llm_chat.engine import check_params, stream_chat
from demos.llm_chat.messages import build_messages

EXAMPLES = [["Explain what a neural network is in two sentences."],
            ["Write a haiku about a GPU running out of memory."],
            ["Give me three tips for writing clear Python code."],
            ["Translate 'Where is the train station?' into French and German."]]


def answer(ctx, message, history, model_id, system, temperature, top_p, top_k, max_new_tokens,
           repetition_penalty):
    """(answer so far, details) pairs for the chat: the growing text, then the text with notes, stats footer and
    the reproducibility record. Inputs are checked before anything loads."""
    import gradio as gr

    params = check_params(temperature, top_p, top_k, max_new_tokens, repetition_penalty)
    msgs = build_messages(system, history, message)
    choice = ctx.choice(model_id)  # the allow-list, and an unknown model named before anything loads
    if not ctx.is_loaded(model_id):
        yield f"*Loading {choice.display}…*", gr.skip()

    def generate(lease):
        for chunk in stream_chat(lease.engine, msgs, params):
            if not chunk.done:
                yield chunk.text, gr.skip()
                continue
            notes = "".join(f"\n\n<sub>ℹ️ {n}</sub>" for n in chunk.notes)
            stats = {k: v for k, v in asdict(chunk).items() if k != "text"}
            stats["tokens_per_s"] = round(chunk.tokens_per_s, 2)
            yield chunk.text + notes + "\n\n" + chunk.footer(), lease.record(**asdict(params), **stats)

    yield from ctx.stream(generate, model_id)


def build(ctx) -> None:
    import gradio as gr

    with gr.Row():
        model = ctx.model_dropdown(allow_custom_value=True, scale=3,
                                   info="A listed model; on a hub only this machine can reach, also any Hugging Face "
                                        "repo id, a local folder or a local .gguf file.")
    system = gr.Textbox("You are a helpful assistant.", label="System prompt", lines=2, render=False)
    temperature = gr.Slider(0.0, 2.0, 0.7, step=0.05, label="Temperature", info="0 = always the most likely token",
                            render=False)
    top_p = gr.Slider(0.05, 1.0, 0.9, step=0.05, label="Top-p", render=False)
    top_k = gr.Slider(0, 200, 50, step=1, label="Top-k", info="0 = off", render=False)
    max_new = gr.Slider(1, 4096, 512, step=1, label="Max new tokens", render=False)
    rep = gr.Slider(1.0, 2.0, 1.05, step=0.01, label="Repetition penalty", render=False)
    record = gr.JSON(label="Details of the last answer", render=False)

    @ctx.handler
    def respond(message, history, model_id, system, temperature, top_p, top_k, max_new_tokens, repetition_penalty):
        yield from answer(ctx, message, history, model_id, system, temperature, top_p, top_k, max_new_tokens,
                          repetition_penalty)

    gr.ChatInterface(
        respond, additional_inputs=[model, system, temperature, top_p, top_k, max_new, rep],
        additional_inputs_accordion=gr.Accordion("Settings", open=False, render=False), additional_outputs=[record],
        chatbot=gr.Chatbot(height=480, label="Chat", buttons=["copy"], render=False),
        api_name="chat", concurrency_limit=ctx.spec.gpu_concurrency, fill_height=False,
        # Shown in the empty chat; a click sends the prompt with the current settings (never run at page load)
        examples=EXAMPLES, cache_examples=False,
        api_description="Chat: (message, model, system prompt, temperature, top_p, top_k, max_new_tokens, "
                        "repetition_penalty) -> (answer with a stats footer, details). History is per session.",
    )
    with gr.Accordion("Details", open=False):
        record.render()
