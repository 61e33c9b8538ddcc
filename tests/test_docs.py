"""The README and the pages under docs/ point only at files that exist: every link and image,
and every results file they cite; every "SPEC.md section N" in the code and pages names a
section SPEC.md has."""

from __future__ import annotations

import itertools
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _expand_braces(path: str) -> list[str]:
    """`a-{b,c}.json` -> [`a-b.json`, `a-c.json`]."""
    parts = re.split(r"\{([^}]*)\}", path)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_and_image_of_a_page_exists(page):
    text = page.read_text()
    targets = [t for t in re.findall(r"\]\(([^)\s#]+)[^)]*\)", text) if not re.match(r"[a-z]+://", t)]
    assert targets or page.name != "README.md"
    missing = [t for t in targets if not (page.parent / t).exists()]
    assert not missing, f"{page.name} links to missing files: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_results_file_a_page_cites_exists(page):
    cited = re.findall(r"(?:docs|benchmarks)/results/[\w.{},-]+\.(?:json|md)", page.read_text())
    missing = [p for c in cited for p in _expand_braces(c) if not (ROOT / p).exists()]
    assert not missing, f"{page.name} cites missing results files: {missing}"


def test_every_spec_section_cited_exists():
    sections = set(re.findall(r"^## (\d+)\. ", (ROOT / "SPEC.md").read_text(), flags=re.M))
    code = [path for folder in ("irl", "experiments", "benchmarks", "tests") for path in (ROOT / folder).rglob("*.py")]
    cited = {}
    for path in [*PAGES, *code]:
        for numbers in re.findall(r"SPEC\.md,? sections? (\d+(?:(?:, | and )\d+)*)", path.read_text()):
            for n in re.findall(r"\d+", numbers):
                cited.setdefault(n, []).append(path.relative_to(ROOT).as_posix())
    assert cited, "no SPEC.md section is cited anywhere"
    missing = {n: paths for n, paths in cited.items() if n not in sections}
    assert not missing, f"cited SPEC.md sections that do not exist: {missing}"
