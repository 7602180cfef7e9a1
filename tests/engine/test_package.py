"""The engine package stands alone: no import of the memory package, public names behind two ``__init__``s.

The 1.0 previews' aliases ``strands_s3_vectors_memory.local`` / ``.server`` are gone.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import s3vectors_engine
import s3vectors_engine.server

ENGINE_DIR = Path(s3vectors_engine.__file__).parent
SRC_DIR = ENGINE_DIR.parent


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC_DIR), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_no_module_of_the_engine_imports_the_memory_package() -> None:
    for path in sorted(ENGINE_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else []
            else:
                continue
            assert not any(n.split(".")[0] == "strands_s3_vectors_memory" for n in names), (path, names)


def test_engine_and_server_work_with_the_memory_package_unimportable(tmp_path: Path) -> None:
    code = f"""
import sys
sys.modules["strands_s3_vectors_memory"] = None  # any import of it now fails
import s3vectors_engine
assert "starlette" not in sys.modules and "uvicorn" not in sys.modules, "the engine alone loads no web stack"
client = s3vectors_engine.LocalS3VectorsClient({str(tmp_path / "engine")!r})
client.create_vector_bucket(vectorBucketName="bucket-one")
assert [b["vectorBucketName"] for b in client.list_vector_buckets()["vectorBuckets"]] == ["bucket-one"]
client.close()
from s3vectors_engine.server import AccessPolicy, LocalEndpoint, create_app, serve
assert s3vectors_engine.LocalEndpoint is LocalEndpoint
with LocalEndpoint({str(tmp_path / "served")!r}) as endpoint:
    assert endpoint.url.startswith("http://127.0.0.1:")
assert not any(name.startswith("strands_s3_vectors_memory.") for name in sys.modules)
print("ok")
"""
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_every_module_but_the_two_package_inits_is_private() -> None:
    modules = [p.relative_to(ENGINE_DIR).as_posix() for p in ENGINE_DIR.rglob("*.py")]
    public = [m for m in modules if m.split("/")[-1] != "__init__.py" and not m.split("/")[-1].startswith("_")]
    assert public == []
    assert sorted(m for m in modules if m.endswith("__init__.py")) == ["__init__.py", "server/__init__.py"]
    assert (ENGINE_DIR / "py.typed").is_file()


@pytest.mark.parametrize("package", [s3vectors_engine, s3vectors_engine.server])
def test_the_public_names_are_each_package_all(package: object) -> None:
    public = package.__all__  # type: ignore[attr-defined]
    assert public
    for name in public:
        assert getattr(package, name) is not None


def test_the_top_level_server_names_are_the_server_package_s() -> None:
    for name in s3vectors_engine.server.__all__:
        assert getattr(s3vectors_engine, name) is getattr(s3vectors_engine.server, name)
        assert name in s3vectors_engine.__all__
        assert name in dir(s3vectors_engine)
    with pytest.raises(AttributeError):
        _ = s3vectors_engine.no_such_name  # type: ignore[attr-defined]


@pytest.mark.parametrize("alias", ["strands_s3_vectors_memory.local", "strands_s3_vectors_memory.server"])
def test_the_engine_aliases_of_the_previews_are_gone(alias: str) -> None:
    """The engine is imported from ``s3vectors_engine`` only (the 1.0 previews' aliases were removed)."""
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(alias)
