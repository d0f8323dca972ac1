"""The console step: the stack's overview page in headless Chromium."""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from bench.common import ROOT, Lab, Step, get_load, log, run

BROWSER_FLAGS = (
    # Chromium as root in a machine with no display and no Internet (Debian's package).
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def ensure_browser() -> str:
    """Debian's Chromium, installed with the lab tool's apt helper (host set-up lock) when missing."""
    sys.path.insert(0, str(ROOT / "tools"))
    import lab as labtool  # noqa: PLC0415 - the lab tool's apt helper

    labtool.apt_install(lambda: [] if shutil.which("chromium") else ["chromium"], "chromium")
    return shutil.which("chromium") or "chromium"


def page_rows(html: str, section: str) -> list[list[str]]:
    """The cells of each row of one section's table of the overview page (as rendered)."""
    if f'<h2 id="{section}">' not in html:
        return []
    part = html.split(f'<h2 id="{section}">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", part, re.S)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)] for row in rows][
        1:
    ]


def bench_console(lab: Lab, url: str, png: Path) -> dict:
    """Open the overview page in headless Chromium: its DOM (what it shows) and a screenshot,
    taken while a light GET load runs through the balancer (so the rates have something to show)."""
    browser = ensure_browser()
    version = run([browser, "--version"]).stdout.strip()
    lb = lab.groups["loadbalancers"][0]
    load = get_load(lab, lb, 2, 45, "> /dev/null")
    time.sleep(30)  # two scrapes and more inside the page's rate window
    # Prometheus answers over HTTPS to its login only: the login goes into the address the
    # browser opens, and the lab's internal CA is not in Chromium's store.
    monitor = lab.hostvars[lab.groups["monitoring"][0]]
    user, password = monitor.get("monitoring_web_user", "admin"), monitor["monitoring_web_password"]
    opened = url.replace("://", f"://{quote(user, safe='')}:{quote(password, safe='')}@", 1)
    flags = [*BROWSER_FLAGS, "--ignore-certificate-errors"]
    with tempfile.TemporaryDirectory() as profile:
        dom = run([browser, *flags, f"--user-data-dir={profile}", "--dump-dom", opened], timeout=120).stdout
    with tempfile.TemporaryDirectory() as profile:
        run(
            [browser, *flags, f"--user-data-dir={profile}", "--window-size=1280,1000", f"--screenshot={png}", opened],
            timeout=120,
        )
    load.join(timeout=120)
    out = {
        "url": url,
        "browser": version,
        "screenshot": png.name if png.exists() else None,
        "balancers": {row[0]: row[1:] for row in page_rows(dom, "balancers") if len(row) == 5},
        "backends": {f"{row[0]}/{row[1]}": row[2] for row in page_rows(dom, "backends") if len(row) == 5},
        "databases": {row[0]: row[1:] for row in page_rows(dom, "databases") if len(row) == 6},
        "alerts_firing": [row[0] for row in page_rows(dom, "alerts") if len(row) == 3],
        "backups": page_rows(dom, "backups"),
    }
    log(
        f"console: {version}: {len(out['balancers'])} balancer(s), backends {out['backends']}, "
        f"databases {{{', '.join(f'{k}: {v[1]}' for k, v in out['databases'].items())}}}, "
        f"alerts firing {out['alerts_firing'] or 'none'}; screenshot {png}"
    )
    return out


def console_lines(x: dict) -> list[str]:
    """The console step's rows of the results table."""
    lines: list[str] = []
    states = ", ".join(f"{k} {v}" for k, v in x["backends"].items())
    roles = ", ".join(f"{k} {v[1]}" for k, v in x["databases"].items())
    lines.append(
        f"| overview page in {x['browser']} | backends: {states}; databases: {roles}; "
        f"alerts firing: {', '.join(x['alerts_firing']) or 'none'}; screenshot {x['screenshot']} |"
    )
    return lines


STEP = Step(
    "console",
    "the overview page in headless Chromium: a screenshot and what it shows",
    run=lambda ctx: bench_console(ctx.lab, ctx.args.console_url, ctx.out / f"{ctx.started}-console.png"),
    lines=console_lines,
    needs_client=True,
)
