"""Error types the hub turns into messages for people.

`UserError` is the one type demo functions raise for anything the user can fix; the UI edge turns it into
`gr.Error` with the same sentence. Everything else is a bug and is shown as such, never swallowed.
"""


class UserError(ValueError):
    """Something the user can fix; the message is a sentence saying what to do."""


class WeightsUnavailable(UserError):
    """Weights are not in the cache and cannot be downloaded (offline, or the download failed)."""


class CorruptWeights(UserError):
    """A weight file in the cache is truncated, corrupt or does not match its pinned hash."""


class SettingsError(ValueError):
    """An invalid environment variable or flag; the message names it and the accepted values."""
