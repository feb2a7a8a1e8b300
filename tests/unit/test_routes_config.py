"""Routes in the config: composition, scaling, and errors that name the route and field."""

import pytest

from serving.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, parse_config

SMOL = {"source": "builtin:smollm2-135m-instruct"}


def config(routes, **extra):
    data = {"models": {"smol": dict(SMOL)},
            "indexes": {"kb": {"type": "flat"}},
            "adapters": {"fmt": {"source": "/adapters/fmt"}},
            "routes": routes}
    data.update(extra)
    return data


def test_default_config_ships_the_four_routes():
    cfg = load_config(DEFAULT_CONFIG_PATH)
    routes = {r.name: r for r in cfg.routes}
    assert set(routes) == {"base", "rag", "tuned", "hybrid"}
    assert routes["base"].adapter is None and routes["base"].retrieval is None
    assert routes["rag"].adapter is None and routes["rag"].retrieval.index == "helix"
    assert routes["tuned"].adapter == "json-format" and routes["tuned"].retrieval is None
    assert routes["hybrid"].adapter == "context-json"
    assert routes["hybrid"].retrieval.index == "helix"
    docs = cfg.indexes["helix"].documents
    assert docs and docs.endswith("evaluation/samples/helix/docs")  # anchored to the file


@pytest.mark.parametrize("route, pattern", [
    ({"name": "r", "model": "smol", "retrieval": {"index": "nope"}},
     r"routes\.0\.retrieval\.index: route 'r' names unknown index 'nope' \(known: kb\)"),
    ({"name": "r", "model": "smol", "adapter": "nope"},
     r"routes\.0\.adapter: route 'r' names unknown adapter 'nope' \(known: fmt\)"),
    ({"name": "r", "model": "big"}, r"routes\.0\.model: route 'r' names unknown model 'big'"),
    ({"name": "r", "model": "smol", "retrieval": {"index": "kb", "max_context_tokens": 4096}},
     r"routes\.0\.retrieval\.max_context_tokens: route 'r'.*max_model_len 2048"),
    ({"name": "r", "model": "smol", "retrieval": {"index": "kb", "top_k": 0}},
     r"routes\.0\.retrieval\.top_k"),
    ({"name": "r", "model": "smol", "template": {"context": "{question} {docs}"}},
     r"routes\.0\.template: .*context: unknown placeholder\(s\) \['docs'\]"),
    ({"name": "r", "model": "smol", "template": {"context": "only {question}"}},
     r"routes\.0\.template: .*must contain \{sources\}"),
    ({"name": "r", "model": "smol", "sampling": {"temperature": 5}},
     r"routes\.0\.sampling\.temperature"),
    ({"name": "r", "model": "smol", "sampling": {"best_of": 2}},
     r"routes\.0\.sampling\.best_of"),
    ({"name": "r", "model": "smol", "deployment": {"num_replicas": 2,
                                                   "autoscaling_config": {"max_replicas": 3}}},
     r"routes\.0\.deployment.*not both"),
])
def test_route_errors_name_route_and_field(route, pattern):
    with pytest.raises(ConfigError, match=pattern):
        parse_config(config([route]))


def test_duplicate_route_name_names_the_field():
    routes = [{"name": "a", "model": "smol"}, {"name": "a", "model": "smol",
                                                "adapter": "fmt"}]
    with pytest.raises(ConfigError, match=r"routes\.1\.name: duplicate route name 'a'"):
        parse_config(config(routes))


def test_adapter_for_another_model_is_an_error():
    data = config([{"name": "r", "model": "smol", "adapter": "fmt"}])
    data["models"]["big"] = dict(SMOL)
    data["adapters"]["fmt"]["base_model"] = "big"
    with pytest.raises(ConfigError, match=r"routes\.0\.adapter: route 'r' runs model 'smol' "
                                          r"but adapter 'fmt' is for 'big'"):
        parse_config(data)


def test_duplicate_yaml_keys_are_rejected(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("models:\n  smol: {source: a}\n  smol: {source: b}\n"
                    "routes: [{name: base, model: smol}]\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'smol' \(line 3\)"):
        load_config(path)


def test_route_with_own_deployment_gets_its_own_llm_deployment():
    cfg = parse_config(config([
        {"name": "base", "model": "smol"},
        {"name": "rag", "model": "smol", "retrieval": {"index": "kb"}},
        {"name": "busy", "model": "smol", "adapter": "fmt",
         "deployment": {"autoscaling_config": {"min_replicas": 1, "max_replicas": 4}}},
    ]))
    deps = cfg.llm_deployments()
    assert set(deps) == {"smol", "smol:busy"}
    assert deps["smol"][2] == ["base", "rag"]
    model, scaling, served = deps["smol:busy"]
    assert model == "smol" and served == ["busy"]
    assert scaling.autoscaling_config["max_replicas"] == 4
    assert cfg.llm_key(cfg.route("busy")) == "smol:busy"
    assert cfg.llm_key(cfg.route("rag")) == "smol"


def test_sampling_defaults_fill_only_unset_parameters():
    cfg = parse_config(config([{"name": "r", "model": "smol",
                                "sampling": {"temperature": 0, "max_tokens": 64}}]))
    sampling = cfg.route("r").sampling
    assert sampling.apply({"model": "r"}) == {"model": "r", "temperature": 0, "max_tokens": 64}
    assert sampling.apply({"temperature": 0.7})["temperature"] == 0.7
    assert sampling.apply({"temperature": None})["temperature"] == 0  # null = unset
    # max_completion_tokens is the chat name of max_tokens: the default must not add both.
    assert "max_tokens" not in sampling.apply({"max_completion_tokens": 5})


def test_index_documents_are_relative_to_the_config_file(tmp_path):
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "c.yaml"
    path.write_text("models: {smol: {source: a}}\nindexes: {kb: {documents: ../docs}}\n"
                    "routes: [{name: rag, model: smol, retrieval: {index: kb}}]\n")
    cfg = load_config(path)
    assert cfg.indexes["kb"].documents == str(tmp_path / "docs")
    assert "documents" not in cfg.indexes["kb"].spec().model_dump()
