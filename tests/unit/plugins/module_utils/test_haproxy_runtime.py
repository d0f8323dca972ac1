import pytest

from ansible_collections.webinfra.distributed.plugins.module_utils.haproxy_runtime import (
    RuntimeApiError,
    RuntimeClient,
    UnknownServer,
    WaitTimeout,
    backends_view,
    ensure_server,
    parse_csv,
)

HEADER = "# pxname,svname,scur,weight,status,check_status\n"


class FakeHAProxy:
    """A fake admin socket: answers show stat / show servers state from a small state model."""

    def __init__(self, servers, level="admin", sessions=None):
        self.servers = {name: {"admin": 0, "weight": 1, "up": True} for name in servers}
        self.level = level
        self.sessions = sessions or {}
        self.sent = []

    def connector(self):
        return FakeSocket(self)

    def answer(self, line):
        self.sent.append(line)
        words = line.split()
        if words[:2] == ["show", "stat"]:
            rows = ["http,FRONTEND,0,,OPEN,"]
            for name, srv in self.servers.items():
                scur = self.sessions.get(name, [0])
                count = scur.pop(0) if len(scur) > 1 else scur[0]
                status = "MAINT" if srv["admin"] & 1 else ("DRAIN" if srv["admin"] & 8 else "UP")
                if not srv["up"] and not srv["admin"] & 1:
                    status = "DOWN"
                rows.append(f"webservers,{name},{count},{srv['weight']},{status},L7OK")
            rows.append("webservers,BACKEND,0,2,UP,")
            return HEADER + "\n".join(rows) + "\n"
        if words[:3] == ["show", "servers", "state"]:
            out = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight\n"
            for i, (name, srv) in enumerate(self.servers.items()):
                out += f"3 webservers {i + 1} {name} 10.0.0.{i + 1} 2 {srv['admin']} {srv['weight']} 1\n"
            return out
        if words[:2] == ["set", "server"]:
            if self.level != "admin":
                return "Permission denied\n"
            name = words[2].split("/")[1]
            if words[3] == "state":
                self.servers[name]["admin"] = {"ready": 0, "drain": 8, "maint": 1}[words[4]]
            elif words[3] == "weight":
                self.servers[name]["weight"] = int(words[4])
            return "\n"
        return "Unknown command\n"


class FakeSocket:
    def __init__(self, haproxy):
        self.haproxy = haproxy
        self.out = b""

    def sendall(self, data):
        self.out = self.haproxy.answer(data.decode().strip()).encode()

    def recv(self, size):
        data, self.out = self.out[:size], self.out[size:]
        return data

    def close(self):
        pass


def client_for(fake):
    return RuntimeClient("/run/haproxy/admin.sock", connector=fake.connector)


def test_parse_csv():
    rows = parse_csv(HEADER + "webservers,web-01,2,1,UP,L7OK\n")
    assert rows == [
        {"pxname": "webservers", "svname": "web-01", "scur": "2", "weight": "1", "status": "UP", "check_status": "L7OK"}
    ]
    with pytest.raises(RuntimeApiError):
        parse_csv("Unknown command\n")


def test_drain_changes_once_then_is_idempotent():
    fake = FakeHAProxy(["web-01", "web-02"])
    result = ensure_server(client_for(fake), "webservers", "web-01", state="drain")
    assert result["changed"] and result["commands"] == ["set server webservers/web-01 state drain"]
    assert result["before"]["admin_state"] == "enabled" and result["after"]["admin_state"] == "drain"
    again = ensure_server(client_for(fake), "webservers", "web-01", state="drain")
    assert not again["changed"] and again["commands"] == []


def test_drain_then_maintenance_completes():
    # The long-standing bug of the public module: drain followed by maintenance never completed.
    fake = FakeHAProxy(["web-01"])
    ensure_server(client_for(fake), "webservers", "web-01", state="drain")
    result = ensure_server(client_for(fake), "webservers", "web-01", state="disabled", wait=True, sleep=lambda s: None)
    assert result["after"]["admin_state"] == "disabled" and result["after"]["status"] == "MAINT"


