# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small etcd v3 client over etcd's JSON gateway (HTTPS, client certificate), standard library only.

Used by the HA agent on the database hosts (no gRPC library in Debian's python3 packages for
both releases). etcd 3.4 and 3.5 serve the gateway under /v3/. Keys and values are bytes in
base64; 64-bit numbers are strings in JSON, and fields equal to zero/false are left out. With a
user and password (etcd's role-based access control: the gateway does not take the client
certificate's name as a user) the client authenticates for a token first and again whenever etcd
says the token expired or is unknown. Each call tries the endpoints in turn (the last one that
answered first) and raises EtcdError when none answered within the timeout. Connections persist
between calls (HTTP keep-alive): on a lossy link a new TLS handshake per call would lose a round
trip or three to every dropped packet; a persistent connection that failed is retried once, new,
before the next endpoint.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import urllib.parse

# The key encoding and prefix ranges are etcd's, shared with the etcd_auth module.
from ansible_collections.webinfra.distributed.plugins.module_utils.etcd_auth import b64, prefix_end, unb64
from webinfra_agents.kit.tls import crl_stamp, honour_crl


class EtcdError(Exception):
    """No endpoint answered, or the answer was an error."""


class EtcdHTTPError(Exception):
    """An endpoint answered with an HTTP error."""


def answer_text(answer):
    return str(answer.get("message") or answer.get("error") or answer)


def decode_kv(kv):
    return {
        "key": unb64(kv.get("key")),
        "value": unb64(kv.get("value")),
        "create_revision": int(kv.get("create_revision", 0)),
        "mod_revision": int(kv.get("mod_revision", 0)),
        "lease": int(kv.get("lease", 0)),
    }


def put_op(key, value, lease=0):
    body = {"key": b64(key), "value": b64(value)}
    if lease:
        body["lease"] = str(lease)
    return {"request_put": body}


def delete_op(key):
    return {"request_delete_range": {"key": b64(key)}}


def absent(key):
    """Compare: the key does not exist (its create revision is 0)."""
    return {"key": b64(key), "result": "EQUAL", "target": "CREATE", "create_revision": "0"}


def value_is(key, value):
    return {"key": b64(key), "result": "EQUAL", "target": "VALUE", "value": b64(value)}


# etcd's answers that mean "authenticate again" (an expired or unknown token; a token issued before
# the last change of users or roles), not a refusal.
REAUTHENTICATE = ("invalid auth token", "user name is empty", "revision of auth store is old")


def needs_token(text):
    text = str(text).lower()
    return any(words in text for words in REAUTHENTICATE)


def wrong_password(text):
    """Whether etcd refused a user's name or password (etcd 3.4 and 3.5 say it so)."""
    text = str(text).lower()
    return "authentication failed" in text or "invalid user id or password" in text


class Client:
    """etcd v3 over HTTPS with a client certificate; `endpoints` are https://host:port URLs;
    `user` and `password` when etcd's access control is on."""

    def __init__(
        self,
        endpoints,
        ca_file=None,
        cert_file=None,
        key_file=None,
        timeout=2.0,
        opener=None,
        user="",
        password="",
        crl_file=None,
        password_file=None,
    ):
        if not endpoints:
            raise EtcdError("no etcd endpoint given")
        self.endpoints = list(endpoints)
        self.timeout = timeout
        self.user, self.password = user or "", password or ""
        # site.yml writes a new password there before it changes it in etcd (a rotation): read at
        # every authentication, tried before the last password that worked.
        self.password_file = password_file
        self.token = None
        self._opener = opener
        self._context = None
        # {endpoint: open connection}; one call at a time per client (the agent's threads each
        # have their own client; the API's requests share the main one).
        self._connections = {}
        self._lock = threading.Lock()
        self._tls = (ca_file, cert_file, key_file, crl_file)
        self._crl_seen = None
        if opener is None and any(e.startswith("https:") for e in self.endpoints):
            self._context = self._new_context()

    def _new_context(self):
        ca_file, cert_file, key_file, crl_file = self._tls
        self._crl_seen = crl_stamp(crl_file)
        context = honour_crl(ssl.create_default_context(cafile=ca_file), crl_file)
        if cert_file:
            context.load_cert_chain(cert_file, key_file)
        return context

    def _current_context(self):
        """The TLS context for a new connection: made again once the revocation list changed on
        disk (site.yml updates it without restarting the agent)."""
        if self._context is not None and self._tls[3] and crl_stamp(self._tls[3]) != self._crl_seen:
            self._context = self._new_context()
        return self._context

    def _post(self, endpoint, path, body):
        data = json.dumps(body).encode("utf-8")
        url = urllib.parse.urlsplit(endpoint.rstrip("/") + "/v3/" + path)
        if url.scheme not in ("https", "http"):
            raise ValueError("not an http(s) endpoint: %s" % endpoint)
        if self._opener is not None:
            return self._opener(url.geturl(), data, self.timeout, self._headers(path))
        reused = endpoint in self._connections
        try:
            return self._exchange(endpoint, self._connections.pop(endpoint, None) or self._connect(url), url, data)
        except (OSError, http.client.HTTPException):
            if not reused:
                raise
        # The kept connection was closed by the server or broken meanwhile: once more, new.
        return self._exchange(endpoint, self._connect(url), url, data)

    def _exchange(self, endpoint, conn, url, data):
        """One request on `conn`, kept open for the next call unless the server closes it."""
        try:
            conn.request("POST", url.path, body=data, headers=self._headers(url.path))
            response = conn.getresponse()
            text = response.read().decode("utf-8")
        except (OSError, http.client.HTTPException):
            conn.close()
            raise
        if response.will_close:
            conn.close()
        else:
            self._connections[endpoint] = conn
        if response.status >= 400:
            raise EtcdHTTPError("HTTP %s %s" % (response.status, text[:300]))
        return json.loads(text or "{}")

    def _headers(self, path):
        headers = {"Content-Type": "application/json"}
        if self.token and not path.endswith("auth/authenticate"):
            headers["Authorization"] = self.token
        return headers

    def _passwords(self):
        """The passwords to try, in order: the password file's (a rotation writes the new one
        there first), then the last one that worked (etcd may not have the new one yet)."""
        out = []
        if self.password_file:
            try:
                with open(self.password_file) as handle:
                    out.append(handle.read().strip())
            except OSError:
                pass
        if self.password not in out:
            out.append(self.password)
        return out

    def _authenticate(self, endpoint):
        """A new token from `endpoint` (a JWT: every member takes it); "" while etcd's access
        control is off (site.yml turns it on once every agent has its credentials). Each password
        of `_passwords` in turn: a password change in etcd and on the host never both at once."""
        self.token = None
        refused = None
        for password in self._passwords():
            try:
                answer = self._post(endpoint, "auth/authenticate", {"name": self.user, "password": password})
            except EtcdHTTPError as exc:
                if "authentication is not enabled" in str(exc):
                    self.token = ""
                    return
                if not wrong_password(str(exc)):
                    raise
                refused = exc
                continue
            if isinstance(answer, dict) and "authentication is not enabled" in answer_text(answer):
                self.token = ""
                return
            if isinstance(answer, dict) and answer.get("token"):
                self.token, self.password = answer["token"], password
                return
            if not wrong_password(answer_text(answer) if isinstance(answer, dict) else str(answer)):
                raise EtcdHTTPError("authentication as %s failed: %s" % (self.user, str(answer)[:200]))
            refused = answer
        raise EtcdHTTPError("authentication as %s failed: %s" % (self.user, str(refused)[:200]))

    def _renew(self, error):
        """Whether `error` asks for a (new) token: an expired or stale one, or none sent because
        access control was off when this client last asked (etcd then says "permission denied")."""
        return needs_token(error) or (self.token == "" and "permission denied" in str(error).lower())

    def _request(self, endpoint, path, body):
        """One call on one endpoint, authenticated (again, once, when etcd asks for a new token)."""
        if self.user and self.token is None:
            self._authenticate(endpoint)
        try:
            answer = self._post(endpoint, path, body)
        except EtcdHTTPError as exc:
            if not (self.user and self._renew(exc)):
                raise
            answer = None
        if answer is None or (isinstance(answer, dict) and answer.get("error") and self._renew(answer_text(answer))):
            if not self.user:
                return answer
            self._authenticate(endpoint)
            answer = self._post(endpoint, path, body)
        return answer

    def _connect(self, url):
        if url.scheme == "https":
            return http.client.HTTPSConnection(
                url.hostname, url.port or 2379, timeout=self.timeout, context=self._current_context()
            )
        return http.client.HTTPConnection(url.hostname, url.port or 2379, timeout=self.timeout)

    def close(self):
        with self._lock:
            for conn in self._connections.values():
                conn.close()
            self._connections.clear()

    def call(self, path, body):
        with self._lock:
            return self._call(path, body)

    def _call(self, path, body):
        errors = []
        for endpoint in list(self.endpoints):
            try:
                answer = self._request(endpoint, path, body)
            except (OSError, ValueError, EtcdHTTPError, http.client.HTTPException) as exc:
                errors.append("%s: %s" % (endpoint, exc))
                continue
            if isinstance(answer, dict) and answer.get("error"):
                errors.append("%s: %s" % (endpoint, answer.get("message") or answer["error"]))
                continue
            if endpoint != self.endpoints[0]:
                self.endpoints.remove(endpoint)
                self.endpoints.insert(0, endpoint)
            return answer
        raise EtcdError("etcd %s failed on every endpoint: %s" % (path, "; ".join(errors)))

    def get_prefix(self, prefix):
        """(revision, {key: decoded kv}) of every key under `prefix`."""
        answer = self.call("kv/range", {"key": b64(prefix), "range_end": b64(prefix_end(prefix))})
        revision = int(answer.get("header", {}).get("revision", 0))
        return revision, {kv["key"]: kv for kv in (decode_kv(raw) for raw in answer.get("kvs", []))}

    def get(self, key):
        answer = self.call("kv/range", {"key": b64(key)})
        kvs = answer.get("kvs") or []
        return decode_kv(kvs[0]) if kvs else None

    def put(self, key, value, lease=0):
        body = put_op(key, value, lease)["request_put"]
        self.call("kv/put", body)

    def delete(self, key):
        self.call("kv/deleterange", {"key": b64(key)})

    def txn(self, compare, success, failure=None):
        """True when every comparison held (the success operations ran)."""
        answer = self.call("kv/txn", {"compare": compare, "success": success, "failure": failure or []})
        return bool(answer.get("succeeded"))

    def grant(self, ttl):
        answer = self.call("lease/grant", {"TTL": str(int(ttl))})
        return int(answer["ID"])

    def keepalive(self, lease):
        """Seconds the lease has left after renewing it; 0 when it expired (it cannot come back)."""
        answer = self.call("lease/keepalive", {"ID": str(lease)})
        result = answer.get("result", answer)
        return int(result.get("TTL", 0))

    def time_to_live(self, lease):
        """Seconds the lease has left; -1 when etcd does not know it (expired, revoked)."""
        answer = self.call("lease/timetolive", {"ID": str(lease)})
        return int(answer.get("TTL", -1))

    def revoke(self, lease):
        try:
            self.call("lease/revoke", {"ID": str(lease)})
        except EtcdError:
            # etcd 3.4 also serves it at its older path.
            self.call("kv/lease/revoke", {"ID": str(lease)})
