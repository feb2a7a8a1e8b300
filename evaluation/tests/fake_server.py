"""An in-process stand-in for a lorag server (httpx.MockTransport), for `lorag eval` tests.

Routes: base (no retrieval), rag and hybrid (retrieval over index "kb"; hybrid answers
JSON). Every search returns [alpha, gamma]; answers are canned per question.
"""

import json

import httpx

from evaluation.data import FormatPrompt, Question

DOCS = [{"doc_id": d, "text": f"# {d}\n\ntext of {d}", "title": d, "format": "markdown",
         "metadata": {}} for d in ("alpha", "beta", "gamma")]
QUESTIONS = [
    Question(id="s1", question="When was Alpha founded?", answer="1999", doc_ids=["alpha"],
             kind="single"),
    Question(id="m1", question="What number do Alpha and Beta share?", answer="42",
             aliases=["forty-two"], doc_ids=["alpha", "beta"], kind="multi"),
    Question(id="u1", question="Who is Zed?", answer="", kind="unanswerable"),
]
FORMATS = [FormatPrompt(id="f1", question="What is Alpha's code?", answer="AL-1",
                        doc_ids=["alpha"])]
# question -> (answer of the rag route, doc_ids of its citations); None: no usable source
ANSWERS = {"When was Alpha founded?": ("Alpha was founded in 1999 [1].", ["alpha", "gamma"]),
           "What number do Alpha and Beta share?": ("It is 42 [2].", ["alpha", "gamma"]),
           "What is Alpha's code?": ("AL-1 [1]", ["alpha"]),
           "Who is Zed?": None}
EXCLUDE = ["draft", "superseded"]
ROUTES = {"base": None, "rag": {"index": "kb", "top_k": 4, "exclude_status": EXCLUDE},
          "hybrid": {"index": "kb", "top_k": 4, "exclude_status": EXCLUDE}}


def _json(status, body):
    return httpx.Response(status, json=body)


def _error(status, message):
    return _json(status, {"error": {"message": message, "type": "invalid_request_error",
                                    "param": None, "code": None}})


class FakeServer:
    def __init__(self, fail_create=False, fail_upload=False):
        self.fail_create, self.fail_upload = fail_create, fail_upload
        self.created: list[dict] = []
        self.uploaded: list[str] = []
        self.deleted: list[str] = []
        self.chat_bodies: list[dict] = []
        self.search_bodies: list[dict] = []
        self.index_spec: dict | None = None

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        body = json.loads(request.content) if request.content else None
        if path == "/v1/models":
            data = [{"id": n, "object": "model", "lorag": {"kind": "route", "retrieval": r,
                                                           "adapter": None}}
                    for n, r in ROUTES.items()]
            return _json(200, {"object": "list", "data": data + [
                {"id": "minilm", "object": "model", "lorag": {"kind": "embedding"}}]})
        if path == "/v1/indexes/kb" and method == "GET":
            info = {"name": "kb", "type": "flat", "embedder": "e1"}
            return _json(200, {**info, "spec": self.index_spec} if self.index_spec else info)
        if path == "/v1/indexes" and method == "POST":
            if self.fail_create:
                return _error(409, "index exists")
            self.created.append(body)
            return _json(201, {"name": body["name"]})
        if path.endswith("/documents"):
            if self.fail_upload:
                return _error(400, "bad document")
            self.uploaded += [d["doc_id"] for d in body["documents"]]
            return _json(200, {"data": [{"status": "added"} for _ in body["documents"]]})
        if path.endswith("/search"):
            self.search_bodies.append(body)
            return _json(200, {"data": [{"doc_id": "alpha"}, {"doc_id": "gamma"}]})
        if method == "DELETE":
            self.deleted.append(path.rsplit("/", 1)[1])
            return _json(200, {"deleted": True})
        if path == "/v1/chat/completions":
            self.chat_bodies.append(body)
            return self.chat(body)
        return _error(404, f"no route {method} {path}")

    def chat(self, body):
        model, question = body["model"], body["messages"][-1]["content"]
        canned = ANSWERS[question]
        tokens, citations = 7, None
        if model == "base":
            if question.startswith("What number"):
                return _error(500, "engine died")
            text = "I don't know."
        elif canned is None:  # a retrieval route's no-context answer: nothing generated
            text = "I don't know." if model == "rag" else \
                '{"answer": "I don\'t know.", "confidence": "low"}'
            tokens, citations = 0, []
        else:
            text, sources = canned
            if model == "hybrid":
                text = json.dumps({"answer": text, "confidence": "high"})
            citations = [{"number": i, "index": body.get("index"), "doc_id": d}
                         for i, d in enumerate(sources, 1)]
        out = {"id": "c", "object": "chat.completion", "created": 0, "model": model,
               "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text}}],
               "usage": {"prompt_tokens": 10, "completion_tokens": tokens,
                         "total_tokens": 10 + tokens}}
        if citations is not None:
            out["citations"] = citations
        if citations:  # a retrieval route's generated answer went through grounding
            out["choices"][0]["grounding"] = "passed"
        return _json(200, out)
