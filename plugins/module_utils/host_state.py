# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a host's state in one go (logic of the `host_state` module and the `units_not_running`
filter): systemd units, system accounts, paths and directory listings. Nothing here changes the
host; a role reads what its tasks would otherwise ask one module run at a time, and acts only on
what differs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd
import stat

SHOW_PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "UnitFileState")


def short_unit(name):
    """A unit's name as the roles write it: without the default `.service` suffix."""
    name = str(name)
    return name[: -len(".service")] if name.endswith(".service") else name


def show_command(systemctl, units):
    return [systemctl, "show", "--property=" + ",".join(SHOW_PROPERTIES), "--"] + [str(u) for u in units]


def parse_show(output, units):
    """`systemctl show` output (one block per unit, blank-line separated) to a dict keyed by the
    names asked, each with load, active, sub, enabled and running; a unit missing from the output
    reads as not found."""
    ordered = []
    for block in (output or "").strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props.get("Id"):
            ordered.append(props)
    blocks = {short_unit(props["Id"]): props for props in ordered}
    states = {}
    for index, unit in enumerate(units):
        props = blocks.get(short_unit(unit))
        if props is None and len(ordered) == len(units):
            # An alias (mysql for mariadb.service): systemctl answers in the order asked, with
            # the unit's own name as Id.
            props = ordered[index]
        props = props or {}
        load = props.get("LoadState") or "not-found"
        active = props.get("ActiveState") or "inactive"
        enabled = props.get("UnitFileState") or ""
        states[short_unit(unit)] = {
            "load": load,
            "active": active,
            "sub": props.get("SubState") or "",
            "enabled": enabled,
            "running": active == "active",
            "ready": active == "active" and enabled == "enabled",
        }
    return states


def not_ready(states, units):
    """The units (in the order asked) that are not both enabled and active."""
    return [short_unit(u) for u in units if not states.get(short_unit(u), {}).get("ready")]


def user_info(name):
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    try:
        group = grp.getgrgid(entry.pw_gid).gr_name
    except KeyError:
        group = str(entry.pw_gid)
    return {
        "uid": entry.pw_uid,
        "gid": entry.pw_gid,
        "group": group,
        "home": entry.pw_dir,
        "shell": entry.pw_shell,
        "system": entry.pw_uid < 1000,
    }


def group_info(name):
    try:
        entry = grp.getgrnam(name)
    except KeyError:
        return None
    return {"gid": entry.gr_gid, "members": list(entry.gr_mem), "system": entry.gr_gid < 1000}


def _kind(mode):
    for test, kind in (
        (stat.S_ISLNK, "link"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISREG, "file"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return kind
    return "other"


def _name(lookup, ident):
    try:
        return lookup(ident)
    except KeyError:
        return str(ident)


def path_info(path):
    """What a stat of the path says (the link itself, not its target); exists false when absent."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"exists": False}
    info = {
        "exists": True,
        "type": _kind(st.st_mode),
        "mode": "%04o" % stat.S_IMODE(st.st_mode),
        "owner": _name(lambda i: pwd.getpwuid(i).pw_name, st.st_uid),
        "group": _name(lambda i: grp.getgrgid(i).gr_name, st.st_gid),
        "size": st.st_size,
        "mtime": st.st_mtime,
    }
    if info["type"] == "link":
        info["target"] = os.readlink(path)
        # As the stat module's lnk_source: the link resolved to an absolute path.
        info["lnk_source"] = os.path.realpath(path)
    return info


def dir_entries(path):
    """The directories directly under path, newest first (name, path, mtime); [] when the path is
    missing."""
    try:
        names = os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for name in names:
        full = os.path.join(path, name)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            out.append({"name": name, "path": full, "mtime": st.st_mtime})
    return sorted(out, key=lambda e: (-e["mtime"], e["name"]))


def read_state(run_command, systemctl, units=(), users=(), groups=(), paths=(), dirs=()):
    """Everything asked, in one result. run_command(argv) returns (rc, stdout, stderr)."""
    result = {
        "units": {},
        "units_not_ready": [],
        "users": {},
        "groups": {},
        "paths": {},
        "dirs": {},
        # Online CPUs, as the hardware facts' processor_vcpus counts them: a role sizes its
        # workers without gathering the (slow) hardware facts.
        "cpus": os.cpu_count() or 1,
    }
    if units:
        rc, out, err = run_command(show_command(systemctl, units))
        if rc != 0:
            raise RuntimeError("systemctl show failed (rc %d): %s" % (rc, (err or out).strip()))
        result["units"] = parse_show(out, units)
        result["units_not_ready"] = not_ready(result["units"], units)
    for name in users:
        info = user_info(name)
        if info is not None:
            result["users"][name] = info
    for name in groups:
        info = group_info(name)
        if info is not None:
            result["groups"][name] = info
    for path in paths:
        result["paths"][path] = path_info(path)
    for path in dirs:
        result["dirs"][path] = dir_entries(path)
    return result
