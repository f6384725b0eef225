"""One validator for numbers and choices, with one policy for bad values: say what is wrong and refuse.

Nothing is clamped silently or otherwise: a value outside its range, NaN, infinity, a boolean or text where a
number belongs, or an unknown choice raises `UserError` with a sentence naming the setting and its valid values.
The UI's sliders send values in range; these checks are for API callers and for engine functions called from code.
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable

from hub.errors import UserError


def number(value, name: str, lo: float | None = None, hi: float | None = None, *, integer: bool = False,
           default=None, lo_open: bool = False):
    """`value` as an int (integer=True) or float within [lo, hi] (`lo_open`: lo itself excluded).

    None (or an empty string) takes `default` when one is given. A float with no fraction counts as whole (gradio
    sends 3.0 for 3). numpy scalars are accepted. Raises UserError otherwise.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        if default is not None:
            return default
        raise UserError(f"{_cap(name)} is missing; {_expect(lo, hi, integer, lo_open)}.")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UserError(f"{_cap(name)} must be a number, not {_show(value)}; {_expect(lo, hi, integer, lo_open)}.")
    try:
        x = float(value)
    except OverflowError:  # an int beyond float range
        raise UserError(f"{_cap(name)} is far too large; {_expect(lo, hi, integer, lo_open)}.") from None
    expect = _expect(lo, hi, integer, lo_open)
    if math.isnan(x) or math.isinf(x):
        raise UserError(f"{_cap(name)} must be a real number, not {x}; {expect}.")
    if integer and not x.is_integer():
        raise UserError(f"{_cap(name)} must be a whole number, not {plain_number(x)}; {expect}.")
    too_low = lo is not None and (x <= lo if lo_open else x < lo)
    if too_low or (hi is not None and x > hi):
        raise UserError(f"{_cap(name)} is {plain_number(x)}, which is out of range; {expect}.")
    return int(x) if integer else x


def choice(value, name: str, options: Iterable[str], *, default: str | None = None) -> str:
    """`value` if it is one of `options` (exact match); None/empty takes `default` when given."""
    options = tuple(options)
    if (value is None or value == "") and default is not None:
        return default
    if isinstance(value, str) and value in options:
        return value
    shown = ", ".join(options[:20]) + (", ..." if len(options) > 20 else "")
    raise UserError(f"{_cap(name)} {_show(value)} is not one of the choices; use one of: {shown}.")


def flag(value, name: str, *, default: bool | None = None) -> bool:
    """A true/false setting: booleans (and 0/1) only."""
    if value is None and default is not None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    raise UserError(f"{_cap(name)} must be true or false, not {_show(value)}.")


def plain_number(x: float) -> str:
    """A number as people write it: 99999999 (not 1e+08), 0.35, 1.5e+300 only where it is that big."""
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e16 else f"{x:g}"


def _expect(lo, hi, integer: bool, lo_open: bool) -> str:
    kind = "a whole number" if integer else "a number"
    if lo is not None and hi is not None:
        return (f"use {kind} above {plain_number(lo)} and at most {plain_number(hi)}" if lo_open
                else f"use {kind} from {plain_number(lo)} to {plain_number(hi)}")
    if lo is not None:
        return f"use {kind} {'above' if lo_open else 'of at least'} {plain_number(lo)}"
    if hi is not None:
        return f"use {kind} of at most {plain_number(hi)}"
    return f"use {kind}"


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _cap(name: str) -> str:
    return name[:1].upper() + name[1:]
