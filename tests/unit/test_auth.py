"""API keys, scopes, rate limits, route caps and the errors they raise (serving.auth)."""

import json

import pytest
from starlette.datastructures import Headers

from serving.access import RateLimiter, raise_rate_limited
from serving.auth import (
    AuthConfig,
    KeyStore,
    authorize,
    hash_key,
    new_key,
    required_scope,
)
from serving.cli import check_auth
from serving.config import ConfigError, parse_config
from serving.errors import (
    AuthenticationError,
    PermissionDeniedError,
    RateLimitError,
    from_internal_error,
)

USER, ADMIN = "sk-lorag-user-0123456789abcdef", "sk-lorag-admin-0123456789abcdef"


def store(**auth) -> KeyStore:
    cfg = AuthConfig.model_validate({
        "keys": [{"name": "app", "scopes": ["user"], "sha256": hash_key(USER)},
                 {"name": "ops", "scopes": ["admin"], "sha256": hash_key(ADMIN),
                  "limits": {"requests_per_minute": 2}}],
        **auth})
    return KeyStore.from_config(cfg, environ={})


def bearer(key: str) -> Headers:
    return Headers({"authorization": f"Bearer {key}"})


def test_keys_are_found_by_digest_from_config_file_and_environment(tmp_path):
    file_key, env_key = new_key(), new_key()
    assert file_key.startswith("sk-lorag-") and len(file_key) > 40 and file_key != env_key
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text(json.dumps([{"name": "from-file", "key": file_key,
                                      "scopes": ["admin"]}]))
    cfg = AuthConfig.model_validate({
        "keys": [{"name": "from-config", "sha256": hash_key(USER)}],
        "keys_file": str(keys_file)})
    keys = KeyStore.from_config(cfg, environ={"LORAG_API_KEYS": json.dumps(
        [{"name": "from-env", "key": env_key}])})
    assert keys.names == ["from-config", "from-env", "from-file"]
    assert keys.authenticate(f"Bearer {USER}").name == "from-config"
    assert keys.authenticate(f"bearer {file_key}").scopes == {"admin"}
    assert keys.authenticate(None, x_api_key=env_key).name == "from-env"
    # Only digests are kept.
    assert file_key not in repr(vars(keys)) and env_key not in repr(vars(keys))


def test_plain_keys_are_refused_in_the_config_file_and_bad_entries_are_named(tmp_path):
    with pytest.raises(ValueError, match="plain keys are not accepted"):
        AuthConfig.model_validate({"keys": [{"name": "x", "key": USER}]})
    with pytest.raises(ValueError, match="exactly one of sha256 and key"):
        AuthConfig.model_validate({"keys": [{"name": "x"}]})
    with pytest.raises(ValueError, match=r"LORAG_API_KEYS: entry 0.scopes"):
        KeyStore.from_config(AuthConfig(), environ={"LORAG_API_KEYS": json.dumps(
            [{"name": "x", "key": USER, "scopes": ["root"]}])})
    with pytest.raises(ValueError, match="cannot read"):
        KeyStore.from_config(AuthConfig(keys_file=str(tmp_path / "absent")), environ={})
    with pytest.raises(ValueError, match="duplicate API key name"):
        KeyStore.from_config(AuthConfig(), environ={"LORAG_API_KEYS": json.dumps(
            [{"name": "x", "key": USER}, {"name": "x", "key": ADMIN}])})
    with pytest.raises(ValueError, match="no API key is configured"):
        KeyStore.from_config(AuthConfig(), environ={})


def test_missing_or_wrong_key_is_401_and_wrong_scope_403():
    keys = store()
    with pytest.raises(AuthenticationError) as missing:
        authorize(keys, "POST", "/v1/chat/completions", Headers({}))
    assert missing.value.status == 401 and missing.value.code == "missing_api_key"
    assert missing.value.headers["WWW-Authenticate"] == "Bearer"
    with pytest.raises(AuthenticationError) as wrong:
        authorize(keys, "POST", "/v1/chat/completions", bearer(USER + "x"))
    assert wrong.value.code == "invalid_api_key"
    body = wrong.value.to_body()["error"]
    assert set(body) == {"message", "type", "param", "code"} and USER not in body["message"]
    with pytest.raises(PermissionDeniedError) as denied:
        authorize(keys, "GET", "/v1/deployments", bearer(USER))
    assert denied.value.status == 403 and "admin" in denied.value.message
    # indexes and adapters are checked per object by their endpoints (test_tenants.py)
    assert authorize(keys, "POST", "/v1/indexes/kb/documents", bearer(USER)).name == "app"
    assert authorize(keys, "POST", "/v1/chat/completions", bearer(USER)).name == "app"
    assert authorize(keys, "GET", "/v1/models", bearer(USER)).name == "app"
    # admin includes user
    assert authorize(keys, "POST", "/v1/completions", bearer(ADMIN)).name == "ops"
    assert authorize(keys, "DELETE", "/v1/adapters/x", bearer(ADMIN)).name == "ops"
    # probes and Prometheus need no key
    assert authorize(keys, "GET", "/health", Headers({})) is None
    assert authorize(keys, "GET", "/metrics", Headers({})) is None


@pytest.mark.parametrize("method,path,scope", [
    ("POST", "/v1/chat/completions", "user"), ("POST", "/v1/completions", "user"),
    ("POST", "/v1/embeddings", "user"), ("GET", "/v1/models", "user"),
    ("GET", "/v1/indexes", "user"), ("POST", "/v1/indexes/kb/search", "user"),
    ("POST", "/v1/adapters", "user"), ("GET", "/v1/adapters/x", "user"),
    ("GET", "/v1/deployments", "admin"), ("GET", "/health", None), ("GET", "/metrics", None),
])
def test_scopes_by_endpoint(method, path, scope):
    assert required_scope(method, path) == scope


