"""The documentation cannot point nowhere: every link and every cited section resolves, every repository path it
names exists, every Python snippet would run its imports, and the README takes a newcomer to a first preview of their
own stack within its first 60 lines, with a stack file the program accepts.

The generated reference (``docs/reference.md``) has its own drift test, ``tests/test_reference.py``.
"""

import json
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(
    [
        ROOT / name
        for name in ("README.md", "CONTRIBUTING.md", "CHANGELOG.md", "ARCHITECTURE.md", "TESTING.md", "BENCHMARKS.md")
    ]
    + list((ROOT / "docs").glob("*.md"))
)
"""The pages a reader follows links through (BENCHMARKS.md's tables are also checked by its smoke test)."""

_CITABLE = r"README(?:\.md)?|CONTRIBUTING\.md|CHANGELOG\.md|TESTING\.md|ARCHITECTURE\.md|BENCHMARKS\.md|docs/[\w-]+\.md"
_CITATION = re.compile(rf"(?<![\w/])(?P<page>{_CITABLE}),\s+\"(?P<section>[^\"]+)\"")
_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} (.+?)\s*$", re.MULTILINE)
_REPO_PATH = re.compile(
    r"`(?P<path>(?:components|scripts|tests|lab|policy|stacks|examples|benchmarks|rbac|toolchain|shared)/[\w./-]*)`"
)
"""A path of this repository in code marks (``docs/`` and ``provider/`` are left to the link test: other
repositories cited in the pages have folders of those names)."""


def _tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    suffixes = {".py", ".sh", ".md", ".yml", ".yaml", ".toml", ".ts", ".txt"}
    return [ROOT / name for name in names if Path(name).suffix in suffixes and (ROOT / name).is_file()]


def _plain(text: str) -> str:
    """A heading or a cited section as words: no markdown code marks, one space between words."""
    return " ".join(text.replace("`", "").split())


def _headings(page: Path) -> set[str]:
    return {_plain(heading) for heading in _HEADING.findall(_without_code_blocks(page.read_text()))}


def _without_code_blocks(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but ``-`` and ``_`` dropped, spaces to ``-``."""
    text = unicodedata.normalize("NFKC", heading).lower().replace("`", "")
    return "".join(ch for ch in text if ch.isalnum() or ch in "-_ ").replace(" ", "-")


def _page_of(citation: str) -> Path:
    return ROOT / ("README.md" if citation.startswith("README") else citation)


def _joined(text: str) -> str:
    """Text with comment leaders and line breaks inside citations folded away (a citation may wrap in a comment)."""
    return re.sub(r"\n\s*(?:#|//|\*)?\s*", " ", text)


def test_every_cited_section_exists() -> None:
    """``(docs/fleets.md, "State")`` in code, comments, workflows and pages names a heading of that page."""
    missing = []
    for path in _tracked_text_files():
        for citation in _CITATION.finditer(_joined(path.read_text(errors="replace"))):
            page = _page_of(citation["page"])
            if not page.exists() or _plain(citation["section"]) not in _headings(page):
                missing.append(f'{path.relative_to(ROOT)}: {citation["page"]}, "{citation["section"]}"')
    assert missing == [], "\n".join(missing)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    """A link to a file of the repository names one that exists, and its ``#anchor`` a heading of it."""
    broken = []
    for link in _LINK.finditer(_without_code_blocks(page.read_text())):
        target = link["target"]
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and anchor not in {_anchor(heading) for heading in _headings(linked)}:
            broken.append(f"{target}: no heading with that anchor")
    assert broken == [], broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_repository_path_named_exists(page: Path) -> None:
    """`scripts/fleet.py`, `tests/e2e/test_adoption.py`, ... named in a page exist (placeholders and globs aside)."""
    missing = []
    for named in _REPO_PATH.finditer(page.read_text()):
        path = named["path"].rstrip(".")
        if any(mark in path for mark in "*<{") or path.endswith(("/sdks/", "/.venv")):
            continue
        if not (ROOT / path).exists():
            missing.append(path)
    assert missing == [], missing


def _code_blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"^ *```{language}\n(.*?)^ *```", page.read_text(), flags=re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_python_snippets_define_what_they_use(page: Path) -> None:
    """Each ``python`` block passes ruff's pyflakes rules on its own: no name used without its import."""
    for block in _code_blocks(page, "python"):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", "check", "--select", "F", "--stdin-filename", "snippet.py", "-"],
            input=block,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, f"{page.name}:\n{block}\n{result.stdout}"


def test_the_docs_index_lists_every_page() -> None:
    """The README's documentation table links every page of docs/, and only pages that exist."""
    readme = (ROOT / "README.md").read_text()
    index = readme[readme.index("## Documentation") : readme.index("\n## ", readme.index("## Documentation") + 1)]
    listed = set(re.findall(r"\]\(docs/([\w-]+\.md)\)", index))
    pages = {page.name for page in (ROOT / "docs").glob("*.md")}
    assert listed == pages


def test_the_readme_reaches_a_first_preview_within_60_lines() -> None:
    """The first 60 lines hold the copy of an example stack that exists, the stack file to edit, and the preview."""
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:60])
    copied = re.search(r"cp (stacks/Pulumi\.[\w-]+\.yaml) stacks/Pulumi\.(?P<stack>[\w-]+)\.yaml", head)
    assert copied and (ROOT / copied.group(1)).is_file()
    assert f"scripts/up.sh {copied['stack']} --diff" in head
    assert "adopt: true" in head, "clusters meshctl registered fail their first preview without it"


