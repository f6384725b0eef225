"""The hub's own page style and script, added to gradio's page at launch (`HubBlocks.launch`).

- Layout: every tab puts its main input, main button and result side by side (two columns), so at 1440x900 they
  show together; a compact header leaves them room. On a phone (under 641 px) the columns stack, the tab bar wraps
  (every tab shows, none behind gradio's "⋯" menu: `HubBlocks` asks every gr.Tabs to wrap), the "Use via API" link
  stays (gradio hides it under 640 px), empty result boxes shrink and table headers never break between letters.
- Ctrl+Enter (⌘+Enter on a Mac) in a text box runs the main action of the tab it is in: the visible button marked
  `MAIN` (AUTOMATIC1111's habit). Enter alone keeps its meaning (a new line, or a chat message sent).
- A slider (hub.fields.SLIDER) keeps a number typed into its box as typed: gradio's page clamps it when the box loses
  focus (500 steps ran as 150 without a word); unclamped, the server's validator refuses it with its sentence.
- A status line (`STATUS`) always has the height of one line, so its progress bar and error pill can be seen.
"""

from __future__ import annotations

MAIN = "hub-main"  # elem_classes of a tab's main button: Ctrl+Enter clicks it
STATUS = "hub-status"  # elem_classes of a status line: one line high at least, even while empty

CSS = """
.gradio-container h1 { font-size: 1.5rem !important; margin: 0 0 .15rem 0 !important; }
.gradio-container .prose p { margin-block: .2rem; }
.hub-status { min-height: 2.2rem !important; }
.hub-status .prose { min-height: 1.6rem; }
.tab-container[role=tablist] { flex-wrap: wrap; row-gap: 2px; }
/* gradio hides "Use via API" under 640 px; a rule in @media would be scoped inside the page, and the footer is not */
footer .show-api, footer .show-api-divider { display: flex !important; }
.hub-compact .empty { min-height: 0 !important; }
@media (max-width: 640px) {
  .tab-container[role=tablist] button { padding: 4px 8px !important; }
  .hub-compact:has(.empty) { height: auto !important; min-height: 0 !important; }
  .hub-compact:has(.empty) .image-container, .hub-compact:has(.empty) .upload-container,
  .hub-compact:has(.empty) .grid-wrap { height: auto !important; min-height: 3rem !important; }
  .hub-table th, .hub-table th * { white-space: nowrap !important; word-break: keep-all !important; }
}
"""

# Runs once when the page loads (gradio's `js`): one capturing listener for the whole page.
JS = """
() => {
  window.addEventListener("blur", (e) => {  // before the slider's own blur listener, which clamps the value
    const t = e.target;
    if (t instanceof HTMLInputElement && t.type === "number" && t.closest(".hub-slider")) e.stopImmediatePropagation();
  }, true);
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || !(e.ctrlKey || e.metaKey) || e.isComposing) return;
    const field = e.target && e.target.closest ? e.target.closest("textarea, input") : null;
    if (!field) return;
    let scope = field.closest(".tabitem");
    while (scope) {  // the innermost tab holding the field and a visible, enabled main button
      const main = [...scope.querySelectorAll("button.hub-main")].find(b => b.offsetParent !== null && !b.disabled);
      if (main) { e.preventDefault(); e.stopPropagation(); main.click(); return; }
      scope = scope.parentElement ? scope.parentElement.closest(".tabitem") : null;
    }
  }, true);
}
"""
