# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Callback for the benchmarks (not part of the collection): when WEBINFRA_TIMELINE names a
file, writes each task's start and each host's end of it there as JSON (plays, tasks, hosts,
seconds from the playbook's start), so tools/bench.py can say where a deploy's time goes."""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: webinfra_timeline
type: aggregate
short_description: Task and host timings as JSON, for tools/bench.py
description:
  - Writes the file named by the environment variable E(WEBINFRA_TIMELINE) at the end of the
    playbook; does nothing without it.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "webinfra_timeline"
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self):
        super().__init__()
        self.path = os.environ.get("WEBINFRA_TIMELINE")
        self.started = time.time()
        self.plays = []
        self.tasks = []
        self.current = None

    def _now(self):
        return round(time.time() - self.started, 3)

    def v2_playbook_on_play_start(self, play):
        self.plays.append({"name": play.get_name(), "start": self._now()})

    def _task(self, task, handler=False):
        self.current = {
            "play": len(self.plays) - 1,
            "name": task.get_name(),
            "action": task.action,
            "handler": handler,
            "start": self._now(),
            "hosts": {},
        }
        self.tasks.append(self.current)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._task(task, handler=True)

    def _end(self, result, status):
        if self.current is not None:
            self.current["hosts"][result._host.get_name()] = [self._now(), status]

    def v2_runner_on_ok(self, result):
        self._end(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._end(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._end(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._end(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        if not self.path:
            return
        with open(self.path, "w", encoding="utf-8") as handle:
            json.dump({"seconds": self._now(), "plays": self.plays, "tasks": self.tasks}, handle)
