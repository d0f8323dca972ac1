# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The agents' HTTP servers: one thread per connection, at most `max_connections` at once (more are
closed at once), so idle or slow clients cannot exhaust the agent; the handlers set how long a
client may take to send its request."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

from webinfra_agents.kit.daemon import log

MAX_CONNECTIONS = 32


class LimitedHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler, max_connections=MAX_CONNECTIONS):
        super().__init__(address, handler)
        self.max_connections = max_connections
        self.slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            log("%s: refused, %d connections are served already" % (client_address[0], self.max_connections))
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()
