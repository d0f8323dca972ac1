import json

import pytest

from ansible_collections.webinfra.distributed.plugins.module_utils.etcd_auth import (
    EtcdAuthError,
    Gateway,
    b64,
    converge,
    describe,
    permission,
    plan,
    prefix_end,
)


class FakeEtcd:
    """etcd's auth store as the JSON gateway shows it: users, roles, tokens, auth on or off."""

    def __init__(self):
        self.enabled = False
        self.users = {}  # name -> {"password", "roles"}
        self.roles = {}  # name -> [perm]
        self.tokens = {}
        self.sent = []

    def error(self, text, code=400):
        return code, json.dumps({"error": text, "message": text, "code": 3})

    def connector(self, path, body, headers):
        self.sent.append(path)
        user = self.tokens.get(headers.get("Authorization"))
        if path == "auth/authenticate":
            if not self.enabled:
                return self.error("etcdserver: authentication is not enabled")
            found = self.users.get(body["name"])
            if not found or found["password"] != body["password"]:
                return self.error("etcdserver: authentication failed, invalid user ID or password")
            token = f"t{len(self.tokens)}"
            self.tokens[token] = body["name"]
            return 200, json.dumps({"token": token})
        if self.enabled and user != "root":
            return self.error("etcdserver: permission denied", 403)
        handler = getattr(self, path.replace("/", "_"))
        return 200, json.dumps(handler(body) or {})

    def auth_enable(self, _body):
        assert "root" in self.users and "root" in self.users["root"]["roles"]
        self.enabled = True

    def auth_user_list(self, _body):
        return {"users": sorted(self.users)}

    def auth_user_get(self, body):
        return {"roles": self.users[body["name"]]["roles"]}

    def auth_role_list(self, _body):
        return {"roles": sorted(self.roles)}

    def auth_role_get(self, body):
        return {"perm": self.roles[body["role"]]}

    def auth_user_add(self, body):
        self.users[body["name"]] = {"password": body["password"], "roles": []}

    def auth_user_changepw(self, body):
        self.users[body["name"]]["password"] = body["password"]

    def auth_user_grant(self, body):
        self.users[body["user"]]["roles"].append(body["role"])

    def auth_user_revoke(self, body):
        self.users[body["name"]]["roles"].remove(body["role"])

    def auth_user_delete(self, body):
        del self.users[body["name"]]

    def auth_role_add(self, body):
        self.roles[body["name"]] = []

    def auth_role_grant(self, body):
        self.roles[body["name"]].append(body["perm"])

    def auth_role_revoke(self, body):
        self.roles[body["role"]] = [p for p in self.roles[body["role"]] if p["key"] != body["key"]]

    def auth_role_delete(self, body):
        del self.roles[body["role"]]


USERS = [
    {"name": "webinfra-ha-db-01", "password": "pw-1", "prefixes": ["/webinfra/main/"]},
    {"name": "webinfra-ha-db-02", "password": "pw-2", "prefixes": ["/webinfra/main/"]},
]


def gateway(etcd):
    return Gateway("10.0.0.1", 2379, None, None, None, connector=etcd.connector)


def test_prefix_end_and_permission():
    assert prefix_end("/a/") == b"/a0"
    assert permission("/webinfra/main/") == {
        "permType": "READWRITE",
        "key": b64("/webinfra/main/"),
        "range_end": b64("/webinfra/main0"),
    }


def test_first_run_creates_root_roles_users_then_enables_auth():
    etcd = FakeEtcd()
    requests = converge(gateway(etcd), "root-pw", USERS, "webinfra-")
    assert requests[0] == ("auth/user/add", {"name": "root", "password": "root-pw"})
    assert requests[-1] == ("auth/enable", {})
    assert etcd.enabled and etcd.users["root"]["roles"] == ["root"]
    assert etcd.users["webinfra-ha-db-01"] == {"password": "pw-1", "roles": ["webinfra-ha-db-01"]}
    assert etcd.roles["webinfra-ha-db-02"] == [permission("/webinfra/main/")]


