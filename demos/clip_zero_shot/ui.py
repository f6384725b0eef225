"""The CLIP zero-shot tab: "Classify" (images x labels) and "Search images" (rank a gallery by a text query).

Handlers only build a typed request (types.py) from the UI values, call the engine's work method through `ctx.call`,
and turn its result into component values (formats.py). The caps are the operator's options, which the engine was
loaded with (the labels' field shows `ctx.options.max_labels`).
"""

from __future__ import annotations

import gradio as gr

from demos.clip_zero_shot.checks import DEFAULT_TEMPLATE
from demos.clip_zero_shot.formats import RankingTable, ScoreTable, display_name
from demos.clip_zero_shot.types import ClassifyRequest, SearchRequest
from hub import fields, validate

SAMPLES_LABEL = "Samples (photos that ship with gradio and ultralytics)"
TOP_K = (1, 20)  # labels in the top list: the field's range and the check's


def build(ctx) -> None:
    """Top to bottom: the model (shared by both sub-tabs); per sub-tab the inputs, the one button, its status line,
    then the results."""
    model, _notice = ctx.model_picker()
    with gr.Tab("Classify"):
        go, status, inputs, outputs = _classify_tab(ctx)
    go.click(_classify_handler(ctx), [model, *inputs], outputs, api_name="classify", **ctx.events_on(status))
    with gr.Tab("Search images"):
        find, status, gallery, query, outputs = _search_tab(ctx)
    find.click(_search_handler(ctx), [model, gallery, query], outputs, api_name="search_images",
               **ctx.events_on(status))


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
    """The images, the labels, Classify and the status line on the left, the top labels and the chart on the right
    (together at 1440x900); the samples under the button, the settings collapsed under them."""
    from hub.page import MAIN, STATUS

    with gr.Row(equal_height=False):
        with gr.Column(min_width=300):
            images = gr.Gallery(label="Images (one or several)", type="filepath", interactive=True,
                                height=200, columns=4, object_fit="contain")
            labels = gr.Textbox(label=f"Candidate labels (commas or one per line, up to {ctx.options.max_labels})",
                                lines=2, value="cat, dog, car, tree", info="Ctrl+Enter classifies")
            go = gr.Button("Classify", variant="primary", elem_classes=[MAIN])
            status = gr.Markdown(elem_id="clip-classify-status", elem_classes=[STATUS])  # progress and errors
            examples = [[found, labels_] for found, labels_ in (
                (photos("cheetah.jpg", "lion.jpg", "tower.jpg"), "cheetah, lion, house cat, tower, bus"),
                (photos("bus.jpg", "zidane.jpg"), "bus, man wearing a tie, football, street, horse"),
            ) if found]
            if examples:
                gr.Examples(examples, [images, labels], label=SAMPLES_LABEL, cache_examples=False)
            with gr.Accordion("Settings", open=False):
                template = gr.Textbox(label="Prompt template ({} is the label)", value=DEFAULT_TEMPLATE)
                ensemble = gr.Radio([("My template", "none"), ("open_clip's 7 templates", "simple"),
                                     ("OpenAI's 80 ImageNet templates", "openai")], value="none",
                                    label="Average a template ensemble")
                mode = gr.Radio([("Single label (the best one; CLIP's scores sum to 1)", "single"),
                                 ("Multi-label (each label on its own)", "multi")], value="single", label="Mode",
                                info="SigLIP 2 scores every label on its own in both modes (sigmoid: no sum to 1)")
                threshold = fields.slider("Multi-label threshold", 0, 1, 0.5, 0.01,
                                          info="multi-label mode: a label scoring at least this is present")
                top_k = fields.slider("Top-k labels shown", *TOP_K, 5, 1, info="how many labels the top list shows")
        with gr.Column(min_width=300):
            top = gr.Label(label="Top labels (first image)")
            chart = gr.BarPlot(x="label", y="score", title="Every label (first image)", sort="-y",
                               y_lim=[0, 1], x_label_angle=-30, height=260)
            table = gr.Dataframe(label="All images x labels", headers=["image", "best"], interactive=False, wrap=True)
            record = gr.JSON(label="Record")
    return go, status, [images, labels, template, ensemble, mode, threshold, top_k], [top, chart, table, record]


