# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files the agents write: atomically, with their mode from the start, and JSON state."""

from __future__ import annotations

import json
import os
import tempfile


def write_atomic(path, text, mode=0o644):
    """Replace `path` with `text`: a temporary file in the same directory, given `mode` before it
    holds anything, flushed to disk, then renamed over the old one (readers see the old or the
    new content, never a part). A failure leaves the old file and no temporary file."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".webinfra-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path, default=None):
    """The JSON document at `path`; `default` (a new empty dict when None) when there is none."""
    if not os.path.exists(path):
        return {} if default is None else default
    with open(path) as handle:
        return json.load(handle)
