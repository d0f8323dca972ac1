import http.server
import json
import threading

import pytest

from webinfra_agents.ha import etcd


def test_prefix_end_and_base64():
    assert etcd.prefix_end("/webinfra/a/") == b"/webinfra/a0"
    assert etcd.unb64(etcd.b64("leader")) == "leader"


def test_calls_fall_over_to_the_next_endpoint_and_remember_it():
    calls = []

    def opener(url, data, timeout):
        calls.append(url)
        if url.startswith("https://10.0.0.1"):
            raise OSError("connection refused")
        if url.endswith("/v3/kv/range"):
            kv = {"key": etcd.b64("/w/leader"), "value": etcd.b64(json.dumps({"name": "db-01"})), "lease": "7"}
            return {"header": {"revision": "12"}, "kvs": [kv]}
        return {"succeeded": True}

    client = etcd.Client(["https://10.0.0.1:2379", "https://10.0.0.2:2379"], opener=opener)
    revision, kvs = client.get_prefix("/w/")
    assert revision == 12 and kvs["/w/leader"]["lease"] == 7
    assert client.endpoints[0] == "https://10.0.0.2:2379"
    assert client.txn([etcd.absent("/w/leader")], [etcd.put_op("/w/leader", "x", 7)])
    assert calls[-1] == "https://10.0.0.2:2379/v3/kv/txn"


def test_every_endpoint_failing_names_them_all():
    def opener(url, data, timeout):
        raise OSError("timed out")

    client = etcd.Client(["https://a:2379", "https://b:2379"], opener=opener)
    with pytest.raises(etcd.EtcdError, match="https://a:2379: timed out; https://b:2379: timed out"):
        client.grant(10)


def test_gateway_errors_are_errors():
    client = etcd.Client(["https://a:2379"], opener=lambda *a: {"error": "etcdserver: requested lease not found"})
    with pytest.raises(etcd.EtcdError, match="lease not found"):
        client.keepalive(5)


def test_connections_persist_between_calls_and_a_broken_one_is_replaced():
    """HTTP keep-alive: two calls, one TCP connection; after the server dropped it, a new one."""
    peers = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["Content-Length"]))
            peers.append(self.client_address[1])
            body = b'{"header": {"revision": "3"}}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            if len(peers) == 2:
                self.close_connection = True

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = etcd.Client([f"http://127.0.0.1:{server.server_address[1]}"], timeout=2)
        for _call in range(3):
            assert client.get_prefix("/w/")[0] == 3
        assert peers[0] == peers[1] != peers[2]
        client.close()
    finally:
        server.shutdown()
