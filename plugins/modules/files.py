#!/usr/bin/python
# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: files
short_description: Several small files and directories with their owner and mode, in one call
version_added: 0.5.0
author: webinfra maintainers (@webinfra)
description:
  - Makes each listed directory exist and each listed file hold exactly the given content, with
    the given owner, group and mode, in one module run. The roles use it for sets of small files
    (a certificate, its key and CA; a service's units) where a loop of
    M(ansible.builtin.copy) or M(ansible.builtin.template) would cost one run per file on every
    play, including the runs that change nothing.
  - Entries are applied in order, so a directory listed before the files in it is created first.
    A file's content is written to a temporary file in the same directory and moved into place
    (atomic for readers), with its owner, group and mode set before the move, so a secret is
    never readable by others, not even for a moment.
  - Only what differs is changed. The content is passed as a module argument, so use C(no_log)
    on the task when a file holds a secret.
  - A file with O(files[].validate) is written to its temporary file, given its owner, group and
    mode, and checked by that command first; when the command fails the file in place is left
    untouched, the temporary file is removed and the module fails with the command's output.
    Entries before it stay applied, so put the checked file first or alone when that matters.
    Unlike M(ansible.builtin.template), which checks in a temporary directory, the check runs on a
    file in the target's own directory, so relative includes resolve as they will in use.
attributes:
  check_mode:
    support: full
    description: Reports what would change without changing it (O(files[].validate) is not run).
  diff_mode:
    support: full
    description:
      - Shows the content changes in diff mode only. Without diff mode, or with C(diff=false) on
        the task, the result carries no file content (hidden anyway when the task uses C(no_log)).
options:
  files:
    description: Files and directories, applied in this order.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      state:
        description:
          - V(file) (the content given), V(directory), or V(absent) (a file or symbolic link
            removed; a directory is refused).
        type: str
        choices: [file, directory, absent]
        default: file
      content:
        description: The file's exact content (text). Required for V(file).
        type: str
      owner:
        description: Owner; unchanged when omitted.
        type: str
      group:
        description: Group; unchanged when omitted.
        type: str
      mode:
        description: Permissions, octal as a string (C("0640")); default C("0644"), C("0755") for a directory.
        type: str
      validate:
        description:
          - Command that checks a changed file before it replaces the one in place, with V(%s)
            where the new content's path goes (for example V(nginx -t -q -c %s)). Run without a
            shell. Not run when the content is unchanged, nor in check mode.
        type: str
      present:
        description:
          - V(false) removes the file instead (as O(files[].state=absent)), ignoring its O(files[].content),
            O(files[].owner), O(files[].group) and O(files[].mode). So one entry describes a file that
            only some hosts have, with its condition here. For O(files[].state=file) only.
        type: bool
        default: true
        version_added: 0.10.0
      replace:
        description:
          - V(false) writes the content only when the file does not exist yet (a first version
            that another program keeps up to date afterwards, such as a certificate renewed by
            ACME); owner, group and mode are still enforced.
        type: bool
        default: true
"""

EXAMPLES = r"""
- name: TLS directory, certificate, key and CA of the database server
  webinfra.distributed.files:
    files:
      - {path: /etc/mysql/tls, state: directory, owner: root, group: mysql, mode: "0750"}
      - {path: /etc/mysql/tls/server.pem, content: "{{ certificate }}", owner: root, group: mysql, mode: "0644"}
      - {path: /etc/mysql/tls/server.key, content: "{{ private_key }}", owner: root, group: mysql, mode: "0640"}
  no_log: true

- name: Render nginx.conf, checked by nginx before it replaces the one in use; no default site
  webinfra.distributed.files:
    files:
      - path: /etc/nginx/nginx.conf
        content: "{{ lookup('ansible.builtin.template', 'nginx.conf.j2') }}"
        validate: nginx -t -q -c %s
      - {path: /etc/nginx/sites-enabled/default, state: absent}
  notify: Reload nginx
"""

RETURN = r"""
changed_paths:
  description: The paths created, changed (content, owner, group or mode) or removed.
  returned: always
  type: list
  elements: str
  sample: [/etc/mysql/tls/server.pem]
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.webinfra.distributed.plugins.module_utils.file_set import (
    content_changes,
    normalise,
    write_atomically,
)


def _attributes(module, entry, path):
    args = {"path": path, "owner": entry["owner"], "group": entry["group"], "mode": entry["mode"]}
    return module.load_file_common_arguments(args, path=path)


def main():
    module = AnsibleModule(
        argument_spec={
            "files": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "path": {"type": "path", "required": True},
                    "state": {"type": "str", "choices": ["file", "directory", "absent"], "default": "file"},
                    "content": {"type": "str"},
                    "owner": {"type": "str"},
                    "group": {"type": "str"},
                    "mode": {"type": "str"},
                    "validate": {"type": "str"},
                    "replace": {"type": "bool", "default": True},
                    "present": {"type": "bool", "default": True},
                },
            }
        },
        supports_check_mode=True,
    )
    try:
        entries = normalise(module.params["files"])
    except ValueError as err:
        module.fail_json(msg="files: %s" % err)

    changed_paths = []
    diffs = []
    changes = {entry["path"]: (before, after) for entry, before, after in content_changes(entries)}
    for entry in entries:
        path = entry["path"]
        if entry["state"] == "directory":
            if os.path.exists(path) and not os.path.isdir(path):
                module.fail_json(msg="files: %s exists and is not a directory" % path)
            created = not os.path.isdir(path)
            if created and not module.check_mode:
                # Created closed (0700), then given its mode: never more open than asked.
                os.makedirs(path, mode=0o700)
            changed = created
            if not created or not module.check_mode:
                changed = module.set_fs_attributes_if_different(_attributes(module, entry, path), changed)
            if changed:
                changed_paths.append(path)
            continue
        if entry["state"] == "absent":
            if _remove(module, path):
                changed_paths.append(path)
            continue
        if os.path.isdir(os.path.dirname(path)) is False and not module.check_mode:
            module.fail_json(msg="files: the directory of %s does not exist; list it before the file" % path)
        if path in changes:
            before, after = changes[path]
            # Contents go into the result only when a diff was asked for (--diff and the task's
            # diff not false): a registered result must not carry a secret file's content.
            if module._diff:  # pylint: disable=protected-access
                diffs.append(
                    {
                        "before_header": path,
                        "after_header": path,
                        "before": "" if before is None else before.decode("utf-8", "replace"),
                        "after": after.decode("utf-8", "replace"),
                    }
                )
            if not module.check_mode:
                write_atomically(path, after, lambda tmp, dest, e=entry: _move(module, e, tmp, dest))
            changed_paths.append(path)
        elif module.set_fs_attributes_if_different(_attributes(module, entry, path), False):
            changed_paths.append(path)
    module.exit_json(changed=bool(changed_paths), changed_paths=changed_paths, diff=diffs)


def _remove(module, path):
    """Remove a file or symbolic link; True when there was one."""
    if not os.path.lexists(path):
        return False
    if os.path.isdir(path) and not os.path.islink(path):
        module.fail_json(msg="files: %s is a directory; state=absent removes files and links only" % path)
    if not module.check_mode:
        os.unlink(path)
    return True


def _move(module, entry, tmp, dest):
    # The temporary file (created 0600) gets the final owner, group and mode, is checked by the
    # entry's validate command, then replaces the old file by a rename in the same directory:
    # readers see the old or the new file, and a secret is never readable by others on the way.
    module.set_fs_attributes_if_different(_attributes(module, entry, tmp), False)
    if entry["validate"]:
        rc, out, err = module.run_command(entry["validate"] % tmp)
        if rc != 0:
            # write_atomically removes the temporary file on the way out.
            module.fail_json(
                msg="files: %s: the new content was refused by '%s' (rc %d), the file in place is unchanged: %s"
                % (dest, entry["validate"], rc, (err or out).strip()),
                rc=rc,
                stdout=out,
                stderr=err,
            )
    os.replace(tmp, dest)


if __name__ == "__main__":
    main()
