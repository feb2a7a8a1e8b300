"""The lorag locust suite: one user class per route kind, plus an admin user.

Headless (what CI and the sweep use): ``python -m loadtest run --host URL ...``.
With locust's web UI: ``locust -f loadtest/locustfile.py --host URL [--mix ...]``
(the options below are added to locust's command line).

- `PlainUser`, `RagUser`, `AdapterUser`, `HybridUser` stream chat completions to
  their route (`--routes`); each answer also records TTFT, ITL (the answer's
  mean inter-token gap) and TOKENS (output tokens, as the response length) as
  their own locust statistics, named after the route.
- `AdminUser` (a fixed count) loads a LoRA adapter under a name of its own,
  asks it once and unloads it, then adds a document to an index, searches for
  it and deletes it - hot swap and live re-indexing while the others run.
"""

from __future__ import annotations

import itertools
import random
import time
from typing import Any

from locust import HttpUser, between, events, task
from requests.exceptions import RequestException

from loadtest.sse import StreamReader
from loadtest.workload import Workload, parse_length, parse_mix, parse_routes
from serving.auth import client_headers

# name -> kind of what an admin user created and has not removed yet; the runner
# removes what is left when the run stops (a user killed mid-cycle).
LEFTOVERS: dict[str, str] = {}
_ADMIN_NUMBERS = itertools.count()


class _GenerationUser(HttpUser):
    abstract = True
    kind = "plain"

    def wait_time(self) -> float:
        return random.uniform(*self.workload.think_time_s)

    def on_start(self) -> None:
        self.workload: Workload = self.environment.lorag_workload
        self.rng = random.Random()
        self.client.headers.update(client_headers())  # $LORAG_API_KEY, if auth is on

    @task
    def chat(self) -> None:
        route = self.workload.routes[self.kind]
        stream_chat(self, route, self.workload.chat_body(self.kind, self.rng),
                    expect_citations=self.kind in ("rag", "hybrid"))


class PlainUser(_GenerationUser):
    kind = "plain"


class RagUser(_GenerationUser):
    kind = "rag"


class AdapterUser(_GenerationUser):
    kind = "adapter"


class HybridUser(_GenerationUser):
    kind = "hybrid"


USER_CLASSES = {"plain": PlainUser, "rag": RagUser, "adapter": AdapterUser,
                "hybrid": HybridUser}


def http_error(resp: Any) -> str:
    """A failed answer as one line: the status and the server's message."""
    if not resp.status_code:
        return f"no answer: {resp.error}"
    return f"HTTP {resp.status_code}: {(resp.text or '')[:200]}"


def stream_chat(user: HttpUser, route: str, body: dict, expect_citations: bool = False) -> None:
    """One streamed chat completion: the request's own row covers sent -> last byte."""
    started = time.perf_counter()
    with user.client.post("/v1/chat/completions", json=body, stream=True,
                          catch_response=True, name=f"chat {route}",
                          context={"route": route}) as resp:
        if resp.status_code != 200:
            resp.failure(http_error(resp))
            return
        reader = StreamReader(started)
        try:
            for data in resp.iter_content(chunk_size=None):
                reader.feed(data, time.perf_counter())
        except RequestException as err:
            resp.failure(f"stream broken: {err}")
            return
        result = reader.result()
        resp.request_meta["response_time"] = (time.perf_counter() - started) * 1000
        resp.request_meta["response_length"] = reader.received_bytes
        if result.error is None and expect_citations and result.citations is None:
            result.error = "no citations in the first chunk of a retrieval route"
        if result.error is not None:
            resp.failure(result.error)
            return
        resp.success()
    fire = user.environment.events.request.fire
    if result.ttft_s is not None:
        fire(request_type="TTFT", name=route, response_time=result.ttft_s * 1000,
             response_length=0, exception=None, context={})
    if result.gaps_s:
        gaps_ms = [g * 1000 for g in result.gaps_s]
        fire(request_type="ITL", name=route, response_time=sum(gaps_ms) / len(gaps_ms),
             response_length=0, exception=None, context={"gaps_ms": gaps_ms})
    fire(request_type="TOKENS", name=route, response_time=result.output_tokens,
         response_length=result.output_tokens, exception=None, context={})


