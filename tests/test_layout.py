"""The package's shape: stages import only what they may, and importing does no heavy work."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "facetalk"
COMPOSERS = ("facetalk.pipeline", "facetalk.api", "facetalk.cli")

# stage -> facetalk modules it must never import (prefix match on dotted names)
FORBIDDEN = {
    "render": ("facetalk.audio", "facetalk.media") + COMPOSERS,
    "audio": ("facetalk.render", "facetalk.face", "facetalk.motion") + COMPOSERS,
    "motion": ("facetalk.render", "facetalk.media") + COMPOSERS,
    "face": ("facetalk.render", "facetalk.audio") + COMPOSERS,
    # marks any frames from anywhere (files, the live stream): knows nothing of how they were made
    "safety": ("facetalk.render", "facetalk.audio", "facetalk.motion", "facetalk.face", "facetalk.stream")
    + COMPOSERS,
}
# media is the bottom layer: it may use only itself and the shared error type
MEDIA_ALLOWED = ("facetalk.media", "facetalk.errors")


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(path: Path) -> str:
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def facetalk_imports(path: Path, source: str | None = None) -> set[str]:
    """Every facetalk module named by an import anywhere in the file (also inside functions).

    `source` stands in for the file's text (the file need not exist then).
    """
    text = path.read_text(encoding="utf-8") if source is None else source
    tree = ast.parse(text, filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the file's package
                base = _package_of(path).split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from facetalk import audio` imports the submodule facetalk.audio
            names = [mod] + [f"{mod}.{alias.name}" for alias in node.names] if mod == "facetalk" else [mod]
        else:
            continue
        found.update(n for n in names if n == "facetalk" or n.startswith("facetalk."))
    return found


def _modules(stage: str) -> list[Path]:
    return sorted((PACKAGE / stage).rglob("*.py"))


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_parser_sees_imports() -> None:
    """The checker itself must catch absolute, relative, aliased and function-level imports."""
    fake = PACKAGE / "render" / "probe.py"  # never written: only its place in the package matters
    src = (
        "import facetalk.audio.features as f\n"
        "from ..face import rig\n"
        "from . import mouth\n"
        "from facetalk import media\n"
        "def g():\n    from facetalk.pipeline import frames\n"
    )
    names = facetalk_imports(fake, src)
    assert {"facetalk.audio.features", "facetalk.face", "facetalk.render", "facetalk.media",
            "facetalk.pipeline"} <= names


@pytest.mark.parametrize("stage", sorted(FORBIDDEN))
def test_stage_imports_only_what_it_may(stage: str) -> None:
    files = _modules(stage)
    assert files, f"facetalk/{stage}/ has no modules"
    bad = []
    for path in files:
        for name in facetalk_imports(path):
            for prefix in FORBIDDEN[stage]:
                if _matches(name, prefix):
                    bad.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert not bad, "\n".join(bad)


def test_media_imports_no_other_stage() -> None:
    files = _modules("media")
    if not files:
        pytest.skip("facetalk/media/ not written yet")
    bad = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in files
        for name in facetalk_imports(path)
        if name != "facetalk" and not any(_matches(name, ok) for ok in MEDIA_ALLOWED)
    ]
    assert not bad, "\n".join(bad)


def test_every_module_parses() -> None:
    for path in PACKAGE.rglob("*.py"):
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported_after(code: str) -> set[str]:
    script = (
        "import json, sys\n"
        f"{code}\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         cwd=PACKAGE.parent)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


HEAVY = ("mediapipe", "numba", "av", "cv2", "scipy", "tqdm", "matplotlib")


def test_cli_import_is_light() -> None:
    """`facetalk --help` must start instantly: the CLI module pulls in no heavy library."""
    mods = _imported_after("import facetalk.cli")
    loaded = sorted(h for h in HEAVY if h in mods)
    assert not loaded, f"importing facetalk.cli loaded {loaded}"


def test_no_module_loads_mediapipe_at_import() -> None:
    """Importing every module of the package must not start MediaPipe (it loads only on use)."""
    code = (
        "import importlib, pkgutil, facetalk\n"
        "for m in pkgutil.walk_packages(facetalk.__path__, 'facetalk.'):\n"
        "    importlib.import_module(m.name)\n"
    )
    mods = _imported_after(code)
    assert "facetalk.face.rig" in mods and "facetalk.pipeline" in mods  # the walk did import them
    assert "mediapipe" not in mods


def test_cli_help_runs_without_heavy_imports() -> None:
    script = (
        "import sys, json\n"
        "from facetalk.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    code = e.code\n"
        "print(json.dumps([code, sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{list(HEAVY)!r})]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    code, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert code == 0
    assert "generate" in out.stdout and "demo" in out.stdout
    assert heavy == []
