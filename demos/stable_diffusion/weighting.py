"""Prompt weighting as AUTOMATIC1111 does it, over the CLIP text encoder of SD 1.x/2.x.

Syntax (A1111's "attention/emphasis"): `(word)` x1.1 per pair of parentheses, `[word]` /1.1, `(word:1.3)` an explicit
weight, `\\(` `\\)` `\\[` `\\]` literal brackets, `BREAK` starts a new 75-token chunk. A prompt longer than 75 tokens is
cut into 75-token chunks (at the last comma within 20 tokens of the end, as A1111's default "comma padding
backtrack"); each chunk is encoded on its own as <start> 75 tokens <end> and the chunks' embeddings are
concatenated, so nothing past 77 tokens is dropped (up to MAX_CHUNKS chunks). Weights scale each token's embedding,
then the whole is rescaled to its original mean, as A1111's `process_tokens` (not where that mean is ~0: see
`_mean_ratio`). A prompt with every weight 1 gives exactly diffusers' own embeddings. compel is not used: its
syntax (`word++`, `(word)1.2`) differs from A1111's.

`parse` is one left-to-right pass plus one pass over the groups (linear: a stack of open brackets, no regex), so a
prompt of nested brackets cannot freeze the worker.
"""

from __future__ import annotations

CHUNK = 75  # tokens per chunk, between the start and end tokens
MAX_CHUNKS = 8  # 600 tokens: past that, the prompt's rest is left out with a note (checks.py)
ROUND, SQUARE = 1.1, 1 / 1.1
BACKTRACK = 20  # A1111's comma_padding_backtrack default
BREAK = None  # the weight that marks a BREAK piece


def _number(text: str) -> float | None:
    t = text.strip()
    if not t or not all(c in "+-.0123456789" for c in t):
        return None
    try:
        return float(t)
    except ValueError:
        return None


def parse(text: str) -> list[tuple[str, float | None]]:
    """A1111's parse_prompt_attention: [(text, weight)], runs of equal weight merged; ("BREAK", None) between chunks.

    `a (red:1.5) cat` -> [("a ", 1.0), ("red", 1.5), (" cat", 1.0)]."""
    pieces: list[list] = []  # [text, group] ; group: index into groups (-1: top level), or BREAK marker
    groups: list[list] = []  # [parent, multiplier or None (still open), kind "(" or "["]
    open_stack: list[int] = []
    current = -1
    i, n = 0, len(text)

    def add(s: str) -> None:
        if s:
            pieces.append([s, current])

    while i < n:
        c = text[i]
        if c == "\\":  # an escaped character is text (a lone backslash at the end goes, as in A1111)
            add(text[i + 1:i + 2])
            i += 2
        elif c in "([":
            groups.append([current, None, c])
            open_stack.append(len(groups) - 1)
            current = len(groups) - 1
            i += 1
        elif c == ":" and open_stack and groups[open_stack[-1]][2] == "(":
            close = text.find(")", i, i + 34)  # bounded: a long run of colons stays linear
            weight = _number(text[i + 1:close]) if close >= 0 else None
            if weight is None:
                add(":")
                i += 1
                continue
            g = open_stack.pop()
            groups[g][1], current = weight, groups[g][0]
            i = close + 1
        elif c in ")]" and open_stack and groups[open_stack[-1]][2] == ("(" if c == ")" else "["):
            g = open_stack.pop()
            groups[g][1], current = ROUND if c == ")" else SQUARE, groups[g][0]
            i += 1
        else:
            j = i + 1
            while j < n and text[j] not in "\\()[]:":
                j += 1
            _plain(text[i:j], add, pieces, current)
            i = j
    for g in open_stack:  # never closed: as A1111, the bracket's own multiplier
        groups[g][1] = ROUND if groups[g][2] == "(" else SQUARE
    weight_of: list[float] = []
    for parent, mult, _ in groups:  # parents come before their children
        weight_of.append((weight_of[parent] if parent >= 0 else 1.0) * mult)
    out: list[tuple[str, float | None]] = []
    for s, g in pieces:
        w = BREAK if g is BREAK else (weight_of[g] if g >= 0 else 1.0)
        if out and w is not BREAK and out[-1][1] == w:
            out[-1] = (out[-1][0] + s, w)
        else:
            out.append((s, w))
    return out or [("", 1.0)]