class AdminUser(HttpUser):
    """Adapter hot swap and live re-indexing under load; cleans up after itself."""

    fixed_count = 1
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.workload: Workload = self.environment.lorag_workload
        self.client.headers.update(client_headers())  # an admin key
        lo, hi = self.workload.admin_wait_s
        self.wait_time = lambda: random.uniform(lo, hi)
        self.serial = 0
        # One adapter name per admin user, the same in every run: each name becomes a
        # label of the per-adapter metrics, so a name per cycle would grow them forever.
        self.adapter_name = f"loadtest-{next(_ADMIN_NUMBERS)}"

    def _doc_id(self) -> str:
        self.serial += 1
        return f"{self.workload.run_id}-{self.adapter_name.rpartition('-')[2]}-{self.serial}"

    def _call(self, method: str, path: str, name: str, **kwargs: Any) -> Any:
        """An admin request; a non-2xx answer is a failure with the server's message."""
        with self.client.request(method, path, name=name, catch_response=True,
                                 context={"route": "admin"}, **kwargs) as resp:
            if resp.status_code // 100 != 2:
                resp.failure(http_error(resp))
                return None
            resp.success()
            return resp.json()

    @task
    def cycle(self) -> None:
        """Both operations every time, so that a short run exercises each."""
        self.adapter_hot_swap()
        self.live_reindex()

    def adapter_hot_swap(self) -> None:
        name = self.adapter_name
        LEFTOVERS[name] = "adapter"
        loaded = self._call("POST", "/v1/adapters", "POST /v1/adapters",
                            json={"name": name, "source": self.workload.adapter_source})
        if loaded is not None:
            self._call("POST", "/v1/chat/completions", "chat [loaded adapter]", json={
                "model": name, "max_tokens": 8, "temperature": 0,
                "messages": [{"role": "user", "content": "What is the capital of Peru?"}]})
        if self._call("DELETE", f"/v1/adapters/{name}", "DELETE /v1/adapters/[name]"):
            LEFTOVERS.pop(name, None)

    def live_reindex(self) -> None:
        doc_id = self._doc_id()
        index = self.workload.admin_index
        code = f"LT-{random.randint(1000, 9999)}"
        LEFTOVERS[doc_id] = f"document:{index}"
        text = (f"# Loadtest depot {doc_id}\n\nThe gate code of the loadtest depot "
                f"{doc_id} is {code}. It changes at every load test.")
        added = self._call("POST", f"/v1/indexes/{index}/documents",
                           "POST /v1/indexes/[index]/documents",
                           json={"documents": [{"doc_id": doc_id, "title": doc_id,
                                                "text": text}]})
        if added is not None:
            self._search(index, doc_id, present=True)
        if self._call("DELETE", f"/v1/indexes/{index}/documents/{doc_id}",
                      "DELETE /v1/indexes/[index]/documents/[doc_id]"):
            LEFTOVERS.pop(doc_id, None)
            self._search(index, doc_id, present=False)

    def _search(self, index: str, doc_id: str, present: bool) -> None:
        """The index answers with the change at once (found after add, gone after delete)."""
        label = "search (added doc found)" if present else "search (deleted doc gone)"
        with self.client.post(f"/v1/indexes/{index}/search", name=label, catch_response=True,
                              context={"route": "admin"},
                              json={"query": f"gate code of the loadtest depot {doc_id}",
                                    "top_k": 10}) as resp:
            if resp.status_code != 200:
                resp.failure(http_error(resp))
                return
            found = any(hit.get("doc_id") == doc_id for hit in resp.json().get("data", []))
            if found != present:
                resp.failure(f"document {doc_id} {'missing from' if present else 'still in'} "
                             "the search results")
            else:
                resp.success()


# -- locust's own command line (locust -f loadtest/locustfile.py) ----------------

@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    add_workload_options(parser)


def add_workload_options(parser: Any) -> None:
    """The workload options, shared with `python -m loadtest run`."""
    parser.add_argument("--mix", default=None, help="user kinds and weights, e.g. "
                        "plain=4,rag=2,adapter=1,hybrid=1,admin=1 (admin: a count)")
    parser.add_argument("--routes", default=None, help="route per kind, e.g. "
                        "plain=base,rag=rag,adapter=tuned,hybrid=hybrid (these are the default)")
    parser.add_argument("--prompt-len", default="64", help="plain/adapter prompt length in "
                        "tokens: N or LOW-HIGH (uniform); rag/hybrid ask the sample questions")
    parser.add_argument("--max-tokens", type=int, default=32, help="output tokens per answer")
    parser.add_argument("--ignore-eos", action="store_true",
                        help="always generate max-tokens tokens (vLLM's ignore_eos)")
    parser.add_argument("--admin-index", default="helix",
                        help="index the admin user adds documents to and deletes them from")
    parser.add_argument("--adapter-source", default=None, help="adapter folder the admin "
                        "user loads (a path the server may read; default the sample adapter)")


def workload_from_options(opts: Any) -> Workload:
    workload = Workload(mix=parse_mix(opts.mix), routes=parse_routes(opts.routes),
                        prompt_len=parse_length(opts.prompt_len), max_tokens=opts.max_tokens,
                        ignore_eos=opts.ignore_eos, admin_index=opts.admin_index)
    if opts.adapter_source:
        workload.adapter_source = opts.adapter_source
    return workload


def apply_mix(mix: dict[str, int]) -> list[type[HttpUser]]:
    """Set the classes' weights from the mix; the classes that take part."""
    classes: list[type[HttpUser]] = []
    for kind, cls in USER_CLASSES.items():
        cls.weight = mix.get(kind, 0)
        if cls.weight:
            classes.append(cls)
    AdminUser.fixed_count = mix.get("admin", 0)
    AdminUser.weight = 1 if AdminUser.fixed_count else 0  # fixed_count 0 means "by weight"
    if AdminUser.fixed_count:
        classes.append(AdminUser)
    return classes


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    if getattr(environment, "lorag_workload", None) is None and environment.parsed_options:
        environment.lorag_workload = workload_from_options(environment.parsed_options)
        apply_mix(environment.lorag_workload.mix)
