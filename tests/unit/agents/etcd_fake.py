"""An in-memory etcd with leases and transactions, and a settable clock, for the HA agent's tests."""

from webinfra_agents.ha import etcd as etcd_api


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class FakeEtcd:
    def __init__(self, clock):
        self.clock, self.kv, self.leases, self.next, self.up = clock, {}, {}, 1, True
        self.revision = 1

    def _check(self):
        if not self.up:
            raise etcd_api.EtcdError("down")
        for lease, expiry in list(self.leases.items()):
            if expiry <= self.clock():
                del self.leases[lease]
                self.kv = {k: v for k, v in self.kv.items() if v["lease"] != lease}

    def get_prefix(self, prefix):
        self._check()
        return self.revision, {k: dict(v, key=k) for k, v in self.kv.items() if k.startswith(prefix)}

    def put(self, key, value, lease=0):
        self._check()
        if lease and lease not in self.leases:
            raise etcd_api.EtcdError("etcdserver: requested lease not found")
        old = self.kv.get(key)
        self.revision += 1
        self.kv[key] = {
            "value": value,
            "lease": lease,
            "create_revision": old["create_revision"] if old else self.revision,
            "mod_revision": self.revision,
        }

    def delete(self, key):
        self._check()
        self.revision += 1
        self.kv.pop(key, None)

    def wipe(self):
        """Every key gone (a re-created cluster or a wiped data directory), leases too, and the
        revision counts from 1 again."""
        self.kv, self.leases, self.revision = {}, {}, 1

    def txn(self, compare, success, failure=None):
        self._check()
        for c in compare:
            key = etcd_api.unb64(c["key"])
            if c["target"] == "CREATE" and key in self.kv:
                return False
            if c["target"] == "VALUE" and (key not in self.kv or self.kv[key]["value"] != etcd_api.unb64(c["value"])):
                return False
        for op in success:
            if "request_put" in op:
                p = op["request_put"]
                self.put(etcd_api.unb64(p["key"]), etcd_api.unb64(p["value"]), int(p.get("lease", 0)))
            else:
                self.delete(etcd_api.unb64(op["request_delete_range"]["key"]))
        return True

    def grant(self, ttl):
        self._check()
        self.next += 1
        self.leases[self.next] = self.clock() + ttl
        return self.next

    def get(self, key):
        self._check()
        kv = self.kv.get(key)
        return dict(kv, key=key) if kv else None

    def keepalive(self, lease):
        self._check()
        if lease not in self.leases:
            return 0
        self.leases[lease] = self.clock() + 10
        return 10

    def time_to_live(self, lease):
        self._check()
        return int(self.leases[lease] - self.clock()) if lease in self.leases else -1

    def revoke(self, lease):
        self._check()
        self.leases[lease] = 0
        self._check()
