"""Retrieval-prompt defaults by model family: a route gets its model family's template for
the fields it does not set; plain routes and explicit fields are never changed."""

import pytest

from serving.config import ConfigError, parse_config
from serving.route_settings import PROMPT_FAMILIES, PromptTemplate, family_template


def config(source: str, template: dict | None = None, family: str | None = None) -> dict:
    model = {"source": source, **({"prompt_family": family} if family else {})}
    rag = {"name": "rag", "model": "m", "retrieval": {"index": "docs"}}
    if template is not None:
        rag["template"] = template
    return {"models": {"m": model}, "indexes": {"docs": {}},
            "routes": [{"name": "base", "model": "m"}, rag]}


def test_builtin_qwen_routes_get_the_qwen_retrieval_prompt():
    cfg = parse_config(config("builtin:qwen2.5-coder-0.5b-instruct"))
    qwen = PROMPT_FAMILIES["qwen2.5"]
    rag = cfg.routes[1].template
    assert rag.context == qwen["context"] and rag.source == qwen["source"]
    assert cfg.routes[0].template == PromptTemplate()  # plain route: untouched


def test_other_models_keep_the_default_prompt():
    for source in ("builtin:smollm2-135m-instruct", "Qwen/Qwen2.5-7B-Instruct", "/models/x"):
        assert parse_config(config(source)).routes[1].template == PromptTemplate()


def test_family_can_be_named_for_any_model_and_fields_set_by_the_route_win():
    own = "Q: {question}\n{sources}"
    cfg = parse_config(config("/models/qwen-finetune", {"context": own}, family="qwen2.5"))
    rag = cfg.routes[1].template
    assert rag.context == own and rag.source == PROMPT_FAMILIES["qwen2.5"]["source"]


def test_unknown_family_is_a_config_error_naming_the_field():
    with pytest.raises(ConfigError, match=r"models.m.prompt_family: unknown family 'gpt'"):
        parse_config(config("/models/x", family="gpt"))


def test_family_template_leaves_explicit_fields():
    t = PromptTemplate(no_context_answer="none")
    out = family_template(t, "qwen2.5")
    assert out.no_context_answer == "none"
    assert family_template(PromptTemplate(), "default") == PromptTemplate()
