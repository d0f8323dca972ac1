import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


class ExitJson(Exception):
    pass


class FailJson(Exception):
    pass


@pytest.fixture
def run_module(monkeypatch):
    """Run a module's main() with `args`; returns ("exit"|"fail", result dict)."""

    def exit_json(self, **kwargs):
        raise ExitJson(kwargs)

    def fail_json(self, **kwargs):
        raise FailJson(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def run(module, args):
        with patch_module_args(json.loads(json.dumps(args))):
            try:
                module.main()
            except ExitJson as exc:
                return "exit", exc.args[0]
            except FailJson as exc:
                return "fail", exc.args[0]
        raise AssertionError("module returned without exit_json/fail_json")

    return run
