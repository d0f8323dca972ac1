# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""etcd's role-based access control through its JSON gateway (v3 API), and the plan that brings
it to a wanted set of roles and users.

The gateway (etcd 3.4 and 3.5 under /v3/) does not map a client certificate's name to a user:
users authenticate with a password for a token, sent in the Authorization header. `plan` is pure
(unit-tested): it compares what etcd holds with what is wanted and lists the requests to send.
Only the users and roles it manages are touched: the wanted ones, `root`, and those whose name
starts with the managed prefix (removed when no longer wanted)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import ssl

try:
    import http.client as http_client
except ImportError:  # pragma: no cover - Python 2 is not supported by the collection
    http_client = None

READWRITE = "READWRITE"


class EtcdAuthError(Exception):
    """etcd refused a request, or could not be reached."""


def b64(text):
    if not isinstance(text, bytes):
        text = text.encode("utf-8")
    return base64.b64encode(text).decode("ascii")


def unb64(text):
    return base64.b64decode(text or "").decode("utf-8")


def prefix_end(prefix):
    """The range end that selects every key starting with `prefix` (etcd's convention)."""
    raw = bytearray(prefix.encode("utf-8"))
    for i in range(len(raw) - 1, -1, -1):
        if raw[i] < 0xFF:
            raw[i] += 1
            return bytes(raw[: i + 1])
    return b"\0"


def permission(prefix):
    """The READWRITE permission over every key under `prefix`, as etcd returns it."""
    return {"permType": READWRITE, "key": b64(prefix), "range_end": b64(prefix_end(prefix))}


def perm_key(perm):
    """A comparable form of a permission: (type, key, range end); READ (0) is left out in JSON."""
    return (perm.get("permType") or "READ", perm.get("key") or "", perm.get("range_end") or "")


def message(answer):
    return str(answer.get("message") or answer.get("error") or answer)


class Gateway(object):
    """One etcd member's JSON gateway, over HTTPS with a client certificate; `token` once
    authenticated."""

    def __init__(self, host, port, ca_file, cert_file, key_file, timeout=10.0, connector=None):
        self.host, self.port, self.timeout = host, int(port), timeout
        self.token = None
        self._connector = connector
        self._context = None
        if connector is None:
            self._context = ssl.create_default_context(cafile=ca_file)
            self._context.load_cert_chain(cert_file, key_file)

    def call(self, path, body=None):
        """The JSON answer of POST /v3/<path>; EtcdAuthError with etcd's message when refused."""
        data = json.dumps(body or {}).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = self.token
        if self._connector is not None:
            status, text = self._connector(path, body or {}, headers)
        else:
            conn = http_client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self._context)
            try:
                conn.request("POST", "/v3/" + path, body=data, headers=headers)
                response = conn.getresponse()
                status, text = response.status, response.read().decode("utf-8", "replace")
            except (OSError, http_client.HTTPException) as exc:
                raise EtcdAuthError("etcd at %s:%s: %s" % (self.host, self.port, exc)) from exc
            finally:
                conn.close()
        try:
            answer = json.loads(text or "{}")
        except ValueError:
            answer = {"message": text.strip()}
        if status >= 400 or (isinstance(answer, dict) and (answer.get("error") or answer.get("code"))):
            raise EtcdAuthError("etcd %s: %s" % (path, message(answer)))
        return answer

    def authenticate(self, name, password):
        """Sets the token of `name`; False when authentication is not enabled."""
        try:
            self.token = self.call("auth/authenticate", {"name": name, "password": password})["token"]
        except EtcdAuthError as exc:
            if "authentication is not enabled" in str(exc):
                self.token = None
                return False
            raise
        return True

    def password_works(self, name, password):
        """Whether `name` authenticates with `password` (auth enabled)."""
        try:
            Gateway.call(self, "auth/authenticate", {"name": name, "password": password})
        except EtcdAuthError as exc:
            if "authentication failed" in str(exc) or "invalid username or password" in str(exc):
                return False
            raise
        return True

    def state(self):
        """{"users": {name: [roles]}, "roles": {name: [perm_key]}} as etcd holds them."""
        users = {}
        for name in self.call("auth/user/list").get("users") or []:
            users[name] = sorted(self.call("auth/user/get", {"name": name}).get("roles") or [])
        roles = {}
        for name in self.call("auth/role/list").get("roles") or []:
            perms = self.call("auth/role/get", {"role": name}).get("perm") or []
            roles[name] = sorted(perm_key(p) for p in perms)
        return {"users": users, "roles": roles}


