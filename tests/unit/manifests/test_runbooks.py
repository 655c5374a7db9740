"""Every alert links its runbook: a ``runbook_url`` to a section of README.md that exists and says something.

GitHub turns a heading into an anchor by lower-casing it, dropping punctuation and joining words with
hyphens; a second heading with the same text gets ``-1``. The same rules resolve the README's own
``(#anchor)`` links, so a renamed heading cannot leave a dead link behind.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from shared_data import REPO_ROOT

README = REPO_ROOT / "README.md"
RUNBOOK_BASE = "https://github.com/mercari/pull-request-environments/blob/main/README.md#"
# The repository the images' org.opencontainers.image.source label names (tests/unit/packaging).
SOURCE = "https://github.com/mercari/pull-request-environments"

Render = Callable[[str], list[dict[str, Any]]]


def github_anchor(heading: str) -> str:
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def readme_sections() -> dict[str, str]:
    """anchor -> the text under that heading, up to the next heading (code blocks are not headings)."""
    sections: dict[str, str] = {}
    counts: dict[str, int] = {}
    current: str | None = None
    in_code = False
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        heading = None if in_code else re.match(r"#{1,6} (.+)", line)
        if heading:
            anchor = github_anchor(heading[1])
            seen = counts.get(anchor, 0)
            counts[anchor] = seen + 1
            current = anchor if seen == 0 else f"{anchor}-{seen}"
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def alerts(render: Render) -> list[dict[str, Any]]:
    found = [
        rule
        for doc in render("monitoring")
        if doc["kind"] == "PrometheusRule"
        for group in doc["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    assert len(found) >= 10
    return found


def test_every_alert_has_a_runbook_url_into_the_readme(render: Render) -> None:
    missing = [
        a["alert"] for a in alerts(render) if not a["annotations"].get("runbook_url", "").startswith(RUNBOOK_BASE)
    ]
    assert missing == []
    assert RUNBOOK_BASE.startswith(SOURCE + "/")


def test_every_runbook_anchor_is_a_readme_section_with_a_runbook(render: Render) -> None:
    sections = readme_sections()
    for alert in alerts(render):
        anchor = alert["annotations"]["runbook_url"].removeprefix(RUNBOOK_BASE)
        assert anchor in sections, f"{alert['alert']}: no README heading for #{anchor}"
        assert anchor == github_anchor(alert["alert"]), "each alert has its own section, named after it"
        assert len(sections[anchor].split()) >= 15, f"{alert['alert']}: the runbook says too little"


def test_every_alert_in_the_readme_table_links_its_runbook(render: Render) -> None:
    table = readme_sections()["monitoring-and-alerts"]
    for alert in alerts(render):
        name = alert["alert"]
        assert f"(#{github_anchor(name)})" in table, f"{name} is not linked from the alerts table"


def test_the_readme_has_no_dead_internal_links() -> None:
    sections = readme_sections()
    links = re.findall(r"\]\(#([^)]+)\)", README.read_text())
    assert links
    assert sorted({link for link in links if link not in sections}) == []


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Monitoring and alerts", "monitoring-and-alerts"),
        ("Try it by hand: `make sandbox`", "try-it-by-hand-make-sandbox"),
        (
            "What each controller may do (least privilege, checked by `tests/x.py`)",
            "what-each-controller-may-do-least-privilege-checked-by-testsxpy",
        ),
        ("ReplicatorDown", "replicatordown"),
        ("Annotations and labels (the contract)", "annotations-and-labels-the-contract"),
    ],
)
def test_anchors_follow_githubs_rules(heading: str, anchor: str) -> None:
    assert github_anchor(heading) == anchor
