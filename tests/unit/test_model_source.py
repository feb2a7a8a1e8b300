"""Model sources: builtins resolve to a prepared folder; anything else passes through."""

import pytest

from serving.model_source import builtin_path, prepare_builtin, resolve_model_source


def test_hub_ids_and_paths_pass_through():
    assert resolve_model_source("HuggingFaceTB/SmolLM2-135M-Instruct") == (
        "HuggingFaceTB/SmolLM2-135M-Instruct")
    assert resolve_model_source("/models/mine") == "/models/mine"


def test_unknown_builtin_is_rejected():
    with pytest.raises(ValueError, match="unknown builtin"):
        resolve_model_source("builtin:gpt-17")


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LORAG_CACHE_DIR", str(tmp_path))
    assert builtin_path("x") == tmp_path / "models" / "x"


def test_prepared_folder_is_reused(monkeypatch, tmp_path):
    monkeypatch.setenv("LORAG_CACHE_DIR", str(tmp_path))
    target = builtin_path("smollm2-135m-instruct")
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    assert prepare_builtin("smollm2-135m-instruct") == target
