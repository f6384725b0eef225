"""Property-based tests (hypothesis) for the settings validators: a value that keeps its invariant, or a UserError sentence."""

from __future__ import annotations


from hypothesis import assume, example, given, strategies as st

from hub.errors import SettingsError

from hub.settings import DEVICES, DTYPES, WEIGHTS, Settings, parse_bytes
from tests.properties import FAST, QUICK, check_sentence, numeric_text, unicode_text


# ---- hub/settings.py (parse_bytes/parse_auth are in test_settings.py; here: every variable through load) --------

INT_VARS = {"DEMOHUB_PORT": (1, 65535), "DEMOHUB_MAX_UPLOAD_MB": (1, 100_000), "DEMOHUB_QUEUE_SIZE": (1, 100_000)}
CHOICE_VARS = {"DEMOHUB_DEVICE": DEVICES, "DEMOHUB_DTYPE": DTYPES, "DEMOHUB_WEIGHTS": WEIGHTS}
BOOL_VARS = {"DEMOHUB_OFFLINE": "offline", "DEMOHUB_SHARE": "share", "DEMOHUB_INSECURE_SHARE": "insecure_share",
             "DEMOHUB_COMPILE": "compile"}
env_text = st.one_of(unicode_text, numeric_text, st.sampled_from(["auto", "CPU", " cuda ", "Float16", "on", "OFF",
                                                                 "Yes", "2", "a,b,,c", " , ", "8GB"]))


@FAST
@given(var=st.sampled_from(sorted({**INT_VARS, **CHOICE_VARS, **BOOL_VARS}) + ["DEMOHUB_DEMOS", "DEMOHUB_HOST"]),
       value=env_text)
def test_every_settings_variable_is_typed_or_refused_by_name(var, value):
    assume("\x00" not in value)
    try:
        s = Settings.load({var: value})
    except SettingsError as e:
        check_sentence(e)
        assert var in str(e)
        return
    if var in INT_VARS:
        lo, hi = INT_VARS[var]
        n = {"DEMOHUB_PORT": s.port, "DEMOHUB_MAX_UPLOAD_MB": s.max_upload_mb, "DEMOHUB_QUEUE_SIZE": s.queue_size}[var]
        assert isinstance(n, int) and lo <= n <= hi
    elif var in CHOICE_VARS:
        got = {"DEMOHUB_DEVICE": s.device, "DEMOHUB_DTYPE": s.dtype, "DEMOHUB_WEIGHTS": s.weights}[var]
        assert got in CHOICE_VARS[var] and got == value.strip().lower()
    elif var in BOOL_VARS:
        assert getattr(s, BOOL_VARS[var]) in (True, False)
    elif var == "DEMOHUB_DEMOS":
        assert s.demos is None or (s.demos and all(n and n == n.strip() and "," not in n for n in s.demos))
    else:
        assert s.host and s.host == s.host.strip()


@FAST
@given(default=st.sampled_from([True, 5, 2.5, "a"]), value=env_text)
def test_demo_options_are_typed_or_a_named_error(default, value):
    from hub.contract import Option
    from hub.options import parse_value

    opt = Option("knob", default, "a knob", lo=0 if not isinstance(default, (bool, str)) else None,
                 hi=10 if not isinstance(default, (bool, str)) else None, choices=("a", "b") if default == "a" else None)
    try:
        parsed = parse_value(opt, value, "DEMOHUB_X_KNOB")
    except SettingsError as e:
        check_sentence(e)
        assert "DEMOHUB_X_KNOB" in str(e)
    else:
        assert type(parsed) is type(default)
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            assert 0 <= parsed <= 10
        if default == "a":
            assert parsed in ("a", "b")


@QUICK
@example("0.5")
@given(st.floats(min_value=1e-9, max_value=0.99).map(lambda f: f"{f:.9f}"))
def test_parse_bytes_fraction_of_a_byte_is_refused_not_zero(text):
    try:
        v = parse_bytes(text, "DEMOHUB_VRAM_BUDGET")
    except SettingsError:
        return
    assert v is None or v > 0, f"parse_bytes({text!r}) == {v}"


@QUICK
@example("9" * 400)
@given(st.integers(min_value=309, max_value=1000).map(lambda n: "9" * n + "GB"))
def test_parse_bytes_absurd_size_is_a_settings_error(text):
    try:
        parse_bytes(text, "DEMOHUB_VRAM_BUDGET")
    except SettingsError as e:
        check_sentence(e)