def test_auth_off_lets_everyone_in_but_only_on_loopback():
    off = KeyStore.from_config(AuthConfig(enabled=False), environ={})
    assert authorize(off, "POST", "/v1/adapters", Headers({})).name == "anonymous"
    base = {"models": {"m": {"source": "x"}}, "routes": [{"name": "r", "model": "m"}]}
    with pytest.raises(ConfigError, match="local use only"):
        parse_config({**base, "server": {"host": "0.0.0.0", "auth": {"enabled": False}}})
    cfg = parse_config({**base, "server": {"auth": {"enabled": False}}})
    assert "AUTH IS OFF" in check_auth(cfg)
    with pytest.raises(ConfigError, match="local use only"):
        check_auth(cfg, host="0.0.0.0")
    with pytest.raises(ConfigError, match="no API key is configured"):
        check_auth(parse_config(base))


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_request_bucket_refuses_with_retry_after_and_refills():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limits = {"requests_per_minute": 2}
    assert limiter.acquire("k", limits)["ok"]
    second = limiter.acquire("k", limits)
    assert second["ok"] and second["headers"]["x-ratelimit-remaining-requests"] == "0"
    third = limiter.acquire("k", limits)
    assert not third["ok"] and third["limit"] == "requests"
    assert third["retry_after"] == pytest.approx(30.0)   # one request refills in 60/2 s
    assert limiter.acquire("other", limits)["ok"]         # per key
    clock.now += 30
    assert limiter.acquire("k", limits)["ok"]


def test_token_bucket_charges_answers_and_blocks_a_key_in_debt():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limits = {"tokens_per_minute": 600}
    assert limiter.acquire("k", limits)["ok"]
    limiter.charge("k", limits, 500)
    assert limiter.acquire("k", limits)["ok"]             # 100 left
    limiter.charge("k", limits, 400)                      # 300 in debt
    verdict = limiter.acquire("k", limits)
    assert not verdict["ok"] and verdict["limit"] == "tokens"
    assert verdict["retry_after"] == pytest.approx(301 / 10)  # 10 tokens a second
    clock.now += 31
    assert limiter.acquire("k", limits)["ok"]


def test_rate_limit_error_is_429_with_retry_after():
    keys = store()
    key = keys.authenticate(f"Bearer {ADMIN}")
    with pytest.raises(RateLimitError) as err:
        raise_rate_limited(key, {"ok": False, "limit": "requests", "retry_after": 12.2,
                                 "headers": {"x-ratelimit-limit-requests": "2"}})
    assert err.value.status == 429 and err.value.headers["Retry-After"] == "13"
    assert err.value.headers["x-ratelimit-limit-requests"] == "2"
    assert err.value.to_body()["error"]["code"] == "rate_limit_exceeded"


def test_route_caps_on_max_tokens():
    base = {"models": {"m": {"source": "x"}}, "server": {"auth": {"enabled": False}}}
    cfg = parse_config({**base, "routes": [
        {"name": "r", "model": "m", "limits": {"max_tokens": 64, "max_prompt_tokens": 100}}]})
    limits = cfg.routes[0].limits
    assert limits.check({"model": "r"})["max_tokens"] == 64
    assert limits.check({"max_tokens": 10}) == {"max_tokens": 10}
    with pytest.raises(ValueError, match="at most 64") as err:
        limits.check({"max_completion_tokens": 65})
    assert err.value.param == "max_completion_tokens"
    with pytest.raises(ConfigError, match=r"routes.0.sampling.max_tokens"):
        parse_config({**base, "routes": [{"name": "r", "model": "m",
                                          "sampling": {"max_tokens": 100},
                                          "limits": {"max_tokens": 64}}]})


def test_internal_failures_map_to_503_and_504():
    from ray.exceptions import ActorDiedError
    from ray.serve.exceptions import BackPressureError

    full = from_internal_error(BackPressureError(num_queued_requests=3, max_queued_requests=2))
    assert full.status == 503 and full.headers["Retry-After"] and full.code == "overloaded"
    died = from_internal_error(ActorDiedError())
    assert died.status == 503 and died.code == "replica_unavailable"
    assert from_internal_error(TimeoutError()).status == 504
    assert from_internal_error(ValueError("bug")) is None


class WordTokenizer:
    """One token per word; a chat template that adds 3 tokens per message + 2."""

    def encode(self, text, add_special_tokens=False):
        return text.split()

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        ids = []
        for m in messages:
            ids += ["<im>", m["role"], *m["content"].split(), "</im>"]
        return {"input_ids": ids + ["<im>", "assistant"]}   # transformers 5: a mapping


def test_prompt_cap_counts_the_rendered_conversation_and_each_completion_prompt():
    from serving.llm_server import LLMServer, prompt_tokens

    tok = WordTokenizer()
    chat = [{"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "one two three"}]}]
    assert prompt_tokens(tok, chat) == (3 + 2) + (3 + 3) + 2
    assert prompt_tokens(tok, "a b c") == 3
    assert prompt_tokens(tok, ["a b", "a b c d"]) == 4          # the longest prompt
    assert prompt_tokens(tok, [1, 2, 3, 4, 5]) == 5              # token ids

    server = LLMServer.__new__(LLMServer)
    server.engine = type("Engine", (), {"get_tokenizer": lambda self: tok})()
    assert server.check_prompt_length(chat, "messages", 13) is None
    error = server.check_prompt_length(chat, "messages", 12)["error"]  # a failed reply
    assert error["status"] == 400 and error["param"] == "messages"
    assert error["code"] == "prompt_too_long" and "13 tokens" in error["message"]
