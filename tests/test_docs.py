"""The documentation: the README is a front door, the site builds clean.

The README holds what a newcomer needs first (what it is, a picture, the
two set-up commands, the loop, a CLI quick reference, links); the manual
is the MkDocs site under ``docs/`` (``mkdocs.yml``), built here with
``--strict`` so that a broken link or anchor, a page missing from the
navigation or a docstring the API pages cannot read fails the tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"

MAIN_COMMAND = (
    'python3 -m venv .venv && .venv/bin/pip install -e ".[all]" && '
    ".venv/bin/thinseg predict --input_path "
    "src/napari_thinseg/data/seed/sandstone_2.png --output_path "
    "out/sandstone_2_labels.png --overwrite && .venv/bin/thinseg predict "
    "--input_path src/napari_thinseg/data/seed/sandstone_2.png "
    "--output_path out/sandstone_2_colored.png --colored --overwrite"
)
"""Install and run the main job: one line, as users copy it."""

TEST_COMMAND = (
    'python3 -m venv .venv && .venv/bin/pip install -e ".[testing]" && '
    ".venv/bin/pip install --no-deps keras-segmentation==0.3.0 && "
    "xvfb-run -a .venv/bin/python -m pytest"
)
"""Install and run the tests: ``.ci/run`` runs exactly this line."""


def code_blocks(markdown: str) -> list[str]:
    """The fenced code blocks of a Markdown text, without their fences."""
    return [
        m.group(1).strip("\n")
        for m in re.finditer(r"^```[^\n]*\n(.*?)^```", markdown, re.S | re.M)
    ]


def section(markdown: str, title: str) -> str:
    """The text under the ``## title`` heading, up to the next one."""
    m = re.search(
        rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", markdown, re.S | re.M
    )
    assert m, f"README has no section {title!r}"
    return m.group(1)


def test_readme_is_a_front_door():
    text = README.read_text()
    lines = text.splitlines()
    assert len(lines) <= 250, f"README has {len(lines)} lines (about 200)"
    for heading in (
        "## Set up",
        "## The loop in napari",
        "## Command line, quick reference",
        "## Documentation",
    ):
        assert heading in lines, heading
    assert "](docs/screenshot.png)" in text


def test_readme_holds_exactly_the_two_set_up_commands():
    text = README.read_text()
    assert code_blocks(section(text, "Set up")) == [MAIN_COMMAND, TEST_COMMAND]
    # no other copy of an install command to drift apart
    installs = [
        line for line in text.splitlines() if "python3 -m venv" in line
    ]
    assert installs == [MAIN_COMMAND, TEST_COMMAND]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    command = TEST_COMMAND.replace("pip install -e", "pip install -q -e")
    command = command.replace(
        "pip install --no-deps", "pip install -q --no-deps"
    )
    assert TEST_COMMAND in ci or command in ci


def test_readme_links_point_at_files_that_exist():
    text = README.read_text()
    targets = re.findall(r"\]\((?!https?://|#)([^)\s]+)\)", text)
    assert targets
    missing = [t for t in targets if not (ROOT / t.split("#")[0]).exists()]
    assert not missing, missing


def test_docs_build_strict_without_warnings(tmp_path):
    """``mkdocs build --strict`` gives the site and not one warning (7 s
    on 2 cores: the API pages read every module's docstrings, statically;
    not a slow test)."""
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(site),
        ],
        cwd=ROOT,  # the model cards' include is relative to the root
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    warnings = [line for line in log.splitlines() if "WARNING" in line]
    assert not warnings, log
    # the pages that are made, not written: model cards and API reference
    models = (site / "models" / "index.html").read_text()
    assert "thinseg_sandstone" in models
    api = (site / "api" / "autolabel" / "index.html").read_text()
    assert api.count('class="doc doc-heading"') >= 10
    # the README's set-up section on the site's front page
    home = (site / "index.html").read_text()
    assert 'id="set-up"' in home and "xvfb-run" in home
