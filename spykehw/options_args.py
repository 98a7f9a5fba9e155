"""``--options`` and ``--set``: every algorithm option settable from the command line.

Shared by ``run``, ``quant`` and ``bench``. ``--options`` names a preset (``authors-code``, the
default, or ``paper``) or a TOML options file (:func:`spykehw.golden.options.load_options`);
each ``--set KEY=VALUE`` (repeatable, applied in order after the preset or file and after the
command's own shortcut flags such as ``--epochs``) changes one dotted key. ``--set`` is checked
while the command line is parsed (unknown key, value of the wrong type or out of range: one line
naming the key, exit status 2); an options file is checked when the command starts (same).
"""

from __future__ import annotations

import argparse
from typing import Any, Iterable

from .golden.option_sets import (
    DEFAULT_OPTIONS,
    OPTION_PRESETS,
    apply_settings,
    load_options,
    parse_setting,
)
from .golden.options import NetworkOptions, OptionsError

__all__ = ["setting", "add_options_arguments", "options_from_args", "describe_options"]


def setting(text: str) -> tuple[str, Any]:
    """argparse type of ``--set``: ``KEY=VALUE`` checked against the options' keys and types."""
    try:
        key, value = parse_setting(text)
        apply_settings(NetworkOptions(), [(key, value)])  # range checks that need no dataset
    except OptionsError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return key, value


setting.__name__ = "setting"


def add_options_arguments(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("--options", default=None, metavar="PRESET|TOML",
                   help=f"algorithm options: a preset ({', '.join(OPTION_PRESETS)}; default "
                        f"{DEFAULT_OPTIONS}) or a TOML file ([encoder], [conv], [classifier] tables, "
                        "top-level stdp_images, optional preset = \"paper\" as base)")
    p.add_argument("--set", dest="settings", type=setting, action="append", default=None,
                   metavar="KEY=VALUE",
                   help="change one option (repeatable, applied last), e.g. --set conv.rate_cap=none "
                        "--set classifier.dropout=0.3; values are TOML scalars, none = None")


def options_from_args(args: argparse.Namespace, dataset: str,
                      shortcuts: Iterable[tuple[str, Any]] = ()) -> NetworkOptions:
    """The options in force: ``--options`` for ``dataset``, then the ``shortcuts`` (dotted key,
    value; ``None`` values skipped), then every ``--set``."""
    opts = load_options(args.options or DEFAULT_OPTIONS, dataset)
    short = [(k, v) for k, v in shortcuts if v is not None]
    return apply_settings(opts, short + list(args.settings or ()))


def describe_options(spec: str | None, settings) -> str:
    """``authors-code`` / ``paper + conv.rate_cap=None`` / ``my.toml + ...``: for reports."""
    parts = [spec or DEFAULT_OPTIONS]
    parts += [f"{k}={v}" for k, v in (settings or ())]
    return " + ".join(parts)
