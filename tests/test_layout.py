"""The import contract: the package's layout, checked on every run.

The import graph is built from the source (every ``import`` statement:
those inside functions, since they run just as well, and those under
``if TYPE_CHECKING:``, which never run but still tie two modules) and
checked:

- no import cycles at all;
- the pipeline never imports its shells (``cli``, ``_napari``,
  ``__main__``);
- ``errors``, ``progress``, ``prefetch`` and ``_version`` import nothing of
  the package, ``imaging`` only ``errors``, ``schemes`` only those and
  ``imaging``;
- nothing outside ``_napari`` imports napari or Qt, and nothing imports
  TensorFlow or Keras at module level (opening napari stays fast).

The same checks run on small packages made here with a cycle or a wrong
import in them, to show that they fail.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SRC = ROOT / "src"
PACKAGE = "napari_thinseg"

SHELLS = ("cli", "_napari", "__main__")
FOUNDATION = {
    "_version": set(),
    "errors": set(),
    "progress": set(),
    "prefetch": set(),
    "imaging": {"errors"},
    "schemes": {"errors", "imaging"},
}
GUI_MODULES = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6")
GUI_MODULES += ("superqt", "magicgui", "vispy")
LAZY_MODULES = ("tensorflow", "keras", "tf_keras")


# -- the graph ---------------------------------------------------------------
def module_files(src: Path, package: str) -> dict[str, Path]:
    """``{dotted module name: file}`` of every module of ``package``; a
    package is named by its ``__init__``."""
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST):
    """Every import node, with whether it runs at module level (``try`` /
    ``if`` blocks included; function bodies and ``if TYPE_CHECKING:``
    blocks, which never run on import, not)."""

    def walk(node, top):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                # never run, but still a dependency of the layout
                for inner in child.body:
                    yield from walk(ast.Module([inner], []), False)
                for other in child.orelse:
                    yield from walk(ast.Module([other], []), top)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, top
            inner = top and not isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            )
            yield from walk(child, inner)

    yield from walk(tree, True)


def imported_names(name: str, path: Path, modules) -> list[tuple[str, bool]]:
    """``(absolute module, at module level)`` for each import in a file;
    ``from pkg import sub`` counts as importing ``pkg.sub`` when that is a
    module."""
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node, top in _imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, top) for alias in node.names]
            continue
        if node.level:
            base = here.split(".")
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        for alias in node.names:
            sub = f"{target}.{alias.name}"
            out.append((sub if sub in modules else target, top))
    return out


def import_graph(src: Path = SRC, package: str = PACKAGE):
    """``(graph, third_party)``: ``graph[module]`` is the set of the
    package's modules it imports; ``third_party[module]`` the other
    top-level modules, each with whether it is imported at module level."""
    modules = module_files(src, package)
    graph: dict[str, set[str]] = {}
    third_party: dict[str, dict[str, bool]] = {}
    for name, path in modules.items():
        graph[name] = set()
        third_party[name] = {}
        for target, top in imported_names(name, path, modules):
            if target == package or target.startswith(package + "."):
                # a name from a package module means that module
                while target not in modules:
                    target = target.rpartition(".")[0]
                if target != name:
                    graph[name].add(target)
            else:
                first = target.split(".")[0]
                seen = third_party[name].get(first, False)
                third_party[name][first] = seen or top
    return graph, third_party


# -- the contract -------------------------------------------------------------
def _area(module: str, package: str) -> str:
    """The first name under the package: ``imaging`` for
    ``napari_thinseg.imaging.files``."""
    rest = module[len(package) + 1 :]
    return rest.split(".")[0] if rest else ""


def find_cycle(graph) -> list[str] | None:
    """One import cycle (``[a, b, ..., a]``), or None."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def contract_breaches(graph, third_party, package: str = PACKAGE):
    """Every broken rule of the contract, one line each."""
    problems = []
    cycle = find_cycle(graph)
    if cycle is not None:
        problems.append("import cycle: " + " -> ".join(cycle))
    for module, targets in sorted(graph.items()):
        area = _area(module, package)
        for target in sorted(targets):
            to = _area(target, package)
            if area not in SHELLS and module != package and to in SHELLS:
                problems.append(f"{module} (pipeline) imports {target}")
            if (
                area in FOUNDATION
                and to != area
                and to not in (FOUNDATION[area])
            ):
                problems.append(
                    f"{module} (foundation) imports {target}; "
                    f"{area} may import only {sorted(FOUNDATION[area])}"
                )
        for name, top in sorted(third_party[module].items()):
            if name in GUI_MODULES and area != "_napari":
                problems.append(f"{module} imports {name} outside _napari")
            if name in LAZY_MODULES and top:
                problems.append(
                    f"{module} imports {name} at module level (import it "
                    "inside the function that needs it)"
                )
    return problems


def test_the_package_keeps_its_import_contract():
    graph, third_party = import_graph()
    assert len(graph) > 40  # the whole package was read
    assert contract_breaches(graph, third_party) == []


def test_function_level_imports_are_in_the_graph():
    graph, _ = import_graph()
    # cli.autolabel imports the pipeline only inside its command functions
    assert f"{PACKAGE}.autolabel.rule" in graph[f"{PACKAGE}.cli.autolabel"]
    # `from ..model import checkpoints` is an edge to the module
    assert f"{PACKAGE}.model.checkpoints" in graph[f"{PACKAGE}.training.loop"]


MAX_LINES = 560
"""No module longer than this (about 500 lines, a screenful of topics)."""