def test_wait_for_sessions_to_end():
    fake = FakeHAProxy(["web-01"], sessions={"web-01": [5, 5, 3, 1, 0]})
    result = ensure_server(client_for(fake), "webservers", "web-01", state="drain", wait=True, sleep=lambda s: None)
    assert result["after"]["current_sessions"] == 0


def test_drain_timeout_reports_sessions_and_stays_drained(ticking_clock):
    fake = FakeHAProxy(["web-01"], sessions={"web-01": [4]})
    clock = ticking_clock(1)
    with pytest.raises(WaitTimeout, match="still has 4 current session.*stays drain"):
        ensure_server(
            client_for(fake),
            "webservers",
            "web-01",
            state="drain",
            wait=True,
            wait_timeout=3,
            sleep=lambda s: None,
            clock=clock,
        )
    assert fake.servers["web-01"]["admin"] == 8  # drained, not half-enabled


def test_enable_waits_for_up():
    fake = FakeHAProxy(["web-01"])
    fake.servers["web-01"]["admin"] = 1
    result = ensure_server(client_for(fake), "webservers", "web-01", state="enabled", wait=True, sleep=lambda s: None)
    assert result["after"]["status"] == "UP"


def test_enable_timeout_names_the_status(ticking_clock):
    fake = FakeHAProxy(["web-01"])
    fake.servers["web-01"]["up"] = False
    fake.servers["web-01"]["admin"] = 1
    clock = ticking_clock(1)
    with pytest.raises(WaitTimeout, match="is DOWN, not UP"):
        ensure_server(
            client_for(fake),
            "webservers",
            "web-01",
            state="enabled",
            wait=True,
            wait_timeout=2,
            sleep=lambda s: None,
            clock=clock,
        )


def test_weight():
    fake = FakeHAProxy(["web-01"])
    result = ensure_server(client_for(fake), "webservers", "web-01", weight=50)
    assert result["commands"] == ["set server webservers/web-01 weight 50"] and result["after"]["weight"] == 50


def test_check_mode_sends_no_set_command():
    fake = FakeHAProxy(["web-01"])
    result = ensure_server(client_for(fake), "webservers", "web-01", state="disabled", check_mode=True)
    assert result["changed"] and result["after"]["admin_state"] == "disabled"
    assert not any(line.startswith("set") for line in fake.sent)
    assert fake.servers["web-01"]["admin"] == 0


@pytest.mark.parametrize(
    "backend, server, message",
    [
        ("nope", "web-01", "backend 'nope' does not exist; backends: webservers"),
        ("webservers", "web-09", "server 'web-09' does not exist in backend 'webservers'; servers: web-01, web-02"),
    ],
)
def test_unknown_names_list_what_exists(backend, server, message):
    with pytest.raises(UnknownServer, match=message):
        ensure_server(client_for(FakeHAProxy(["web-01", "web-02"])), backend, server, state="drain")


def test_socket_without_admin_level_says_what_is_needed():
    fake = FakeHAProxy(["web-01"], level="user")
    with pytest.raises(RuntimeApiError, match="needs 'level admin'"):
        ensure_server(client_for(fake), "webservers", "web-01", state="drain")


def test_missing_socket_is_named(tmp_path):
    with pytest.raises(RuntimeApiError, match="nope.sock does not exist"):
        RuntimeClient(str(tmp_path / "nope.sock")).show_stat()


def test_backends_view_lists_every_server_with_admin_state():
    fake = FakeHAProxy(["web-01", "web-02"])
    fake.servers["web-02"]["admin"] = 8
    view = backends_view(client_for(fake))
    assert view["webservers"]["status"] == "UP"
    assert [(s["server"], s["admin_state"]) for s in view["webservers"]["servers"]] == [
        ("web-01", "enabled"),
        ("web-02", "drain"),
    ]
