#!/usr/bin/python
# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: health_check
short_description: Check HTTP(S) endpoints and return a structured health report
version_added: 0.1.0
author: webinfra maintainers (@webinfra)
description:
  - Requests each endpoint once from the host it runs on and judges the answer - status, body
    text or pattern, headers, latency. TLS verification is on by default and configurable.
  - Returns one report. It fails only when O(fail_on_unhealthy=true).
attributes:
  check_mode:
    support: full
    description: Read-only requests; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed.
options:
  endpoints:
    description: Endpoints to check.
    type: list
    elements: dict
    required: true
    suboptions:
      url:
        description: URL to request.
        type: str
        required: true
      name:
        description: Name in the report (default the URL).
        type: str
      method:
        description: HTTP method.
        type: str
        default: GET
      status:
        description: Acceptable status codes.
        type: list
        elements: int
        default: [200]
      body_contains:
        description: Strings the body must contain.
        type: list
        elements: str
      body_regex:
        description: Regular expression the body must match.
        type: str
      headers:
        description: Response headers that must be present, name to regular expression.
        type: dict
      request_headers:
        description: Headers sent with the request.
        type: dict
      max_latency_ms:
        description: Slowest acceptable answer, in milliseconds.
        type: float
      timeout:
        description: Seconds to wait for the answer.
        type: int
        default: 10
  validate_certs:
    description: Verify TLS certificates.
    type: bool
    default: true
  ca_path:
    description: CA bundle the certificates are verified against.
    type: path
  client_cert:
    description: Client certificate (PEM) for mutual TLS.
    type: path
  client_key:
    description: Client key (PEM) for mutual TLS.
    type: path
  fail_on_unhealthy:
    description: Fail the task when any endpoint is unhealthy.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Check the application on this web server
  webinfra.distributed.health_check:
    endpoints:
      - url: http://127.0.0.1/healthz
        body_contains: ['"status": "ok"']
        headers: {X-Served-By: "{{ inventory_hostname }}"}
        max_latency_ms: 500
    fail_on_unhealthy: true

- name: Check the public site over HTTPS against the internal CA
  webinfra.distributed.health_check:
    endpoints:
      - url: https://www.example.com/
        name: site
    ca_path: /etc/ssl/webinfra/ca.pem
  register: site_health
"""

RETURN = r"""
healthy:
  description: Whether every endpoint passed.
  returned: always
  type: bool
unhealthy:
  description: Names of the endpoints that did not pass.
  returned: always
  type: list
  elements: str
results:
  description:
    - One report per endpoint - name, url, ok, status, latency_ms, problems, headers,
      body (first 1000 characters).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "app", "url": "http://127.0.0.1/healthz", "ok": true, "status": 200, "latency_ms": 3.2,
            "problems": []}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.webinfra.distributed.plugins.module_utils.http_health import check_all


def make_fetch(module):
    p = module.params

    def fetch(url, method, headers, timeout):
        try:
            resp = open_url(
                url,
                method=method,
                headers=headers,
                timeout=timeout,
                validate_certs=p["validate_certs"],
                ca_path=p["ca_path"],
                client_cert=p["client_cert"],
                client_key=p["client_key"],
                follow_redirects="none",
            )
            status, resp_headers, body = resp.status, dict(resp.headers), resp.read()
        except Exception as exc:  # pylint: disable=broad-except
            # HTTPError carries a status and a body: an answer, not a failure to ask.
            if getattr(exc, "code", None) is None or not hasattr(exc, "read"):
                raise
            status, resp_headers, body = exc.code, dict(exc.headers or {}), exc.read()
        return {"status": status, "headers": resp_headers, "body": body.decode("utf-8", "replace")}

    return fetch


def main():
    module = AnsibleModule(
        argument_spec=dict(
            endpoints=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    url=dict(type="str", required=True),
                    name=dict(type="str"),
                    method=dict(type="str", default="GET"),
                    status=dict(type="list", elements="int", default=[200]),
                    body_contains=dict(type="list", elements="str"),
                    body_regex=dict(type="str"),
                    headers=dict(type="dict"),
                    request_headers=dict(type="dict"),
                    max_latency_ms=dict(type="float"),
                    timeout=dict(type="int", default=10),
                ),
            ),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
            client_cert=dict(type="path"),
            client_key=dict(type="path"),
            fail_on_unhealthy=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    report = check_all(make_fetch(module), module.params["endpoints"])
    if module.params["fail_on_unhealthy"] and not report["healthy"]:
        problems = "; ".join("%s: %s" % (r["name"], ", ".join(r["problems"])) for r in report["results"] if not r["ok"])
        module.fail_json(msg="unhealthy: %s" % problems, **report)
    module.exit_json(changed=False, **report)


if __name__ == "__main__":
    main()
