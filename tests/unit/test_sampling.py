"""OpenAI's sampling ranges are written once (`serving.sampling`): the request parser, the
OpenAPI document and a route's sampling defaults accept and refuse the same values."""

import jsonschema
import pytest
from pydantic import ValidationError

from serving.errors import InvalidRequestError
from serving.openapi import CHAT, COMPLETION
from serving.protocol import parse_chat_request
from serving.route_settings import SamplingDefaults
from serving.sampling import SAMPLING

MESSAGES = [{"role": "user", "content": "hi"}]
EDGES = {  # parameter: (accepted values, refused values)
    "max_tokens": ([1, 4096], [0, -1, 1.5, True, "8"]),
    "max_completion_tokens": ([1], [0, 2.5]),
    "temperature": ([0, 2, 0.7], [-0.01, 2.01, "hot", False]),
    "top_p": ([1, 0.01], [0, 1.01]),
    "presence_penalty": ([-2, 2], [-2.5, 2.5]),
    "frequency_penalty": ([-2, 0, 2], [-3, 3]),
    "repetition_penalty": ([0.5, 1, 1.3], [0, -1]),
    "n": ([1, 16], [0, 17]),
}


def test_every_range_has_its_edges_tested():
    assert set(EDGES) == set(SAMPLING)


@pytest.mark.parametrize("param", sorted(EDGES))
def test_parser_schema_and_config_agree(param):
    good, bad = EDGES[param]
    schema = CHAT["properties"][param]
    config_field = param in SamplingDefaults.model_fields
    for value in good:
        parse_chat_request({"model": "m", "messages": MESSAGES, param: value})
        jsonschema.validate(value, schema)
        if config_field:
            SamplingDefaults.model_validate({param: value})
    for value in bad:
        with pytest.raises(InvalidRequestError) as err:
            parse_chat_request({"model": "m", "messages": MESSAGES, param: value})
        assert err.value.param == param and err.value.code == "invalid_value"
        assert SAMPLING[param].rule() in err.value.message
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(value, schema)
        if config_field and not isinstance(value, (bool, str)):
            with pytest.raises(ValidationError):
                SamplingDefaults.model_validate({param: value})


def test_completions_share_the_ranges_but_not_chats_own_field():
    assert COMPLETION["properties"]["temperature"] == CHAT["properties"]["temperature"]
    assert "max_completion_tokens" not in COMPLETION["properties"]
