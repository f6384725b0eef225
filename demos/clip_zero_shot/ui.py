"""The CLIP zero-shot tab: "Classify" (images x labels) and "Search images" (rank a gallery by a text query).

Handlers only parse UI values, call the engine through `ctx.run`, and turn results into component values
(formats.py). The caps come from the operator's options (`ctx.options.max_labels` / `max_images`).
"""

from __future__ import annotations

import gradio as gr

from demos.clip_zero_shot.engine import DEFAULT_TEMPLATE, classify, search_images
from demos.clip_zero_shot.formats import RankingTable, ScoreTable, display_name
from hub import validate

SAMPLES_LABEL = "Samples (photos that ship with gradio and ultralytics)"


def build(ctx) -> None:
    model = ctx.model_dropdown()
    with gr.Tab("Classify"):
        go, inputs, outputs = _classify_tab(ctx)
    go.click(_classify_handler(ctx), [model, *inputs], outputs, api_name="classify", **ctx.events)
    with gr.Tab("Search images"):
        find, gallery, query, outputs = _search_tab(ctx)
    find.click(_search_handler(ctx), [model, gallery, query], outputs, api_name="search_images", **ctx.events)


def photos(*names: str) -> list[str]:
    """Sample photos that ship with gradio (media_assets/images) or ultralytics (assets), found without importing
    ultralytics (it imports torch); a missing one is left out."""
    from hub.assets import package_file

    found = (package_file("gradio", "media_assets", "images", n) or package_file("ultralytics", "assets", n)
             for n in names)
    return [str(p) for p in found if p is not None]


def _warn(notes: list[str]) -> None:
    for n in notes:
        gr.Warning(n)


# ---- Classify ----------------------------------------------------------------------------------------------------


def _classify_tab(ctx) -> tuple:
    """(button, [images, labels, template, ensemble, mode, threshold, top_k], [top, chart, table, record])."""
    with gr.Row():
        with gr.Column():
            images = gr.Gallery(label="Images (one or several)", type="filepath", interactive=True,
                                height=260, columns=4)
            labels = gr.Textbox(label=f"Candidate labels (commas or one per line, up to {ctx.options.max_labels})",
                                lines=3, value="cat, dog, car, tree")
            template = gr.Textbox(label="Prompt template ({} is the label)", value=DEFAULT_TEMPLATE)
            ensemble = gr.Radio([("My template", "none"), ("open_clip's 7 templates", "simple"),
                                 ("OpenAI's 80 ImageNet templates", "openai")], value="none",
                                label="Average a template ensemble")
            mode = gr.Radio([("Single label (softmax, sums to 1)", "single"),
                             ("Multi-label (each label on its own)", "multi")], value="single", label="Mode")
            threshold = gr.Slider(0, 1, 0.5, step=0.01, label="Multi-label threshold")
            top_k = gr.Slider(1, 20, 5, step=1, label="Top-k labels shown")
            go = gr.Button("Classify", variant="primary")
            examples = [[found, labels_] for found, labels_ in (
                (photos("cheetah.jpg", "lion.jpg", "tower.jpg"), "cheetah, lion, house cat, tower, bus"),
                (photos("bus.jpg", "zidane.jpg"), "bus, man wearing a tie, football, street, horse"),
            ) if found]
            if examples:
                gr.Examples(examples, [images, labels], label=SAMPLES_LABEL, cache_examples=False)
        with gr.Column():
            top = gr.Label(label="Top labels (first image)")
            chart = gr.BarPlot(x="label", y="score", title="Every label (first image)", sort="-y",
                               y_lim=[0, 1], x_label_angle=-30, height=260)
            table = gr.Dataframe(label="All images x labels", interactive=False, wrap=True)
            record = gr.JSON(label="Record")
    return go, [images, labels, template, ensemble, mode, threshold, top_k], [top, chart, table, record]


def _classify_handler(ctx):
    max_labels, max_images = ctx.options.max_labels, ctx.options.max_images

    @ctx.handler
    def run_classify(model_id, images, labels, template, ensemble, mode, threshold, top_k,
                     progress=gr.Progress(track_tqdm=True)):
        top_k = validate.number(top_k, "top-k", 1, 20, integer=True)  # the slider's range

        def work(lease):
            res = classify(lease.engine, images, labels, template, ensemble, mode, threshold,
                           max_labels=max_labels, max_images=max_images)
            return res, lease.record(labels=res.labels, template=template, ensemble=ensemble, mode=mode,
                                     threshold=res.threshold, notes=res.notes)

        res, rec = ctx.run(work, model_id)
        _warn(res.notes)
        table = ScoreTable(res, [display_name(im, i) for i, im in enumerate(images or [])])
        return res.top(0, top_k), table.bars(), table.frame(), rec

    return run_classify


# ---- Search images -------------------------------------------------------------------------------------------------


def _search_tab(ctx) -> tuple:
    """(button, gallery, query, [ranked, ranking, record])."""
    with gr.Row():
        with gr.Column():
            gallery = gr.Gallery(label=f"Gallery to search (up to {ctx.options.max_images} images)",
                                 type="filepath", interactive=True, height=300, columns=5)
            query = gr.Textbox(label="Text query", placeholder="a dog playing on the beach")
            find = gr.Button("Search", variant="primary")
            every = photos("cheetah.jpg", "lion.jpg", "tower.jpg", "groot.jpeg", "bus.jpg", "zidane.jpg")
            if every:
                gr.Examples([[every, "a big cat running"], [every, "a man wearing a tie"]], [gallery, query],
                            label=SAMPLES_LABEL, cache_examples=False)
        with gr.Column():
            ranked = gr.Gallery(label="Best matches first", columns=5, height=300)
            ranking = gr.Dataframe(label="Ranking", interactive=False)
            record = gr.JSON(label="Record")
    return find, gallery, query, [ranked, ranking, record]


def _search_handler(ctx):
    max_images = ctx.options.max_images

    @ctx.handler
    def run_search(model_id, gallery, query, progress=gr.Progress(track_tqdm=True)):
        def work(lease):
            res = search_images(lease.engine, gallery, query, max_images=max_images)
            return res, lease.record(query=res.query, images=len(res.order), notes=res.notes)

        res, rec = ctx.run(work, model_id)
        _warn(res.notes)
        table = RankingTable(res, gallery)
        return table.gallery(), table.frame(), rec

    return run_search
