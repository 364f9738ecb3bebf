"""Demonstration formats: how a Problem is written for the model, and how a generated answer is read and checked.

The protocol and the registry are in `base`; each module here holds its formats' renderer, parser and step
checker together. Importing this package registers every format. Measured results of each format are in
docs/formats.md.
"""

from longdiv.data.formats import direct, recchia, sub  # noqa: F401  (importing a format module registers it)
from longdiv.data.formats.base import Format, format_names, get_format

__all__ = ["Format", "format_names", "get_format"]
