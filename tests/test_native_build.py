"""The native build can't hang: a stale torch build lock is removed, a slow build falls back to torch, an
interrupted build leaves nothing behind, and two processes building at once end with the same library.

A one-function C++ file stands in for the kernels (it compiles in a second or two), in a fresh NGP_NATIVE_CACHE.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ngp_app.locks import FileLock
from ngp_app.native import loader

ROOT = Path(__file__).resolve().parent.parent
FAKE_SOURCE = "int ngp_fake_answer() { return 42; }\n"
CHILD = r"""
import json, logging, sys, time
logging.basicConfig(level=logging.INFO, format="%(message)s")
from pathlib import Path
import torch
from ngp_app.native import loader
loader.KERNELS_DIR = Path(sys.argv[1])
build_dir = loader.cache_root() / f"native-{loader.source_hash(False)}"
if sys.argv[2] == "stale":  # what an interrupted torch build leaves: its lock file, nobody holding it
    build_dir.mkdir(parents=True)
    (build_dir / "lock").write_text("")
t = time.time()
ok, why = loader.available(torch.device("cpu"))
print(json.dumps({"ok": ok, "why": why, "seconds": time.time() - t, "dir": str(build_dir)}))
"""


@pytest.fixture
def fake_kernels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    kernels = tmp_path / "kernels"
    (kernels / "cpu").mkdir(parents=True)
    (kernels / "include").mkdir()
    (kernels / "bindings.cpp").write_text(FAKE_SOURCE)
    monkeypatch.setattr(loader, "KERNELS_DIR", kernels)
    monkeypatch.setattr(loader, "_state", {})
    monkeypatch.setenv("NGP_NATIVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NGP_NATIVE_NO_CUDA", "1")
    return kernels


def build_dir() -> Path:
    return loader.cache_root() / f"native-{loader.source_hash(False)}"


def start_child(kernels: Path, mode: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(kernels), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(proc: subprocess.Popen) -> tuple[dict, str]:
    try:
        out, err = proc.communicate(timeout=300)  # a hang fails here instead of blocking the suite
    finally:
        proc.kill()
    return json.loads(out.strip().splitlines()[-1]), err


def test_stale_build_lock_is_removed_not_waited_on(fake_kernels: Path) -> None:
    result, err = finish(start_child(fake_kernels, "stale"))
    assert result["ok"], (result, err)
    assert err.count("removed a stale native build lock") == 1 and str(Path(result["dir"]) / "lock") in err
    assert not (Path(result["dir"]) / "lock").exists()


def test_two_processes_building_at_once_share_one_build(fake_kernels: Path) -> None:
    procs = [start_child(fake_kernels, "fresh") for _ in range(2)]
    results = [finish(p) for p in procs]
    assert all(r["ok"] for r, _ in results), results
    assert len({r["dir"] for r, _ in results}) == 1
    assert sum(err.count("building the native kernels") for _, err in results) == 1  # one built, one waited
    names = sorted(p.name for p in Path(results[0][0]["dir"]).iterdir())
    assert "ngp-build-ok.json" in names and "lock" not in names and "ngp-build.lock" not in names


def test_slow_build_falls_back_and_the_next_run_continues(fake_kernels: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NGP_NATIVE_BUILD_TIMEOUT", "0.05")
    ok, why = loader.available(torch.device("cpu"))
    assert not ok and "took longer than 0.05 s" in why and "NGP_NATIVE_BUILD_TIMEOUT" in why
    d = build_dir()
    assert not (d / "lock").exists() and not (d / "ngp-build.lock").exists() and not loader._processes_in(d)
    from ngp_app.backends import resolve_backend

    assert resolve_backend("auto", torch.device("cpu")) == "torch"  # the fallback, said in one log line
    monkeypatch.setattr(loader, "_state", {})
    monkeypatch.setenv("NGP_NATIVE_BUILD_TIMEOUT", "300")
    assert loader.available(torch.device("cpu")) == (True, "")


def test_waiting_on_another_builder_is_bounded(fake_kernels: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NGP_NATIVE_BUILD_TIMEOUT", "0.5")
    d = build_dir()
    d.mkdir(parents=True)
    with FileLock(d / "ngp-build.lock"):  # another builder (this process, through another handle) holds it
        ok, why = loader.available(torch.device("cpu"))
    assert not ok and f"pid {os.getpid()} on host" in why and "for over 0.5 s" in why


def test_interrupted_build_kills_the_compilers_and_leaves_no_lock(
    fake_kernels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    children: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    class Interrupting(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, *a: object, **k: object) -> None:
            super().__init__(*a, **k)
            children.append(self)

        def wait(self, timeout: float | None = None) -> int:
            if timeout is not None:  # the loader's wait: Ctrl-C arrives
                raise KeyboardInterrupt
            return super().wait()

    monkeypatch.setattr(loader.subprocess, "Popen", Interrupting)
    with pytest.raises(KeyboardInterrupt):
        loader.available(torch.device("cpu"))
    assert children and children[0].returncode is not None  # killed and reaped
    d = build_dir()
    assert not (d / "lock").exists() and not (d / "ngp-build.lock").exists()


def test_bad_timeout_setting_uses_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NGP_NATIVE_BUILD_TIMEOUT", "soon")
    assert loader.build_timeout() == loader.DEFAULT_BUILD_TIMEOUT
    monkeypatch.setenv("NGP_NATIVE_BUILD_TIMEOUT", "12.5")
    assert loader.build_timeout() == 12.5