def test_second_run_changes_nothing_and_runs_as_root():
    etcd = FakeEtcd()
    converge(gateway(etcd), "root-pw", USERS, "webinfra-")
    etcd.sent.clear()
    assert converge(gateway(etcd), "root-pw", USERS, "webinfra-") == []
    assert "auth/enable" not in etcd.sent


def test_changed_password_prefix_and_removed_host_are_applied():
    etcd = FakeEtcd()
    converge(gateway(etcd), "root-pw", USERS, "webinfra-")
    etcd.users["other-app"] = {"password": "x", "roles": []}  # not managed: stays
    wanted = [{"name": "webinfra-ha-db-01", "password": "new", "prefixes": ["/webinfra/other/"]}]
    requests = converge(gateway(etcd), "root-pw", wanted, "webinfra-")
    paths = [path for path, _body in requests]
    assert paths == [
        "auth/role/grant",
        "auth/role/revoke",
        "auth/user/changepw",
        "auth/user/delete",
        "auth/role/delete",
    ]
    assert etcd.users["webinfra-ha-db-01"]["password"] == "new"  # noqa: S105 - a test value
    assert etcd.roles["webinfra-ha-db-01"] == [permission("/webinfra/other/")]
    assert "webinfra-ha-db-02" not in etcd.users and "webinfra-ha-db-02" not in etcd.roles
    assert "other-app" in etcd.users


def test_check_mode_sends_no_change():
    etcd = FakeEtcd()
    requests = converge(gateway(etcd), "root-pw", USERS, "webinfra-", check_mode=True)
    assert requests and not etcd.users and not etcd.enabled
    assert all(not path.startswith(("auth/user/add", "auth/enable")) for path in etcd.sent)


def test_wrong_root_password_is_an_error_once_enabled():
    etcd = FakeEtcd()
    converge(gateway(etcd), "root-pw", USERS, "webinfra-")
    with pytest.raises(EtcdAuthError, match="authentication failed"):
        converge(gateway(etcd), "other", USERS, "webinfra-")


def test_plan_adds_missing_grant_of_existing_user():
    current = {"users": {"webinfra-ha-db-01": []}, "roles": {"webinfra-ha-db-01": []}}
    users = [dict(USERS[0], password_ok=True)]
    requests = plan(current, users, "webinfra-", enabled=True)
    assert [p for p, _body in requests] == ["auth/role/grant", "auth/user/grant"]


def test_describe_leaves_passwords_out():
    line = describe(("auth/user/add", {"name": "u", "password": "secret"}))
    assert "secret" not in line and "u" in line
    grant = describe(("auth/role/grant", {"name": "r", "perm": permission("/p/")}))
    assert '"/p/*"' in grant


def test_users_prepared_with_auth_off_then_turned_on():
    etcd = FakeEtcd()
    first = converge(gateway(etcd), "root-pw", USERS, "webinfra-", enable=False)
    assert ("auth/enable", {}) not in first and not etcd.enabled and "root" not in etcd.users
    assert sorted(etcd.users) == ["webinfra-ha-db-01", "webinfra-ha-db-02"]
    later = converge(gateway(etcd), "root-pw", USERS, "webinfra-")
    assert [p for p, _token in later][-1] == "auth/enable" and etcd.enabled
    assert converge(gateway(etcd), "root-pw", USERS, "webinfra-", enable=False) == []


def test_a_rotation_first_leaves_etcd_s_password_then_changes_it():
    """update_password=on_create (site.yml's etcd play): a changed password is left for the
    clients to learn first and named as pending; the later run (always) changes it."""
    etcd = FakeEtcd()
    converge(gateway(etcd), "root-pw", USERS, "webinfra-")
    rotated = [dict(u, password="rotated") if u["name"] == "webinfra-ha-db-01" else u for u in USERS]  # noqa: S106
    pending = []
    assert converge(gateway(etcd), "root-pw", rotated, "webinfra-", pending=pending) == []
    assert pending == ["webinfra-ha-db-01"]
    requests = converge(gateway(etcd), "root-pw", rotated, "webinfra-")
    assert [path for path, _body in requests] == ["auth/user/changepw"]
    pending = []
    assert converge(gateway(etcd), "root-pw", rotated, "webinfra-", pending=pending) == [] and pending == []