def _plain(s: str, add, pieces: list, current: int) -> None:
    """Plain text, split at each BREAK word (a whole word, in capitals), as A1111's `\\s*\\bBREAK\\b\\s*`."""
    start = 0
    while True:
        k = s.find("BREAK", start)
        if k < 0:
            add(s)
            return
        before_ok = k == 0 or not (s[k - 1].isalnum() or s[k - 1] == "_")
        after = k + 5
        after_ok = after == len(s) or not (s[after].isalnum() or s[after] == "_")
        if not (before_ok and after_ok):
            add(s[:after])
            s, start = s[after:], 0
            continue
        add(s[:k].rstrip())
        pieces.append(["BREAK", BREAK])
        s, start = s[after:].lstrip(), 0


def chunks(tokenizer, text: str) -> tuple[list[list[int]], list[list[float]], int]:
    """The prompt as A1111's 77-token chunks: (token ids, multipliers, tokens in all before padding)."""
    parsed = parse(text)
    ids = tokenizer([s for s, _ in parsed], add_special_tokens=False, truncation=False, verbose=False).input_ids
    comma = tokenizer.convert_tokens_to_ids(",</w>")
    start, end = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else end
    out_ids, out_w = [], []
    cur, cur_w, last_comma, count = [], [], -1, 0

    def next_chunk(last: bool = False):
        nonlocal cur, cur_w, last_comma, count
        count += len(cur) if last else CHUNK
        fill = CHUNK - len(cur)
        out_ids.append([start] + cur + [end] + [pad] * fill)
        out_w.append([1.0] + cur_w + [1.0] * (fill + 1))
        cur, cur_w, last_comma = [], [], -1

    for tokens, (s, weight) in zip(ids, parsed):
        if weight is BREAK:
            next_chunk()
            continue
        for token in tokens:
            if token == comma:
                last_comma = len(cur)
            elif len(cur) == CHUNK and last_comma != -1 and len(cur) - last_comma <= BACKTRACK:
                moved, moved_w = cur[last_comma + 1:], cur_w[last_comma + 1:]
                cur, cur_w = cur[:last_comma + 1], cur_w[:last_comma + 1]
                next_chunk()
                cur, cur_w = moved, moved_w
            if len(cur) == CHUNK:
                next_chunk()
            cur.append(token)
            cur_w.append(weight)
    if cur or not out_ids:
        next_chunk(last=True)
    return out_ids, out_w, count


def encode(pipe, prompt: str, negative: str, notes: list[str] | None = None):
    """(prompt_embeds, negative_prompt_embeds), each [1, 77 x chunks, width]: the same number of chunks for both
    (the shorter padded with empty chunks, as A1111 pads), at most MAX_CHUNKS."""
    import torch

    tok, enc = pipe.tokenizer, pipe.text_encoder
    pos, neg = chunks(tok, prompt), chunks(tok, negative)
    n = min(MAX_CHUNKS, max(len(pos[0]), len(neg[0])))
    empty = chunks(tok, "")
    device = enc.device
    out = []
    for ids, weights, _ in (pos, neg):
        ids, weights = ids[:n] + empty[0] * (n - len(ids[:n])), weights[:n] + empty[1] * (n - len(weights[:n]))
        z = enc(torch.tensor(ids, device=device), attention_mask=None)[0]  # [chunks, 77, width]
        w = torch.tensor(weights, device=device, dtype=z.dtype)
        if not bool((w == 1).all()):  # A1111's process_tokens, chunk by chunk
            weighted = z * w.unsqueeze(-1)
            z = weighted * _mean_ratio(z, weighted).to(z.dtype)
        out.append(z.reshape(1, -1, z.shape[-1]).to(dtype=enc.dtype))
    return out[0], out[1]


def _mean_ratio(z, weighted):
    """Per chunk, A1111's factor that gives the weighted embeddings the chunk's original mean; 1 where a mean is ~0
    against the values themselves (under 1/1000 of their mean size), where the quotient would be rounding noise or
    inf: a text encoder whose last layer norm has no bias (a random build) gives every token a zero mean."""
    import torch

    before, after = z.float().mean(dim=(1, 2), keepdim=True), weighted.float().mean(dim=(1, 2), keepdim=True)
    tiny = 1e-3 * weighted.float().abs().mean(dim=(1, 2), keepdim=True)
    meaningful = (before.abs() > tiny) & (after.abs() > tiny)
    return torch.where(meaningful, before / torch.where(meaningful, after, 1.0), 1.0)