JOBS = ("imaging", "autolabel", "dataset", "model", "training")
JOBS += ("inference", "strokes", "measure", "rocktype", "cli", "_napari")
"""One folder a job, in pipeline order; the shells last."""
TOP_MODULES = {"__init__", "__main__", "_version", "errors", "progress"}
TOP_MODULES |= {"prefetch", "schemes", "colorize"}
"""The foundation: the only modules beside the jobs' folders."""


def test_the_layout_shows_the_jobs():
    top = SRC / PACKAGE
    folders = {p.name for p in top.iterdir() if (p / "__init__.py").exists()}
    assert set(JOBS) <= folders and folders - set(JOBS) == set()
    assert {p.stem for p in top.glob("*.py")} == TOP_MODULES
    lines = {
        p.relative_to(SRC / PACKAGE).as_posix(): len(
            p.read_text().splitlines()
        )
        for p in module_files(SRC, PACKAGE).values()
    }
    assert {name: n for name, n in lines.items() if n > MAX_LINES} == {}


# -- the checks fail when they should ---------------------------------------
def _make_package(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_a_cycle_through_a_function_level_import_fails(tmp_path):
    src = _make_package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from .b import g\n\ndef f():\n    return g()\n",
            "b.py": "def g():\n    from . import a\n\n    return a\n",
            "c.py": "from . import a\n",
        },
    )
    graph, third_party = import_graph(src, "pkg")
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.a"}
    cycle = find_cycle(graph)
    assert cycle is not None and set(cycle) == {"pkg.a", "pkg.b"}
    breaches = contract_breaches(graph, third_party, "pkg")
    assert len(breaches) == 1 and breaches[0].startswith("import cycle: ")


def test_type_checking_imports_count_in_the_layout(tmp_path):
    """A type-only import never runs, but it still ties the two modules:
    a cycle through one is a cycle, yet not a module-level import."""
    src = _make_package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from .b import g\n",
            "b.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
            "    import tensorflow\n\n    from .a import f\n",
        },
    )
    graph, third_party = import_graph(src, "pkg")
    assert set(find_cycle(graph)) == {"pkg.a", "pkg.b"}
    assert third_party["pkg.b"] == {"typing": True, "tensorflow": False}


@pytest.mark.parametrize(
    "files, words",
    [
        (
            {"train.py": "def f():\n    from .cli import main\n"},
            "pkg.train (pipeline) imports pkg.cli",
        ),
        (
            {"imaging/files.py": "from ..schemes import SEED\n"},
            "pkg.imaging.files (foundation) imports pkg.schemes",
        ),
        (
            {"errors.py": "from . import progress\n"},
            "pkg.errors (foundation) imports pkg.progress",
        ),
        (
            {"measure/grains.py": "from qtpy.QtWidgets import QLabel\n"},
            "pkg.measure.grains imports qtpy outside _napari",
        ),
        (
            {"predict.py": "import tensorflow as tf\n"},
            "pkg.predict imports tensorflow at module level",
        ),
    ],
)
def test_a_wrong_import_is_named(tmp_path, files, words):
    base = {
        "__init__.py": "",
        "cli/__init__.py": "",
        "errors.py": "",
        "progress.py": "",
        "schemes.py": "from .errors import E\n",
        "imaging/__init__.py": "",
        "measure/__init__.py": "",
        "_napari/__init__.py": "import napari\n",
    }
    src = _make_package(tmp_path, {**base, **files})
    graph, third_party = import_graph(src, "pkg")
    breaches = contract_breaches(graph, third_party, "pkg")
    assert len(breaches) == 1 and breaches[0].startswith(words)


def test_lazy_imports_inside_functions_are_allowed(tmp_path):
    src = _make_package(
        tmp_path,
        {
            "__init__.py": "",
            "predict.py": "def f():\n    import tensorflow as tf\n\n"
            "    return tf\n",
        },
    )
    graph, third_party = import_graph(src, "pkg")
    assert contract_breaches(graph, third_party, "pkg") == []


def test_the_readme_api_paths_import():
    """What the documentation's Python examples import (the README and the
    pages under docs/: the Python API page, training on several machines)
    still imports, and the old paths the README documented are the same
    objects."""
    from napari_thinseg import SEED, autolabel  # noqa: F401
    from napari_thinseg.colorize import colorize, match_colors  # noqa: F401
    from napari_thinseg.colorize import colorize as old_colorize
    from napari_thinseg.dataset.folders import Pair, export_dataset  # noqa: F401
    from napari_thinseg.dataset.synth import synthetic_sandstone  # noqa: F401
    from napari_thinseg.inference.predict import evaluate, predict_image  # noqa: F401
    from napari_thinseg.model.checkpoints import (  # noqa: F401
        default_model_prefix,
        load_model,
    )
    from napari_thinseg.model.checkpoints import load_model as old_load
    from napari_thinseg.progress import run  # noqa: F401
    from napari_thinseg.training.loop import TrainSettings, train  # noqa: F401

    assert old_load is load_model and old_colorize is colorize
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    lines = [
        line
        for page in pages
        for line in page.read_text().splitlines()
        if line.startswith("from napari_thinseg")
    ]
    assert len(lines) >= 10  # the examples are there to be checked
    for line in lines:
        exec(line, {})  # every documented import line runs


def test_the_slow_modules_exist():
    # a renamed module would silently leave the quick run
    from conftest import SLOW_MODULES

    missing = {m for m in SLOW_MODULES if not (ROOT / "tests" / m).is_file()}
    assert missing == set()