def _classify_handler(ctx):
    @ctx.handler
    def run_classify(model, images, labels, template=DEFAULT_TEMPLATE, ensemble="none", mode="single",
                     threshold=0.5, top_k=5, progress=gr.Progress(track_tqdm=True)):
        """Score every image against every candidate label. Returns the top labels of the first image, every
        label's score for the first image (chart data), a table of all images x labels, and the record.

        Args:
            model: the CLIP model, one of the listed ones; the hub's default if left out.
            images: the images to classify, a gallery (one or several).
            labels: the candidate labels, separated by commas or one per line.
            template: the prompt each label is put into; {} stands for the label.
            ensemble: "none" (the template above), "simple" (open_clip's 7) or "openai" (OpenAI's 80), averaged.
            mode: "single" (the best label per image; CLIP's scores sum to 1, SigLIP 2's are each label's own
                sigmoid probability) or "multi" (each label scored on its own).
            threshold: in multi-label mode, a label scoring at least this (0 to 1) is present.
            top_k: how many labels the top list shows (1 to 20).
        """
        top_k = validate.number(top_k, "top-k labels shown", *TOP_K, integer=True)
        request = ClassifyRequest(images, labels, template, ensemble, mode, threshold)
        res = ctx.call("classify", request, model, progress=progress)
        _warn(res.notes)
        table = ScoreTable(res, [display_name(im, i) for i, im in enumerate(images or [])])
        return res.top(0, top_k), table.bars(), table.frame(), res.record

    return run_classify


# ---- Search images -------------------------------------------------------------------------------------------------


def _search_tab(ctx) -> tuple:
    from hub.page import MAIN, STATUS

    """(button, status, gallery, query, [ranked, ranking, record])."""
    with gr.Row():
        with gr.Column():
            gallery = gr.Gallery(label=f"Gallery to search (up to {ctx.options.max_images} images)",
                                 type="filepath", interactive=True, height=300, columns=5, object_fit="contain")
            query = gr.Textbox(label="Text query", placeholder="a dog playing on the beach",
                               info="Ctrl+Enter searches")
            find = gr.Button("Search", variant="primary", elem_classes=[MAIN])
            status = gr.Markdown(elem_id="clip-search-status", elem_classes=[STATUS])  # progress and errors
            every = photos("cheetah.jpg", "lion.jpg", "tower.jpg", "groot.jpeg", "bus.jpg", "zidane.jpg")
            if every:
                gr.Examples([[every, "a big cat running"], [every, "a man wearing a tie"]], [gallery, query],
                            label=SAMPLES_LABEL, cache_examples=False)
        with gr.Column():
            ranked = gr.Gallery(label="Best matches first", columns=5, height=300, object_fit="contain")
            ranking = gr.Dataframe(label="Ranking", headers=["rank", "image", "similarity"], interactive=False)
            record = gr.JSON(label="Record")
    return find, status, gallery, query, [ranked, ranking, record]


def _search_handler(ctx):
    @ctx.handler
    def run_search(model, gallery, query, progress=gr.Progress(track_tqdm=True)):
        """Rank the gallery's images by how well they match the text query, best first. Returns the images best
        first (captioned with rank and similarity), the ranking table and the record.

        Args:
            model: the CLIP model, one of the listed ones; the hub's default if left out.
            gallery: the images to search, a gallery.
            query: text describing the picture you are looking for.
        """
        res = ctx.call("search_images", SearchRequest(gallery, query), model, progress=progress)
        _warn(res.notes)
        table = RankingTable(res, gallery)
        return table.gallery(), table.frame(), res.record

    return run_search
