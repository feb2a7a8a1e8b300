import httpx
import pytest

from tests.support.keys import ADMIN, AUTH
from openai import AsyncOpenAI, OpenAI

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def client(server_url) -> OpenAI:
    return OpenAI(base_url=f"{server_url}/v1", api_key=ADMIN, max_retries=0, timeout=300)


@pytest.fixture(scope="session")
def async_client(server_url) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=f"{server_url}/v1", api_key=ADMIN, max_retries=0, timeout=300)


@pytest.fixture(scope="session")
def http(server_url):
    with httpx.Client(base_url=server_url, timeout=300, headers=AUTH) as c:
        yield c
