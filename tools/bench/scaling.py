"""The scaling step: labs of 2, 4 and 6 web servers (and a second replica), fresh and no-op deploys."""

from __future__ import annotations

import json
import re
import shutil

from bench.common import ROOT, Lab, Step, lab_tool, log
from bench.deploy import module_floor

# The scaling step's lab shapes: (web servers, database replicas among them). Each web server
# hosts a database, as in the lab (web-01 the primary, the next ones replicas).
SCALING_SHAPES = ((2, 1), (4, 1), (6, 1), (4, 2))


SCALING_LAB = "webinfra-scale"


def scale_inventory(webs: int, replicas: int, lab_vars: str) -> dict[str, str]:
    """Files of an inventory like the lab's with `webs` web servers, each hosting a database:
    web-01 the primary, the next `replicas` ones replicas (the others read from the primary);
    etcd on lb-01 and the first two web servers, backups and monitoring on lb-01, nothing
    published (the lab may run beside it). `lab_vars` is the lab's group_vars/all.yml."""
    if webs < 2 or not 1 <= replicas < webs:
        raise ValueError(f"a shape needs 2 or more web servers and 1 to {webs - 1} replicas, not {webs}/{replicas}")
    web_names = [f"web-{i:02d}" for i in range(1, webs + 1)]

    def members(names: list[str]) -> dict:
        return {"hosts": {n: None for n in names}}

    hosts = {
        "all": {
            "children": {
                "loadbalancers": {"hosts": {"lb-01": {"ansible_host": f"{SCALING_LAB}-lb-01"}}},
                "webservers": {"hosts": {n: {"ansible_host": f"{SCALING_LAB}-{n}"} for n in web_names}},
                "db_primary": members(web_names[:1]),
                "db_replicas": members(web_names[1 : 1 + replicas]),
                "etcd": members(["lb-01", *web_names[:2]]),
                "backups": members(["lb-01"]),
                "monitoring": members(["lb-01"]),
            }
        }
    }
    overrides = {"webinfra_lab_name": SCALING_LAB, "haproxy_https_redirect_port": 443}
    return {
        "hosts.yml": "---\n" + json.dumps(hosts, indent=2) + "\n",
        "group_vars/all/00-lab.yml": lab_vars,
        "group_vars/all/10-scale.yml": "---\n" + json.dumps(overrides, indent=2) + "\n",
    }


def parse_shapes(text: str) -> tuple[tuple[int, int], ...]:
    """--scaling-shapes: comma-separated WEBSxREPLICAS (for example 2x1,4x2)."""
    shapes = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = re.fullmatch(r"(\d+)x(\d+)", item)
        if not match or int(match.group(2)) < 1 or int(match.group(2)) >= int(match.group(1)):
            raise SystemExit(
                f"bench: --scaling-shapes: '{item}' is not WEBSxREPLICAS with 1 <= REPLICAS < WEBS (for example 4x2)"
            )
        shapes.append((int(match.group(1)), int(match.group(2))))
    return tuple(shapes)


def bench_scaling(shapes=SCALING_SHAPES) -> dict:
    """site.yml fresh and no-op on labs of growing size, each next to its module floor (one
    trivial module run on every host): does a host more cost time, or run beside the others?"""
    lab_vars = (ROOT / "inventories" / "lab" / "group_vars" / "all.yml").read_text()
    work = ROOT / "bench" / "results" / ".work"
    rows = []
    for webs, replicas in shapes:
        inventory = work / f"scale-{webs}w{replicas}r"
        shutil.rmtree(inventory, ignore_errors=True)
        for name, text in scale_inventory(webs, replicas, lab_vars).items():
            (inventory / name).parent.mkdir(parents=True, exist_ok=True)
            (inventory / name).write_text(text)
        lab = Lab(str(inventory))
        log(f"scaling: {webs} web servers, {replicas} replica(s): {len(lab.hostvars)} hosts")
        lab_tool("down", "--lab", SCALING_LAB)
        lab_tool("up", "-i", str(inventory))
        try:
            fresh, fresh_changed, _output = lab.playbook(str(ROOT / "site.yml"))
            noop, noop_changed, _output = lab.playbook(str(ROOT / "site.yml"))
            floor = module_floor(lab)
        finally:
            lab_tool("down", "--lab", SCALING_LAB)
        row = {
            "webs": webs,
            "replicas": replicas,
            "hosts": len(lab.hostvars),
            "fresh_seconds": round(fresh, 1),
            "fresh_changed": fresh_changed,
            "noop_seconds": round(noop, 1),
            "noop_changed": noop_changed,
            "module_floor_seconds": round(floor, 1),
        }
        log(f"scaling: {row}")
        rows.append(row)
    return {"shapes": rows}


def scaling_lines(d: dict) -> list[str]:
    """The scaling step's rows of the results table."""
    return [
        f"| site.yml, {r['webs']} web servers, {r['replicas']} replica(s) ({r['hosts']} hosts) | "
        f"fresh {r['fresh_seconds']} s (changed={r['fresh_changed']}), no-op {r['noop_seconds']} s "
        f"(changed={r['noop_changed']}), module floor {r['module_floor_seconds']} s |"
        for r in d["shapes"]
    ]


STEP = Step(
    "scaling",
    "labs of several shapes (--scaling-shapes), fresh and no-op deploys next to their module floor",
    run=lambda ctx: bench_scaling(parse_shapes(ctx.args.scaling_shapes)),
    lines=scaling_lines,
    needs_lab=False,
)
