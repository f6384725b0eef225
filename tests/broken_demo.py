"""A demo whose library is missing: its tab must explain, and the other tabs must keep working."""

import not_a_real_library_for_demohub  # noqa: F401
