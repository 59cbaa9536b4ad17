"""The native loader reports failures as (False, reason) instead of raising, and hashes sources into the cache key."""

from __future__ import annotations

import pytest
import torch

from ngp_app.native import loader


@pytest.fixture
def fresh_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "_state", {})


def test_missing_sources_reported(fresh_state: None, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(loader, "KERNELS_DIR", tmp_path / "nowhere")
    ok, why = loader.available(torch.device("cpu"))
    assert not ok and "kernel sources not found" in why
    ok2, why2 = loader.available(torch.device("cpu"))  # the failure is remembered, not retried
    assert (ok2, why2) == (ok, why)


def test_compile_error_reported(fresh_state: None, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    kernels = tmp_path / "kernels"
    (kernels / "cpu").mkdir(parents=True)
    (kernels / "include").mkdir()
    (kernels / "bindings.cpp").write_text("this is not C++\n")
    monkeypatch.setattr(loader, "KERNELS_DIR", kernels)
    monkeypatch.setenv("NGP_NATIVE_CACHE", str(tmp_path / "cache"))
    ok, why = loader.available(torch.device("cpu"))
    assert not ok and why.startswith("native build failed")


def test_unsupported_device() -> None:
    ok, why = loader.available(torch.device("meta"))
    assert not ok and "meta" in why


def test_source_hash_changes_with_sources(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    kernels = tmp_path / "kernels"
    (kernels / "cpu").mkdir(parents=True)
    (kernels / "include" / "ngp").mkdir(parents=True)
    (kernels / "bindings.cpp").write_text("// a\n")
    (kernels / "include" / "ngp" / "x.h").write_text("// h\n")
    monkeypatch.setattr(loader, "KERNELS_DIR", kernels)
    h1 = loader.source_hash(False)
    (kernels / "include" / "ngp" / "x.h").write_text("// h2\n")
    assert loader.source_hash(False) != h1


def test_cuda_needs_cuda_build() -> None:
    if torch.cuda.is_available():
        pytest.skip("only meaningful without CUDA")
    ok, why = loader.available(torch.device("cuda"))
    assert not ok and why
