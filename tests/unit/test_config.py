"""Config tree: the shipped default parses; every mistake names its field."""

import pytest

from serving.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, parse_config


def minimal(**overrides):
    data = {
        "models": {"smol": {"source": "builtin:smollm2-135m-instruct"}},
        "routes": [{"name": "base", "model": "smol"}],
    }
    data.update(overrides)
    return data


def test_default_config_parses():
    cfg = load_config(DEFAULT_CONFIG_PATH)
    assert cfg.server.port == 8000 and cfg.server.host == "127.0.0.1"
    assert cfg.route("base").model in cfg.models
    assert cfg.route("missing") is None


def test_load_config_none_means_default():
    assert load_config(None) == load_config(DEFAULT_CONFIG_PATH)


def test_unknown_key_names_the_field():
    data = minimal()
    data["models"]["smol"]["engine"] = {"max_model_length": 10}
    with pytest.raises(ConfigError, match=r"models\.smol\.engine\.max_model_length"):
        parse_config(data)


def test_wrong_type_names_the_field():
    data = minimal(server={"port": "eighty"})
    with pytest.raises(ConfigError, match=r"server\.port"):
        parse_config(data)


def test_route_to_unknown_model_names_route_and_field():
    data = minimal(routes=[{"name": "rag", "model": "nope"}])
    with pytest.raises(ConfigError, match=r"routes\.0\.model.*'rag'.*'nope'"):
        parse_config(data)


def test_duplicate_route_names_fail():
    data = minimal(routes=[{"name": "a", "model": "smol"}, {"name": "a", "model": "smol"}])
    with pytest.raises(ConfigError, match=r"routes\.1\.name.*duplicate"):
        parse_config(data)


def test_replicas_and_autoscaling_are_exclusive():
    data = minimal()
    data["models"]["smol"]["deployment"] = {
        "num_replicas": 2, "autoscaling_config": {"min_replicas": 1, "max_replicas": 3}}
    with pytest.raises(ConfigError, match=r"models\.smol\.deployment.*not both"):
        parse_config(data)


def test_autoscaling_config_is_checked_by_ray_serve():
    data = minimal()
    data["models"]["smol"]["deployment"] = {"autoscaling_config": {"min_replicas": -1}}
    with pytest.raises(ConfigError, match=r"models\.smol\.deployment"):
        parse_config(data)


def test_no_routes_is_an_error():
    with pytest.raises(ConfigError, match=r"routes"):
        parse_config(minimal(routes=[]))


def test_top_level_must_be_a_mapping():
    with pytest.raises(ConfigError, match="mapping"):
        parse_config(["not", "a", "mapping"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_engine_defaults_documented():
    from serving.config import EngineConfig

    for name, field in EngineConfig.model_fields.items():
        assert field.description, f"EngineConfig.{name} lacks a description"


def test_adapter_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"adapters\.base: the name is already a route"):
        parse_config(minimal(adapters={"base": {"source": "/a"}}))
    with pytest.raises(ConfigError, match=r"adapters\.fmt\.base_model: unknown model 'nope'"):
        parse_config(minimal(adapters={"fmt": {"source": "/a", "base_model": "nope"}}))
    two = minimal(adapters={"fmt": {"source": "/a"}})
    two["models"]["other"] = {"source": "org/other"}
    with pytest.raises(ConfigError, match=r"adapters\.fmt\.base_model: required"):
        parse_config(two)
    with pytest.raises(ConfigError, match=r"adapter_store\.allowed_schemes\.0"):
        parse_config(minimal(adapter_store={"allowed_schemes": ["ftp"]}))


def test_local_adapter_paths_are_relative_to_the_config_file(tmp_path):
    import yaml

    path = tmp_path / "conf" / "lorag.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(minimal(
        adapter_store={"local_roots": ["../adapters", "/abs/root"]},
        adapters={"fmt": {"source": "../adapters/fmt"}, "hub": {"source": "hf://org/x"}})))
    cfg = load_config(path)
    assert cfg.adapter_store.local_roots == [str(tmp_path / "adapters"), "/abs/root"]
    assert cfg.adapters["fmt"].source == str(tmp_path / "adapters" / "fmt")
    assert cfg.adapters["hub"].source == "hf://org/x"
    assert cfg.adapter_base("fmt", None) == "smol"


def test_the_retrieval_writer_is_one_replica():
    for writer in ({"num_replicas": 2}, {"autoscaling_config": {"min_replicas": 1,
                                                                 "max_replicas": 2}}):
        data = minimal(retrieval={"storage": "replicated", "writer": writer})
        with pytest.raises(ConfigError, match=r"retrieval.*exactly one replica"):
            parse_config(data)


def test_replicated_storage_binds_a_writer_and_copies_with_their_placement():
    """The app of `storage: replicated`: a RetrieverWriter (pinned where the config says)
    that the Retriever's replicas are bound to, spread by max_replicas_per_node."""
    from ray.serve._private.build_app import build_app
    from ray.serve.deployment import deployment_to_schema

    from serving.app import build_from_config

    data = minimal(retrieval={
        "storage": "replicated",
        "deployment": {"num_replicas": 3, "num_cpus": 0.1, "max_replicas_per_node": 1},
        "writer": {"resources": {"disk_node": 0.5}}})
    built = {d.name: d for d in build_app(build_from_config(parse_config(data)),
                                          name="t").deployments}
    writer, copies = built["RetrieverWriter"], built["Retriever"]
    assert writer.num_replicas == 1
    assert writer.ray_actor_options["resources"] == {"disk_node": 0.5}
    assert copies.num_replicas == 3
    assert deployment_to_schema(copies).max_replicas_per_node == 1
    assert "RetrieverWriter" not in {d.name for d in build_app(
        build_from_config(parse_config(minimal())), name="t").deployments}
