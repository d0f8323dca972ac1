# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus metrics of the agents that run from timers: files for node exporter's textfile
collector, each written whole (atomically) so a scrape never reads half a file."""

from __future__ import annotations

import os

from webinfra_agents.kit.files import write_atomic


def _number(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def metrics_text(values, help_texts):
    """Prometheus text for `values` ({name: number, or {labels-string: number}}; None: left
    out). Every name needs its help text in `help_texts`: an unknown name raises KeyError."""
    lines = []
    for name in sorted(values):
        if name not in help_texts:
            raise KeyError(name)
        value = values[name]
        if value is None:
            continue
        lines.append("# HELP %s %s" % (name, help_texts[name]))
        lines.append("# TYPE %s gauge" % name)
        if isinstance(value, dict):
            for labels in sorted(value):
                lines.append("%s{%s} %s" % (name, labels, _number(value[labels])))
        else:
            lines.append("%s %s" % (name, _number(value)))
    return "\n".join(lines) + "\n"


def write_textfile(path, values, help_texts):
    """Write `values` as the textfile collector's file `path` (its directory created)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, metrics_text(values, help_texts))
