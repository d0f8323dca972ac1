# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan and apply a set of small files and directories (logic of the `files` module)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile


def normalise(entries):
    """Entries with their defaults filled in; raises ValueError naming the bad entry."""
    seen = set()
    out = []
    for index, given in enumerate(entries):
        entry = given
        path = entry.get("path") or ""
        where = "files[%d] (%s)" % (index, path or "no path")
        if not os.path.isabs(path):
            raise ValueError("%s: path must be absolute" % where)
        if path in seen:
            raise ValueError("%s: the path is listed twice" % where)
        seen.add(path)
        state = entry.get("state") or "file"
        if entry.get("present") is False:
            # A file this host should not have (the role's conditions said so): removed, whatever
            # content, owner and mode the entry describes for the hosts that do.
            if state != "file":
                raise ValueError("%s: present is for a file" % where)
            entry, state = {"path": path}, "absent"
        if state == "file" and entry.get("content") is None:
            raise ValueError("%s: a file needs content" % where)
        if state != "file" and entry.get("content") is not None:
            raise ValueError("%s: a %s entry takes no content" % (where, state))
        validate = entry.get("validate")
        if validate is not None and (state != "file" or "%s" not in validate):
            raise ValueError("%s: validate is for a file and must contain %%s (the new content's path)" % where)
        replace = entry.get("replace")
        if replace is False and state != "file":
            raise ValueError("%s: replace is for a file" % where)
        if state == "absent" and any(entry.get(key) is not None for key in ("owner", "group", "mode")):
            raise ValueError("%s: an absent entry takes no owner, group or mode" % where)
        out.append(
            {
                "path": path,
                "state": state,
                "content": entry.get("content"),
                "owner": entry.get("owner"),
                "group": entry.get("group"),
                "mode": entry.get("mode") or ("0755" if state == "directory" else "0644"),
                "validate": validate,
                "replace": True if replace is None else bool(replace),
            }
        )
    return out


def read_bytes(path):
    """Current content of a regular file, or None when there is none."""
    if not os.path.isfile(path) or os.path.islink(path):
        return None
    with open(path, "rb") as handle:
        return handle.read()


def content_changes(entries):
    """(entry, before bytes or None, after bytes) of the files whose content differs."""
    changes = []
    for entry in entries:
        if entry["state"] != "file":
            continue
        after = entry["content"].encode("utf-8")
        before = read_bytes(entry["path"])
        if before is not None and not entry["replace"]:
            continue
        if before != after:
            changes.append((entry, before, after))
    return changes


def write_atomically(path, data, move):
    """Write `data` to a temporary file (0600) next to `path`; `move(tmp, path)` checks it and puts
    it in place (the temporary file is removed whatever happens, so a refused one leaves nothing)."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".webinfra-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