def test_the_readmes_stack_file_registers_its_clusters(tmp_path: Path) -> None:
    """The README's stack file, run by ``__main__.py`` on the mock runtime: every cluster registered, the one marked
    ``adopt: true`` imported, the others created."""
    from lab.engine_double import COMPONENT, run_main

    (block,) = _code_blocks(ROOT / "README.md", "yaml")
    stack_file = tmp_path / "Pulumi.my-fleet.yaml"
    stack_file.write_text(block)
    clusters = yaml.safe_load(block)["config"]["gloo-mesh-registration:clusters"]
    recorded = run_main(stack_file)
    assert sorted(component.name for component in recorded.registered(COMPONENT)) == sorted(
        entry["name"] for entry in clusters
    )
    imported = {
        record.name
        for record in recorded.registered()
        if record.custom and record.op == "register" and record.resource_id
    }
    adopted = {entry["name"] for entry in clusters if entry.get("adopt")}
    assert adopted and {name.split("-", 1)[0] for name in imported} == {name.split("-", 1)[0] for name in adopted}


def test_no_release_tag_is_named_that_does_not_exist() -> None:
    """A pin such as ``provider@v0.1.0`` names a tag of this repository (none is tagged yet: pin a commit)."""
    tags = set(subprocess.run(["git", "tag"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split())
    named = {
        f"v{version}"
        for path in [*PAGES, ROOT / "examples" / "python" / "requirements.txt"]
        for version in re.findall(r"(?:provider|\.git)@v(\d+\.\d+\.\d+)", path.read_text())
    }
    assert named <= tags, sorted(named - tags)


def test_the_guardrails_page_shows_the_example_policy_config_as_it_is() -> None:
    """The JSON the guardrails page shows is ``policy/config.example.json``, which the policy tests load."""
    (shown,) = _code_blocks(ROOT / "docs" / "guardrails.md", "json")
    assert json.loads(shown) == json.loads((ROOT / "policy" / "config.example.json").read_text())


def test_every_real_engine_module_is_described_in_contributing() -> None:
    """CONTRIBUTING.md's table of the real-engine suite has a row for each module of tests/e2e, and no row for one that
    is gone."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    first_cells = [line.split("|")[1] for line in text.splitlines() if line.lstrip().startswith("| `test_")]
    described = {name for cell in first_cells for name in re.findall(r"`(test_\w+\.py)`", cell)}
    modules = {path.name for path in (ROOT / "tests" / "e2e").glob("test_*.py")}
    assert described == modules, (sorted(modules - described), sorted(described - modules))