def wanted_roles(users):
    """{role: [perm_key]} from the wanted users' `prefixes` (one role per user, named as it)."""
    return {u["name"]: sorted(perm_key(permission(p)) for p in u["prefixes"]) for u in users}


def plan(current, users, managed_prefix, enabled):
    """The requests (path, body) that bring etcd from `current` (Gateway.state) to the wanted
    `users` ([{name, prefixes, password_ok}]: each its own role with READWRITE on its prefixes;
    password_ok False when the password must be set), and auth enabled unless `enabled` says it
    is (or must stay off for now). Users and roles named with `managed_prefix` that are not wanted are removed."""
    requests = []
    have_users, have_roles = current["users"], current["roles"]
    roles = wanted_roles(users)
    for name, perms in sorted(roles.items()):
        have = set(tuple(p) for p in have_roles.get(name, []))
        if name not in have_roles:
            requests.append(("auth/role/add", {"name": name}))
        for perm in perms:
            if tuple(perm) not in have:
                kind, key, end = perm
                requests.append(
                    ("auth/role/grant", {"name": name, "perm": {"permType": kind, "key": key, "range_end": end}})
                )
        for _kind, key, end in sorted(have - set(tuple(p) for p in perms)):
            requests.append(("auth/role/revoke", {"role": name, "key": key, "range_end": end}))
    for user in sorted(users, key=lambda u: u["name"]):
        name = user["name"]
        if name not in have_users:
            requests.append(("auth/user/add", {"name": name, "password": user["password"]}))
        elif not user.get("password_ok", True):
            requests.append(("auth/user/changepw", {"name": name, "password": user["password"]}))
        if name not in have_users.get(name, []):
            requests.append(("auth/user/grant", {"user": name, "role": name}))
        for extra in sorted(set(have_users.get(name, [])) - set([name])):
            requests.append(("auth/user/revoke", {"name": name, "role": extra}))
    wanted = set(u["name"] for u in users)
    for name in sorted(have_users):
        if managed_prefix and name.startswith(managed_prefix) and name not in wanted:
            requests.append(("auth/user/delete", {"name": name}))
    for name in sorted(have_roles):
        if managed_prefix and name.startswith(managed_prefix) and name not in wanted:
            requests.append(("auth/role/delete", {"role": name}))
    if not enabled:
        requests.append(("auth/enable", {}))
    return requests


def describe(request):
    """A line for the module's report, without passwords."""
    path, body = request
    shown = dict((k, v) for k, v in body.items() if k != "password")
    if "perm" in shown:
        shown["perm"] = unb64(shown["perm"]["key"]) + "*"
    if "key" in shown:
        shown["key"] = unb64(shown["key"]) + "*"
        shown.pop("range_end", None)
    return "%s %s" % (path, json.dumps(shown, sort_keys=True))


def converge(  # pylint: disable=too-many-arguments
    gateway, root_password, users, managed_prefix, check_mode=False, enable=True, pending=None
):
    """Brings etcd to `users` ([{name, password, prefixes}]) with root, and auth enabled when
    `enable` (never disabled here).

    Returns the list of requests sent (or that would be sent in check mode). With auth enabled
    the requests run as root; each wanted user's password is checked by authenticating it (with
    auth still off it cannot be checked, and is set). With a `pending` list, an existing user's
    password that does not work is left as it is and the user's name added to the list (the
    first step of a rotation: its clients get the new password first)."""
    enabled = gateway.authenticate("root", root_password)
    current = gateway.state()
    checked = []
    for user in users:
        ok = True
        if user["name"] in current["users"]:
            ok = gateway.password_works(user["name"], user["password"]) if enabled else False
            if not ok and enabled and pending is not None:
                pending.append(user["name"])
                ok = True
        checked.append(dict(user, password_ok=ok))
    requests = []
    if not enabled and enable:
        # Auth needs root with the root role first; etcd checks both when it is enabled.
        if "root" not in current["users"]:
            requests.append(("auth/user/add", {"name": "root", "password": root_password}))
        else:
            requests.append(("auth/user/changepw", {"name": "root", "password": root_password}))
        if "root" not in current["users"].get("root", []):
            requests.append(("auth/user/grant", {"user": "root", "role": "root"}))
    requests += plan(current, checked, managed_prefix, enabled or not enable)
    if not check_mode:
        for path, body in requests:
            gateway.call(path, body)
    return requests
